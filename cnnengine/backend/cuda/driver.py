"""The CUDA driver API through cuda-bindings: the device, device arrays,
copies, streams, module loading, launches and graph capture.

One primary context on device 0 (CNNENGINE_CUDA_DEVICE picks another),
made current on each thread that calls in. Each thread launches on a
stream of its own, so concurrent Model.run calls (each on its own arena,
runtime/executor.py) never wait on one another's work.
"""
import contextlib
import ctypes
import math
import os
import threading
import weakref

import numpy as np

from ...errors import BackendUnavailableError, ResourceError

_state = threading.local()
_lock = threading.Lock()
_dev = None          # the Device, once opened


def _driver():
    try:
        from cuda.bindings import driver
    except ImportError as exc:
        raise BackendUnavailableError("the cuda-bindings package is not installed "
                                      "(pip install \"cnnengine[cuda]\")") from exc
    return driver


class CudaError(ResourceError):
    """A CUDA driver call failed (out of device memory, a launch error)."""


def check(result, what):
    """The values after a driver call's status, raising CudaError on failure."""
    drv = _driver()
    err, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    if err != drv.CUresult.CUDA_SUCCESS:
        _, name = drv.cuGetErrorName(err)
        raise CudaError(f"CUDA {what} failed: {name.decode() if isinstance(name, bytes) else name}")
    return rest[0] if len(rest) == 1 else rest


def probe():
    """(ok, reason): whether a CUDA device can be used here, and what is missing if not."""
    try:
        drv = _driver()
    except BackendUnavailableError as exc:
        return False, str(exc)
    from . import nvrtc
    try:
        nvrtc.version()
    except BackendUnavailableError as exc:
        return False, str(exc)
    try:
        (err,) = drv.cuInit(0)
    except Exception as exc:     # libcuda.so absent: cuda-pathfinder's DynamicLibNotFoundError
        return False, f"no NVIDIA driver (libcuda) on this machine ({type(exc).__name__})"
    if err != drv.CUresult.CUDA_SUCCESS:
        return False, f"the NVIDIA driver did not initialise ({err.name})"
    err, count = drv.cuDeviceGetCount()
    if err != drv.CUresult.CUDA_SUCCESS or count < 1:
        return False, "no CUDA device is visible (the driver reports none)"
    return True, ""


class Device:
    def __init__(self, ordinal):
        drv = _driver()
        check(drv.cuInit(0), "cuInit")
        self.handle = check(drv.cuDeviceGet(ordinal), "cuDeviceGet")
        major = check(drv.cuDeviceGetAttribute(
            drv.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.handle), "attribute")
        minor = check(drv.cuDeviceGetAttribute(
            drv.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.handle), "attribute")
        self.arch = major * 10 + minor
        self.sms = check(drv.cuDeviceGetAttribute(
            drv.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, self.handle), "attribute")
        name = check(drv.cuDeviceGetName(256, self.handle), "cuDeviceGetName")
        self.name = name.split(b"\x00")[0].decode(errors="replace")
        self.context = check(drv.cuDevicePrimaryCtxRetain(self.handle), "cuDevicePrimaryCtxRetain")
        self.modules = {}
        self.functions = {}
        self._mod_lock = threading.Lock()

    def function(self, source, name):
        """Kernel `name` of source file `source` (compiled or read from the cache once)."""
        fn = self.functions.get((source, name))
        if fn is not None:
            return fn
        with self._mod_lock:
            mod = self.modules.get(source)
            if mod is None:
                from . import nvrtc
                image = nvrtc.cubin(source, self.arch)
                mod = self.modules[source] = check(_driver().cuModuleLoadData(image), f"loading {source}.cu")
            fn = check(_driver().cuModuleGetFunction(mod, name.encode()), f"kernel {name}")
            self.functions[(source, name)] = fn
        return fn


def device():
    """The device, opened once; makes its context current on the calling thread."""
    global _dev
    if _dev is None:
        with _lock:
            if _dev is None:
                _dev = Device(int(os.environ.get("CNNENGINE_CUDA_DEVICE", "0")))
    if getattr(_state, "ctx", None) is not _dev:
        check(_driver().cuCtxSetCurrent(_dev.context), "cuCtxSetCurrent")
        _state.ctx = _dev
    return _dev


def new_stream():
    drv = _driver()
    device()
    return check(drv.cuStreamCreate(drv.CUstream_flags.CU_STREAM_NON_BLOCKING.value), "cuStreamCreate")


def destroy_stream(s):
    try:
        _driver().cuStreamDestroy(s)
    except Exception:     # interpreter shutdown
        pass


def stream():
    """The stream kernels launch on: the one using_stream set on this thread,
    else the thread's own (non-blocking, made on first use)."""
    device()
    s = getattr(_state, "override", None)
    if s is not None:
        return s
    s = getattr(_state, "stream", None)
    if s is None:
        s = _state.stream = new_stream()
    return s


@contextlib.contextmanager
def using_stream(s):
    """Launches on this thread go to stream s inside the block."""
    before = getattr(_state, "override", None)
    _state.override = s
    try:
        yield s
    finally:
        _state.override = before


def synchronize(s=None):
    check(_driver().cuStreamSynchronize(stream() if s is None else s), "cuStreamSynchronize")


