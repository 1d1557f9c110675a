# Bindings for the eltwise kernel family; see the conventions in _kernels.pyx.

DEF _MAX_DIMS = 8


def activation(int act, float alpha, float beta, const float[::1] x, float[::1] y,
               int threads):
    """y = act(x) elementwise (enum cnn_act); y may be x (in place)."""
    cdef cnn_epilogue ep
    cdef cnn_status st
    cdef int t
    if x.shape[0] != y.shape[0]:
        raise ShapeError(f"activation: x has {x.shape[0]} elements, y {y.shape[0]}")
    ep.act = act
    ep.alpha = alpha
    ep.beta = beta
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_activation_f32(ep, x.shape[0], &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def prelu(int64_t n, int64_t c, int64_t hw, const float[::1] x, const float[::1] slope,
          float[::1] y, int threads):
    """x (N, C, HW), slope (C) -> y; y may be x."""
    cdef cnn_status st
    cdef int t
    if x.shape[0] != n * c * hw or y.shape[0] != x.shape[0] or slope.shape[0] != c:
        raise ShapeError("prelu: buffer sizes do not match (n, c, hw)")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_prelu_f32(n, c, hw, &x[0], &slope[0], &y[0], t)
        cnn_threads_end()
    check(st)


def binary(int op, shape, a_strides, b_strides, const float[::1] a, const float[::1] b,
           float[::1] y, int threads):
    """y (dense, `shape`) = a op b with element strides (0 on broadcast dims)."""
    cdef int64_t sh[_MAX_DIMS]
    cdef int64_t sa[_MAX_DIMS]
    cdef int64_t sb[_MAX_DIMS]
    cdef int nd = len(shape)
    cdef int d
    cdef int64_t count = 1, last_a = 0, last_b = 0
    cdef cnn_status st
    cdef int t
    if nd > _MAX_DIMS or len(a_strides) != nd or len(b_strides) != nd:
        raise ShapeError(f"binary: rank {nd} unsupported (at most {_MAX_DIMS}) or strides mismatch")
    for d in range(nd):
        sh[d] = shape[d]
        sa[d] = a_strides[d]
        sb[d] = b_strides[d]
        if sh[d] < 0 or sa[d] < 0 or sb[d] < 0:
            raise ShapeError("binary: negative size or stride")
        count *= sh[d]
        if sh[d] > 0:
            last_a += (sh[d] - 1) * sa[d]
            last_b += (sh[d] - 1) * sb[d]
    if count == 0:
        return
    # never let C read past a buffer
    if y.shape[0] != count or last_a >= a.shape[0] or last_b >= b.shape[0]:
        raise ShapeError("binary: buffer sizes do not match the shape and strides")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_binary_f32(op, nd, sh, &a[0], sa, &b[0], sb, &y[0], t)
        cnn_threads_end()
    check(st)
