"""Broadcasting binary ops against NumPy float64: patterns, tails, both
ISAs, threads, special values, errors."""
import numpy as np
import pytest

import cnnengine as ce
import cnnengine.functional as F

OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
       "maximum": np.maximum, "minimum": np.minimum, "pow": np.power}

PATTERNS = [  # (a shape, b shape)
    ((2, 3, 4, 5), (2, 3, 4, 5)),     # dense, same shape
    ((2, 3, 4, 5), ()),               # scalar
    ((), (7, 9)),                     # scalar on the left
    ((2, 3, 5, 7), (3, 1, 1)),        # per-channel, rank mismatch
    ((2, 13, 5, 7), (1, 13, 1, 1)),   # per-channel bias over NCHW
    ((1, 13, 1, 1), (2, 13, 5, 7)),   # ... on the left
    ((2, 3, 4, 5), (2, 1, 4, 5)),     # (N,1,H,W): 0 stride in the middle
    ((3, 1, 5), (1, 4, 1)),           # both broadcast (outer product)
    ((6, 1), (1, 17)),
    ((17,), (4, 17)),                 # rank mismatch, inner dense
    ((2, 3, 4, 1), (4, 9)),           # inner broadcast on a, dense b
    ((1, 1, 1), (1,)),
    ((4099,), (4099,)),
    ((1, 1, 2, 3, 1, 1, 1, 1, 5), (2, 3, 1)),  # rank 9: size-1 dims dropped before C
]


def _pos(x):  # pow: keep the base positive and the exponent modest
    return np.abs(x) + 0.5


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("shapes", PATTERNS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_patterns(isa, rng, op, shapes):
    sa, sb = shapes
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if op == "pow":
        a, b = _pos(a).astype(np.float32), np.clip(b, -2, 2).astype(np.float32)
    if op == "div":
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b).astype(np.float32)
    y = getattr(F, op)(a, b)
    ref = OPS[op](a.astype(np.float64), b.astype(np.float64))
    assert y.shape == ref.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 1000, 4099])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_tails(isa, rng, op, n):
    a = rng.standard_normal((3, n)).astype(np.float32)
    b = rng.standard_normal((3, n)).astype(np.float32) + 3
    for bb in (b, b[:1], b[:, :1], b[:1, :1]):
        np.testing.assert_allclose(getattr(F, op)(a, bb), OPS[op](a.astype(np.float64), bb),
                                   rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(getattr(F, op)(bb, a), OPS[op](bb.astype(np.float64), a),
                                   rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("shapes", [((2, 16, 40, 41), (1, 16, 1, 1)), ((1, 1, 70000), (1,)),
                                    ((70000,), (70000,)), ((3, 7, 5000), (3, 1, 5000)),
                                    ((20000, 3), (1, 3))])
def test_threads_agree(isa, rng, shapes):
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    y1 = F.add(a, b, threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(F.add(a, b, threads=threads), y1)
    np.testing.assert_array_equal(y1, a + b)   # float32 adds are exact to NumPy's


def test_special_values_like_numpy(isa):
    a = np.array([1, -1, 0, 1e-30, -1e-30, np.nan, 2, np.inf, 3, -2, 5] * 2, np.float32)
    b = np.array([0, 0, 0, 1e-38, -1e-45, 1, np.nan, 1, -0.0, 1e-40, 2] * 2, np.float32)
    with np.errstate(all="ignore"):
        for op in OPS:
            ours = getattr(F, op)(a, b)
            theirs = OPS[op](a, b)
            np.testing.assert_array_equal(ours, theirs, err_msg=op)


def test_noncontiguous_and_python_inputs(isa, rng):
    a = rng.standard_normal((4, 6, 5)).astype(np.float64)[:, ::2, :]
    b = [1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_allclose(F.mul(a, b), a * np.array(b), rtol=1e-6)
    assert F.add(2, 3).shape == () and float(F.add(2, 3)) == 5.0
    assert F.sub(np.zeros((0, 3), np.float32), 1.0).shape == (0, 3)


def test_errors():
    with pytest.raises(ce.ShapeError, match=r"\(2, 3\).*\(4,\)"):
        F.add(np.zeros((2, 3), np.float32), np.zeros(4, np.float32))
    with pytest.raises(ce.ShapeError):
        F.mul(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ce.ShapeError, match="at most 8"):
        F.add(np.zeros((2, 1) * 5), np.zeros((1, 2) * 5))
    with pytest.raises(ce.ShapeError):
        F.div(np.array(["x"]), 1.0)


def test_kernel_guards():
    from cnnengine import _kernels as K
    a = np.zeros(6, np.float32)
    with pytest.raises(ce.ShapeError):   # strides would read past b
        K.binary(0, [2, 3], [3, 1], [3, 1], a, a[:3], np.zeros(6, np.float32), 1)
    with pytest.raises(ce.Error):        # unknown op
        K.binary(9, [6], [1], [1], a, a, np.zeros(6, np.float32), 1)
    with pytest.raises(ce.ShapeError):
        K.binary(0, [1] * 9, [0] * 9, [0] * 9, a, a, np.zeros(1, np.float32), 1)
