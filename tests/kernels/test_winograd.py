"""Winograd F(4x4,3x3) (csrc/ops/winograd.c, csrc/x86/winograd_avx2.c): both
ISA paths against the direct scalar oracle (cnn_conv2d_f32_ref) and a float64
NumPy reference, every epilogue + residual, partial edge tiles, asymmetric
padding, threads 1 vs 2, the packed filter layout, and bad calls.

Error measure: max |y - ref| / max |ref| with ref the pre-activation output
(He-scaled weights, so outputs are O(1) as in a trained net); bound 1e-4.
"""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.errors import ShapeError, UnsupportedOpError
from tests.kernels._conv_ref import act_np, conv2d_np

RTOL = 1e-4
ACTS = {"none": (0, 0.0, 0.0), "relu": (1, 0.0, 0.0), "clip": (2, -0.5, 0.7),
        "leaky_relu": (3, 0.1, 0.0), "elu": (4, 0.9, 0.0), "sigmoid": (5, 0.0, 0.0),
        "tanh": (6, 0.0, 0.0), "silu": (7, 0.0, 0.0), "hardswish": (8, 0.0, 0.0),
        "hardsigmoid": (9, 0.2, 0.5), "gelu": (10, 0.0, 0.0)}

# (N, C, H, W, K, pads (t, l, b, r))
CASES = [
    (1, 16, 8, 8, 16, (1, 1, 1, 1)),       # one 2x2 block of tiles
    (2, 13, 11, 17, 7, (0, 2, 1, 0)),      # batch, asymmetric pad, odd sizes
    (1, 20, 9, 13, 19, (0, 0, 0, 0)),      # pad 0: 7x11 output, partial tiles
    (1, 17, 15, 10, 23, (2, 2, 2, 2)),     # pad 2 (> kernel half)
    (3, 9, 5, 7, 11, (1, 2, 0, 1)),        # batch 3, tiny planes
    (1, 3, 1, 1, 5, (1, 1, 1, 1)),         # 1x1 image (direct call, not eligible)
    (2, 2, 3, 3, 1, (0, 0, 0, 0)),         # 1x1 output
    (1, 24, 30, 45, 40, (1, 1, 1, 1)),     # 12 tiles per row: 8-tile group + tail
    (2, 33, 22, 70, 10, (1, 0, 2, 1)),     # wide rows (18 tiles), asymmetric
    (1, 40, 13, 6, 100, (1, 1, 1, 1)),     # K over several GEMM blocks, tw = 2
    (1, 64, 64, 64, 24, (1, 1, 1, 1)),     # several superblocks of tile rows
]


def _dims(n, c, h, w, k, pads):
    pt, pl, pb, pr = pads
    return (n, c, h, w, k, 3, 3, 1, 1, 1, 1, pt, pl, pb, pr, 1, h + pt + pb - 2, w + pl + pr - 2)


def _data(rng, n, c, h, w, k, pads):
    dims = _dims(n, c, h, w, k, pads)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    b = (0.1 * rng.standard_normal(k)).astype(np.float32)
    return dims, x, wt, b


def _wino(x, packed, b, residual, dims, act=0, alpha=0.0, beta=0.0, threads=1):
    n, k, oh, ow = dims[0], dims[4], dims[16], dims[17]
    y = np.full(n * k * oh * ow, np.nan, np.float32)  # catches unwritten outputs
    _k.winograd_conv2d(x.ravel(), packed, b, None if residual is None else residual.ravel(),
                       y, dims, act, alpha, beta, threads)
    return y.reshape(n, k, oh, ow)


def _oracle(x, wt, b, residual, dims, act=0, alpha=0.0, beta=0.0):
    n, k, oh, ow = dims[0], dims[4], dims[16], dims[17]
    y = np.empty(n * k * oh * ow, np.float32)
    _k.conv2d_ref(x.ravel(), wt.ravel(), b, None if residual is None else residual.ravel(), y,
                  dims, act, alpha, beta, 1)
    return y.reshape(n, k, oh, ow)


def _rel(y, ref, scale=None):
    assert not np.isnan(y).any(), "unwritten (NaN) outputs"
    scale = float(np.max(np.abs(ref))) if scale is None else scale
    return float(np.max(np.abs(y.astype(np.float64) - ref))) / max(scale, 1e-30)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])) + "p" +
                         "".join(map(str, c[5])))
