# Bindings for the gathered-rows product and the transpose; see the
# conventions in _kernels.pyx.


def rows_gemm(d, const int64_t[::1] rows, w, y, float alpha, int threads):
    """y (M, N) += alpha * d (M, K) @ w[rows] (K, N): d, w (R, N) and y
    C-contiguous float32 arrays, rows K indices into w's R rows."""
    cdef cnn_status st
    cdef int t
    if not isinstance(d, cnp.ndarray) or not isinstance(w, cnp.ndarray) or not isinstance(y, cnp.ndarray) or \
            d.ndim != 2 or w.ndim != 2 or y.ndim != 2:
        raise ShapeError("rows_gemm: d, w and y must be 2-D arrays")
    cdef int64_t m = d.shape[0], k = d.shape[1], r = w.shape[0], n = w.shape[1]
    if rows.shape[0] != k or y.shape[0] != m or y.shape[1] != n:
        raise ShapeError(f"rows_gemm: d {d.shape}, {rows.shape[0]} rows, w {w.shape}, y {y.shape} do not match")
    if m == 0 or k == 0:
        return
    cdef const float *dp = array_ptr(d, m * k, "d")
    cdef const float *wp = array_ptr(w, r * n, "w")
    cdef float *yp = array_ptr(y, m * n, "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_rows_gemm_f32(m, n, k, alpha, dp, &rows[0], r, wp, yp, t)
        cnn_threads_end()
    check(st)


def transpose(x, y, int threads):
    """y (C, R) = x (R, C) transposed; both C-contiguous float32 arrays."""
    cdef cnn_status st
    cdef int t
    if not isinstance(x, cnp.ndarray) or not isinstance(y, cnp.ndarray) or x.ndim != 2 or \
            y.ndim != 2 or x.shape[0] != y.shape[1] or x.shape[1] != y.shape[0]:
        raise ShapeError("transpose: x (R, C) and y (C, R) expected")
    cdef int64_t r = x.shape[0], c = x.shape[1]
    if r == 0 or c == 0:
        return
    cdef const float *xp = array_ptr(x, r * c, "x")
    cdef float *yp = array_ptr(y, r * c, "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_transpose_f32(r, c, xp, yp, t)
        cnn_threads_end()
    check(st)
