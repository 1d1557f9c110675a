"""NaN and +-Inf through ReLU and Clip, as ONNX Runtime: relu(NaN) = NaN,
relu(+Inf) = +Inf, relu(-Inf) = 0; clip keeps NaN and saturates the
infinities. Standalone and as every conv / linear epilogue, at every ISA
level (max_ps returns its second operand when either is NaN, so each SIMD
site must put the value second)."""
import numpy as np
import pytest

import cnnengine.functional as F
from cnnengine import _kernels as _k
from tests.kernels._conv_ref import conv_dims

SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, -1.0, 2.0, 7.0], np.float32)
ACTS = {"relu": (1, 0.0, 0.0), "relu6": (2, 0.0, 6.0)}


def _act(v, name):
    v = np.asarray(v, np.float64)
    with np.errstate(invalid="ignore"):
        r = np.where(v < 0, 0.0, v)            # NaN compares false: stays NaN
        return r if name == "relu" else np.where(r > 6, 6.0, r)


def _same(y, ref, what, rtol=1e-5):
    y, ref = np.asarray(y, np.float64), np.asarray(ref, np.float64)
    assert y.shape == ref.shape, what
    nan = np.isnan(ref)
    assert (np.isnan(y) == nan).all(), f"{what}: NaN lost or made at {np.argwhere(np.isnan(y) != nan)[:5]}"
    inf = np.isinf(ref)
    assert (y[inf] == ref[inf]).all(), f"{what}: infinities differ"
    fin = ~nan & ~inf
    assert np.isfinite(y[fin]).all(), what
    scale = max(1.0, float(np.abs(ref[fin]).max(initial=0)))
    assert np.abs(y[fin] - ref[fin]).max(initial=0) <= rtol * scale, what