class DeviceArray:
    """float32 values on the device: a pointer, a shape, and what keeps the memory alive."""
    __slots__ = ("ptr", "shape", "owner", "__weakref__")
    dtype = np.dtype(np.float32)

    def __init__(self, ptr, shape, owner):
        self.ptr, self.shape, self.owner = int(ptr), tuple(int(d) for d in shape), owner

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nbytes(self):
        return 4 * self.size

    def reshape(self, shape):
        shape = tuple(shape)
        if -1 in shape:
            known = 1
            for d in shape:
                if d != -1:
                    known *= d
            shape = tuple(self.size // known if d == -1 else d for d in shape)
        if int(np.prod(shape)) != self.size:
            raise ValueError(f"cannot reshape {self.shape} to {shape}")
        return DeviceArray(self.ptr, shape, self.owner)

    def view(self, offset, shape):
        """The values at `offset` floats on, as `shape` (same memory)."""
        return DeviceArray(self.ptr + 4 * int(offset), shape, self.owner)

    def __repr__(self):
        return f"DeviceArray(shape={self.shape}, ptr=0x{self.ptr:x})"


class Allocation:
    """Device memory freed when the last array on it goes: stream-ordered
    (cuMemFreeAsync on the stream it was made on) when it came from cuMemAllocAsync."""
    __slots__ = ("ptr", "nbytes", "_final", "__weakref__")

    def __init__(self, nbytes, s=None):
        drv = _driver()
        device()
        self.nbytes = max(int(nbytes), 4)
        if s is None:
            self.ptr = int(check(drv.cuMemAlloc(self.nbytes), f"cuMemAlloc of {self.nbytes} bytes"))
            self._final = weakref.finalize(self, _free, self.ptr, None)
        else:
            self.ptr = int(check(drv.cuMemAllocAsync(self.nbytes, s), f"cuMemAllocAsync of {self.nbytes} bytes"))
            self._final = weakref.finalize(self, _free, self.ptr, s)


def _free(ptr, s):
    try:
        drv = _driver()
        device()
        if s is None:
            drv.cuMemFree(ptr)
        else:
            drv.cuMemFreeAsync(ptr, s)
    except Exception:      # interpreter shutdown: the context goes with the process
        pass


def empty(shape, s=None):
    """A new DeviceArray of shape (stream-ordered on s when given)."""
    n = 1
    for d in shape:
        n *= int(d)
    mem = Allocation(4 * n, s)
    return DeviceArray(mem.ptr, shape, mem)


def _c_order(array, dtype=None):
    """array as a C-ordered NumPy array (np.ascontiguousarray would make a 0-d one 1-d)."""
    a = np.asarray(array, dtype=dtype)
    return a if a.flags.c_contiguous else a.copy(order="C")


def upload(array, s=None):
    """A host array as a new DeviceArray (float32, C order), copied on s (default: this thread's stream)."""
    a = _c_order(array, np.float32)
    s = stream() if s is None else s
    d = empty(a.shape, s)
    if a.size:
        check(_driver().cuMemcpyHtoDAsync(d.ptr, a.ctypes.data, a.nbytes, s), "copy to the device")
        synchronize(s)     # a pageable source must outlive the copy
    return d


def upload_raw(array, s=None):
    """Any host array's bytes (int32/int64 index tables) in new device memory."""
    a = _c_order(array)
    s = stream() if s is None else s
    mem = Allocation(a.nbytes, s)
    if a.nbytes:
        check(_driver().cuMemcpyHtoDAsync(mem.ptr, a.ctypes.data, a.nbytes, s), "copy to the device")
        synchronize(s)
    return DeviceArray(mem.ptr, (a.size,), mem)


def copy_in(dst, array, s):
    """array (host, float32, C order, dst's size) into dst, ordered on s."""
    a = _c_order(array, np.float32)
    if a.size:
        check(_driver().cuMemcpyHtoDAsync(dst.ptr, a.ctypes.data, a.nbytes, s), "copy to the device")
    return a       # the caller keeps it alive until s has run the copy


def download(d, s=None):
    """A DeviceArray's values as a new host array (waits for s)."""
    s = stream() if s is None else s
    out = np.empty(d.shape, np.float32)
    if out.size:
        check(_driver().cuMemcpyDtoHAsync(out.ctypes.data, d.ptr, out.nbytes, s), "copy to the host")
    synchronize(s)
    return out


def copy(dst, src, s):
    if src.size:
        check(_driver().cuMemcpyDtoDAsync(dst.ptr, src.ptr, 4 * src.size, s), "device copy")


def mem_info():
    """(free, total) bytes of device memory."""
    device()
    return check(_driver().cuMemGetInfo(), "cuMemGetInfo")


def launch(fn, grid, block, args, s, shared=0):
    """fn<<<grid, block, shared, s>>>(*args); args are ctypes values or structures."""
    ptrs = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
    check(_driver().cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], shared, s,
                                   ctypes.addressof(ptrs), 0), "kernel launch")


class Graph:
    """A captured sequence of launches on one stream, replayed with one call."""

    def __init__(self, s, record):
        drv = _driver()
        check(drv.cuStreamBeginCapture(s, drv.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
              "cuStreamBeginCapture")
        try:
            record()
        except BaseException:
            try:
                drv.cuStreamEndCapture(s)
            finally:
                raise
        self.graph = check(drv.cuStreamEndCapture(s), "cuStreamEndCapture")
        self.exec = check(drv.cuGraphInstantiate(self.graph, 0), "cuGraphInstantiate")
        self._final = weakref.finalize(self, _destroy_graph, self.graph, self.exec)

    def launch(self, s):
        check(_driver().cuGraphLaunch(self.exec, s), "cuGraphLaunch")


def _destroy_graph(graph, exec_):
    try:
        drv = _driver()
        drv.cuGraphExecDestroy(exec_)
        drv.cuGraphDestroy(graph)
    except Exception:
        pass
