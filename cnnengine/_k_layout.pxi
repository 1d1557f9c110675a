# Bindings for the layout kernel family; see the conventions in _kernels.pyx.
from libc.stdlib cimport free, malloc

# Enum values of cnnengine.h (cnn_pad_mode, cnn_resize_mode, cnn_resize_coord,
# cnn_resize_round); _capi.pxd does not mirror these enums.
PAD_MODES = {"constant": 0, "reflect": 1, "edge": 2}
RESIZE_MODES = {"nearest": 0, "linear": 1}
RESIZE_COORDS = {"half_pixel": 0, "pytorch_half_pixel": 1, "asymmetric": 2, "align_corners": 3}
RESIZE_ROUNDINGS = {"round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3}


def concat(list xs, list sizes, float[::1] y, int64_t outer, int64_t inner, int threads):
    """xs: flat non-empty inputs (OUTER, sizes[i], INNER) -> y (OUTER, sum, INNER) flat."""
    cdef int count = len(xs), i
    cdef const float[::1] mv
    cdef cnn_status st
    cdef int t
    if count < 1 or len(sizes) != count:
        raise ValueError("concat: need one size per input")
    cdef const float **ptrs = <const float **>malloc(count * sizeof(float *))
    cdef int64_t *sz = <int64_t *>malloc(count * sizeof(int64_t))
    try:
        if ptrs == NULL or sz == NULL:
            raise MemoryError()
        for i in range(count):
            mv = xs[i]      # the caller's list keeps each buffer alive
            ptrs[i] = &mv[0]
            sz[i] = sizes[i]
        with nogil:
            t = cnn_threads_begin(threads)
            st = cnn_concat_f32(count, ptrs, sz, outer, inner, &y[0], t)
            cnn_threads_end()
    finally:
        free(ptrs)
        free(sz)
    check(st)


def pad(const float[::1] x, float[::1] y, int64_t nc, int64_t h, int64_t w, tuple pads,
        int mode, float value, int threads):
    """x (NC,H,W) flat -> y (NC, H+pt+pb, W+pl+pr) flat; pads = (top, left, bottom, right)."""
    cdef int64_t pt, pl, pb, pr
    pt, pl, pb, pr = pads
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_pad_f32(nc, h, w, pt, pl, pb, pr, mode, value, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def resize(const float[::1] x, float[::1] y, int64_t nc, int64_t h, int64_t w, int64_t oh,
           int64_t ow, int mode, int coord, int rounding, float scale_h, float scale_w,
           int threads):
    """x (NC,H,W) flat -> y (NC,OH,OW) flat; enums as in cnnengine.h."""
    cdef cnn_status st
    cdef int t
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_resize_f32(nc, h, w, oh, ow, mode, coord, rounding, scale_h, scale_w,
                            &x[0], &y[0], t)
        cnn_threads_end()
    check(st)
