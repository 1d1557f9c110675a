"""Host-side launch arithmetic (backend/cuda/launch.py), pure Python: grids
cover the work and respect the limits, shapes collapse correctly, and the
index arithmetic the kernels do is emulated in NumPy from the same host
values (conv.cu's implicit GEMM gather with the transposed weights,
pool.cu's taps and divisors, layout.cu's pad and resize maps, eltwise.cu's
broadcast offsets) and compared with the engine's references."""
import numpy as np
import pytest

from cnnengine import functional as F
from cnnengine.backend.cuda import launch as L
from cnnengine.backend.cuda.table import _affine_map


def test_elementwise_grid_covers_and_caps():
    for n in (1, 255, 256, 257, 10**6, 10**9):
        (gx, gy, gz), (bx, _, _) = L.elementwise_grid(n, sms=132)
        assert gy == gz == 1 and bx == 256 and 1 <= gx <= 132 * 32
        assert gx * bx >= min(n, 132 * 32 * 256)     # a grid-stride loop covers the rest


def test_conv_grid_tiles_pixels_and_channels_per_group():
    s = L.conv_shape((3, 12, 17, 19), (30, 4, 3, 3), (1, 1, 1, 1), (2, 1), (1, 1), 3, (9, 19))
    (gx, gy, gz), block = L.conv_grid(s)
    assert gx == -(-3 * 9 * 19 // 64) and gy == 1 and gz == 3 and block == (256, 1, 1)
    assert L.conv_grid(s, tf32=True)[1] == (128, 1, 1)
    big = L.conv_shape((1, 8, 4, 4), (64 * 70000, 8, 1, 1), (0, 0, 0, 0), (1, 1), (1, 1), 1, (4, 4))
    with pytest.raises(ValueError, match="too large"):
        L.conv_grid(big)


def test_conv_kind():
    dw = L.conv_shape((1, 8, 5, 5), (16, 1, 3, 3), (1, 1, 1, 1), (1, 1), (1, 1), 8, (5, 5))
    assert L.conv_kind(dw, (1, 1, 1, 1)) == "depthwise"
    pw = L.conv_shape((1, 8, 5, 5), (16, 8, 1, 1), (0, 0, 0, 0), (1, 1), (1, 1), 1, (5, 5))
    assert L.conv_kind(pw, (0, 0, 0, 0)) == "1x1"
    strided = L.conv_shape((1, 8, 5, 5), (16, 8, 1, 1), (0, 0, 0, 0), (2, 2), (1, 1), 1, (3, 3))
    assert L.conv_kind(strided, (0, 0, 0, 0)) == "igemm"
    grouped = L.conv_shape((1, 8, 5, 5), (16, 2, 3, 3), (1, 1, 1, 1), (1, 1), (1, 1), 4, (5, 5))
    assert L.conv_kind(grouped, (1, 1, 1, 1)) == "igemm"


def _igemm_emulated(x, wt, s, gate=None):
    """conv.cu's igemm: per group, Y[m, p] = sum_kk wt[g, kk, m] * B[kk, p] with
    B gathered by load_x's arithmetic (kk -> channel, tap; pixel -> n, oy, ox)."""
    cg, kg, taps = s.c // s.groups, s.k // s.groups, s.kh * s.kw
    kd = cg * taps
    npix = s.n * s.oh * s.ow
    y = np.zeros((s.n, s.k, s.oh, s.ow), np.float64)
    for g in range(s.groups):
        b = np.zeros((kd, npix))
        for p in range(npix):
            q, ox = divmod(p, s.ow)
            bn, oy = divmod(q, s.oh)
            iy0, ix0 = oy * s.sh - s.pt, ox * s.sw - s.pl
            for kk in range(kd):
                c, rs = divmod(kk, taps)
                r, t = divmod(rs, s.kw)
                iy, ix = iy0 + r * s.dh, ix0 + t * s.dw
                if 0 <= iy < s.h and 0 <= ix < s.w:
                    v = x[bn, g * cg + c, iy, ix]
                    b[kk, p] = v * (gate[bn, g * cg + c] if gate is not None else 1.0)
        out = wt[g].T.astype(np.float64) @ b           # (kg, npix)
        for p in range(npix):
            q, ox = divmod(p, s.ow)
            bn, oy = divmod(q, s.oh)
            y[bn, g * kg:(g + 1) * kg, oy, ox] = out[:, p]
    return y


@pytest.mark.parametrize("xs,k,ker,st,dil,pads,g", [
    ((2, 3, 7, 6), 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    ((1, 6, 8, 7), 9, (3, 2), (2, 1), (1, 2), (0, 2, 1, 0), 3),
    ((2, 4, 5, 5), 4, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 2),
])
def test_implicit_gemm_index_arithmetic_matches_conv2d(rng, xs, k, ker, st, dil, pads, g):
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal((k, xs[1] // g) + ker).astype(np.float32)
    gate = rng.standard_normal(xs[:2]).astype(np.float32)
    want = F.conv2d(x * gate[:, :, None, None], w, stride=st, padding=pads, dilation=dil, groups=g)
    s = L.conv_shape(xs, w.shape, pads, st, dil, g, want.shape[2:])
    got = _igemm_emulated(x, L.igemm_weights(w, g), s, gate)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _taps(a, k, d, lo, hi):
    b, e = 0, k
    while b < k and a + b * d < lo:
        b += 1
    while e > b and a + (e - 1) * d >= hi:
        e -= 1
    return b, e


@pytest.mark.parametrize("ceil,cip", [(False, True), (True, True), (True, False)])
def test_pool_taps_and_divisor_match_avg_pool2d(rng, ceil, cip):
    x = rng.standard_normal((1, 2, 10, 9)).astype(np.float32)
    k, s, pads = (3, 2), (2, 3), (1, 0, 1, 1)
    want = F.avg_pool2d(x, k, s, pads, ceil_mode=ceil, count_include_pad=cip)
    got = np.zeros_like(want)
    h, w = x.shape[2:]
    for oy in range(want.shape[2]):
        for ox in range(want.shape[3]):
            ay, ax = oy * s[0] - pads[0], ox * s[1] - pads[1]
            i0, i1 = _taps(ay, k[0], 1, 0, h)
            j0, j1 = _taps(ax, k[1], 1, 0, w)
            c0, c1 = _taps(ay, k[0], 1, -pads[0], h + pads[2]) if cip else (i0, i1)
            d0, d1 = _taps(ax, k[1], 1, -pads[1], w + pads[3]) if cip else (j0, j1)
            win = x[:, :, ay + i0:ay + i1, ax + j0:ax + j1]
            got[:, :, oy, ox] = win.sum(axis=(2, 3)) / ((c1 - c0) * (d1 - d0))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _binary_emulated(d, a, b, op):
    n = int(np.prod([d.size[i] for i in range(d.ndim)]))
    out = np.empty(n, np.float32)
    for i in range(n):
        rest, ia, ib = i, 0, 0
        for k in range(d.ndim - 1, -1, -1):
            c = rest % d.size[k]
            rest //= d.size[k]
            ia += c * d.sa[k]
            ib += c * d.sb[k]
        out[i] = op(a.reshape(-1)[ia], b.reshape(-1)[ib])
    return out


@pytest.mark.parametrize("sa,sb", [((2, 3, 4, 5), (3, 1, 1)), ((1, 5), (4, 1)), ((2, 1, 4), (2, 3, 1)),
                                   ((3,), (2, 3)), ((2, 3, 4), (2, 3, 4)), ((), (2, 2))])
def test_broadcast_offsets_match_numpy(rng, sa, sb):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    want = a - b
    d = L.binary_dims(a.shape, b.shape, want.shape)
    assert d.ndim <= 3
    np.testing.assert_array_equal(_binary_emulated(d, a, b, np.subtract), want.reshape(-1))


def test_collapse_merges_contiguous_axes_and_drops_ones():
    sizes, (sa, sb) = L.collapse((2, 3, 4, 5), [60, 20, 5, 1], [0, 1, 0, 0])
    assert sizes == [2, 3, 20] and sa == [60, 20, 1] and sb == [0, 1, 0]
    assert L.collapse((1, 1), [1, 1]) == ([1], [[0]])
    with pytest.raises(ValueError):
        L.dims(list(range(2, 12)), [1] * 10)


def _pad_emulated(d, x, off, mode, value):
    out_shape = [d.out[i] for i in range(d.ndim)]
    flat = x.reshape(-1)
    y = np.empty(int(np.prod(out_shape)), np.float32)
    for i in range(y.size):
        rest, ia, outside = i, off, False
        for k in range(d.ndim - 1, -1, -1):
            c = rest % d.out[k] - d.begin[k]
            rest //= d.out[k]
            n = d.inp[k]
            if c < 0 or c >= n:
                if mode == "constant":
                    outside = True
                    break
                if mode == "edge":
                    c = 0 if c < 0 else n - 1
                elif mode == "wrap":
                    c = c % n
                else:
                    period = 2 * (n - 1) if n > 1 else 1
                    c = c % period
                    c = period - c if c >= n else c
            ia += c * d.stride[k]
        y[i] = value if outside else flat[ia]
    return y.reshape(out_shape)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_map_matches_numpy(rng, mode):
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    begin, end = [0, 1, 3, -1], [1, 0, 2, 3]
    d, off, shape = L.pad_dims(x.shape, begin, end)
    cropped = x[:, :, :, 1:]
    kw = {"constant_values": 2.5} if mode == "constant" else {}
    want = np.pad(cropped, [(0, 1), (1, 0), (3, 2), (0, 3)], mode=mode, **kw)
    assert shape == want.shape
    np.testing.assert_array_equal(_pad_emulated(d, x, off, mode, 2.5), want)


def test_resize_taps_reproduce_the_interpolation_matrix(rng):
    from cnnengine.ops.resample import ResizeParams, _resize_weights
    for mode, coord in (("linear", "half_pixel"), ("nearest", "asymmetric"), ("cubic", "align_corners")):
        p = ResizeParams(mode=mode, coordinate_transformation_mode=coord)
        w, _ = _resize_weights(p, 7, 12, 12 / 7, None)
        idx, wt = L.resize_taps(w)
        back = np.zeros_like(w)
        for r in range(w.shape[0]):
            np.add.at(back[r], idx[r], wt[r])
        np.testing.assert_allclose(back, w, atol=1e-6)


def test_affine_maps_become_strided_copies():
    idx = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    off, strides = _affine_map(np.ascontiguousarray(idx[:, 1:, ::2, ::-1]))
    assert off == 20 + 4 and strides == [60, 20, 10, -1]
    assert _affine_map(np.ascontiguousarray(idx.transpose(0, 2, 3, 1))) == (0, [60, 5, 1, 20])
    d2s = idx.reshape(2, 3, 4, 5)[:, :, [0, 2, 1, 3]]
    assert _affine_map(d2s) is None                   # not affine: the index map kernel takes it


def test_concat_parts_offsets():
    parts = L.concat_parts([(2, 3, 4), (2, 5, 4)], 1)
    assert parts == [(0, [32, 4, 1]), (12, [32, 4, 1])]
