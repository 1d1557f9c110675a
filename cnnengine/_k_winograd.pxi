# Bindings for Winograd F(4x4, 3x3) (csrc/ops/winograd.h), for tests and
# benchmarks until the prepacked conv dispatch serves it; conventions as in
# _kernels.pyx. dims as _conv_params in _k_conv.pxi.
from libc.stdlib cimport free
from libc.string cimport memcpy

import numpy as _np

# csrc/ops/winograd.h is private; found through the csrc/include include dir
cdef extern from "../ops/winograd.h":
    int cnn_winograd_eligible(const cnn_conv2d_params *p) nogil
    cnn_status cnn_winograd_pack_f32(const cnn_conv2d_params *p, const float *w,
                                     float **packed, size_t *packed_floats) nogil
    cnn_status cnn_winograd_run_f32(const cnn_conv2d_params *p, const float *packed,
                                    const float *x, const float *bias,
                                    const float *residual, float *y, int threads) nogil
    int64_t cnn_wino_kpad(int64_t k) nogil
    cnn_status cnn_winograd_pack_nchwc_f32(const cnn_conv2d_params *p, const float *w,
                                           float **packed) nogil
    int64_t cnn_wino_nchwc_pad(int64_t c) nogil
    cnn_status cnn_winograd2_pack_nchwc_f32(const cnn_conv2d_params *p, const float *w,
                                            float **packed) nogil
    cnn_status cnn_winograd2_nchwc_run_ref(const cnn_conv2d_params *p, const float *packed,
                                           const float *x, const float *bias,
                                           const float *residual, float *y, int threads) nogil


def winograd_eligible(tuple dims):
    """Whether the engine would pick Winograd for this conv (ISA included)."""
    cdef cnn_conv2d_params p
    _conv_params(&p, dims)
    p.ep = _epilogue(0, 0.0, 0.0)
    return bool(cnn_winograd_eligible(&p))


def winograd_pack(const float[::1] w_flat, tuple dims):
    """Transformed filters (1-D float32 array, 36 * 6*ceil(K/6) * C floats)
    of w (K, C, 3, 3) for a 3x3/s1/d1/g1 conv described by dims."""
    cdef cnn_conv2d_params p
    cdef cnn_status st
    cdef float *packed = NULL
    cdef size_t count = 0
    cdef float[::1] out
    _conv_params(&p, dims)
    p.ep = _epilogue(0, 0.0, 0.0)
    _need(w_flat, p.k * p.c * 9, "w")
    with nogil:
        st = cnn_winograd_pack_f32(&p, &w_flat[0], &packed, &count)
    check(st)
    arr = _np.empty(count, _np.float32)
    out = arr
    if count:
        memcpy(&out[0], packed, count * sizeof(float))
    cnn_free_packed(packed)
    return arr


def winograd_pack_nchwc(const float[::1] w_flat, tuple dims):
    """The blocked path's transformed filters (1-D float32 array, 36 * kp * cp
    floats, kp and cp K and C rounded up to 8; layout in csrc/ops/winograd.h)
    of w (K, C, 3, 3), by the active ISA's filter transform."""
    cdef cnn_conv2d_params p
    cdef cnn_status st
    cdef float *packed = NULL
    cdef size_t count
    cdef float[::1] out
    _conv_params(&p, dims)
    p.ep = _epilogue(0, 0.0, 0.0)
    _need(w_flat, p.k * p.c * 9, "w")
    with nogil:
        st = cnn_winograd_pack_nchwc_f32(&p, &w_flat[0], &packed)
    check(st)
    count = 36 * cnn_wino_nchwc_pad(p.k) * cnn_wino_nchwc_pad(p.c)
    arr = _np.empty(count, _np.float32)
    out = arr
    memcpy(&out[0], packed, count * sizeof(float))
    cnn_free_packed(packed)
    return arr


