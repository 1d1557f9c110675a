# Bindings for the norm kernel family; see the conventions in _kernels.pyx.


def batch_norm(const float[::1] x, float[::1] y, int64_t n, int64_t c, int64_t hw,
               const float[::1] mean, const float[::1] var, const float[::1] gamma,
               const float[::1] beta, float eps, int threads):
    """x (N,C,HW) flat -> y; gamma / beta may be None (1 / 0)."""
    cdef const float *g = opt_ptr(gamma)
    cdef const float *b = opt_ptr(beta)
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_batch_norm_f32(n, c, hw, &x[0], &mean[0], &var[0], g, b, eps, &y[0], t)
        cnn_threads_end()
    check(st)


def lrn(const float[::1] x, float[::1] y, int64_t n, int64_t c, int64_t hw, int64_t size,
        float alpha, float beta, float k, int threads):
    """Across-channel LRN (ONNX window), x (N,C,HW) flat -> y."""
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_lrn_f32(n, c, hw, size, alpha, beta, k, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def softmax(const float[::1] x, float[::1] y, int64_t outer, int64_t axis, int64_t inner,
            int threads):
    """Softmax along the middle axis of x (OUTER, AXIS, INNER) flat -> y."""
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_softmax_f32(outer, axis, inner, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def channel_norm(const float[::1] x, const float[::1] gamma, const float[::1] beta, float[::1] y,
                 int64_t n, int64_t c, int64_t hw, bint blocked, float eps, int threads=0):
    """Layer norm across channels per pixel: x (N,C,HW) flat, or blocked
    (N, ceil(C/8), HW, 8) with gamma / beta padded to ceil(C/8)*8 -> y."""
    cdef int64_t cp = (c + 7) // 8 * 8 if blocked else c
    cdef cnn_status st
    cdef int t
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError("channel_norm: empty tensor")
    _need(x, n * cp * hw, "x")
    _need(y, n * cp * hw, "y")
    _need(gamma, cp, "gamma")
    _need(beta, cp, "beta")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_channel_norm_f32(n, c, hw, blocked, &x[0], &gamma[0], &beta[0], eps, &y[0], t)
        cnn_threads_end()
    check(st)
