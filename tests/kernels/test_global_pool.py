"""global_avg_pool2d / global_max_pool2d against NumPy and PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import global_avg_pool2d, global_max_pool2d
from tests.conftest import assert_close

SHAPES = [(1, 1, 1, 1), (2, 3, 7, 7), (1, 13, 1, 5), (3, 7, 11, 13), (1, 2, 64, 65)]


@pytest.mark.parametrize("shape", SHAPES)
def test_global_pool_matches_reference(isa, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32) + 0.5
    want_avg = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    want_max = x.max(axis=(2, 3), keepdims=True)
    for threads in (1, 2, 3, 8):
        assert_close(global_avg_pool2d(x, threads=threads), want_avg, atol=1e-6)
        np.testing.assert_array_equal(global_max_pool2d(x, threads=threads), want_max)


def test_global_pool_writes_every_output(isa, rng):
    x = rng.standard_normal((5, 37)).astype(np.float32)
    for fn in (_k.global_avg_pool, _k.global_max_pool):
        y = np.full(5, np.nan, np.float32)
        fn(x.reshape(-1), y, 5, 37, 2)
        assert not np.isnan(y).any()


def test_global_max_all_negative(isa):
    x = np.full((1, 2, 3, 9), -7.0, np.float32)
    assert (global_max_pool2d(x) == -7.0).all()


def test_global_pool_vs_torch(isa, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 5, 9, 14)).astype(np.float32)
    t = torch.from_numpy(x)
    assert_close(global_avg_pool2d(x), torch.nn.functional.adaptive_avg_pool2d(t, 1).numpy(),
                 atol=1e-6)
    np.testing.assert_array_equal(global_max_pool2d(x),
                                  torch.nn.functional.adaptive_max_pool2d(t, 1).numpy())


def test_global_pool_errors():
    with pytest.raises(ce.ShapeError, match="4-D"):
        global_avg_pool2d(np.zeros((3, 4), np.float32))
    with pytest.raises(ce.ShapeError, match="spatial"):
        global_max_pool2d(np.zeros((1, 2, 0, 3), np.float32))
    assert global_avg_pool2d(np.zeros((0, 2, 3, 3), np.float32)).shape == (0, 2, 1, 1)
