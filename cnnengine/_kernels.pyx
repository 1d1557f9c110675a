# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding over csrc/: take flat float32 buffers, release the GIL, call C.

Conventions for every wrapper (the op families live in the _k_*.pxi files):
- tensors arrive as 1-D C-contiguous float32 memoryviews (`arr.reshape(-1)`
  of a contiguous array); the shape travels in the params; the Python layer
  in cnnengine/functional has already validated shapes and never calls with
  an empty buffer;
- optional tensors are memoryviews that may be None (-> NULL);
- the team size comes from cnn_threads_begin/end around the C call, under
  `with nogil`, so concurrent callers share the cores;
- every status goes through check(), the one place statuses become errors.
"""
from libc.stdint cimport int32_t, int64_t

from cnnengine._capi cimport *
cimport numpy as cnp

cnp.import_array()
from cnnengine.errors import Error, ResourceError, ShapeError, UnsupportedOpError

ISA_NAMES = {CNN_ISA_REF: "scalar", CNN_ISA_AVX2: "avx2", CNN_ISA_AVX512: "avx512"}


cdef int check(cnn_status st) except -1:
    if st == CNN_OK:
        return 0
    if st == CNN_ERR_SHAPE:
        raise ShapeError("a C kernel rejected the shapes it was given")
    if st == CNN_ERR_OOM:
        raise ResourceError("a C kernel could not allocate its workspace (size too large)")
    if st == CNN_ERR_UNSUPPORTED:
        raise UnsupportedOpError("this build cannot serve the request")
    raise Error(f"a C kernel rejected its arguments (status {st})")


cdef inline const float *opt_ptr(const float[::1] a) noexcept:
    return NULL if a is None else &a[0]


cdef float *array_ptr(object a, int64_t need, str name) except NULL:
    """The data of a C-contiguous float32 ndarray (any shape) holding at
    least `need` floats. The executor's hot path passes arrays: a typed
    memoryview per argument cost about 0.5 us to acquire, and the arrays
    needed a reshape(-1) each first."""
    if not isinstance(a, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>a) != cnp.NPY_FLOAT32 or \
            not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a):
        raise ShapeError(f"{name}: expected a C-contiguous float32 array")
    if cnp.PyArray_SIZE(<cnp.ndarray>a) < need or need < 1:
        raise ShapeError(f"{name}: {cnp.PyArray_SIZE(<cnp.ndarray>a)} floats, need {need}")
    return <float *>cnp.PyArray_DATA(<cnp.ndarray>a)


def detected_isa():
    """The best instruction set this CPU supports ("avx512", "avx2" or "scalar")."""
    return ISA_NAMES[cnn_detected_isa()]


def active_isa():
    """The instruction set the kernels dispatch to now."""
    return ISA_NAMES[cnn_active_isa()]


def set_isa(name):
    """Force "scalar", "avx2" or "avx512" (tests); raises UnsupportedOpError when absent."""
    codes = {"scalar": CNN_ISA_REF, "ref": CNN_ISA_REF, "avx2": CNN_ISA_AVX2,
             "avx512": CNN_ISA_AVX512}
    if name not in codes:
        raise Error(f"unknown ISA {name!r}; expected one of {sorted(codes)}")
    check(cnn_set_isa(codes[name]))


def num_cores():
    return cnn_num_cores()


def l2_bytes():
    """The L2 cache size per core in bytes (1 MiB where the OS does not say)."""
    return cnn_l2_bytes()


def packed_stats():
    """(packs alive, bytes carved, regions mapped) of the packs that share
    huge-page regions (csrc/core/packed.c)."""
    cdef int64_t live = 0, carved = 0, regions = 0
    cnn_packed_stats(&live, &carved, &regions)
    return int(live), int(carved), int(regions)


def team_size(int requested=0):
    """The team one kernel call asking for `requested` threads gets now (thread policy)."""
    cdef int t = cnn_threads_begin(requested)
    cnn_threads_end()
    return t


def load_free_cores(int cores, long online, double others_now, double others_usage):
    """The load-aware cap's rule (tests): free cores given other processes' runnable
    threads now and their CPU use (cores) over the last window; usage < 0: unknown."""
    u = -1 if others_usage < 0 else <int>(16 * others_usage + 0.5)
    return cnn_threads_free_cores(cores, online, <int>(16 * others_now + 0.5), u)


def team_stats(bint reset=False):
    """(kernel calls, calls the load-aware cap gave fewer threads than asked, others'
    runnable threads now, others' CPU use in cores; -1: unknown) since the last
    reset: how often other processes' load cost a step its team, and why."""
    cdef long long calls, capped
    cdef int load16[2]
    cnn_threads_stats(&calls, &capped, reset, load16)
    return calls, capped, load16[0] / 16.0, load16[1] / 16.0 if load16[1] >= 0 else -1.0


def pool_check(int threads, int64_t units, cut=None, bint steal=True, int64_t slow_every=0,
               int64_t slow_us=0):
    """Diagnostics for the thread pool: run one job of `units` units on `threads`
    threads (cut: the per-slot ranges' bounds, threads + 1 of them). Returns
    (runs per unit, slot per unit, slot clashes)."""
    import numpy as np
    runs = np.zeros(units, np.int32)
    slots = np.full(units, -1, np.int32)
    cdef int32_t[::1] r = runs
    cdef int32_t[::1] s = slots
    cdef int64_t[::1] c
    cdef const int64_t *cp = NULL
    if cut is not None:
        carr = np.ascontiguousarray(cut, np.int64)
        if carr.shape[0] != threads + 1 or carr[0] != 0 or carr[threads] != units or np.any(np.diff(carr) < 0):
            raise ValueError("cut: threads + 1 non-decreasing bounds from 0 to units")
        c = carr
        cp = &c[0]
    cdef int clashes
    with nogil:
        clashes = cnn_pool_check(threads, units, cp, steal, &r[0] if units else NULL,
                                 &s[0] if units else NULL, slow_every, slow_us)
    return runs, slots, clashes


def core_round_trip_ns(int rounds=2000):
    """The median round trip of a cache line between this thread and a pool
    worker, in ns, or None (one core, or no worker joined in 100 ms). On a
    2-vCPU guest: whether the two vCPUs share an L3 at the moment
    (benchmarks/models.py reports it beside the 2-thread times)."""
    cdef double ns
    with nogil:
        ns = cnn_pool_round_trip_ns(rounds)
    return None if ns < 0 else ns


include "_k_conv.pxi"
include "_k_pool.pxi"
include "_k_norm.pxi"
include "_k_eltwise.pxi"
include "_k_layout.pxi"
include "_k_winograd.pxi"
include "_k_nchwc.pxi"
include "_k_rows.pxi"
include "_k_program.pxi"
