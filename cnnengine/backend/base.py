"""The interface a backend implements for the executor.

A backend owns three things and nothing else: the buffers activations live
in (allocation, views, host<->device copies), the kernel table (op + typed
params + shapes -> a compiled runner) and the layout it wants values in (a
rewrite of the plan's steps, e.g. the CPU's blocked NCHW8c). Everything
else -- plans per input signature, shapes, the liveness memory plan, arenas,
thread safety, capture, runs over regions -- is the executor's, written
once over this interface (runtime/executor.py).

A runner is `run(ins, out, threads) -> output` (or a tuple, for a step with
several outputs): `ins` are the step's input values in the backend's
buffers, `out` a buffer of the output's shape from the memory plan, or None
to allocate. An op the kernel table lacks runs through its reference
evaluation (cnnengine.ops) on host arrays.
"""
import numpy as np


class Backend:
    name = ""
    fuses = True          # run the graph after the fusion passes
    shape_plans = False   # plans may be made from inferred shapes (runtime/shape_walk.py)
    description = ""
    host_values = True    # values are NumPy arrays (False: device buffers, see to_host)
    lazy_weights = False  # plans may hold weights still in their file (ir/weights.py); runners
                          # whose `packed` attribute lists input indices never read them at run time

    @classmethod
    def availability(cls):
        """(available, reason): reason says what is missing when it is not."""
        return True, ""

    def plan_key(self):
        """Extra key for plans: anything that changes which kernels a plan holds."""
        return ()

    # ------------------------------------------------------------ layout
    def prepare(self, steps, shapes, dtypes, static, outputs):
        """Rewrite the plan's step nodes into the layout this backend wants.

        Returns (steps, twins): twins maps a value that exists only in the
        backend's layout to its twin's name (see unblock). shapes/dtypes
        gain the new values' entries."""
        return steps, {}

    def plain(self):
        """This backend keeping every value in the plain layout (for captures
        of values that only the plain, unfused graph computes)."""
        return self

    def unblock(self, value, shape, threads):
        """A value held in the backend's layout (a twin) back in the plain one."""
        raise KeyError("this backend keeps every value in the plain layout")

    # ------------------------------------------------------- kernel table
    def compile(self, node, in_shapes, in_dtypes, out_shapes, static):
        """A runner for `node` at these shapes, or None for the reference evaluation."""
        return None

    def packs(self, node):
        """Whether compiling node packs weights (costly, thread-safe, GIL released): a
        plan compiles such steps on its thread team at once."""
        return False

    def compile_window(self, step, node, in_shapes, in_dtypes, out_shapes, static):
        """A runner for plan step `step` over a window: node is the step's
        node with the window's params (OpDef.cropped). Returns (runner,
        any_size): any_size when the runner takes windows of any size and
        batch (it reuses what the step compiled, e.g. packed weights). The
        default compiles the window like any step."""
        return self.compile(node, in_shapes, in_dtypes, out_shapes, static), False

    # ------------------------------------------------------------ buffers
    def empty(self, count):
        """A flat buffer of `count` float32s."""
        return np.empty(count, np.float32)

    def view(self, buf, offset, shape):
        """A value of `shape` inside `buf`, starting at `offset` floats."""
        n = 1
        for d in shape:
            n *= d
        return buf[offset:offset + n].reshape(shape)

    def to_device(self, array):
        """A host array (a feed, or what a step without a kernel made) as a value of this backend."""
        return array

    def to_host(self, value):
        """A value of this backend as a NumPy array (graph outputs, captures, host steps)."""
        return value

    def synchronize(self):
        """Wait for work queued by this thread (profiling times asynchronous backends with it)."""

    # -------------------------------------------------------------- runs
    def program(self, bound):
        """A program of the steps bound by their runners' bind() (runtime/programs.py):
        an object whose run(threads) runs them in order and, on an error,
        leaves the failing one's index in `failed`; None: no programs here."""
        return None

    def replay(self, plan, feeds, run_steps):
        """Run a whole plan for feeds its own way, or None to let the executor
        run it step by step. run_steps(env, arena) runs every step over env
        (value -> backend value) with step k writing arena[k] and returns
        the graph outputs: a backend records it once and replays it (the
        CUDA backend's graphs). Called only for runs without captures."""
        return None
