"""Runs a graph on a backend (cnnengine.backend).

A plan is made on the first run at each input signature (shapes and
dtypes), or before it by prepare() (ce.load does so for the declared
input shape). Where every step is a common float op, the plan comes from
inferred shapes and the first run is the plan's own (shape_walk.py).
Otherwise that run evaluates every op by its reference definition and
records every value's shape, dtype and aliasing; it evaluates once the
nodes that depend only on weights and input *shapes* (TorchScript's Shape
-> Gather -> Concat -> Reshape chains) and keeps the rest as steps. The
backend then rewrites the steps into the layout it wants, compiles each
from its kernel table, and their outputs get buffers from a liveness-based
memory plan (memory_plan), so later runs at that signature allocate nothing
but the graph outputs. A step the kernel table lacks runs its reference.
Each step records what runs it (Step.kernel): the backend runner's own
tag ("C", "shape", "numpy"), "shape" for a reference step that only makes
a view of its input or integer (shape arithmetic) values, else "numpy".

Plans are immutable; the buffers live in arenas that a run takes from the
plan's pool and gives back, so one executor serves several Python threads
at once, each on its own arena. Each arena also binds its runs of
consecutive steps whose inputs never move (runtime/programs.py) into
programs that run in one C call each; keep runs go step by step, profile runs
time each program's steps inside its C loop.
"""
import os
import threading
import time

import numpy as np

from ..backend.base import Backend
from ..errors import Error, ModelFormatError, ResourceError, ShapeError
from ..functional._common import resolve_threads
from ..ir.weights import Weights, copy_weights, dtype_of, is_unread, release, shape_of, subset
from .. import ops
from . import shape_walk
from .memory_plan import plan_memory
from .programs import bind_programs


def _reference_plans():
    """CNNENGINE_PLAN=reference: every first run walks the graph by reference
    (its outputs are the reference ops'), as before shape_walk."""
    return os.environ.get("CNNENGINE_PLAN", "").lower() == "reference"


class Step:
    __slots__ = ("node", "runner", "slot", "free", "kernel")

    def __init__(self, node, runner, kernel="numpy"):
        self.node, self.runner, self.slot, self.free = node, runner, None, ()
        self.kernel = kernel


class Plan:
    def __init__(self, graph, static, steps, shapes, slot_sizes, blocked, backend):
        self.graph = graph
        self.backend = backend
        self.blocked = blocked or {}  # value -> its twin in the backend's layout (e.g. NCHW8c)
        self.static = static          # value -> array, fixed for this signature
        self.steps = steps            # [Step]
        self.shapes = shapes          # value -> shape
        self.slot_sizes = slot_sizes  # float32 capacity of each arena slot
        self.outputs = [o.name for o in graph.outputs]
        self.values = set(static) | {o for st in steps for o in st.node.outputs if o} | \
            set(self.blocked) | {v.name for v in graph.inputs}
        self.run_static = _run_static(static, steps, self.outputs)
        # what each run asks of the backend, decided once: whether it replays
        # whole plans, and whether its values are the host arrays themselves
        kind = type(backend)
        self.replays = kind.replay is not Backend.replay
        self.host_only = backend.host_values and kind.to_device is Backend.to_device and \
            kind.to_host is Backend.to_host
        if isinstance(static, Weights):
            static.caching = True     # read after planning (occlusion, per window): keep what is read
        self._arenas = []
        self._lock = threading.Lock()
        # per step: (step, input names, its one output's name or None, values it frees);
        # the runner read from the step at each run (tests replace runners)
        self.lean = [(st, tuple(st.node.inputs),
                      st.node.outputs[0] if len(st.node.outputs) == 1 else None, tuple(st.free))
                     for st in steps]

    def acquire(self, fault_in=False):
        """An arena: each step's output view (None where the step has no slot),
        cut once per arena, not once per run (a slice and a reshape per step
        cost ~1 us each, 0.1 ms a run on EfficientNet-B0's 117 steps).
        fault_in: touch every page of a new arena's host buffers now (a
        first run's page faults on them cost it about a steady run)."""
        with self._lock:
            if self._arenas:
                return self._arenas.pop()
        be = self.backend
        bufs = [be.empty(n) for n in self.slot_sizes]
        if fault_in and be.host_values:
            for buf in bufs:
                buf[::1024] = 0     # one float per 4 KiB page
                buf[-1:] = 0
        arena = _Arena(None if st.slot is None else be.view(bufs[st.slot[0]], st.slot[2], st.slot[1])
                       for st in self.steps)
        arena.schedule = bind_programs(self, arena)
        return arena

    def release(self, arena):
        with self._lock:
            self._arenas.append(arena)


