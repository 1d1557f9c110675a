"""conv2d: both ISA paths against a float64 NumPy reference, the fast path
against the scalar oracle (cnn_conv2d_f32_ref), fused epilogues, PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import conv2d
from cnnengine.functional._common import ACTIVATIONS
from tests.conftest import ISAS, assert_close, torch_or_skip
from tests.kernels._conv_ref import conv2d_np, conv_dims as _dims

# (N, C, H, W, K, kh, kw, stride, pads (t, l, b, r), dilation, groups)
CASES = [
    (1, 3, 32, 32, 10, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),    # the seeds' layer
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),       # 1x1 image
    (2, 3, 1, 1, 7, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),       # 1x1 image, padded 3x3
    (2, 13, 9, 11, 7, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 1x1 direct GEMM
    (1, 7, 10, 9, 17, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),     # 1x1 strided (im2col)
    (1, 5, 12, 13, 19, 2, 2, (3, 3), (0, 0, 0, 0), (1, 1), 1),    # stride > kernel
    (2, 3, 15, 17, 13, 3, 3, (1, 2), (2, 0, 1, 3), (2, 1), 1),    # asymmetric pad, dilation
    (1, 4, 8, 8, 6, 3, 3, (1, 1), (4, 4, 4, 4), (1, 1), 1),       # pad > kernel half
    (2, 6, 11, 10, 8, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 2),     # grouped
    (1, 16, 9, 9, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 8),     # ResNeXt-style
    (2, 7, 13, 19, 7, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 7),     # depthwise s1
    (1, 5, 20, 37, 5, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 5),     # depthwise s2
    (1, 3, 23, 41, 3, 5, 5, (1, 1), (2, 2, 2, 2), (2, 2), 3),     # depthwise dilated 5x5
    (1, 3, 17, 40, 3, 3, 3, (3, 3), (0, 1, 2, 0), (1, 1), 3),     # depthwise s3
    (1, 3, 9, 26, 3, 7, 7, (1, 2), (3, 0, 3, 0), (1, 1), 3),      # depthwise 7x7
    (1, 4, 6, 75, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4),      # depthwise wide rows
    (2, 3, 5, 150, 3, 3, 3, (2, 2), (1, 2, 1, 0), (1, 1), 3),     # depthwise s2 wide rows
    (1, 2, 5, 90, 2, 3, 3, (1, 1), (2, 9, 2, 9), (1, 3), 2),      # depthwise wide padding
    (1, 4, 6, 5, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4),       # multiplier 2 (not dw)
    (1, 37, 14, 15, 23, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),   # M, N, K not tile multiples
    (1, 2, 7, 300, 5, 1, 3, (1, 1), (0, 1, 0, 1), (1, 1), 1),     # N spans many panels
    (1, 300, 5, 5, 4, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # K > 256 (two K blocks)
]


def _run(x, w, b, stride, pads, dil, groups, **kw):
    return conv2d(x, w, b, stride=stride, padding=pads, dilation=dil, groups=groups, **kw)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_conv2d_matches_numpy(case, isa, rng):
    n, c, h, wd, k, kh, kw, stride, pads, dil, groups = case
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    y = _run(x, w, b, stride, pads, dil, groups, threads=2)
    ref = conv2d_np(x, w, b, stride, pads, dil, groups)
    assert_close(y, ref, rtol=1e-5 * np.sqrt(c // groups * kh * kw), what=f"{isa} {case}")
    for threads in (1, 3, 8):
        y1 = _run(x, w, b, stride, pads, dil, groups, threads=threads)
        np.testing.assert_allclose(y1, y, rtol=1e-6, atol=1e-6, err_msg=f"threads={threads}")
    # no bias
    y0 = _run(x, w, None, stride, pads, dil, groups, threads=1)
    assert_close(y0, conv2d_np(x, w, None, stride, pads, dil, groups), what="no bias")


@pytest.mark.parametrize("case", CASES[::2], ids=lambda c: "x".join(map(str, c[:7])))
def test_fast_path_matches_oracle_and_writes_everything(case, rng):
    n, c, h, wd, k, kh, kw, stride, pads, dil, groups = case
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = _dims(x, w, stride, pads, dil, groups)
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref(x.ravel(), w.ravel(), b, None, oracle.ravel(), dims, 0, 0.0, 0.0, 2)
    assert_close(oracle, conv2d_np(x, w, b, stride, pads, dil, groups), what="oracle")
    for isa in ISAS:
        before = ce.active_isa()
        ce.set_isa(isa)
        try:
            y = np.full(shape, np.nan, np.float32)
            _k.conv2d(x.ravel(), w.ravel(), b, None, y.ravel(), dims, 0, 0.0, 0.0, 2)
        finally:
            ce.set_isa(before)
        assert not np.isnan(y).any(), f"{isa}: unwritten outputs"
        assert_close(y, oracle, rtol=1e-5 * np.sqrt(c // groups * kh * kw), what=isa)


ACTS = [("relu", 0, 0), ("clip", -0.5, 0.7), ("leaky_relu", 0.1, 0), ("elu", 0.8, 0),
        ("sigmoid", 0, 0), ("tanh", 0, 0), ("silu", 0, 0), ("hardswish", 0, 0),
        ("hardsigmoid", 0.2, 0.5), ("gelu", 0, 0)]


@pytest.mark.parametrize("act,alpha,beta", ACTS)
@pytest.mark.parametrize("groups", [1, 6])
def test_fused_residual_and_activation(act, alpha, beta, groups, isa, rng):
    x = rng.standard_normal((2, 6, 9, 10)).astype(np.float32)
    w = (0.3 * rng.standard_normal((6, 6 // groups, 3, 3))).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    r = rng.standard_normal((2, 6, 9, 10)).astype(np.float32)
    y = conv2d(x, w, b, padding=1, groups=groups, residual=r, activation=act, alpha=alpha,
               beta=beta, threads=2)
    ref = conv2d_np(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), groups, residual=r, act=act,
                    alpha=alpha, beta=beta)
    assert_close(y, ref, what=f"{isa} {act}")


def test_activation_names_follow_the_header_order():
    assert list(ACTIVATIONS) == ["none", "relu", "clip", "leaky_relu", "elu", "sigmoid",
                                 "tanh", "silu", "hardswish", "hardsigmoid", "gelu", "gelu_tanh", "erf"]
    assert list(ACTIVATIONS.values()) == list(range(13))


def test_randomised_shapes(isa, rng):
    for _ in range(12):
        groups = int(rng.choice([1, 1, 2, 3]))
        c = groups * int(rng.integers(1, 6))
        k = groups * int(rng.integers(1, 7))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dil = tuple(int(v) for v in rng.integers(1, 3, 2))
        pads = tuple(int(v) for v in rng.integers(0, 4, 4))
        h = max(1, dil[0] * (kh - 1) + 1 - pads[0] - pads[2]) + int(rng.integers(0, 12))
        wd = max(1, dil[1] * (kw - 1) + 1 - pads[1] - pads[3]) + int(rng.integers(0, 12))
        n = int(rng.integers(1, 3))
        x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
        w = rng.standard_normal((k, c // groups, kh, kw)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        y = _run(x, w, b, stride, pads, dil, groups, threads=2)
        assert_close(y, conv2d_np(x, w, b, stride, pads, dil, groups),
                     what=f"{x.shape} {w.shape} {stride} {pads} {dil} {groups}")


def test_seed_arithmetic(rng):
    """32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10, 760 parameters;
    output size (N + 2P - F)/S + 1."""
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((10, 3, 5, 5)).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    y = conv2d(x, w, b, stride=1, padding=2)
    assert y.shape == (1, 10, 32, 32)
    assert w.size + b.size == 760 and w.size == 750
    for size, pad, f, s in [(32, 2, 5, 1), (7, 0, 3, 1), (7, 0, 3, 2), (227, 0, 11, 4)]:
        x = np.zeros((1, 1, size, size), np.float32)
        out = conv2d(x, np.zeros((1, 1, f, f), np.float32), stride=s, padding=pad)
        assert out.shape[-1] == (size + 2 * pad - f) // s + 1


def test_padding_same_valid(rng):
    x = rng.standard_normal((1, 2, 8, 9)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 3)).astype(np.float32)
    y = conv2d(x, w, padding="same", dilation=(1, 2))
    assert y.shape == (1, 3, 8, 9)
    assert_close(y, conv2d_np(x, w, None, (1, 1), (1, 2, 2, 2), (1, 2)))
    assert conv2d(x, w, padding="valid").shape == (1, 3, 5, 7)


def test_matches_torch(rng):
    torch = torch_or_skip()
    F = torch.nn.functional
    for (n, c, h, wd, k, kh, kw, stride, pads, dil, groups) in CASES[::3]:
        x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
        w = rng.standard_normal((k, c // groups, kh, kw)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        xt = F.pad(torch.from_numpy(x), (pads[1], pads[3], pads[0], pads[2]))
        ref = F.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride,
                       dilation=dil, groups=groups).numpy()
        y = _run(x, w, b, stride, pads, dil, groups)
        assert_close(y, ref, rtol=1e-5 * np.sqrt(c // groups * kh * kw))


def test_errors():
    x = np.zeros((1, 6, 3, 3), np.float32)
    with pytest.raises(ce.ShapeError, match=r"kernel 5x5 \(dilated 5x5\) is larger than the padded input 3x3"):
        conv2d(x, np.zeros((2, 6, 5, 5), np.float32))
    with pytest.raises(ce.ShapeError, match="input channels 6 not divisible by groups 4"):
        conv2d(x, np.zeros((4, 1, 1, 1), np.float32), groups=4)
    with pytest.raises(ce.ShapeError, match="weight has 3 input channels per group but x has 4 channels / groups 1"):
        conv2d(np.zeros((1, 4, 3, 3), np.float32), np.zeros((2, 3, 1, 1), np.float32))
    with pytest.raises(ce.ShapeError, match="output channels 5 not divisible by groups 2"):
        conv2d(x, np.zeros((5, 3, 1, 1), np.float32), groups=2)
    with pytest.raises(ce.ShapeError, match="stride"):
        conv2d(x, np.zeros((2, 6, 1, 1), np.float32), stride=0)
    with pytest.raises(ce.ShapeError, match="padding"):
        conv2d(x, np.zeros((2, 6, 1, 1), np.float32), padding=-1)
    with pytest.raises(ce.ShapeError, match="bias"):
        conv2d(x, np.zeros((2, 6, 1, 1), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ce.ShapeError, match="residual"):
        conv2d(x, np.zeros((2, 6, 1, 1), np.float32), residual=np.zeros((1, 2, 2, 2)))
    with pytest.raises(ce.ShapeError, match="activation"):
        conv2d(x, np.zeros((2, 6, 1, 1), np.float32), activation="swish9")
    with pytest.raises(ce.ShapeError, match="4-D"):
        conv2d(np.zeros((6, 3, 3), np.float32), np.zeros((2, 6, 1, 1), np.float32))
    # The C driver checks on its own: an inconsistent output size is refused.
    dims = (1, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 4, 3)
    with pytest.raises(ce.ShapeError):
        _k.conv2d(x.ravel(), np.zeros(12, np.float32), None, None,
                  np.zeros(24, np.float32), dims)


def test_empty_batch():
    y = conv2d(np.zeros((0, 3, 5, 5), np.float32), np.zeros((4, 3, 3, 3), np.float32))
    assert y.shape == (0, 4, 3, 3)


@pytest.mark.parametrize("act", ["sigmoid", "silu"])
@pytest.mark.parametrize("c,k,h,w", [(300, 160, 7, 7),    # K > 256: act on the last K block only
                                     (16, 150, 14, 14),   # M > 144: two MC blocks, N tail 4
                                     (5, 13, 3, 5),       # N = 15: one partial panel
                                     (24, 20, 3, 3)])     # N = 9: micro_6x8 partial, M tail
def test_logistic_epilogue_strips(act, c, k, h, w, isa, rng):
    """Sigmoid/SiLU run over each finished mc x 16 strip (gemm_avx2.c act_strip):
    full panels, 9-15 and 1-8 column tails, row tails, several K and M blocks."""
    x = (2 * rng.standard_normal((1, c, h, w))).astype(np.float32)
    wt = (rng.standard_normal((k, c, 1, 1)) / np.sqrt(c)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    r = rng.standard_normal((1, k, h, w)).astype(np.float32)
    for res in (None, r):
        y = conv2d(x, wt, b, residual=res, activation=act, threads=2)
        ref = conv2d_np(x, wt, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, residual=res, act=act)
        assert_close(y, ref, rtol=1e-5 * np.sqrt(c), what=f"{isa} {act}")
