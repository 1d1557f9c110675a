"""linear: x (..., IN) w^T + b with an optional fused activation."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine.functional import linear
from tests.conftest import assert_close, torch_or_skip
from tests.kernels._conv_ref import act_np


@pytest.mark.parametrize("lead,inp,out", [((1,), 1, 1), ((1,), 2048, 1000), ((2,), 13, 7),
                                          ((3,), 37, 17), ((4,), 16, 16), ((9,), 300, 33),
                                          ((2, 3, 5), 19, 6), ((), 10, 4),
                                          # matrix-vector blocks of 8 rows: a row tail, short rows
                                          ((1,), 4103, 17), ((2,), 4096, 24), ((3,), 4100, 9),
                                          # the streamed batches (4..64 rows): slabs with a tail,
                                          # an odd row count and an odd output count; 65 runs the GEMM
                                          ((5,), 4100, 9), ((7,), 2048, 1), ((17,), 2051, 33),
                                          ((64,), 24, 5), ((65,), 24, 5)])
def test_linear_matches_numpy(lead, inp, out, isa, rng):
    x = rng.standard_normal(lead + (inp,)).astype(np.float32)
    w = rng.standard_normal((out, inp)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    y = linear(x, w, b, threads=2)
    ref = x.astype(np.float64) @ w.T.astype(np.float64) + b
    assert y.shape == lead + (out,)
    assert_close(y, ref, rtol=1e-5 * np.sqrt(inp))
    for threads in (1, 3, 8):
        np.testing.assert_allclose(linear(x, w, b, threads=threads), y, rtol=1e-6, atol=1e-6)
    assert_close(linear(x, w, threads=2), ref - b, rtol=1e-5 * np.sqrt(inp))


@pytest.mark.parametrize("act,alpha,beta", [("relu", 0, 0), ("clip", -0.3, 0.4),
                                            ("sigmoid", 0, 0), ("gelu", 0, 0)])
@pytest.mark.parametrize("n", [2, 8])
def test_linear_activation(act, alpha, beta, n, isa, rng):
    x = rng.standard_normal((n, 23)).astype(np.float32)
    w = (0.2 * rng.standard_normal((11, 23))).astype(np.float32)
    b = rng.standard_normal(11).astype(np.float32)
    y = linear(x, w, b, activation=act, alpha=alpha, beta=beta)
    ref = act_np(x.astype(np.float64) @ w.T + b, act, alpha, beta)
    assert_close(y, ref)


def test_linear_matches_torch(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((5, 64)).astype(np.float32)
    w = rng.standard_normal((10, 64)).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    ref = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                     torch.from_numpy(b)).numpy()
    assert_close(linear(x, w, b), ref, rtol=1e-4)


def test_linear_errors():
    with pytest.raises(ce.ShapeError, match="input features"):
        linear(np.zeros((2, 5)), np.zeros((3, 4)))
    with pytest.raises(ce.ShapeError, match="bias"):
        linear(np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(ce.ShapeError, match="2-D"):
        linear(np.zeros((2, 4)), np.zeros(4))
    assert linear(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
