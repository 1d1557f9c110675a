"""Activations: float64 NumPy references from the definitions, both ISAs,
SIMD tails, huge magnitudes, threads, in place, PyTorch cross-check."""
import math

import numpy as np
import pytest

import cnnengine as ce
import cnnengine.functional as F
from cnnengine.functional._common import ACTIVATIONS
from tests.conftest import assert_close, torch_or_skip

SIZES = [1, 7, 8, 9, 15, 16, 17, 1000, 4099]
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


REFS = {  # name -> (call, float64 reference)
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "relu6": (F.relu6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "leaky_relu": (lambda x, **k: F.leaky_relu(x, 0.1, **k), lambda x: np.where(x >= 0, x, 0.1 * x)),
    "elu": (lambda x, **k: F.elu(x, 1.3, **k), lambda x: np.where(x > 0, x, 1.3 * np.expm1(np.minimum(x, 0)))),
    "sigmoid": (F.sigmoid, _sigmoid),
    "tanh": (F.tanh, np.tanh),
    "silu": (F.silu, lambda x: x * _sigmoid(x)),
    "hardswish": (F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "hardsigmoid": (F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "hardsigmoid_onnx": (lambda x, **k: F.hardsigmoid(x, alpha=0.2, beta=0.5, **k),
                         lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    "gelu_tanh": (lambda x, **k: F.gelu(x, "tanh", **k),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    "erf": (F.erf, _erf),
    "clip": (lambda x, **k: F.clip(x, -0.5, 1.5, **k), lambda x: np.clip(x, -0.5, 1.5)),
    "clip_open": (lambda x, **k: F.clip(x, max=0.25, **k), lambda x: np.minimum(x, 0.25)),
}
EXP_BASED = ["elu", "sigmoid", "tanh", "silu", "gelu", "gelu_tanh", "erf"]


def _check(name, x, atol=2e-6, rtol=2e-6, **kw):
    call, ref = REFS[name]
    y = call(x, **kw)
    assert y.dtype == np.float32 and y.shape == np.shape(x)
    r = ref(np.asarray(x, np.float64))
    err = np.abs(y.astype(np.float64) - r)
    ok = err <= atol + rtol * np.abs(r)
    assert ok.all(), f"{name}: worst {err.max():.3g} at x={np.asarray(x).reshape(-1)[err.argmax()]}"
    return y


@pytest.mark.parametrize("name", sorted(REFS))
def test_sizes_and_tails(isa, rng, name):
    for n in SIZES:
        x = (rng.standard_normal(n) * 4).astype(np.float32)
        _check(name, x)


@pytest.mark.parametrize("name", EXP_BASED)
def test_big_magnitudes(isa, name):
    x = np.array([-1e4, -100, -88.5, -87.4, -30, -17, -9, -5.5, -3.9, 1e-30, -1e-30, 0.0, -0.0,
                  1e-7, -1e-7, 3.9, 5.5, 9, 17, 30, 87.4, 88.5, 100, 1e4] * 2, np.float32)
    y = _check(name, x, atol=1e-6)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("name", EXP_BASED)
def test_dense_sweep(isa, name):
    # every region of the range reductions / rational erf, incl. near-0 relative accuracy
    x = np.concatenate([np.linspace(-20, 20, 20011), np.linspace(-1e-3, 1e-3, 2001)]).astype(np.float32)
    _check(name, x, atol=1.2e-6)


def test_avx2_matches_scalar(rng):
    """The vector bodies against the scalar definition (cnn_act_scalar) itself."""
    if ce.detected_isa() == "scalar":
        pytest.skip("no AVX2")
    x = np.concatenate([rng.standard_normal(50000) * 3, rng.uniform(-100, 100, 50000),
                        [-1e4, 1e4, 0.0, -0.0, np.nan, np.inf, -np.inf]]).astype(np.float32)
    before = ce.active_isa()
    try:
        for name, code in ACTIVATIONS.items():
            a, b = {"clip": (-1.5, 2.5), "leaky_relu": (0.1, 0), "elu": (0.7, 0),
                    "hardsigmoid": (0.2, 0.5)}.get(name, (0.0, 0.0))
            ce.set_isa("scalar")
            ys = F.activation(x, name, a, b)
            ce.set_isa("avx2")
            yv = F.activation(x, name, a, b)
            assert (np.isnan(ys) == np.isnan(yv)).all(), name
            cmp = ~np.isnan(ys) & (yv != ys)   # equal values (infinities included) pass
            assert np.isfinite(ys[cmp]).all() and np.isfinite(yv[cmp]).all(), name
            d = np.abs(yv[cmp].astype(np.float64) - ys[cmp])
            scale = np.abs(ys[cmp].astype(np.float64))
            assert (d <= 1e-6 + 2e-6 * scale).all(), f"{name}: {d.max():.3g}"
    finally:
        ce.set_isa(before)


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "gelu_tanh", "erf", "hardswish", "relu6"])
def test_threads_agree_and_shapes(isa, rng, name):
    x = rng.standard_normal((3, 5, 67, 71)).astype(np.float32)  # > one 8192 chunk, odd sizes
    y1 = REFS[name][0](x, threads=1)
    for threads in (2, 3, 8):   # pool units run on any thread: the same bits
        np.testing.assert_array_equal(REFS[name][0](x, threads=threads), y1)
    _check(name, x)


def test_any_rank_and_dtypes():
    assert F.relu(np.float32(-2.0)).shape == ()
    assert F.sigmoid(np.zeros((0, 3), np.float32)).shape == (0, 3)
    y = F.relu([[1, -2], [-3, 4]])
    np.testing.assert_array_equal(y, [[1, 0], [0, 4]])
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)[:, ::2] - 10  # non-contiguous float64
    np.testing.assert_allclose(F.tanh(x), np.tanh(x), atol=1e-6)


def test_in_place(isa, rng):
    x = rng.standard_normal(1003).astype(np.float32)
    expect = REFS["silu"][1](x.astype(np.float64))
    y = F.activation(x, "silu", out=x)
    assert y is x
    assert_close(x, expect, atol=2e-6)


def test_generic_entry_and_errors():
    x = np.linspace(-3, 3, 37, dtype=np.float32)
    np.testing.assert_array_equal(F.activation(x, "none"), x)
    np.testing.assert_array_equal(F.activation(x, "clip", -1, 1), np.clip(x, -1, 1))
    with pytest.raises(ce.Error, match="unknown"):
        F.activation(x, "swish2")
    with pytest.raises(ce.ShapeError, match="out"):
        F.activation(x, "relu", out=np.empty(5, np.float32))
    with pytest.raises(ce.ShapeError):
        F.relu(np.array(["a"]))
    with pytest.raises(ce.ShapeError):
        F.gelu(x, approximate="cubic")


def test_nan_and_inf_pass_like_scalar(isa):
    x = np.array([np.nan, np.inf, -np.inf] * 3, np.float32)
    assert np.isnan(F.sigmoid(x)[0]) and F.sigmoid(x)[1] == 1 and F.sigmoid(x)[2] == 0
    assert np.isnan(F.gelu(x)[0]) and F.gelu(x)[1] == np.inf
    assert F.tanh(x)[1] == 1 and F.tanh(x)[2] == -1
    assert np.isnan(F.relu(x)[0]) and F.relu(x)[1] == np.inf and F.relu(x)[2] == 0  # as ONNX Runtime
    assert np.isnan(F.clip(x, 0, 1)[0])


def test_torch_cross_check(isa, rng):
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = (rng.standard_normal((2, 5, 9, 11)) * 4).astype(np.float32)
    t = torch.from_numpy(x)
    pairs = [
        (F.relu6(x), tf.relu6(t)), (F.hardswish(x), tf.hardswish(t)),
        (F.hardsigmoid(x), tf.hardsigmoid(t)), (F.gelu(x), tf.gelu(t)),
        (F.gelu(x, "tanh"), tf.gelu(t, approximate="tanh")),
        (F.silu(x), tf.silu(t)), (F.elu(x, 0.5), tf.elu(t, 0.5)),
        (F.leaky_relu(x, 0.2), tf.leaky_relu(t, 0.2)), (F.sigmoid(x), torch.sigmoid(t)),
        (F.tanh(x), torch.tanh(t)), (F.relu(x), tf.relu(t)),
    ]
    for i, (ours, theirs) in enumerate(pairs):
        assert_close(ours, theirs.numpy().astype(np.float64), atol=2e-6, rtol=2e-6, what=str(i))
