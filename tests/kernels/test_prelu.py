"""PReLU: per-channel and shared slope, both ISAs, tails, threads, PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
import cnnengine.functional as F
from tests.conftest import torch_or_skip


def _ref(x, slope):
    x = x.astype(np.float64)
    s = np.asarray(slope, np.float64).reshape(-1)
    if s.size > 1:
        s = s.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, s * x)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 7, 5, 3), (1, 13, 4, 4), (2, 16, 9, 1),
                                   (3, 5), (4, 3, 17), (1, 1, 4099), (2, 3, 2, 2, 3)])
def test_per_channel(isa, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    s = rng.uniform(-0.5, 0.5, shape[1]).astype(np.float32)
    np.testing.assert_allclose(F.prelu(x, s), _ref(x, s), atol=1e-6, rtol=0)
    onnx_slope = s.reshape((-1,) + (1,) * (len(shape) - 2))  # ONNX's (C, 1, 1)
    np.testing.assert_allclose(F.prelu(x, onnx_slope), _ref(x, s), atol=1e-6, rtol=0)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 1000, 4099])
def test_shared_slope_and_low_rank(isa, rng, n):
    x = rng.standard_normal((2, 3, n)).astype(np.float32)
    np.testing.assert_allclose(F.prelu(x, 0.25), _ref(x, 0.25), atol=1e-6, rtol=0)
    x1 = x.reshape(-1)
    np.testing.assert_allclose(F.prelu(x1, [0.3]), _ref(x1, 0.3), atol=1e-6, rtol=0)


def test_threads_agree(isa, rng):
    x = rng.standard_normal((2, 5, 71, 67)).astype(np.float32)
    s = rng.uniform(0, 1, 5).astype(np.float32)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(F.prelu(x, s, threads=1), F.prelu(x, s, threads=threads))
    x = rng.standard_normal((1, 1, 40000)).astype(np.float32)  # one long row, split in chunks
    np.testing.assert_array_equal(F.prelu(x, [0.1], threads=2), F.prelu(x, [0.1], threads=1))


def test_errors_and_empty():
    with pytest.raises(ce.ShapeError, match="slope"):
        F.prelu(np.zeros((1, 3, 2, 2), np.float32), [0.1, 0.2])
    with pytest.raises(ce.ShapeError):
        F.prelu(np.zeros(5, np.float32), [0.1, 0.2])
    assert F.prelu(np.zeros((0, 3, 2), np.float32), [1, 2, 3]).shape == (0, 3, 2)


def test_torch(isa, rng):
    torch = torch_or_skip()
    x = rng.standard_normal((2, 7, 5, 9)).astype(np.float32)
    s = rng.uniform(-1, 1, 7).astype(np.float32)
    ref = torch.nn.functional.prelu(torch.from_numpy(x), torch.from_numpy(s)).numpy()
    np.testing.assert_allclose(F.prelu(x, s), ref, atol=1e-6, rtol=0)
