"""Whole-plan runs on the device: fixed buffers per slot, a CUDA graph once shapes repeat.

A slot is everything one in-flight run needs: a stream, an arena (the
memory plan's buffers, plus a buffer of its own for every step the plan
leaves without one: graph outputs and a Split's other outputs), and the
device copies of the inputs. The first run on a slot launches step by step
(eager) and records which device values are the outputs; the second is
captured into a CUDA graph on the slot's stream, and every later run copies
the input in, launches the graph and copies the outputs out: one launch
instead of one per step (the point at batch 1). Slots are pooled per plan,
so concurrent runs each take their own.

A plan with a step that has no kernel (its reference runs on the host)
cannot be captured: its runs go step by step (Executor), and say so in
Plan stats via `graphable`.
"""
import threading
import weakref

import numpy as np

from . import driver as D


def graphable(plan):
    """Whether every step of plan runs on the device (no host reference step)."""
    return all(st.runner is not None for st in plan.steps)


class Slot:
    def __init__(self, plan, backend):
        self.stream = D.new_stream()
        self.inputs = {v.name: D.empty(plan.shapes[v.name]) for v in plan.graph.inputs
                       if v.name in plan.shapes and v.name not in plan.static}
        self.arena = _arena(plan, backend)
        self.outputs = None      # {output: device value} recorded by the first run
        self.graph = None
        self.runs = 0

        weakref.finalize(self, D.destroy_stream, self.stream)


def _arena(plan, backend):
    """The plan's arena cut from fresh buffers, with a buffer (or one per
    output) for each kernel step the memory plan gave none."""
    bufs = [backend.empty(n) for n in plan.slot_sizes]
    arena = []
    for st in plan.steps:
        if st.slot is not None:
            arena.append(backend.view(bufs[st.slot[0]], st.slot[2], st.slot[1]))
        elif st.runner is None or getattr(st.runner, "allocates", True) is False:
            arena.append(None)
        elif getattr(st.runner, "outputs", 1) > 1:
            arena.append(tuple(D.empty(plan.shapes[o]) for o in st.node.outputs if o))
        else:
            arena.append(D.empty(plan.shapes[st.node.outputs[0]]))
    return arena


class Replayer:
    """The slots of every plan run on one backend (weakly keyed by plan)."""

    def __init__(self, backend, use_graphs=True):
        self.backend = backend
        self.use_graphs = use_graphs
        self._pools = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.stats = {"eager": 0, "captured": 0, "replayed": 0}

    def run(self, plan, feeds, run_steps):
        if not graphable(plan) or set(feeds) != set(_inputs(plan)) or \
                any(np.asarray(v).dtype != np.float32 for v in feeds.values()):
            return None      # slots hold float32 inputs on the device
        with self._lock:
            pool = self._pools.setdefault(plan, [])
            slot = pool.pop() if pool else None
        if slot is None:
            slot = Slot(plan, self.backend)
        try:
            return self._run(slot, plan, feeds, run_steps)
        finally:
            with self._lock:
                self._pools.setdefault(plan, []).append(slot)

    def _run(self, slot, plan, feeds, run_steps):
        s = slot.stream
        with D.using_stream(s):
            held = [D.copy_in(slot.inputs[k], v, s) for k, v in feeds.items()]
            if slot.graph is not None:
                slot.graph.launch(s)
                self.stats["replayed"] += 1
            elif slot.runs >= 1 and self.use_graphs:
                env = dict(plan.static)
                env.update(slot.inputs)
                got = {}
                slot.graph = D.Graph(s, lambda: got.update(run_steps(env, slot.arena)))
                slot.outputs = got
                slot.graph.launch(s)
                self.stats["captured"] += 1
            else:
                env = dict(plan.static)
                env.update(slot.inputs)
                slot.outputs = run_steps(env, slot.arena)
                self.stats["eager"] += 1
            out = {k: self.backend.to_host(v, s) for k, v in slot.outputs.items()}
            del held
        slot.runs += 1
        return out


def _inputs(plan):
    return [v.name for v in plan.graph.inputs if v.name not in plan.static]
