"""batch_norm (inference) against NumPy and PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import batch_norm
from tests.conftest import assert_close


def ref_bn(x, mean, var, gamma, beta, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x = x.astype(np.float64)
    g = np.ones_like(mean, dtype=np.float64) if gamma is None else gamma.astype(np.float64)
    b = np.zeros_like(mean, dtype=np.float64) if beta is None else beta.astype(np.float64)
    return ((x - mean.reshape(shape)) / np.sqrt(var.astype(np.float64).reshape(shape) + eps)
            * g.reshape(shape) + b.reshape(shape))


def params(rng, c):
    return (rng.standard_normal(c).astype(np.float32), rng.random(c).astype(np.float32) + 0.1,
            rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 13, 17, 1), (3, 7, 11),
                                   (2, 5)])
def test_batch_norm_matches_reference(isa, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    mean, var, gamma, beta = params(rng, shape[1])
    y1 = batch_norm(x, mean, var, gamma, beta, 1e-3, threads=1)
    assert_close(y1, ref_bn(x, mean, var, gamma, beta, 1e-3))
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(batch_norm(x, mean, var, gamma, beta, 1e-3, threads=threads), y1)
    assert_close(batch_norm(x, mean, var, None, None), ref_bn(x, mean, var, None, None, 1e-5))


def test_batch_norm_writes_every_output(rng):
    x = rng.standard_normal((2, 3, 9)).astype(np.float32)
    mean, var, gamma, beta = params(rng, 3)
    y = np.full(x.size, np.nan, np.float32)
    _k.batch_norm(x.reshape(-1), y, 2, 3, 9, mean, var, None, beta, 1e-5, 2)
    assert_close(y.reshape(x.shape), ref_bn(x, mean, var, None, beta, 1e-5))


def test_batch_norm_vs_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 7, 6, 5)).astype(np.float32)
    mean, var, gamma, beta = params(rng, 7)
    t = [torch.from_numpy(a) for a in (x, mean, var, gamma, beta)]
    want = torch.nn.functional.batch_norm(t[0], t[1], t[2], t[3], t[4], False, 0.1, 1e-5)
    assert_close(batch_norm(x, mean, var, gamma, beta), want.numpy())


def test_batch_norm_errors():
    x = np.zeros((1, 3, 2, 2), np.float32)
    ok = np.ones(3, np.float32)
    with pytest.raises(ce.ShapeError, match=r"var: expected shape \(3,\)"):
        batch_norm(x, ok, np.ones(4, np.float32), ok, ok)
    with pytest.raises(ce.ShapeError, match="gamma"):
        batch_norm(x, ok, ok, np.ones((3, 1), np.float32), ok)
    with pytest.raises(ce.ShapeError, match="2-D"):
        batch_norm(np.zeros(3, np.float32), ok, ok, ok, ok)
