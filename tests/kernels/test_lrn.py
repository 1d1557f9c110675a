"""local_response_norm against NumPy (both window conventions) and PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine.functional import local_response_norm
from tests.conftest import assert_close


def ref_lrn(x, size, alpha, beta, k, before):
    """y[c] = x[c] / (k + alpha/size * sum_{c-before}^{c-before+size-1} x^2)^beta."""
    x64 = x.astype(np.float64)
    c = x.shape[1]
    y = np.empty_like(x64)
    for ci in range(c):
        lo, hi = max(0, ci - before), min(c, ci - before + size)
        s = (x64[:, lo:hi] ** 2).sum(axis=1)
        y[:, ci] = x64[:, ci] / (k + alpha / size * s) ** beta
    return y


@pytest.mark.parametrize("shape,size", [((1, 1, 1, 1), 5), ((2, 7, 5, 3), 5), ((1, 13, 4, 9), 3),
                                        ((2, 3, 11), 4), ((1, 6, 2, 2), 1), ((1, 5, 3, 3), 8)])
@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_lrn_matches_reference(isa, rng, shape, size, beta):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    for conv, before in (("onnx", (size - 1) // 2), ("torch", size // 2)):
        want = ref_lrn(x, size, 2e-2, beta, 1.5, before)
        for threads in (1, 2, 3, 8):
            got = local_response_norm(x, size, 2e-2, beta, 1.5, convention=conv,
                                      threads=threads)
            assert_close(got, want, what=f"{conv} size={size}")


@pytest.mark.parametrize("size", [3, 4, 5])
def test_lrn_vs_torch(rng, size):
    torch = pytest.importorskip("torch")
    x = (rng.standard_normal((2, 9, 4, 5)) * 4).astype(np.float32)
    want = torch.nn.functional.local_response_norm(torch.from_numpy(x), size, 1e-2, 0.75, 2.0)
    assert_close(local_response_norm(x, size, 1e-2, 0.75, 2.0), want.numpy())


def test_lrn_errors():
    with pytest.raises(ce.ShapeError, match="size"):
        local_response_norm(np.zeros((1, 3, 2, 2), np.float32), 0)
    with pytest.raises(ce.ShapeError, match="3-D"):
        local_response_norm(np.zeros((1, 3), np.float32), 3)
    with pytest.raises(ce.ShapeError, match="convention"):
        local_response_norm(np.zeros((1, 3, 2, 2), np.float32), 3, convention="caffe")
