# Bindings for the blocked layout NCHW8c (csrc/ops/nchwc.c); see the
# conventions in _kernels.pyx. A blocked tensor of C channels is the flat
# (N, ceil(C/8), H*W, 8) buffer.

NCHWC_BLOCK = 8


cdef int64_t _blocked_count(int64_t n, int64_t c, int64_t hw):
    return n * ((c + 7) // 8) * hw * 8


def nchw_to_nchwc(const float[::1] x, float[::1] y, int64_t n, int64_t c, int64_t hw,
                  int threads=0):
    """x (N,C,HW) -> blocked y; lanes past C become 0."""
    cdef cnn_status st
    cdef int t
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError("nchw_to_nchwc: empty tensor")
    _need(x, n * c * hw, "x")
    _need(y, _blocked_count(n, c, hw), "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_nchw_to_nchwc_f32(n, c, hw, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def nchwc_to_nchw(const float[::1] x, float[::1] y, int64_t n, int64_t c, int64_t hw,
                  int threads=0):
    """Blocked x -> y (N,C,HW); padding lanes are dropped."""
    cdef cnn_status st
    cdef int t
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError("nchwc_to_nchw: empty tensor")
    _need(x, _blocked_count(n, c, hw), "x")
    _need(y, n * c * hw, "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_nchwc_to_nchw_f32(n, c, hw, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def global_pool_nchwc(const float[::1] x, float[::1] y, int64_t n, int64_t c, int64_t hw,
                      bint is_max, int threads=0):
    """Blocked x (N, C, HW) -> blocked y (N, C, 1): mean or max of each lane."""
    cdef cnn_status st
    cdef int t
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError("global_pool_nchwc: empty tensor")
    _need(x, _blocked_count(n, c, hw), "x")
    _need(y, _blocked_count(n, c, 1), "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_global_pool_nchwc_f32(n, c, hw, is_max, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


def nchwc_gather(list xs, const int64_t[::1] cs, const int32_t[::1] src_in,
                 const int64_t[::1] src_ch, float[::1] y, int64_t n, int64_t hw, int threads=0):
    """Blocked y (N, C_OUT, HW) whose channel j is channel src_ch[j] of blocked
    xs[src_in[j]] (cs[i] channels each); C_OUT = len(src_ch)."""
    cdef int count = len(xs), i
    cdef int64_t c_out = src_ch.shape[0]
    cdef const float[::1] mv
    cdef cnn_status st
    cdef int t
    if count < 1 or cs.shape[0] != count or src_in.shape[0] != c_out or c_out < 1:
        raise ShapeError("nchwc_gather: need one channel count per input and one source per output channel")
    if n < 1 or hw < 1:
        raise ShapeError("nchwc_gather: empty tensor")
    _need(y, _blocked_count(n, c_out, hw), "y")
    cdef const float **ptrs = <const float **>malloc(count * sizeof(float *))
    if ptrs == NULL:
        raise MemoryError()
    try:
        for i in range(count):
            mv = xs[i]      # the caller's list keeps each buffer alive
            _need(mv, _blocked_count(n, cs[i], hw), "x")
            ptrs[i] = &mv[0]
        with nogil:
            t = cnn_threads_begin(threads)
            st = cnn_nchwc_gather_f32(n, hw, count, ptrs, &cs[0], c_out, &src_in[0], &src_ch[0],
                                      &y[0], t)
            cnn_threads_end()
    finally:
        free(ptrs)
    check(st)


def nchwc_scale(const float[::1] x, const float[::1] s, float[::1] y, int64_t n, int64_t c,
                int64_t hw, int threads=0):
    """Blocked x (N, C, HW) * blocked s (N, C, 1) -> blocked y."""
    cdef cnn_status st
    cdef int t
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError("nchwc_scale: empty tensor")
    _need(x, _blocked_count(n, c, hw), "x")
    _need(s, _blocked_count(n, c, 1), "s")
    _need(y, _blocked_count(n, c, hw), "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_nchwc_scale_f32(n, c, hw, &x[0], &s[0], &y[0], t)
        cnn_threads_end()
    check(st)


def nchwc_affine(const float[::1] x, const float[::1] scale, const float[::1] shift,
                 float[::1] y, int64_t n, int64_t c, int64_t hw, int threads=0, int act=0,
                 float alpha=0.0, float beta=0.0):
    """Blocked y = act(x * scale + shift) per channel; scale/shift
    ceil(C/8)*8 floats; act as the conv epilogue's codes."""
    cdef cnn_status st
    cdef cnn_epilogue ep = _epilogue(act, alpha, beta)
    cdef int t
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError("nchwc_affine: empty tensor")
    _need(x, _blocked_count(n, c, hw), "x")
    _need(scale, _blocked_count(1, c, 1), "scale")
    _need(shift, _blocked_count(1, c, 1), "shift")
    _need(y, _blocked_count(n, c, hw), "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_nchwc_affine_f32(n, c, hw, &x[0], &scale[0], &shift[0], &ep, &y[0], t)
        cnn_threads_end()
    check(st)


def pool2d_nchwc(const float[::1] x, float[::1] y, tuple shape, tuple kernel, tuple stride,
                 tuple dilation, tuple pads, tuple out, bint is_max, bint count_include_pad,
                 int threads=0):
    """Blocked max/avg pooling; shape = (N, C, H, W) with C the real channels."""
    cdef cnn_pool2d_params p = _pool_params(shape, kernel, stride, dilation, pads, out,
                                            count_include_pad)
    cdef cnn_status st
    cdef int t
    if p.n < 1 or p.c < 1 or p.h < 1 or p.w < 1 or p.oh < 1 or p.ow < 1:
        raise ShapeError("pool2d_nchwc: empty tensor")
    _need(x, _blocked_count(p.n, p.c, p.h * p.w), "x")
    _need(y, _blocked_count(p.n, p.c, p.oh * p.ow), "y")
    with nogil:
        t = cnn_threads_begin(threads)
        st = cnn_pool2d_nchwc_f32(&p, is_max, &x[0], &y[0], t)
        cnn_threads_end()
    check(st)


cdef class ConvNCHWc:
    """A conv with blocked output (cnn_conv2d_nchwc_pack_f32), packed once.

    ConvNCHWc(w, b, dims, act, alpha, beta, in_nchw, winograd): w the flat
    (K, C/g, kh, kw) weights, b the bias or None, dims as _conv_params (n
    only validated). groups must be 1, c == k, or whole blocks per group.
    The input is blocked, or plain NCHW when in_nchw. winograd: None lets
    the packer choose for a 3x3/s1 conv, True forces Winograd F(4x4, 3x3)
    there, "f2x3" F(2x2, 3x3), False the direct kernel; `algo` says which runs. run(x, residual, y,
    threads): batch from len(x). Raises UnsupportedOpError without AVX2.
    Immutable, thread-safe.
    """
    cdef cnn_conv2d_nchwc *pk
    cdef cnn_conv2d_params p
    cdef int64_t in_per, out_per
    cdef bint in_nchw

    def __cinit__(self, const float[::1] w, const float[::1] b, tuple dims, int act=0,
                  float alpha=0.0, float beta=0.0, bint in_nchw=False, winograd=None):
        cdef cnn_status st
        cdef const float *bp = opt_ptr(b)
        cdef int flags = CNN_NCHWC_IN_NCHW if in_nchw else 0
        if winograd == "f2x3":
            flags |= CNN_NCHWC_WINOGRAD2
        elif winograd is not None:
            flags |= CNN_NCHWC_WINOGRAD if winograd else CNN_NCHWC_DIRECT
        self.pk = NULL
        _conv_params(&self.p, dims)
        self.p.ep = _epilogue(act, alpha, beta)
        _need(w, self.p.k * (self.p.c // self.p.groups if self.p.groups > 0 else 0) *
              self.p.kh * self.p.kw, "w")
        if b is not None:
            _need(b, self.p.k, "b")
        with nogil:
            st = cnn_conv2d_nchwc_pack_f32(&self.p, &w[0], bp, flags, &self.pk)
        check(st)
        self.in_nchw = in_nchw
        self.in_per = (self.p.c if in_nchw else _blocked_count(1, self.p.c, 1)) * self.p.h * self.p.w
        self.out_per = _blocked_count(1, self.p.k, self.p.oh * self.p.ow)

    def run_scaled(self, const float[::1] x, const float[::1] s, const float[::1] residual,
                   float[::1] y, int threads=0):
        """y = conv(x * s): s the blocked per-channel factors of each image
        (N * ceil(C/8) * 8 floats), as squeeze-excitation gates."""
        cdef cnn_status st
        cdef int t
        cdef int64_t n
        cdef const float *rp = opt_ptr(residual)
        if x is None or x.shape[0] == 0 or x.shape[0] % self.in_per:
            raise ShapeError(f"x: {0 if x is None else x.shape[0]} floats is not a positive "
                             f"multiple of {self.in_per}")
        n = x.shape[0] // self.in_per
        if y is None or y.shape[0] < n * self.out_per:
            _need(y, n * self.out_per, "y")
        if residual is not None and residual.shape[0] < n * self.out_per:
            _need(residual, n * self.out_per, "residual")
        if s is None or s.shape[0] < n * _blocked_count(1, self.p.c, 1):
            _need(s, n * _blocked_count(1, self.p.c, 1), "s")
        with nogil:
            t = cnn_threads_begin(threads)
            st = cnn_conv2d_nchwc_run_scaled_f32(self.pk, n, &x[0], &s[0], rp, &y[0], t)
            cnn_threads_end()
        check(st)

    def run_affine(self, const float[::1] x, const float[::1] scale, const float[::1] shift,
                   const float[::1] residual, float[::1] y, int threads=0, int act=0,
                   float alpha=0.0, float beta=0.0):
        """y = conv(act(x * scale + shift)): scale and shift blocked per input
        channel (ceil(C/8) * 8 floats), shared by the images; a flat 1x1
        only (UnsupportedOpError otherwise)."""
        cdef cnn_status st
        cdef int t
        cdef int64_t n
        cdef cnn_epilogue ep = _epilogue(act, alpha, beta)
        cdef const float *rp = opt_ptr(residual)
        if x is None or x.shape[0] == 0 or x.shape[0] % self.in_per:
            raise ShapeError(f"x: {0 if x is None else x.shape[0]} floats is not a positive "
                             f"multiple of {self.in_per}")
        n = x.shape[0] // self.in_per
        _need(y, n * self.out_per, "y")
        if residual is not None:
            _need(residual, n * self.out_per, "residual")
        _need(scale, _blocked_count(1, self.p.c, 1), "scale")
        _need(shift, _blocked_count(1, self.p.c, 1), "shift")
        with nogil:
            t = cnn_threads_begin(threads)
            st = cnn_conv2d_nchwc_run_affine_f32(self.pk, n, &x[0], &scale[0], &shift[0], &ep, rp,
                                                 &y[0], t)
            cnn_threads_end()
        check(st)

    @property
    def algo(self):
        cdef int m = cnn_conv2d_nchwc_is_winograd(self.pk)
        return "winograd_f4x3" if m == 4 else "winograd_f2x3" if m == 2 else "direct"

    def __dealloc__(self):
        if self.pk != NULL:
            cnn_conv2d_nchwc_free(self.pk)
            self.pk = NULL

    def run(self, x, residual, y, int threads=0):
        """y = conv(x) (+ residual): C-contiguous float32 ndarrays of any
        shape (blocked tensors, or their flat views), x holding N images."""
        self._run(x, residual, y, None, threads)

    def run_pooled(self, x, residual, y, pool, int threads=0):
        """run(), and pool (N * ceil(K/8) * 8 floats) = the mean of every
        output channel over the plane. Depthwise and small-group convs only."""
        self._run(x, residual, y, pool, threads)

    def run_window(self, x, residual, y, tuple dims, int threads=0):
        """run() over a window of the map this conv was packed for: dims as
        _conv_params for the window (its h, w, padding, oh, ow; n taken from
        x); x holds N windows of that input size, y and residual N output
        windows. The same packed weights serve every window."""
        cdef cnn_conv2d_params g
        cdef cnn_status st
        cdef int t
        _conv_params(&g, dims)
        cdef int64_t in_per = (g.c if self.in_nchw else _blocked_count(1, g.c, 1)) * g.h * g.w
        cdef int64_t out_per = _blocked_count(1, g.k, g.oh * g.ow)
        cdef int64_t size = cnp.PyArray_SIZE(x) if isinstance(x, cnp.ndarray) else 0
        if in_per < 1 or size == 0 or size % in_per:
            raise ShapeError(f"x: {size} floats is not a positive multiple of {in_per}")
        cdef int64_t n = size // in_per
        cdef const float *xp = array_ptr(x, size, "x")
        cdef float *yp = array_ptr(y, n * out_per, "y")
        cdef const float *rp = NULL if residual is None else array_ptr(residual, n * out_per, "residual")
        with nogil:
            t = cnn_threads_begin(threads)
            st = cnn_conv2d_nchwc_run_window_f32(self.pk, &g, n, xp, rp, yp, t)
            cnn_threads_end()
        check(st)

    cdef _run(self, x, residual, y, pool, int threads):
        # data pointers straight from the ndarrays (array_ptr): the
        # executor calls this once per conv step
        cdef cnn_status st
        cdef int t
        cdef int64_t size = cnp.PyArray_SIZE(x) if isinstance(x, cnp.ndarray) else 0
        if size == 0 or size % self.in_per:
            raise ShapeError(f"x: {size} floats is not a positive multiple of {self.in_per}")
        cdef int64_t n = size // self.in_per
        cdef const float *xp = array_ptr(x, size, "x")
        cdef float *yp = array_ptr(y, n * self.out_per, "y")
        cdef const float *rp = NULL if residual is None else array_ptr(residual, n * self.out_per, "residual")
        cdef float *pp = NULL if pool is None else array_ptr(pool, _blocked_count(n, self.p.k, 1), "pool")
        with nogil:
            t = cnn_threads_begin(threads)
            if pp == NULL:
                st = cnn_conv2d_nchwc_run_f32(self.pk, n, xp, rp, yp, t)
            else:
                st = cnn_conv2d_nchwc_run_pooled_f32(self.pk, n, xp, rp, yp, pp, t)
            cnn_threads_end()
        check(st)


def nchwc_block(ConvNCHWc expand, ConvNCHWc dw, ConvNCHWc project, x, residual, y, pool,
                int threads=0, bint ref=False, int64_t tile_rows=0):
    """An inverted-residual block as one step (cnn_nchwc_block_run_f32):
    y = project(dw(expand(x))) (+ residual) from three packs; expand or
    project may be None; pool (with project None) gets the dw output's
    plane means. ref: the scalar oracle instead; tile_rows: output rows per
    tile (0: the kernel's choice). Batch from x's size."""
    cdef cnn_status st
    cdef int t
    if dw is None:
        raise ValueError("nchwc_block: dw is required")
    cdef int64_t in_per = expand.in_per if expand is not None else dw.in_per
    cdef int64_t out_per = project.out_per if project is not None else dw.out_per
    cdef int64_t size = cnp.PyArray_SIZE(x) if isinstance(x, cnp.ndarray) else 0
    if size == 0 or size % in_per:
        raise ShapeError(f"x: {size} floats is not a positive multiple of {in_per}")
    cdef int64_t n = size // in_per
    cdef const float *xp = array_ptr(x, size, "x")
    cdef float *yp = array_ptr(y, n * out_per, "y")
    cdef const float *rp = NULL if residual is None else array_ptr(residual, n * out_per, "residual")
    cdef float *pp = NULL if pool is None else array_ptr(pool, _blocked_count(n, dw.p.k, 1), "pool")
    cdef const cnn_conv2d_nchwc *ep = expand.pk if expand is not None else NULL
    cdef const cnn_conv2d_nchwc *pjp = project.pk if project is not None else NULL
    with nogil:
        t = cnn_threads_begin(threads)
        if ref:
            st = cnn_nchwc_block_run_ref_f32(ep, dw.pk, pjp, n, xp, rp, yp, pp, t)
        else:
            st = cnn_nchwc_block_run_f32(ep, dw.pk, pjp, n, xp, rp, yp, pp, tile_rows, t)
        cnn_threads_end()
    check(st)