@pytest.mark.parametrize("n", [1, 7, 8, 9, 16, 17, 33, 1003])
def test_standalone(isa, n):
    x = np.resize(SPECIALS, n)
    np.random.default_rng(n).shuffle(x)      # specials in vector bodies and tails alike
    _same(F.relu(x), _act(x, "relu"), f"relu n={n}")
    _same(F.relu6(x), _act(x, "relu6"), f"relu6 n={n}")
    _same(F.clip(x, 0.0, 6.0), _act(x, "relu6"), f"clip n={n}")
    _same(F.activation(x, "relu", out=x.copy()), _act(x, "relu"), "relu out=")
    y = F.relu(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == 0


def _specials_like(rng, shape):
    """A residual: random values with NaN, +Inf and -Inf sprinkled in (the
    epilogue adds it just before the activation, so each lands on one output)."""
    r = rng.standard_normal(shape).astype(np.float32)
    flat = r.reshape(-1)
    idx = rng.choice(flat.size, size=min(flat.size, max(3, flat.size // 7)), replace=False)
    flat[idx] = np.resize(SPECIALS[:3], idx.size)
    flat[:3] = SPECIALS[:3]                    # the first vector too
    flat[-3:] = SPECIALS[:3]                   # and the last (a tail on most sizes)
    return r


def _oracle(x, w, b, res, dims, shape, act):
    """The scalar conv (the kernels' oracle) with the activation fused, checked
    against the same conv without it and the activation applied after."""
    y = np.empty(shape, np.float32)
    _k.conv2d_ref(x.ravel(), w.ravel(), b, res.ravel(), y.ravel(), dims, *ACTS[act], 1)
    pre = np.empty(shape, np.float32)
    _k.conv2d_ref(x.ravel(), w.ravel(), b, res.ravel(), pre.ravel(), dims, 0, 0.0, 0.0, 1)
    _same(y, _act(pre, act), f"oracle {act}")
    return y


# (N, C, H, W, K, kh, kw, stride, pads, groups): the gemm (1x1), im2col,
# Winograd-shaped, depthwise and strided paths of the NCHW conv
NCHW_CASES = [
    (1, 16, 9, 11, 24, 1, 1, 1, (0, 0, 0, 0), 1),
    (2, 5, 13, 7, 9, 3, 3, 1, (1, 1, 1, 1), 1),
    (1, 32, 14, 14, 32, 3, 3, 1, (1, 1, 1, 1), 1),
    (1, 24, 12, 13, 24, 3, 3, 1, (1, 1, 1, 1), 24),
    (2, 16, 9, 9, 16, 5, 5, 2, (2, 2, 2, 2), 16),
    (1, 8, 17, 15, 12, 5, 5, 2, (2, 1, 2, 1), 1),
]


def _case(rng, case):
    n, c, h, w, k, kh, kw, s, pads, g = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c // g, kh, kw)) / np.sqrt(c // g * kh * kw)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = conv_dims(x, wt, (s, s), pads, (1, 1), g)
    return x, wt, b, dims, shape


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("case", NCHW_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"g{c[9]}")
def test_conv_epilogue_nchw(isa, rng, case, act):
    x, wt, b, dims, shape = _case(rng, case)
    res = _specials_like(rng, shape)
    oracle = _oracle(x, wt, b, res, dims, shape, act)
    for threads in (1, 2):
        y = np.full(shape, 123.0, np.float32)
        _k.conv2d(x.ravel(), wt.ravel(), b, res.ravel(), y.ravel(), dims, *ACTS[act], threads)
        _same(y, oracle, f"{case} {act} threads={threads}")
    # a NaN bias: the whole channel NaN after the activation
    b2 = b.copy()
    b2[-1] = np.nan
    y = F.conv2d(x, wt, b2, case[7], case[8], groups=case[9], activation=act if act == "relu" else "clip",
                 alpha=ACTS[act][1], beta=ACTS[act][2])
    assert np.isnan(y[:, -1]).all() and not np.isnan(y[:, :-1]).any()


@pytest.mark.parametrize("act", list(ACTS))
def test_winograd_epilogue(isa, rng, act):
    case = (2, 19, 13, 18, 14, 3, 3, 1, (1, 0, 2, 1), 1)
    x, wt, b, dims, shape = _case(rng, case)
    res = _specials_like(rng, shape)
    packed = _k.winograd_pack(wt.ravel(), dims)
    y = np.full(shape, 123.0, np.float32)
    _k.winograd_conv2d(x.ravel(), packed, b, res.ravel(), y.ravel(), dims, *ACTS[act], 2)
    _same(y, _oracle(x, wt, b, res, dims, shape, act), f"winograd {act}", rtol=1e-4)


def _blocked(x):
    n, c, h, w = x.shape
    y = np.zeros((n, (c + 7) // 8, h, w, 8), np.float32)
    _k.nchw_to_nchwc(np.ascontiguousarray(x).ravel(), y.ravel(), n, c, h * w, 2)
    return y


def _unblocked(y, c):
    n, _, h, w, _ = y.shape
    x = np.empty((n, c, h, w), np.float32)
    _k.nchwc_to_nchw(y.ravel(), x.ravel(), n, c, h * w, 2)
    return x


# the blocked conv's tiles: AVX2 and AVX-512 bodies, the stem from NCHW,
# depthwise, 1x1 in several passes, forced Winograd
NCHWC_CASES = [
    (1, 37, 14, 15, 64, 3, 3, 1, (1, 1, 1, 1), 1, None),
    (2, 24, 9, 11, 40, 1, 1, 2, (0, 0, 0, 0), 1, None),
    (1, 211, 5, 9, 40, 1, 1, 1, (0, 0, 0, 0), 1, None),
    (2, 40, 14, 14, 40, 3, 3, 1, (1, 1, 1, 1), 40, None),
    (1, 17, 11, 10, 17, 5, 5, 2, (2, 2, 2, 2), 17, None),
    (1, 16, 9, 9, 32, 3, 3, 1, (1, 1, 1, 1), 2, None),
    (2, 20, 10, 10, 24, 3, 3, 1, (1, 1, 1, 1), 1, True),
]


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("case", NCHWC_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"g{c[9]}w{c[10]}")
def test_conv_epilogue_nchwc(isa, rng, case, act):
    if isa == "scalar":
        pytest.skip("the blocked layout is a SIMD path")
    x, wt, b, dims, shape = _case(rng, case[:10])
    res = _specials_like(rng, shape)
    oracle = _oracle(x, wt, b, res, dims, shape, act)
    stems = [False, True] if case[9] == 1 and not case[10] else [False]
    for in_nchw in stems:
        pk = _k.ConvNCHWc(wt.ravel(), b, dims, *ACTS[act], in_nchw, case[10])
        for threads in (1, 2):
            y = np.full((shape[0], (shape[1] + 7) // 8, shape[2], shape[3], 8), 123.0, np.float32)
            pk.run((x if in_nchw else _blocked(x)).ravel(), _blocked(res).ravel(), y.ravel(), threads)
            _same(_unblocked(y, shape[1]), oracle, f"{case} {act} nchw_in={in_nchw} t={threads}",
                  rtol=1e-4 if case[10] else 1e-5)


@pytest.mark.parametrize("act", list(ACTS))
def test_linear_epilogue(isa, rng, act):
    x = rng.standard_normal((5, 37)).astype(np.float32)
    w = rng.standard_normal((29, 37)).astype(np.float32)
    b = rng.standard_normal(29).astype(np.float32)
    b[[0, 9, 28]] = SPECIALS[:3]               # NaN, +Inf, -Inf outputs, vector and tail lanes
    kw = {"activation": "relu"} if act == "relu" else {"activation": "clip", "alpha": 0.0, "beta": 6.0}
    y = F.linear(x, w, b, **kw)
    _same(y, _act(x.astype(np.float64) @ w.T.astype(np.float64) + b, act), f"linear {act}", rtol=1e-4)