class Executor:
    def __init__(self, graph, backend=None):
        """backend: a cnnengine.backend Backend (default: the reference evaluation
        of every op, the plain layout, NumPy buffers)."""
        self.graph = graph
        self.backend = backend if backend is not None else Backend()
        self._plans = {}
        self._region_runners = {}
        self._lock = threading.Lock()
        self._unused = None   # the key of a plan prepare() made that no run has used yet

    def run(self, feeds, keep=(), profile=None):
        """feeds: input name -> array. Returns {value: array} for graph outputs and `keep`.

        profile: a dict that receives {node name: seconds} for each step run.
        """
        key = self._key(feeds)
        plan = self._plans.get(key)
        if self._unused is not None:
            self._forget_unused(key)
        if plan is None:
            plan, values = self._make_plan(feeds, keep)
            with self._lock:
                self._plans.setdefault(key, plan)
            if profile is None and values is not None:
                return values
        return self._run_plan(plan, feeds, keep, profile)

    def prepare(self, feeds):
        """Make the plan for feeds' signature now without running it, where
        it comes from shapes alone (shape_walk), and fault its first arena
        in: the first run at that signature is then a steady run (what ONNX
        Runtime and OpenVINO do at session creation). Returns whether that
        plan exists now. Until a run uses it, the plan is dropped by the
        first run at another signature (a dynamic batch run at batch 8 need
        not keep a batch-1 plan's packed weights)."""
        key = self._key(feeds)
        if key in self._plans:
            return True
        if not self.backend.shape_plans or _reference_plans():
            return False
        walked = shape_walk.walk(self.graph, feeds)
        if walked is None:
            return False
        plan = self._plan_from_walk(walked)
        plan.release(plan.acquire(fault_in=True))
        with self._lock:
            if self._plans.setdefault(key, plan) is plan:
                self._unused = key
        return True

    def _forget_unused(self, key):
        with self._lock:
            if self._unused is not None and self._unused != key:
                self._plans.pop(self._unused, None)
            self._unused = None

    def computes(self, feeds, names):
        """Whether the plan for feeds makes every value in names (the blocked
        layout leaves out some in-between values: a channel shuffle's
        5-D reshape, links of a gather chain)."""
        plan = self.plan_for(feeds)
        have = plan.values
        return all(n in have for n in names)

    def plan_for(self, feeds):
        key = self._key(feeds)
        if key not in self._plans:
            self.run(feeds)
        return self._plans[key]

    def regions(self, feeds):
        """A RegionRunner (runtime/regions.py) over the plan for feeds' signature:
        runs one step or a chain of steps over a window of its output."""
        from .regions import RegionRunner
        plan = self.plan_for(feeds)
        with self._lock:
            runner = self._region_runners.get(id(plan))
            if runner is None:
                runner = self._region_runners[id(plan)] = RegionRunner(plan)
        return runner

    # ---------------------------------------------------------- internals
    def _key(self, feeds):
        if len(feeds) == 1:     # the common case without sorted() and a generator (1.7 -> 0.7 us)
            for k, v in feeds.items():
                return self.backend.plan_key() + ((k, v.shape, v.dtype.str),)
        return self.backend.plan_key() + tuple((k, v.shape, v.dtype.str) for k, v in sorted(feeds.items()))

    def _make_plan(self, feeds, keep):
        """(plan, the first run's values), or (plan, None) where the plan was
        made from shapes alone (shape_walk) and the caller runs it."""
        g = self.graph
        walked = None if keep or not self.backend.shape_plans or _reference_plans() else \
            shape_walk.walk(g, feeds)
        if walked is not None:
            return self._plan_from_walk(walked), None
        env = copy_weights(g.weights)
        static = set(g.weights)
        env.update(feeds)
        shapes = {k: shape_of(env, k) for k in env}
        dtypes = {k: dtype_of(env, k) for k in env}
        aliases = {}
        steps = []
        for node in g.nodes:
            ins = [env[i] if i else None for i in node.inputs]
            outs = _call(node, ins)
            is_static = node.op in ("Shape", "Size") or all((not i) or i in static for i in node.inputs)
            for name, value in zip(node.outputs, outs):
                if not name:
                    continue
                env[name] = value
                shapes[name] = tuple(np.shape(value))
                dtypes[name] = np.asarray(value).dtype
                if is_static:
                    static.add(name)
                else:
                    for i, x in zip(node.inputs, ins):
                        if x is not None and i not in static and np.shares_memory(value, x):
                            aliases[name] = i
                            break
            if not is_static:
                steps.append(node)
        static_values = self._static_values(subset(env, static))
        compiled, blocked = self._compile(steps, shapes, dtypes, static_values)
        for st in compiled:
            st.kernel = _kernel_kind(st.node, st.runner, dtypes, aliases)
        slot_sizes = plan_memory(compiled, shapes, aliases, set(static_values), {o.name for o in g.outputs})
        plan = Plan(g, static_values, compiled, shapes, slot_sizes, blocked, self.backend)
        wanted = {o.name for o in g.outputs} | set(keep)
        return plan, {k: env[k] for k in wanted if k in env}

    def _plan_from_walk(self, walked):
        g = self.graph
        env, static, shapes, dtypes, steps = walked
        static_values = self._static_values(subset(env, static))
        del env
        compiled, blocked = self._compile(steps, shapes, dtypes, static_values)
        views = shape_walk.possible_views(compiled, static)
        for st in compiled:
            st.kernel = _kernel_kind(st.node, st.runner, dtypes, {})
        slot_sizes = plan_memory(compiled, shapes, views, set(static_values), {o.name for o in g.outputs})
        return Plan(g, static_values, compiled, shapes, slot_sizes, blocked, self.backend)

    def _static_values(self, values):
        """A plan's constant values: weights left in their file stay there
        where the backend packs what it needs (lazy_weights), else read now."""
        return values if self.backend.lazy_weights or type(values) is dict else dict(values)

    def _compile(self, steps, shapes, dtypes, static_values):
        be = self.backend
        steps, blocked = be.prepare(steps, shapes, dtypes, static_values, [o.name for o in self.graph.outputs])

        def compile_one(node):
            runner = be.compile(node, [shapes.get(i, ()) for i in node.inputs],
                                [dtypes.get(i) for i in node.inputs],
                                [shapes[o] for o in node.outputs if o], static_values)
            for k in getattr(runner, "packed", ()):
                # its pack is the copy the plan runs on: the original need not stay
                if node.inputs[k] in static_values:
                    release(static_values, node.inputs[k])
            return runner

        runners = {}
        heavy = [k for k, node in enumerate(steps) if be.packs(node)]
        workers = min(resolve_threads(None) or os.cpu_count() or 1, len(heavy))
        if workers > 1:
            # packing runs in C without the GIL: the plan's own team packs
            # (single-threaded packs made a 2-thread first run 4 steady runs)
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(workers) as pool:
                runners.update(zip(heavy, pool.map(compile_one, [steps[k] for k in heavy])))
        compiled = [Step(node, runners[k] if k in runners else compile_one(node)) for k, node in enumerate(steps)]
        return compiled, blocked

    def _run_plan(self, plan, feeds, keep, profile=None):
        if not keep and profile is None and plan.host_only and not plan.replays:
            # the common run: host values, nothing kept, no profile
            t = resolve_threads(None)
            env = dict(plan.run_static)
            env.update(feeds)
            arena = plan.acquire()
            try:
                return self._run_steps(plan, env, arena, (), t)
            finally:
                plan.release(arena)
        be = plan.backend
        kept = set(keep)
        kept.update(plan.blocked[k] for k in keep if k in plan.blocked)
        t = resolve_threads(None)
        if not kept and profile is None and plan.replays:
            # a backend may replay the whole plan (CUDA graphs); None: run it step by step
            done = be.replay(plan, feeds, lambda env, arena: self._run_steps(plan, env, arena, set(), t))
            if done is not None:
                return done
        env = dict(plan.run_static)
        if plan.host_only:
            env.update(feeds)
        else:
            env.update((k, be.to_device(v)) for k, v in feeds.items())
        # Captured values must survive the run: then no buffer is reused.
        # An arena holds step k's output view at [k].
        arena = plan.acquire() if not kept else None
        try:
            out = self._run_steps(plan, env, arena, kept, t, profile)
            for k in keep:
                if k not in out and k in env:
                    out[k] = env[k]
                elif k not in out and plan.blocked.get(k) in env:
                    out[k] = plan.backend.unblock(be.to_host(env[plan.blocked[k]]), plan.shapes[k], t)
            return out if plan.host_only else {k: be.to_host(v) for k, v in out.items()}
        finally:
            if arena is not None:
                plan.release(arena)

    def _run_steps(self, plan, env, arena, kept, t, profile=None):
        """Every step of plan over env (values in the backend's buffers);
        returns {value: backend value} for the graph outputs. The arena's
        programs run their steps unless the run profiles or keeps values."""
        schedule = None if kept else getattr(arena, "schedule", None)
        if schedule is None:
            self._steps(plan, env, arena, kept, t, profile, 0, len(plan.steps))
        else:
            for prog, lo, hi in schedule:
                if prog is None:
                    self._steps(plan, env, arena, kept, t, profile, lo, hi)
                    continue
                seconds = None if profile is None else np.zeros(len(prog.ks))
                try:
                    prog.run(env, t, seconds)
                except Error as exc:
                    node, ins = prog.failed_step(plan)
                    raise _with_node(exc, node, ins) from None
                if profile is not None:
                    # a program's steps timed inside its C loop, as a run
                    # costs them (step by step, the Python call after a large
                    # step cost a small one more than its kernel: MobileNetV2's
                    # global pool 38 us, 4-8 in the program); its views 0
                    got = dict(zip(prog.ks, seconds.tolist()))
                    for k in range(lo, hi):
                        name = plan.steps[k].node.name
                        profile[name] = profile.get(name, 0.0) + got.get(k, 0.0)
        return {k: env[k] for k in plan.outputs if k in env}

    def _steps(self, plan, env, arena, kept, t, profile, lo, hi):
        """Steps lo..hi-1 of plan, one Python call each."""
        if profile is None and not kept and arena is not None:
            return self._steps_lean(plan, env, arena, t, lo, hi)
        return self._steps_general(plan, env, arena, kept, t, profile, lo, hi)

    def _steps_general(self, plan, env, arena, kept, t, profile, lo, hi):
        be = plan.backend
        steps = plan.steps
        for k in range(lo, hi):
            step = steps[k]
            node = step.node
            if profile is not None:
                t0 = time.perf_counter()
            ins = [env[i] if i else None for i in node.inputs]
            if step.runner is not None:
                try:
                    value = step.runner(ins, None if arena is None else arena[k], t)
                except Error as exc:
                    raise _with_node(exc, node, ins) from None
                except (ValueError, IndexError, TypeError) as exc:
                    raise _failed(node, ins, exc) from None
                if type(value) is tuple:      # a step with two outputs
                    env.update(zip(node.outputs, value))
                else:
                    env[node.outputs[0]] = value
            else:
                # no kernel: the op's reference on host values
                host = [None if v is None else be.to_host(v) for v in ins]
                for name, value in zip(node.outputs, _call(node, host)):
                    if name:
                        env[name] = be.to_device(value)
            if profile is not None:
                be.synchronize()
                profile[node.name] = profile.get(node.name, 0.0) + time.perf_counter() - t0
            for name in step.free:
                if name not in kept:
                    env.pop(name, None)

    def _steps_lean(self, plan, env, arena, t, lo, hi):
        """_steps without profiling or kept values, each step's names read
        from plan.lean; a step without a kernel or with several outputs
        runs as _steps_general runs it."""
        lean = plan.lean
        for k in range(lo, hi):
            step, inputs, out, free = lean[k]
            runner = step.runner
            if runner is None or out is None:
                self._steps_general(plan, env, arena, (), t, None, k, k + 1)
                continue
            ins = [env[i] if i else None for i in inputs]
            try:
                value = runner(ins, arena[k], t)
            except Error as exc:
                raise _with_node(exc, step.node, ins) from None
            except (ValueError, IndexError, TypeError) as exc:
                raise _failed(step.node, ins, exc) from None
            if type(value) is tuple:      # not a one-output node's: as _steps_general does
                env.update(zip(step.node.outputs, value))
            else:
                env[out] = value
            for name in free:
                env.pop(name, None)


