"""The gathered-rows product and the transpose (csrc/ops/rows_gemm.c):
against NumPy written from the definition, on every ISA the CPU runs (the
scalar kernel is the oracle of the AVX2 one); bad arguments are clean errors."""
import numpy as np
import pytest

from cnnengine import _kernels as K
from cnnengine.errors import ShapeError


def reference(y, alpha, d, rows, w):
    return (y.astype(np.float64) + alpha * (d.astype(np.float64) @ w[rows].astype(np.float64))).astype(np.float32)


# m: y's rows around the 6-row tile (1, 5, 6, 7, 13, 27, 64); n: columns around
# the 8/16-column tiles and a column block per thread (1, 7, 8, 9, 17, 40, 1000);
# k around the 32-row chunks (1, 31, 33, 300), rows repeated and out of order
@pytest.mark.parametrize("m,n,k,r", [(1, 1, 1, 1), (5, 7, 3, 4), (6, 8, 31, 50), (7, 9, 33, 40),
                                     (13, 17, 64, 64), (27, 1000, 300, 900), (64, 40, 5, 9),
                                     (3, 4130, 35, 70)])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_rows_gemm_matches_numpy(isa, m, n, k, r, threads, rng):
    w = rng.standard_normal((r, n)).astype(np.float32)
    rows = rng.integers(0, r, k).astype(np.int64)
    d = rng.standard_normal((m, k)).astype(np.float32)
    y0 = rng.standard_normal((m, n)).astype(np.float32)
    y = y0.copy()
    K.rows_gemm(d, rows, w, y, 0.75, threads)
    np.testing.assert_allclose(y, reference(y0, 0.75, d, rows, w), rtol=1e-5, atol=1e-4 * np.sqrt(k))


def test_rows_gemm_simd_equals_scalar_on_unaligned_views(rng):
    # w a view starting one float in (no 64-byte alignment), exact zeros in d
    w = rng.standard_normal(70 * 52 + 1).astype(np.float32)[1:].reshape(70, 52)
    rows = np.array([69, 0, 3, 3, 68, 12, 40], np.int64)
    d = rng.standard_normal((11, 7)).astype(np.float32)
    d[:, 2] = 0.0
    before = K.active_isa()
    out = {}
    for isa in ("scalar", K.detected_isa()):
        K.set_isa(isa)
        out[isa] = np.zeros((11, 52), np.float32)
        K.rows_gemm(d, rows, w, out[isa], 1.0, 2)
    K.set_isa(before)
    np.testing.assert_allclose(out[K.detected_isa()], out["scalar"], rtol=1e-5, atol=1e-5)


def test_rows_gemm_bad_arguments():
    w = np.zeros((4, 3), np.float32)
    y = np.zeros((2, 3), np.float32)
    d = np.zeros((2, 2), np.float32)
    with pytest.raises(ShapeError):
        K.rows_gemm(d, np.array([0, 4], np.int64), w, y, 1.0, 1)          # row out of range
    with pytest.raises(ShapeError):
        K.rows_gemm(d, np.array([0, -1], np.int64), w, y, 1.0, 1)
    with pytest.raises(ShapeError):
        K.rows_gemm(d, np.array([0], np.int64), w, y, 1.0, 1)             # k mismatch
    with pytest.raises(ShapeError):
        K.rows_gemm(d, np.array([0, 1], np.int64), w, np.zeros((2, 4), np.float32), 1.0, 1)
    with pytest.raises(ShapeError):
        K.rows_gemm(d.astype(np.float64), np.array([0, 1], np.int64), w, y, 1.0, 1)
    y2 = y.copy()
    K.rows_gemm(np.zeros((2, 0), np.float32), np.zeros(0, np.int64), w, y2, 1.0, 1)   # nothing to add
    assert np.array_equal(y2, y)


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (33, 1), (31, 65), (100, 7)])
@pytest.mark.parametrize("threads", [1, 2])
def test_transpose(shape, threads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    y = np.full(shape[::-1], np.nan, np.float32)
    K.transpose(x, y, threads)
    assert np.array_equal(y, x.T)
    with pytest.raises(ShapeError):
        K.transpose(x, np.zeros((shape[1] + 1, shape[0]), np.float32), 1)
