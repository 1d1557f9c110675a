"""max_pool2d / avg_pool2d against a float64 NumPy reference and PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import avg_pool2d, max_pool2d
from tests.conftest import assert_close


def out_size(size, k, s, d, p0, p1, ceil_mode):
    eff = size + p0 + p1 - d * (k - 1) - 1
    out = (-(-eff // s) if ceil_mode else eff // s) + 1
    if ceil_mode and (out - 1) * s >= size + p0:
        out -= 1
    return out


def ref_pool(x, k, s, d, pads, ceil_mode, mode, count_include_pad=True):
    """Straight from the definition: loop over output positions, gather taps."""
    x = x.astype(np.float64)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = k, s, d, pads
    oh = out_size(h, kh, sh, dh, pt, pb, ceil_mode)
    ow = out_size(w, kw, sw, dw, pl, pr, ceil_mode)
    y = np.empty((n, c, oh, ow))
    for oy in range(oh):
        rows = [oy * sh - pt + i * dh for i in range(kh)]
        vr = [r for r in rows if 0 <= r < h]
        nrp = sum(1 for r in rows if -pt <= r < h + pb)
        for ox in range(ow):
            cols = [ox * sw - pl + j * dw for j in range(kw)]
            vc = [q for q in cols if 0 <= q < w]
            ncp = sum(1 for q in cols if -pl <= q < w + pr)
            win = x[:, :, vr][:, :, :, vc]
            if mode == "max":
                y[:, :, oy, ox] = win.max(axis=(2, 3))
            else:
                div = nrp * ncp if count_include_pad else len(vr) * len(vc)
                y[:, :, oy, ox] = win.sum(axis=(2, 3)) / div
    return y


# (n, c, h, w, kernel, stride, padding(t,l,b,r), dilation, ceil_mode)
CASES = [
    (1, 3, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False),
    (2, 7, 37, 37, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),      # 2x2s2, tail
    (1, 13, 67, 45, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True),      # 3x3s2 ceil
    (2, 3, 29, 31, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False),      # 3x3s1
    (1, 5, 23, 41, (3, 2), (3, 4), (0, 1, 2, 0), (1, 1), True),       # stride > kernel
    (1, 4, 19, 53, (3, 3), (2, 2), (2, 2, 2, 2), (2, 3), False),      # dilation, s2 dilated
    (3, 2, 17, 43, (5, 4), (3, 2), (4, 3, 4, 3), (1, 1), True),       # pad > k/2
    (1, 3, 11, 13, (2, 3), (2, 3), (0, 0, 1, 2), (1, 1), True),       # asymmetric + ceil
    (1, 2, 8, 40, (1, 7), (1, 1), (0, 3, 0, 3), (1, 2), False),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["max", "avg", "avg_nopad"])
def test_pool2d_matches_reference(isa, rng, case, mode):
    n, c, h, w, k, s, pads, d, ceil_mode = case
    if mode != "max" and d != (1, 1):
        d = (1, 1)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    cip = mode == "avg"
    want = ref_pool(x, k, s, d, pads, ceil_mode, mode[:3], cip)
    for threads in (1, 2, 3, 8):
        if mode == "max":
            got = max_pool2d(x, k, s, pads, d, ceil_mode, threads=threads)
            np.testing.assert_array_equal(got, want.astype(np.float32))
        else:
            got = avg_pool2d(x, k, s, pads, ceil_mode, count_include_pad=cip, threads=threads)
            assert_close(got, want, atol=1e-6, what=f"{mode} threads={threads}")


def test_pool2d_writes_every_output(isa, rng):
    """Call the binding on NaN-prefilled outputs: nothing may stay unwritten."""
    x = rng.standard_normal((2, 3, 21, 35)).astype(np.float32)
    shape, k, s, d, pads = x.shape, (3, 3), (2, 2), (1, 1), (1, 0, 1, 2)
    out = (out_size(21, 3, 2, 1, 1, 1, True), out_size(35, 3, 2, 1, 0, 2, True))
    for fn, mode in ((_k.max_pool2d, "max"), (_k.avg_pool2d, "avg")):
        y = np.full((2, 3) + out, np.nan, dtype=np.float32)
        args = (x.reshape(-1), y.reshape(-1), shape, k, s, d, pads, out)
        fn(*args, 2) if mode == "max" else fn(*args, True, 2)
        assert not np.isnan(y).any()
        assert_close(y, ref_pool(x, k, s, d, pads, True, mode), atol=1e-6)


def test_max_pool_padding_never_wins(isa):
    x = -np.ones((1, 1, 5, 9), dtype=np.float32) * 3.0
    y = max_pool2d(x, 3, 2, padding=1)
    assert (y == -3.0).all()


def test_pool2d_defaults_and_pairs(isa, rng):
    x = rng.standard_normal((1, 2, 10, 12)).astype(np.float32)
    y = max_pool2d(x, 2)                         # stride defaults to kernel
    assert y.shape == (1, 2, 5, 6)
    y = avg_pool2d(x.astype(np.float64), (2, 3), padding=(1, 0))
    assert y.shape == (1, 2, 6, 4) and y.dtype == np.float32


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool2d_vs_torch(isa, rng, ceil_mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for (n, c, h, w, k, s, p, d) in [(2, 5, 33, 27, 3, 2, 1, 1), (1, 3, 16, 18, 2, 2, 0, 1),
                                     (1, 4, 23, 19, 3, 1, 1, 1), (1, 3, 20, 25, 3, 3, 1, 2),
                                     (2, 7, 14, 15, 4, 3, 2, 1), (1, 2, 9, 10, 5, 2, 2, 1),
                                     (1, 3, 5, 8, 3, 3, 1, 1)]:  # ceil drops a window
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        t = torch.from_numpy(x)
        want = F.max_pool2d(t, k, s, p, d, ceil_mode=ceil_mode).numpy()
        np.testing.assert_array_equal(max_pool2d(x, k, s, p, d, ceil_mode), want)
        for cip in (True, False):
            want = F.avg_pool2d(t, k, s, p, ceil_mode=ceil_mode, count_include_pad=cip).numpy()
            got = avg_pool2d(x, k, s, p, ceil_mode, count_include_pad=cip)
            assert_close(got, want, atol=1e-6, what=f"avg k{k} s{s} p{p} cip={cip}")


def test_pool2d_errors():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    with pytest.raises(ce.ShapeError, match="only padding"):
        max_pool2d(x, 2, 2, padding=3)           # first window lies in the padding
    with pytest.raises(ce.ShapeError, match="only padding"):
        max_pool2d(np.zeros((1, 1, 1, 1), np.float32), 2, 1, padding=1, dilation=2)
    with pytest.raises(ce.ShapeError, match="larger than the padded input"):
        avg_pool2d(x, 6)
    with pytest.raises(ce.ShapeError, match="4-D"):
        max_pool2d(np.zeros((4, 4), np.float32), 2)
    with pytest.raises(ce.ShapeError, match="stride"):
        max_pool2d(x, 2, 0)
    with pytest.raises(ce.ShapeError, match="padding"):
        max_pool2d(x, 2, padding=-1)
    # the C layer validates on its own too
    y = np.zeros(4, np.float32)
    with pytest.raises(ce.ShapeError):
        _k.max_pool2d(x.reshape(-1), y, (1, 1, 4, 4), (2, 2), (2, 2), (1, 1), (3, 3, 0, 0),
                      (2, 2), 1)
