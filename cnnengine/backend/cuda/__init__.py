"""The CUDA backend: csrc/cuda kernels compiled by NVRTC at run time.

    pip install "cnnengine[cuda]"          # cuda-bindings + the NVRTC wheel
    m = ce.load("resnet50.onnx", backend="cuda")
    m = Model(graph, backend=CudaBackend(precision="tf32"))   # TF32 tensor cores

Modules: nvrtc.py (compile + disk cache), driver.py (device, memory,
streams, launches, graphs), launch.py (host-side launch arithmetic),
table.py (op -> kernel runner), graphs.py (whole-plan replay). Values
live on the device as driver.DeviceArray; the executor copies each input
in once and each output (and only the captured layers) out once.
"""
import threading

import numpy as np

from ..base import Backend


class CudaBackend(Backend):
    name = "cuda"
    host_values = False
    description = "NVIDIA GPU: our kernels (csrc/cuda) compiled at run time by NVRTC, CUDA graphs"

    def __init__(self, precision="fp32", graphs=True):
        if precision not in ("fp32", "tf32"):
            from ...errors import InputError
            raise InputError(f"precision: expected 'fp32' or 'tf32', got {precision!r}")
        from . import driver, graphs as G
        self.precision = precision
        self._D = driver
        self.device = driver.device()
        self._consts = {}
        self._lock = threading.Lock()
        self.replayer = G.Replayer(self, use_graphs=graphs)

    @classmethod
    def availability(cls):
        from . import driver, nvrtc
        ok, reason = driver.probe()
        if not ok:
            return ok, reason
        try:
            arch = driver.device().arch
            if arch not in nvrtc.supported_archs():
                return False, f"NVRTC {'.'.join(map(str, nvrtc.version()))} cannot compile for sm_{arch}"
        except Exception as exc:
            return False, f"the CUDA device could not be opened: {exc}"
        return True, ""

    def plan_key(self):
        return ("cuda", self.precision, self.device.arch)

    # ------------------------------------------------------- kernel table
    def compile(self, node, in_shapes, in_dtypes, out_shapes, static):
        from .table import compile_step
        return compile_step(self, node, in_shapes, in_dtypes, out_shapes, static)

    def compile_window(self, step, node, in_shapes, in_dtypes, out_shapes, static):
        """Region runs (incremental occlusion) hand NumPy windows: the window's
        kernel runs on the device between one copy in and one copy out per step."""
        runner = self.compile(node, in_shapes, in_dtypes, out_shapes, static)
        if runner is None:
            return None, False
        positions = [i for i, name in enumerate(node.inputs) if name and name not in static]
        D = self._D

        def run(ins, out, t):
            dev = list(ins)
            for i in positions:
                if isinstance(dev[i], np.ndarray):
                    dev[i] = D.upload(dev[i])
            y = runner(dev, None, t)
            return tuple(self.to_host(v) for v in y) if type(y) is tuple else self.to_host(y)
        return run, False

    def constant(self, array, key=None, make=None, raw=False):
        """A plan constant on the device. With a key it is uploaded once per
        (array, key) for this backend (weights shared by the plans of every
        input shape); `make` transforms it first (e.g. the GEMM weight layout)."""
        D = self._D
        if key is None:
            a = make(array) if make else array
            return D.upload_raw(a) if raw else D.upload(a)
        ck = (id(array), key)
        with self._lock:
            hit = self._consts.get(ck)
            if hit is not None:
                return hit[1]
        a = make(array) if make else array
        dev = D.upload_raw(a) if raw else D.upload(a)
        with self._lock:
            self._consts.setdefault(ck, (array, dev))     # the array is held: its id stays unique
            return self._consts[ck][1]

    # ------------------------------------------------------------ buffers
    def empty(self, count):
        return self._D.empty((count,))

    def view(self, buf, offset, shape):
        return buf.view(offset, shape)

    def to_device(self, array):
        a = np.asarray(array)
        if a.dtype != np.float32:
            return array            # shape tensors, masks: host values for host steps
        return self._D.upload(a)

    def to_host(self, value, stream=None):
        if isinstance(value, self._D.DeviceArray):
            return self._D.download(value, stream)
        return value

    def synchronize(self):
        self._D.synchronize()

    def replay(self, plan, feeds, run_steps):
        return self.replayer.run(plan, feeds, run_steps)
