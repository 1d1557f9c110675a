# Bindings for the conv kernel family; see the conventions in _kernels.pyx.
# conv2d, conv2d_ref, PackedConv2d, conv_transpose2d, gemm, linear,
# fma_peak_gflops.

cdef extern from *:
    """
    double cnn_fma_peak_gflops(int threads);
    """
    double cnn_fma_peak_gflops(int threads) nogil


cdef cnn_epilogue _epilogue(int act, float alpha, float beta) noexcept:
    cdef cnn_epilogue ep
    ep.act = act
    ep.alpha = alpha
    ep.beta = beta
    return ep


cdef int _conv_params(cnn_conv2d_params *p, tuple dims) except -1:
    """dims = (n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, oh, ow)."""
    (p.n, p.c, p.h, p.w, p.k, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw,
     p.pt, p.pl, p.pb, p.pr, p.groups, p.oh, p.ow) = dims
    return 0


cdef int _need(object buf, int64_t count, str name) except -1:
    if buf is None or buf.shape[0] < count:
        raise ShapeError(f"{name}: buffer holds {0 if buf is None else buf.shape[0]} "
                         f"floats, needs {count}")
    return 0


def conv2d(const float[::1] x, const float[::1] w, const float[::1] b,
           const float[::1] residual, float[::1] y, tuple dims, int act=0,
           float alpha=0.0, float beta=0.0, int threads=0, bint ref=False):
    """y = act(conv2d(x, w) + b + residual); dims as _conv_params; ref=True
    runs the scalar oracle cnn_conv2d_f32_ref whatever the active ISA."""
    cdef cnn_conv2d_params p
    cdef cnn_status st
    cdef int t
    cdef const float *bp = opt_ptr(b)
    cdef const float *rp = opt_ptr(residual)
    _conv_params(&p, dims)
    p.ep = _epilogue(act, alpha, beta)
    _need(x, p.n * p.c * p.h * p.w, "x")
    _need(w, p.k * (p.c // p.groups if p.groups > 0 else 0) * p.kh * p.kw, "w")
    _need(y, p.n * p.k * p.oh * p.ow, "y")
    if b is not None:
        _need(b, p.k, "b")
    if residual is not None:
        _need(residual, p.n * p.k * p.oh * p.ow, "residual")
    with nogil:
        t = cnn_threads_begin(threads)
        if ref:
            st = cnn_conv2d_f32_ref(&p, &x[0], &w[0], bp, rp, &y[0], t)
        else:
            st = cnn_conv2d_f32(&p, &x[0], &w[0], bp, rp, &y[0], t)
        cnn_threads_end()
    check(st)


def conv2d_ref(const float[::1] x, const float[::1] w, const float[::1] b,
               const float[::1] residual, float[::1] y, tuple dims, int act=0,
               float alpha=0.0, float beta=0.0, int threads=0):
    """The scalar oracle (cnn_conv2d_f32_ref), for tests."""
    conv2d(x, w, b, residual, y, dims, act, alpha, beta, threads, True)


cdef class PackedConv2d:
    """Conv2d weights packed once (cnn_conv2d_pack_f32) for many runs.

    PackedConv2d(w, dims, act=0, alpha=0.0, beta=0.0): w the flat (K, C/g,
    kh, kw) weights, dims as _conv_params (its n is only validated; runs take
    any batch). The algorithm is picked for the ISA active now (`.algo`).
    run(x, b, residual, y, threads=0): batch = len(x) // (c*h*w); b and
    residual may be None. Immutable: safe to run from several threads.
    """
    cdef cnn_conv2d_packed *pk
    cdef cnn_conv2d_params p
    cdef int64_t in_per, out_per

    def __cinit__(self, const float[::1] w, tuple dims, int act=0, float alpha=0.0,
                  float beta=0.0):
        cdef cnn_status st
        self.pk = NULL
        _conv_params(&self.p, dims)
        self.p.ep = _epilogue(act, alpha, beta)
        _need(w, self.p.k * (self.p.c // self.p.groups if self.p.groups > 0 else 0) *
              self.p.kh * self.p.kw, "w")
        with nogil:
            st = cnn_conv2d_pack_f32(&self.p, &w[0], &self.pk)
        check(st)
        self.in_per = self.p.c * self.p.h * self.p.w
        self.out_per = self.p.k * self.p.oh * self.p.ow

    def __dealloc__(self):
        if self.pk != NULL:
            cnn_conv2d_packed_free(self.pk)
            self.pk = NULL

    @property
    def algo(self):
        return cnn_conv2d_packed_algo(self.pk).decode()

    @property
    def dims(self):
        p = self.p
        return (p.n, p.c, p.h, p.w, p.k, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw,
                p.pt, p.pl, p.pb, p.pr, p.groups, p.oh, p.ow)

    def run(self, const float[::1] x, const float[::1] b, const float[::1] residual,
            float[::1] y, int threads=0, tuple dims=None):
        """dims (tests): run with these params instead of the packed ones
        (the C side must refuse any difference but n)."""
        cdef cnn_conv2d_params p = self.p
        cdef cnn_status st
        cdef int t
        cdef const float *bp = opt_ptr(b)
        cdef const float *rp = opt_ptr(residual)
        if x is None or x.shape[0] == 0 or x.shape[0] % self.in_per:
            raise ShapeError(f"x: {0 if x is None else x.shape[0]} floats is not a positive "
                             f"multiple of c*h*w = {self.in_per}")
        p.n = x.shape[0] // self.in_per
        if dims is not None:
            _conv_params(&p, dims)
            if p.n * p.c * p.h * p.w != x.shape[0]:
                raise ShapeError("x: length does not match dims")
            if p.n * p.k * p.oh * p.ow > self.out_per * (x.shape[0] // self.in_per):
                raise ShapeError("dims: more outputs than the packed shape")
        _need(y, p.n * self.out_per, "y")
        if b is not None:
            _need(b, p.k, "b")
        if residual is not None:
            _need(residual, p.n * self.out_per, "residual")
        with nogil:
            t = cnn_threads_begin(threads)
            st = cnn_conv2d_run_packed_f32(self.pk, &p, &x[0], bp, rp, &y[0], t)
            cnn_threads_end()
        check(st)


def conv_transpose2d(const float[::1] x, const float[::1] w, const float[::1] b,
                     float[::1] y, tuple dims, int threads=0):
    """dims = (n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, oh, ow)."""
    cdef cnn_conv_transpose2d_params p
    cdef cnn_status st
    cdef int t
    cdef const float *bp = opt_ptr(b)
    (p.n, p.c, p.h, p.w, p.k, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw,
     p.pt, p.pl, p.pb, p.pr, p.groups, p.oh, p.ow) = dims
    _need(x, p.n * p.c * p.h * p.w, "x")
    _need(w, p.c * (p.k // p.groups if p.groups > 0 else 0) * p.kh * p.kw, "w")
    _need(y, p.n * p.k * p.oh * p.ow, "y")
    if b is not None:
        _need(b, p.k, "b")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_conv_transpose2d_f32(&p, &x[0], &w[0], bp, &y[0], t)
        cnn_threads_end()
    check(st)


def gemm(bint trans_a, bint trans_b, int64_t m, int64_t n, int64_t k, float alpha,
         const float[::1] a, int64_t lda, const float[::1] b, int64_t ldb, float beta,
         float[::1] c, int64_t ldc, int threads=0):
    """C (M,N) = alpha op(A) op(B) + beta C, row-major with leading dims;
    a and b may be None when k == 0."""
    cdef cnn_status st
    cdef int t
    cdef const float *ap = opt_ptr(a)
    cdef const float *bp = opt_ptr(b)
    cdef float *cp = NULL if c is None else &c[0]
    if m > 0 and n > 0:
        _need(c, (m - 1) * ldc + n, "c")
        if k > 0:
            _need(a, ((k if trans_a else m) - 1) * lda + (m if trans_a else k), "a")
            _need(b, ((n if trans_b else k) - 1) * ldb + (k if trans_b else n), "b")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_gemm_f32(trans_a, trans_b, m, n, k, alpha, ap, lda, bp, ldb, beta, cp,
                          ldc, t)
        cnn_threads_end()
    check(st)


def linear(const float[::1] x, const float[::1] w, const float[::1] b, float[::1] y,
           int64_t n, int64_t inp, int64_t out, int act=0, float alpha=0.0,
           float beta=0.0, int threads=0):
    """y (N,OUT) = act(x (N,IN) w^T + b)."""
    cdef cnn_status st
    cdef int t
    cdef const float *bp = opt_ptr(b)
    cdef cnn_epilogue ep = _epilogue(act, alpha, beta)
    _need(x, n * inp, "x")
    _need(w, out * inp, "w")
    _need(y, n * out, "y")
    if b is not None:
        _need(b, out, "b")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_linear_f32(n, inp, out, &x[0], &w[0], bp, ep, &y[0], t)
        cnn_threads_end()
    check(st)


def fma_peak_gflops(int threads=1):
    """Measured AVX2 FMA peak in GFLOP/s with `threads` threads (0: no AVX2)."""
    cdef double r
    with nogil:
        r = cnn_fma_peak_gflops(threads)
    return r