def winograd_conv2d(const float[::1] x, const float[::1] packed, const float[::1] b,
                    const float[::1] residual, float[::1] y, tuple dims, int act=0,
                    float alpha=0.0, float beta=0.0, int threads=0):
    """y = act(conv2d(x, w) + b + residual) by Winograd F(4x4,3x3) with the
    filters from winograd_pack (same K and C)."""
    cdef cnn_conv2d_params p
    cdef cnn_status st
    cdef int t
    cdef const float *bp = opt_ptr(b)
    cdef const float *rp = opt_ptr(residual)
    _conv_params(&p, dims)
    p.ep = _epilogue(act, alpha, beta)
    _need(x, p.n * p.c * p.h * p.w, "x")
    _need(packed, 36 * cnn_wino_kpad(p.k) * p.c, "packed")
    _need(y, p.n * p.k * p.oh * p.ow, "y")
    if b is not None:
        _need(b, p.k, "b")
    if residual is not None:
        _need(residual, p.n * p.k * p.oh * p.ow, "residual")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_winograd_run_f32(&p, &packed[0], &x[0], bp, rp, &y[0], t)
        cnn_threads_end()
    check(st)


def winograd2_pack_nchwc(const float[::1] w_flat, tuple dims):
    """The blocked F(2x2, 3x3) filters (16 * kp * cp floats, layout in
    csrc/ops/winograd.h) of w (K, C, 3, 3)."""
    cdef cnn_conv2d_params p
    cdef cnn_status st
    cdef float *packed = NULL
    cdef size_t count
    cdef float[::1] out
    _conv_params(&p, dims)
    p.ep = _epilogue(0, 0.0, 0.0)
    _need(w_flat, p.k * p.c * 9, "w")
    with nogil:
        st = cnn_winograd2_pack_nchwc_f32(&p, &w_flat[0], &packed)
    check(st)
    count = 16 * cnn_wino_nchwc_pad(p.k) * cnn_wino_nchwc_pad(p.c)
    arr = _np.empty(count, _np.float32)
    out = arr
    memcpy(&out[0], packed, count * sizeof(float))
    cnn_free_packed(packed)
    return arr


def winograd2_nchwc_ref(const float[::1] x, const float[::1] packed, const float[::1] b,
                        const float[::1] residual, float[::1] y, tuple dims, int act=0,
                        float alpha=0.0, float beta=0.0, int threads=0):
    """The scalar oracle of blocked F(2x2, 3x3): x, residual, y blocked
    (N, ceil(C/8) or ceil(K/8), H, W, 8) flat, b the bias padded to
    ceil(K/8)*8 or None, packed from winograd2_pack_nchwc. 3x3/s1/d1/g1
    dims only (not checked further: a test binding)."""
    cdef cnn_conv2d_params p
    cdef cnn_status st
    cdef int t
    cdef int64_t kp, cp
    cdef const float *bp = opt_ptr(b)
    cdef const float *rp = opt_ptr(residual)
    _conv_params(&p, dims)
    p.ep = _epilogue(act, alpha, beta)
    if (p.kh != 3 or p.kw != 3 or p.sh != 1 or p.sw != 1 or p.dh != 1 or p.dw != 1
            or p.groups != 1 or p.oh != p.h + p.pt + p.pb - 2 or p.ow != p.w + p.pl + p.pr - 2
            or p.oh < 1 or p.ow < 1):
        raise ShapeError(f"winograd2_nchwc_ref: not a 3x3/s1 conv: {dims}")
    kp = cnn_wino_nchwc_pad(p.k)
    cp = cnn_wino_nchwc_pad(p.c)
    _need(x, p.n * cp * p.h * p.w, "x")
    _need(packed, 16 * kp * cp, "packed")
    _need(y, p.n * kp * p.oh * p.ow, "y")
    if b is not None:
        _need(b, kp, "b")
    if residual is not None:
        _need(residual, p.n * kp * p.oh * p.ow, "residual")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_winograd2_nchwc_run_ref(&p, &packed[0], &x[0], bp, rp, &y[0], t)
        cnn_threads_end()
    check(st)
