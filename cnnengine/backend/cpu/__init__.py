"""The CPU backend: the C kernels (scalar, AVX2/FMA, AVX-512 chosen by CPUID).

Kernel table: kernels.py (a closure per step with packed weights and
dims resolved once). Layout: blocked NCHW8c from the first conv to the
global pool where the ISA has the blocked kernels (layout.py). Buffers:
64-byte aligned NumPy arrays.
"""
import mmap

import numpy as np

from ... import _kernels as K
from ..base import Backend


# ops whose compiled runners (kernels.py _conv, _conv_nchwc) run on packed weights only
_PACKS_WEIGHTS = ("Conv", "cnn.ConvNCHWc", "cnn.BlockNCHWc")
_HUGE = 1 << 21             # a transparent huge page
_HUGE_FROM = 2 * _HUGE      # buffers from this size get huge pages (empty)


class CpuBackend(Backend):
    name = "cpu"
    shape_plans = True
    lazy_weights = True
    description = "C kernels with OpenMP (scalar, AVX2/FMA, AVX-512 chosen at run time)"

    def __init__(self, blocked=True):
        from . import layout
        self.blocked = blocked and layout.wanted()

    def plan_key(self):
        # a plan's kernels and packs are chosen for one ISA level
        return (K.active_isa(), self.blocked)

    def plain(self):
        return CpuBackend(blocked=False) if self.blocked else self

    def prepare(self, steps, shapes, dtypes, static, outputs):
        from . import layout
        if not self.blocked or not layout.available():
            return steps, {}
        return layout.to_blocked(steps, shapes, dtypes, static, outputs)

    def unblock(self, value, shape, threads):
        from . import layout
        return layout.unblock(value, shape, threads)

    def compile(self, node, in_shapes, in_dtypes, out_shapes, static):
        from .kernels import compile_step
        run = compile_step(node, in_shapes, in_dtypes, out_shapes, static)
        if run is not None and node.op in _PACKS_WEIGHTS and not hasattr(run, "packed"):
            run.packed = (1,)     # the weights live in the runner's pack; ins[1] is never read
        return run

    def packs(self, node):
        return node.op in _PACKS_WEIGHTS

    def compile_window(self, step, node, in_shapes, in_dtypes, out_shapes, static):
        from .kernels import conv_window
        run = conv_window(step.runner, node)
        if run is not None:
            return run, True
        return self.compile(node, in_shapes, in_dtypes, out_shapes, static), False

    def program(self, bound):
        return K.Program(bound)

    def empty(self, count):
        """count float32s starting on a 64-byte line: vector stores never split lines.
        From 4 MiB on, an anonymous map 2 MiB aligned whose whole 2 MiB pages are
        advised as transparent huge pages (fewer TLB misses; the tail stays 4 KiB
        pages, so no memory is added)."""
        if count * 4 >= _HUGE_FROM and hasattr(mmap, "MADV_HUGEPAGE"):
            buf = mmap.mmap(-1, count * 4 + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            raw = np.frombuffer(buf, np.float32)
            off = (-raw.ctypes.data % _HUGE) // 4
            try:
                buf.madvise(mmap.MADV_HUGEPAGE, off * 4, count * 4 // _HUGE * _HUGE)
            except OSError:
                pass        # advice: without it the pages are 4 KiB
            return raw[off:off + count]
        raw = np.empty(count + 16, np.float32)
        off = (-raw.ctypes.data % 64) // 4
        return raw[off:off + count]
