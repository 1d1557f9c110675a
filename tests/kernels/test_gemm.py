"""cnn_gemm_f32 (raw binding, leading dimensions) and functional.gemm against
float64 NumPy, on both ISA paths, across the packed kernel's tile edges."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import gemm
from tests.conftest import assert_close

# M, N, K around MR=6, NR=16, KC=256, MC=144 edges.
SHAPES = [(1, 1, 1), (1, 17, 3), (5, 16, 7), (6, 16, 8), (7, 15, 9), (13, 33, 1),
          (12, 32, 256), (11, 31, 257), (150, 40, 20), (3, 100, 600), (64, 2100, 3),
          (97, 53, 129)]


def _ref(ta, tb, a, b, alpha, beta, c):
    opa = a.T if ta else a
    opb = b.T if tb else b
    out = alpha * (opa.astype(np.float64) @ opb.astype(np.float64))
    if beta != 0:
        out += beta * c
    return out


def _call(ta, tb, m, n, k, alpha, a, b, beta, c, threads, pad=(0, 0, 0)):
    """Run the binding with leading dims padded by `pad` (a, b, c)."""
    ra, ca = (k, m) if ta else (m, k)
    rb, cb = (n, k) if tb else (k, n)
    lda, ldb, ldc = ca + pad[0], cb + pad[1], n + pad[2]
    ab = np.full((ra, lda), np.nan, np.float32)
    ab[:, :ca] = a
    bb = np.full((rb, ldb), np.nan, np.float32)
    bb[:, :cb] = b
    cbuf = np.full((m, ldc), -7.0, np.float32)
    cbuf[:, :n] = c
    _k.gemm(ta, tb, m, n, k, alpha, ab.ravel(), lda, bb.ravel(), ldb, beta, cbuf.ravel(),
            ldc, threads)
    assert (cbuf[:, n:] == -7.0).all(), "wrote past N inside ldc"
    return cbuf[:, :n]


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_shapes_and_transposes(m, n, k, ta, tb, isa, rng):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, np.float32)  # beta == 0 must ignore C
    out = _call(ta, tb, m, n, k, 1.0, a, b, 0.0, c, 2, pad=(3, 1, 5))
    assert_close(out, _ref(ta, tb, a, b, 1.0, 0.0, None), rtol=1e-5 * np.sqrt(k))
    for threads in (1, 3, 8):
        out1 = _call(ta, tb, m, n, k, 1.0, a, b, 0.0, c, threads)
        np.testing.assert_allclose(out1, out, rtol=1e-6, atol=1e-6, err_msg=f"threads={threads}")


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.25, -0.5), (-1.0, 0.0), (0.0, 2.0),
                                        (0.0, 0.0)])
def test_gemm_alpha_beta(alpha, beta, isa, rng):
    m, n, k = 19, 37, 300
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    out = _call(0, 0, m, n, k, alpha, a, b, beta, c, 2)
    assert_close(out, _ref(0, 0, a, b, alpha, beta, c), rtol=1e-5 * np.sqrt(k))


def test_gemm_alpha_zero_leaves_inputs_unread(isa):
    a = np.full((4, 5), np.nan, np.float32)
    b = np.full((5, 3), np.inf, np.float32)
    c = np.ones((4, 3), np.float32)
    out = _call(0, 0, 4, 3, 5, 0.0, a, b, 3.0, c, 1)
    np.testing.assert_array_equal(out, 3.0)


def test_gemm_k_zero(isa):
    c = np.full((3, 4), 2.0, np.float32)
    _k.gemm(0, 0, 3, 4, 0, 1.0, None, 1, None, 4, 0.5, c.ravel(), 4, 1)
    np.testing.assert_array_equal(c, 1.0)
    assert (gemm(np.zeros((3, 0)), np.zeros((0, 4))) == 0).all()


def test_functional_gemm(isa, rng):
    a = rng.standard_normal((20, 7)).astype(np.float32)
    b = rng.standard_normal((9, 20)).astype(np.float32)
    c = rng.standard_normal(9).astype(np.float32)
    y = gemm(a, b, c, alpha=0.5, beta=2.0, trans_a=True, trans_b=True)
    assert_close(y, 0.5 * (a.T.astype(np.float64) @ b.T) + 2.0 * c)


def test_gemm_randomised(isa, rng):
    for _ in range(10):
        m, n, k = (int(v) for v in rng.integers(1, 70, 3))
        ta, tb = (int(v) for v in rng.integers(0, 2, 2))
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        c = rng.standard_normal((m, n)).astype(np.float32)
        out = _call(ta, tb, m, n, k, 1.5, a, b, -1.0, c, 2, pad=(1, 2, 3))
        assert_close(out, _ref(ta, tb, a, b, 1.5, -1.0, c), rtol=1e-5 * np.sqrt(k))


def test_gemm_errors():
    a = np.zeros(12, np.float32)
    with pytest.raises(ce.ShapeError):  # lda < K
        _k.gemm(0, 0, 3, 4, 4, 1.0, a, 3, np.zeros(16, np.float32), 4, 0.0,
                np.zeros(12, np.float32), 4)
    with pytest.raises(ce.ShapeError):  # buffer too small
        _k.gemm(0, 0, 4, 4, 4, 1.0, a, 4, np.zeros(16, np.float32), 4, 0.0,
                np.zeros(16, np.float32), 4)
    with pytest.raises(ce.ShapeError):  # negative size
        _k.gemm(0, 0, -1, 4, 4, 1.0, a, 4, np.zeros(16, np.float32), 4, 0.0,
                np.zeros(16, np.float32), 4)
    with pytest.raises(ce.ShapeError, match="gemm"):
        gemm(np.zeros((3, 4)), np.zeros((5, 2)))