def test_matches_oracle_and_numpy(case, isa, rng):
    dims, x, wt, b = _data(rng, *case)
    packed = _k.winograd_pack(wt.ravel(), dims)
    y = _wino(x, packed, b, None, dims, threads=2)
    ref = conv2d_np(x, wt, b, (1, 1), case[5])
    assert _rel(y, ref) <= RTOL, f"vs numpy {_rel(y, ref):.3g}"
    oracle = _oracle(x, wt, b, None, dims)
    assert _rel(y, oracle) <= RTOL, f"vs oracle {_rel(y, oracle):.3g}"
    y1 = _wino(x, packed, b, None, dims, threads=1)
    np.testing.assert_allclose(y1, y, rtol=1e-6, atol=1e-6)
    y0 = _wino(x, packed, None, None, dims, threads=2)   # no bias
    assert _rel(y0, conv2d_np(x, wt, None, (1, 1), case[5]), float(np.max(np.abs(ref)))) <= RTOL


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("with_residual", [False, True])
def test_epilogues(act, with_residual, isa, rng):
    case = (2, 19, 13, 18, 14, (1, 0, 2, 1))
    dims, x, wt, b = _data(rng, *case)
    code, alpha, beta = ACTS[act]
    res = (rng.standard_normal((dims[0], dims[4], dims[16], dims[17])).astype(np.float32)
           if with_residual else None)
    packed = _k.winograd_pack(wt.ravel(), dims)
    pre = conv2d_np(x, wt, b, (1, 1), case[5], residual=res)
    ref = act_np(pre, act, alpha, beta)
    scale = float(np.max(np.abs(pre)))
    ys = {}
    for threads in (1, 2, 3, 8):
        y = ys[threads] = _wino(x, packed, b, res, dims, code, alpha, beta, threads)
        assert _rel(y, ref, scale) <= RTOL, f"{act} threads={threads}: {_rel(y, ref, scale):.3g}"
    for threads in (3, 8):   # the same tasks whichever thread runs them
        np.testing.assert_array_equal(ys[threads], ys[2], err_msg=f"threads={threads}")
    oracle = _oracle(x, wt, b, res, dims, code, alpha, beta)
    assert _rel(y, oracle, scale) <= RTOL


def test_scalar_and_avx2_agree(rng):
    if ce.detected_isa() == "scalar":
        pytest.skip("no AVX2")
    case = (2, 37, 21, 26, 29, (2, 1, 0, 2))
    dims, x, wt, b = _data(rng, *case)
    packed = _k.winograd_pack(wt.ravel(), dims)
    before = ce.active_isa()
    try:
        ce.set_isa("scalar")
        ys = _wino(x, packed, b, None, dims, 1, threads=2)
        ce.set_isa("avx2")
        ya = _wino(x, packed, b, None, dims, 1, threads=2)
    finally:
        ce.set_isa(before)
    assert _rel(ya, ys, float(np.max(np.abs(ys)))) <= 1e-5


def test_pack_layout(rng):
    """packed[((xi * ceil(K/6) + k//6) * C + c) * 6 + k%6] = (G g G^T)[xi], zero past K."""
    k, c = 8, 3
    dims = _dims(1, c, 6, 6, k, (1, 1, 1, 1))
    wt = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
    packed = _k.winograd_pack(wt.ravel(), dims)
    kp = 12
    assert packed.shape == (36 * kp * c,)
    u = np.einsum("ia,kcab,jb->ijkc", G, wt.astype(np.float64), G).reshape(36, k, c)
    full = np.zeros((36, kp, c))
    full[:, :k] = u
    expect = full.reshape(36, kp // 6, 6, c).transpose(0, 1, 3, 2).ravel()
    np.testing.assert_allclose(packed, expect, rtol=1e-6, atol=1e-7)


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    case = (2, 24, 17, 23, 32, (1, 1, 1, 1))
    dims, x, wt, b = _data(rng, *case)
    packed = _k.winograd_pack(wt.ravel(), dims)
    y = _wino(x, packed, b, None, dims, threads=2)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(wt).double(),
                                     torch.from_numpy(b).double(), padding=1).numpy()
    assert _rel(y, ref) <= RTOL


def test_bad_calls(rng):
    dims, x, wt, b = _data(rng, 1, 4, 6, 6, 5, (1, 1, 1, 1))
    packed = _k.winograd_pack(wt.ravel(), dims)
    y = np.empty(5 * 36, np.float32)
    strided = dims[:7] + (2, 2) + dims[9:16] + (3, 3)
    with pytest.raises(UnsupportedOpError):
        _k.winograd_conv2d(x.ravel(), packed, b, None, np.empty(45, np.float32), strided)
    with pytest.raises(UnsupportedOpError):
        _k.winograd_pack(np.zeros(5 * 4 * 25, np.float32), dims[:5] + (5, 5) + dims[7:])
    grouped = dims[:15] + (2,) + dims[16:]
    with pytest.raises(UnsupportedOpError):
        _k.winograd_conv2d(x.ravel(), packed, b, None, y, grouped)
    bad_oh = dims[:16] + (5, 6)
    with pytest.raises(ShapeError):
        _k.winograd_conv2d(x.ravel(), packed, b, None, y, bad_oh)
    with pytest.raises(ShapeError):
        _k.winograd_conv2d(x.ravel(), packed[:-1], b, None, y, dims)
    with pytest.raises(ShapeError):
        _k.winograd_conv2d(x.ravel()[:-1], packed, b, None, y, dims)
    with pytest.raises(ShapeError):
        _k.winograd_conv2d(x.ravel(), packed, b, None, y[:-1], dims)


def test_eligibility():
    resnet = _dims(1, 64, 56, 56, 64, (1, 1, 1, 1))
    assert _k.winograd_eligible(resnet) == (ce.active_isa() != "scalar")
    assert not _k.winograd_eligible(_dims(1, 3, 224, 224, 64, (1, 1, 1, 1)))   # stem: C = 3
    assert not _k.winograd_eligible(resnet[:7] + (2, 2) + resnet[9:16] + (28, 28))
    assert not _k.winograd_eligible(resnet[:15] + (2,) + resnet[16:])
    before = ce.active_isa()
    try:
        ce.set_isa("scalar")
        assert not _k.winograd_eligible(resnet)
    finally:
        ce.set_isa(before)