class _Arena(list):
    """Step k's output view at [k]; schedule: the arena's programs (programs.py) or None."""
    __slots__ = ("schedule",)


def _run_static(static, steps, outputs):
    """The constant values a run starts from: None for a weight that only
    steps holding their own packed copy read (Step.runner.packed: the input
    indices it never reads), so that a weight still in its file is not read
    back; weights no step reads are left out unless they are outputs."""
    if type(static) is not Weights:
        return static
    packed_only = {}
    for st in steps:
        packed = getattr(st.runner, "packed", ())
        for k, name in enumerate(st.node.inputs):
            if name and name in static:
                packed_only[name] = packed_only.get(name, True) and k in packed
    out = {}
    for name in static:
        if packed_only.get(name):
            out[name] = None
        elif name in packed_only or name in outputs or not is_unread(static, name):
            out[name] = static[name]
    return out


def _kernel_kind(node, runner, dtypes, aliases):
    """What runs a step: its runner's tag, else "shape" where the reference
    moves no float data (a view of its input, integer outputs), else "numpy"."""
    kind = getattr(runner, "kernel", None)
    if kind:
        return kind
    outs = [o for o in node.outputs if o]
    if outs and all(o in aliases or (dtypes.get(o) is not None and np.dtype(dtypes[o]).kind in "iub")
                    for o in outs):
        return "shape"
    return "numpy" if runner is None else "compiled"


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _failed(node, ins, exc):
    """A plan made from inferred shapes meets a case no reference run
    checked first: a ShapeError naming the node, as _call does."""
    return ShapeError(f"node {node.name!r} ({node.op}) failed on inputs "
                      f"{[None if i is None else tuple(np.shape(i)) for i in ins]}: {exc}")


