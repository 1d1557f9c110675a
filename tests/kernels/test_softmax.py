"""softmax along any axis against NumPy and PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import softmax
from tests.conftest import assert_close


def ref_softmax(x, axis):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape,axis", [((7,), 0), ((1,), -1), ((3, 1000), -1), ((2, 13, 5, 7), 1),
                                        ((2, 3, 300), 1), ((4, 5, 6), 0), ((2, 3, 4, 5), -2),
                                        ((1, 1, 1), 1)])
def test_softmax_matches_reference(isa, rng, shape, axis):
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    for threads in (1, 2, 3, 8):
        assert_close(softmax(x, axis, threads=threads), ref_softmax(x, axis), atol=1e-6)


def test_softmax_is_stable(isa):
    x = np.array([[1000.0, 1001.0, 999.0], [-1e4, -1e4, -1e4]], np.float32)
    y = softmax(x)
    assert np.isfinite(y).all()
    assert_close(y, ref_softmax(x, -1), atol=1e-6)


def test_softmax_writes_every_output(rng):
    x = rng.standard_normal((3, 4, 517)).astype(np.float32)
    y = np.full(x.size, np.nan, np.float32)
    _k.softmax(x.reshape(-1), y, 3, 4, 517, 2)
    assert_close(y.reshape(x.shape), ref_softmax(x, 1), atol=1e-6)


def test_softmax_vs_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 10, 3, 3)).astype(np.float32)
    for axis in (1, -1):
        want = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
        assert_close(softmax(x, axis), want, atol=1e-6)


def test_softmax_errors():
    with pytest.raises(ce.ShapeError, match="axis"):
        softmax(np.zeros((2, 3), np.float32), 2)
    with pytest.raises(ce.ShapeError, match="scalar"):
        softmax(np.float32(1.0))
    assert softmax(np.zeros((0, 3), np.float32)).shape == (0, 3)
