# Programs (csrc/core/program.c): the executor binds a run of consecutive
# steps of one arena to their buffers once, with every size check the
# per-call wrappers make done here, at bind time, and then runs them in one
# C call with the GIL released. A BoundStep keeps every array and pack it
# points into alive. See the conventions in _kernels.pyx.
from libc.string cimport memset

cdef struct _step_args:
    const cnn_conv2d_nchwc *pk0
    const cnn_conv2d_nchwc *pk1
    const cnn_conv2d_nchwc *pk2
    cnn_pool2d_params pool_p
    cnn_epilogue ep
    int64_t n, c, hw, outer, inner
    int flag
    int count
    float eps
    const float *x
    const float *a
    const float *b
    const float *res
    float *y
    float *pool
    const float **xs
    const int64_t *cs
    const int32_t *src_in
    const int64_t *src_ch
    const int64_t *sh
    const int64_t *sa
    const int64_t *sb


cdef class BoundStep:
    """One kernel call with its arguments resolved (made by the bind_* functions)."""
    cdef _step_args a
    cdef cnn_step_fn fn
    cdef list refs
    cdef void *mem

    def __dealloc__(self):
        free(self.mem)
        self.mem = NULL


cdef BoundStep _bound(cnn_step_fn fn, list refs):
    cdef BoundStep s = BoundStep.__new__(BoundStep)
    memset(&s.a, 0, sizeof(_step_args))
    s.fn = fn
    s.refs = refs
    s.mem = NULL
    return s