def _with_node(exc, node, ins=None):
    """exc, its message naming the node and op; a C kernel's status (which
    knows neither) also gets the shapes the node was given."""
    msg = str(exc)
    if node.name not in msg:
        msg = f"node {node.name!r} ({node.op}): {msg}"
    if ins is not None and "C kernel" in msg and "input shapes" not in msg:
        msg += f" (input shapes {[None if i is None else tuple(np.shape(i)) for i in ins]})"
    return type(exc)(msg)


def _call(node, ins):
    try:
        outs = ops.evaluate(node, ins)
        if any(node.outputs[len(outs):]):
            raise ModelFormatError(f"declares outputs {node.outputs}, the op makes {len(outs)}")
        return outs
    except Error as exc:
        raise _with_node(exc, node, ins) from None
    except MemoryError:
        raise ResourceError(f"node {node.name!r} ({node.op}): its output does not fit in memory "
                            f"(inputs {[None if i is None else tuple(i.shape) for i in ins]})") from None
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise ShapeError(f"node {node.name!r} ({node.op}) failed on inputs "
                         f"{[None if i is None else tuple(i.shape) for i in ins]}: {exc}") from None


# the branches of If nodes run as plans of their own
ops.control.set_subgraph_runner(lambda graph: Executor(graph).run)
