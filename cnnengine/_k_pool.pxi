# Bindings for the pool kernel family; see the conventions in _kernels.pyx.


def max_pool2d(const float[::1] x, float[::1] y, tuple shape, tuple kernel,
               tuple stride, tuple dilation, tuple pads, tuple out, int threads):
    """x (N,C,H,W) flat -> y (N,C,OH,OW) flat; pads = (top, left, bottom, right)."""
    cdef cnn_pool2d_params p = _pool_params(shape, kernel, stride, dilation, pads, out, 0)
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_max_pool2d_f32(&p, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def avg_pool2d(const float[::1] x, float[::1] y, tuple shape, tuple kernel,
               tuple stride, tuple dilation, tuple pads, tuple out,
               bint count_include_pad, int threads):
    """As max_pool2d; the divisor counts padding when count_include_pad."""
    cdef cnn_pool2d_params p = _pool_params(shape, kernel, stride, dilation, pads, out,
                                            count_include_pad)
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_avg_pool2d_f32(&p, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


cdef cnn_pool2d_params _pool_params(tuple shape, tuple kernel, tuple stride,
                                    tuple dilation, tuple pads, tuple out, int cip):
    cdef cnn_pool2d_params p
    p.n, p.c, p.h, p.w = shape
    p.kh, p.kw = kernel
    p.sh, p.sw = stride
    p.dh, p.dw = dilation
    p.pt, p.pl, p.pb, p.pr = pads
    p.oh, p.ow = out
    p.count_include_pad = cip
    return p


def global_avg_pool(const float[::1] x, float[::1] y, int64_t nc, int64_t hw, int threads):
    """x (NC, HW) flat -> y (NC)."""
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_global_avg_pool_f32(nc, hw, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def global_max_pool(const float[::1] x, float[::1] y, int64_t nc, int64_t hw, int threads):
    """x (NC, HW) flat -> y (NC)."""
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_global_max_pool_f32(nc, hw, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)