cdef cnn_status _s_conv(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_conv2d_nchwc_run_f32(a.pk0, a.n, a.x, a.res, a.y, t)


cdef cnn_status _s_conv_scaled(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_conv2d_nchwc_run_scaled_f32(a.pk0, a.n, a.x, a.a, a.res, a.y, t)


cdef cnn_status _s_conv_affine(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_conv2d_nchwc_run_affine_f32(a.pk0, a.n, a.x, a.a, a.b, &a.ep, a.res, a.y, t)


cdef cnn_status _s_conv_pooled(const void *v, int t) noexcept nogil:
    # a grouped conv this CPU does not interleave pools in a pass, as ConvNCHWc's runner
    cdef const _step_args *a = <const _step_args *>v
    cdef cnn_status st = cnn_conv2d_nchwc_run_pooled_f32(a.pk0, a.n, a.x, a.res, a.y, a.pool, t)
    if st != CNN_ERR_UNSUPPORTED:
        return st
    st = cnn_conv2d_nchwc_run_f32(a.pk0, a.n, a.x, a.res, a.y, t)
    if st != CNN_OK:
        return st
    return cnn_global_pool_nchwc_f32(a.n, a.c, a.hw, 0, a.y, a.pool, t)


cdef cnn_status _s_block(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_nchwc_block_run_f32(a.pk0, a.pk1, a.pk2, a.n, a.x, a.res, a.y, a.pool, 0, t)


cdef cnn_status _s_to_blocked(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_nchw_to_nchwc_f32(a.n, a.c, a.hw, a.x, a.y, t)


cdef cnn_status _s_to_plain(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_nchwc_to_nchw_f32(a.n, a.c, a.hw, a.x, a.y, t)


cdef cnn_status _s_global_pool(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_global_pool_nchwc_f32(a.n, a.c, a.hw, a.flag, a.x, a.y, t)


cdef cnn_status _s_pool(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_pool2d_nchwc_f32(&a.pool_p, a.flag, a.x, a.y, t)


cdef cnn_status _s_scale(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_nchwc_scale_f32(a.n, a.c, a.hw, a.x, a.a, a.y, t)


cdef cnn_status _s_affine(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_nchwc_affine_f32(a.n, a.c, a.hw, a.x, a.a, a.b, &a.ep, a.y, t)


cdef cnn_status _s_gather(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_nchwc_gather_f32(a.n, a.hw, a.count, a.xs, a.cs, a.c, a.src_in, a.src_ch, a.y, t)


cdef cnn_status _s_concat(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_concat_f32(a.count, a.xs, a.cs, a.outer, a.inner, a.y, t)


cdef cnn_status _s_channel_norm(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_channel_norm_f32(a.n, a.c, a.hw, a.flag, a.x, a.a, a.b, a.eps, a.y, t)


cdef cnn_status _s_linear(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_linear_f32(a.n, a.inner, a.c, a.x, a.a, a.b, a.ep, a.y, t)


cdef cnn_status _s_activation(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_activation_f32(a.ep, a.n, a.x, a.y, t)


cdef cnn_status _s_binary(const void *v, int t) noexcept nogil:
    cdef const _step_args *a = <const _step_args *>v
    return cnn_binary_f32(a.flag, a.count, a.sh, a.x, a.sa, a.a, a.sb, a.y, t)


cdef int64_t _size_of(object x):
    return cnp.PyArray_SIZE(<cnp.ndarray>x) if isinstance(x, cnp.ndarray) else 0


cdef void *_index_ptr(object a, int typenum, int64_t need, str name) except NULL:
    if not isinstance(a, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>a) != typenum or \
            not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a) or cnp.PyArray_SIZE(<cnp.ndarray>a) != need:
        raise ShapeError(f"{name}: expected {need} contiguous integers")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int _positive(int64_t n, int64_t c, int64_t hw, str what) except -1:
    if n < 1 or c < 1 or hw < 1:
        raise ShapeError(f"{what}: empty tensor")
    return 0


def bind_conv(ConvNCHWc pk, x, residual, y, pool=None, s=None, pre=None):
    """ConvNCHWc.run (pool, s and pre None), run_pooled (pool), run_scaled
    (s) or run_affine (pre: (scale, shift, act, alpha, beta))."""
    if (pool is not None) + (s is not None) + (pre is not None) > 1:
        raise ValueError("bind_conv: a conv is pooled, gated or normalised, one of them")
    cdef int64_t size = _size_of(x)
    if size == 0 or size % pk.in_per:
        raise ShapeError(f"x: {size} floats is not a positive multiple of {pk.in_per}")
    cdef int64_t n = size // pk.in_per
    cdef BoundStep b = _bound(_s_conv_scaled if s is not None else _s_conv_pooled if pool is not None
                              else _s_conv_affine if pre is not None else _s_conv, [pk, x, residual, y, pool, s, pre])
    b.a.pk0, b.a.n, b.a.c, b.a.hw = pk.pk, n, pk.p.k, pk.p.oh * pk.p.ow
    b.a.x = array_ptr(x, size, "x")
    b.a.y = array_ptr(y, n * pk.out_per, "y")
    b.a.res = NULL if residual is None else array_ptr(residual, n * pk.out_per, "residual")
    if pool is not None:
        b.a.pool = array_ptr(pool, _blocked_count(n, pk.p.k, 1), "pool")
    if s is not None:
        b.a.a = array_ptr(s, n * _blocked_count(1, pk.p.c, 1), "s")
    if pre is not None:
        b.a.a = array_ptr(pre[0], _blocked_count(1, pk.p.c, 1), "scale")
        b.a.b = array_ptr(pre[1], _blocked_count(1, pk.p.c, 1), "shift")
        b.a.ep = _epilogue(pre[2], pre[3], pre[4])
    return b


def bind_block(ConvNCHWc expand, ConvNCHWc dw, ConvNCHWc project, x, residual, y, pool):
    """nchwc_block (the streamed kernel, its own tile choice)."""
    if dw is None:
        raise ValueError("bind_block: dw is required")
    cdef int64_t in_per = expand.in_per if expand is not None else dw.in_per
    cdef int64_t out_per = project.out_per if project is not None else dw.out_per
    cdef int64_t size = _size_of(x)
    if size == 0 or size % in_per:
        raise ShapeError(f"x: {size} floats is not a positive multiple of {in_per}")
    cdef int64_t n = size // in_per
    cdef BoundStep b = _bound(_s_block, [expand, dw, project, x, residual, y, pool])
    b.a.pk0 = expand.pk if expand is not None else NULL
    b.a.pk1 = dw.pk
    b.a.pk2 = project.pk if project is not None else NULL
    b.a.n = n
    b.a.x = array_ptr(x, size, "x")
    b.a.y = array_ptr(y, n * out_per, "y")
    b.a.res = NULL if residual is None else array_ptr(residual, n * out_per, "residual")
    b.a.pool = NULL if pool is None else array_ptr(pool, _blocked_count(n, dw.p.k, 1), "pool")
    return b


def bind_layout(bint to_blocked, x, y, int64_t n, int64_t c, int64_t hw):
    """nchw_to_nchwc (to_blocked) or nchwc_to_nchw."""
    _positive(n, c, hw, "nchw_to_nchwc" if to_blocked else "nchwc_to_nchw")
    cdef BoundStep b = _bound(_s_to_blocked if to_blocked else _s_to_plain, [x, y])
    b.a.n, b.a.c, b.a.hw = n, c, hw
    b.a.x = array_ptr(x, n * c * hw if to_blocked else _blocked_count(n, c, hw), "x")
    b.a.y = array_ptr(y, _blocked_count(n, c, hw) if to_blocked else n * c * hw, "y")
    return b


def bind_global_pool(x, y, int64_t n, int64_t c, int64_t hw, bint is_max):
    """global_pool_nchwc."""
    _positive(n, c, hw, "global_pool_nchwc")
    cdef BoundStep b = _bound(_s_global_pool, [x, y])
    b.a.n, b.a.c, b.a.hw, b.a.flag = n, c, hw, is_max
    b.a.x = array_ptr(x, _blocked_count(n, c, hw), "x")
    b.a.y = array_ptr(y, _blocked_count(n, c, 1), "y")
    return b


def bind_pool(x, y, tuple shape, tuple kernel, tuple stride, tuple dilation, tuple pads, tuple out,
              bint is_max, bint count_include_pad):
    """pool2d_nchwc."""
    cdef BoundStep b = _bound(_s_pool, [x, y])
    b.a.pool_p = _pool_params(shape, kernel, stride, dilation, pads, out, count_include_pad)
    cdef cnn_pool2d_params *p = &b.a.pool_p
    if p.n < 1 or p.c < 1 or p.h < 1 or p.w < 1 or p.oh < 1 or p.ow < 1:
        raise ShapeError("pool2d_nchwc: empty tensor")
    b.a.flag = is_max
    b.a.x = array_ptr(x, _blocked_count(p.n, p.c, p.h * p.w), "x")
    b.a.y = array_ptr(y, _blocked_count(p.n, p.c, p.oh * p.ow), "y")
    return b


def bind_scale(x, s, y, int64_t n, int64_t c, int64_t hw):
    """nchwc_scale."""
    _positive(n, c, hw, "nchwc_scale")
    cdef BoundStep b = _bound(_s_scale, [x, s, y])
    b.a.n, b.a.c, b.a.hw = n, c, hw
    b.a.x = array_ptr(x, _blocked_count(n, c, hw), "x")
    b.a.a = array_ptr(s, _blocked_count(n, c, 1), "s")
    b.a.y = array_ptr(y, _blocked_count(n, c, hw), "y")
    return b


def bind_affine(x, scale, shift, y, int64_t n, int64_t c, int64_t hw, int act=0,
                float alpha=0.0, float beta=0.0):
    """nchwc_affine."""
    _positive(n, c, hw, "nchwc_affine")
    cdef BoundStep b = _bound(_s_affine, [x, scale, shift, y])
    b.a.n, b.a.c, b.a.hw = n, c, hw
    b.a.ep = _epilogue(act, alpha, beta)
    b.a.x = array_ptr(x, _blocked_count(n, c, hw), "x")
    b.a.a = array_ptr(scale, _blocked_count(1, c, 1), "scale")
    b.a.b = array_ptr(shift, _blocked_count(1, c, 1), "shift")
    b.a.y = array_ptr(y, _blocked_count(n, c, hw), "y")
    return b


def bind_channel_norm(x, gamma, beta, y, int64_t n, int64_t c, int64_t hw, bint blocked, float eps):
    """channel_norm."""
    cdef int64_t cp = (c + 7) // 8 * 8 if blocked else c
    _positive(n, c, hw, "channel_norm")
    cdef BoundStep b = _bound(_s_channel_norm, [x, gamma, beta, y])
    b.a.n, b.a.c, b.a.hw, b.a.flag, b.a.eps = n, c, hw, blocked, eps
    b.a.x = array_ptr(x, n * cp * hw, "x")
    b.a.y = array_ptr(y, n * cp * hw, "y")
    b.a.a = array_ptr(gamma, cp, "gamma")
    b.a.b = array_ptr(beta, cp, "beta")
    return b


def bind_linear(x, w, bias, y, int64_t n, int64_t inp, int64_t out, int act=0, float alpha=0.0,
                float beta=0.0):
    """linear."""
    _positive(n, inp, out, "linear")
    cdef BoundStep b = _bound(_s_linear, [x, w, bias, y])
    b.a.n, b.a.inner, b.a.c = n, inp, out
    b.a.ep = _epilogue(act, alpha, beta)
    b.a.x = array_ptr(x, n * inp, "x")
    b.a.a = array_ptr(w, out * inp, "w")
    b.a.b = NULL if bias is None else array_ptr(bias, out, "b")
    b.a.y = array_ptr(y, n * out, "y")
    return b


def bind_activation(int act, float alpha, float beta, x, y):
    """activation: x and y of one size (y may be x)."""
    cdef int64_t size = _size_of(x)
    if size < 1 or _size_of(y) != size:
        raise ShapeError(f"activation: x has {size} elements, y {_size_of(y)}")
    cdef BoundStep b = _bound(_s_activation, [x, y])
    b.a.ep = _epilogue(act, alpha, beta)
    b.a.n = size
    b.a.x = array_ptr(x, size, "x")
    b.a.y = array_ptr(y, size, "y")
    return b


def bind_binary(int op, shape, a_strides, b_strides, a, bb, y):
    """binary: y (dense, `shape`) = a op bb with element strides (0 on broadcast dims)."""
    cdef int nd = len(shape), d
    cdef int64_t count = 1, last_a = 0, last_b = 0
    if nd > _MAX_DIMS or len(a_strides) != nd or len(b_strides) != nd:
        raise ShapeError(f"binary: rank {nd} unsupported (at most {_MAX_DIMS}) or strides mismatch")
    cdef BoundStep b = _bound(_s_binary, [a, bb, y])
    b.mem = malloc(3 * max(nd, 1) * sizeof(int64_t))
    if b.mem == NULL:
        raise MemoryError()
    cdef int64_t *sh = <int64_t *>b.mem
    cdef int64_t *sa = sh + max(nd, 1)
    cdef int64_t *sb = sa + max(nd, 1)
    for d in range(nd):
        sh[d], sa[d], sb[d] = shape[d], a_strides[d], b_strides[d]
        if sh[d] < 0 or sa[d] < 0 or sb[d] < 0:
            raise ShapeError("binary: negative size or stride")
        count *= sh[d]
        if sh[d] > 0:
            last_a += (sh[d] - 1) * sa[d]
            last_b += (sh[d] - 1) * sb[d]
    if count == 0:
        raise ShapeError("binary: empty output")
    # never let C read past a buffer
    if _size_of(y) != count:
        raise ShapeError("binary: buffer sizes do not match the shape and strides")
    b.a.flag, b.a.count, b.a.sh, b.a.sa, b.a.sb = op, nd, sh, sa, sb
    b.a.x = array_ptr(a, last_a + 1, "a")
    b.a.a = array_ptr(bb, last_b + 1, "b")
    b.a.y = array_ptr(y, count, "y")
    return b


cdef BoundStep _bind_many(cnn_step_fn fn, list xs, list needs, list refs):
    """A step over len(xs) inputs, input i holding needs[i] floats: the
    pointer table lives in the BoundStep, followed by room for as many int64."""
    cdef int count = len(xs), i
    if count < 1 or len(needs) != count:
        raise ShapeError("need one size per input")
    cdef BoundStep b = _bound(fn, refs + xs)
    b.mem = malloc(count * (sizeof(float *) + sizeof(int64_t)))
    if b.mem == NULL:
        raise MemoryError()
    b.a.xs = <const float **>b.mem
    for i in range(count):
        b.a.xs[i] = array_ptr(xs[i], needs[i], "x")
    b.a.count = count
    return b


def bind_gather(list xs, cs, src_in, src_ch, y, int64_t n, int64_t hw):
    """nchwc_gather; cs int64 (one per input), src_in int32 and src_ch int64 (one per output channel)."""
    cdef int count = len(xs), i
    cdef int64_t c_out = _size_of(src_ch)
    if count < 1 or c_out < 1 or n < 1 or hw < 1:
        raise ShapeError("nchwc_gather: empty tensor or no inputs")
    cdef const int64_t *csp = <const int64_t *>_index_ptr(cs, cnp.NPY_INT64, count, "cs")
    cdef BoundStep b = _bind_many(_s_gather, xs, [_blocked_count(n, csp[i], hw) for i in range(count)],
                                  [cs, src_in, src_ch, y])
    b.a.cs = csp
    b.a.src_in = <const int32_t *>_index_ptr(src_in, cnp.NPY_INT32, c_out, "src_in")
    b.a.src_ch = <const int64_t *>_index_ptr(src_ch, cnp.NPY_INT64, c_out, "src_ch")
    for i in range(c_out):
        if b.a.src_in[i] < 0 or b.a.src_in[i] >= count or b.a.src_ch[i] < 0 or \
                b.a.src_ch[i] >= csp[b.a.src_in[i]]:
            raise ShapeError(f"nchwc_gather: output channel {i} names no input channel")
    b.a.n, b.a.hw, b.a.c = n, hw, c_out
    b.a.y = array_ptr(y, _blocked_count(n, c_out, hw), "y")
    return b


def bind_concat(list xs, list sizes, y, int64_t outer, int64_t inner):
    """concat: xs (OUTER, sizes[i], INNER) -> y (OUTER, sum, INNER)."""
    cdef int count = len(xs), i
    cdef int64_t total = 0
    if count < 1 or len(sizes) != count or outer < 1 or inner < 1 or min(sizes) < 1:
        raise ShapeError("concat: need one positive size per input")
    cdef BoundStep b = _bind_many(_s_concat, xs, [outer * s * inner for s in sizes], [y])
    cdef int64_t *sz = <int64_t *>(b.a.xs + count)
    for i in range(count):
        sz[i] = sizes[i]
        total += sz[i]
    b.a.cs = sz
    b.a.outer, b.a.inner = outer, inner
    b.a.y = array_ptr(y, outer * total * inner, "y")
    return b


cdef class Program:
    """BoundSteps run in order by one C call (cnn_program_run), the GIL
    released. run() raises the failing step's status as check() does and
    leaves its index in `failed`. One caller at a time (one per arena)."""
    cdef cnn_program_step *steps
    cdef int64_t count
    cdef list bound
    cdef public int64_t failed

    def __cinit__(self, list bound):
        cdef int64_t i
        cdef BoundStep s
        self.bound = list(bound)
        self.count = len(self.bound)
        self.failed = -1
        self.steps = <cnn_program_step *>malloc(max(self.count, 1) * sizeof(cnn_program_step))
        if self.steps == NULL:
            raise MemoryError()
        for i in range(self.count):
            s = self.bound[i]
            self.steps[i].fn = s.fn
            self.steps[i].args = &s.a

    def __dealloc__(self):
        free(self.steps)
        self.steps = NULL

    def __len__(self):
        return self.count

    def run(self, int threads=0):
        cdef cnn_status st
        cdef int64_t failed = -1
        with nogil:
            st = cnn_program_run(self.steps, self.count, threads, &failed)
        self.failed = failed
        check(st)

    def run_timed(self, int threads, double[::1] seconds):
        """run(), and each step's wall time in seconds[i] (len(self) doubles)."""
        cdef cnn_status st
        cdef int64_t failed = -1
        cdef double dummy = 0.0
        if seconds.shape[0] < self.count:
            raise ShapeError(f"seconds: {seconds.shape[0]} doubles, the program has {self.count} steps")
        with nogil:
            st = cnn_program_run_timed(self.steps, self.count, threads, &failed,
                                       &seconds[0] if self.count > 0 else &dummy)
        self.failed = failed
        check(st)
