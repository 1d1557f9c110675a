"""Runs over output regions: one step, or a chain of steps, over a window.

The primitive incremental occlusion needs (Krypton, SIGMOD 2019): a patch
changes only a window of each layer's output, so each step runs on just
that window, reading the windows of its inputs that its op's region rule
(cnnengine.ops, OpDef.region) names. A step runs on the inputs cut to
their windows with the params `OpDef.cropped` gives (a conv's padding
becomes what the window reaches past the map); the backend compiles that
as any other step, so every backend runs regions with its own kernels.
An op without a region rule, or whose window cannot be cut, runs whole
and the box is cut out of its output: slower, never wrong.

Windows are given as (array, box): the array holds `box` of the value
(spatial axes 2 and 3; FULL, None, for a value given whole), so a window
kept from an earlier step feeds the next without copying it into a map.
"""
import threading
from collections import Counter

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..functional._common import resolve_threads
from ..ir.graph import Node
from ..ops.base import FULL, Box


class RegionRunner:
    """Region runs over one plan of an executor (one input signature)."""

    def __init__(self, plan):
        self.plan = plan
        self.index = {o: k for k, st in enumerate(plan.steps) for o in st.node.outputs if o}
        self._runners = {}
        self._padded = {}       # (step, window size) -> the step's node over unpadded windows
        self._lock = threading.Lock()
        self.stats = Counter()   # (step name, "window" | "whole") -> runs: how each step ran
        self.cache = {}          # per-plan tables of callers (incremental occlusion's change maps)

    # ------------------------------------------------------------ geometry
    def shape(self, value):
        return self.plan.shapes[value]

    def input_boxes(self, k, out_box):
        """For step k making out_box of its output: per input, the (unclipped)
        Box it reads, or FULL where it reads the input whole."""
        node = self.plan.steps[k].node
        op = ops.REGISTRY.get(node.op)
        in_shapes = [self.plan.shapes.get(i) if i else None for i in node.inputs]
        if op is None or len(self.shape(node.outputs[0])) < 4:
            return [FULL] * len(node.inputs)
        boxes = op.region(ops.params_of(node), in_shapes, self.shape(node.outputs[0]), out_box,
                          self._consts(node))
        return [b if (b is not FULL and s is not None and len(s) >= 4) else FULL
                for b, s in zip(boxes, in_shapes)]

    def windowable(self, k, out_box):
        """Whether step k can run on the input windows out_box needs (else it
        runs on whole inputs and the box is cut from its output)."""
        node = self.plan.steps[k].node
        op = ops.REGISTRY.get(node.op)
        if op is None:
            return False
        want = self.input_boxes(k, out_box)
        if all(b is FULL for b in want):
            return True
        in_shapes = [self.plan.shapes.get(i) if i else None for i in node.inputs]
        return op.cropped(ops.params_of(node), in_shapes, want, self._consts(node)) is not None

    def _consts(self, node):
        static = self.plan.static
        return {i: static[name] for i, name in enumerate(node.inputs) if name in static}

    # -------------------------------------------------------------- a step
    def run_step(self, k, ins, out_box, threads=None):
        """Step k's output over out_box (clipped to its output).

        ins: one (array, box) per input of the step -- box the window the
        array holds (FULL: the whole value); None for weights and other
        values the plan holds. Returns the output window as an array."""
        plan = self.plan
        node = plan.steps[k].node
        out_shape = self.shape(node.outputs[0])
        out_box = out_box.clip(out_shape)
        t = resolve_threads(threads)
        want = self.input_boxes(k, out_box)
        values = []
        for name, given, box in zip(node.inputs, ins, want):
            values.append(_cut(name, given, box, plan, node))
        whole = any(v is _WHOLE for v in values)
        params = None
        if not whole:
            op = ops.REGISTRY.get(node.op)
            in_shapes = [plan.shapes.get(i) if i else None for i in node.inputs]
            params = op.cropped(ops.params_of(node), in_shapes, want, self._consts(node)) \
                if op is not None else None
            whole = params is None and any(b is not FULL for b in want)
        if whole:
            self.stats[node.name, "whole"] += 1
            return self._run_whole(k, ins, out_box, t)
        self.stats[node.name, "window"] += 1
        node2 = node if params is None else _with_params(node, params)
        out = self._runner(k, node2, values)(values, None, t)
        if type(out) is tuple:
            out = out[0]
        full_out = all(b is FULL for b in want)
        return out[out_box.slices()] if full_out and not out_box.covers(out_shape) else out

    def run_padded(self, k, ins, threads=None):
        """Step k (a conv) on input windows that already hold its padding:
        ins per input the array (zeros where the window lies past the map),
        None for plan values. The conv runs unpadded over them; its output is
        the window those inputs make, for any batch."""
        node = self.plan.steps[k].node
        values = [None if not name else (self.plan.static[name] if given is None else given)
                  for name, given in zip(node.inputs, ins)]
        shapes = tuple(None if v is None else v.shape for v in values)
        node2 = self._padded.get((k, shapes[0][2:4]))
        if node2 is None:
            in_shapes = [None if not name else (s if given is not None else self.plan.shapes[name])
                         for name, given, s in zip(node.inputs, ins, shapes)]
            boxes = [Box(0, s[2], 0, s[3]) if given is not None and len(s) >= 4 else FULL
                     for given, s in zip(ins, in_shapes)]
            params = ops.REGISTRY[node.op].cropped(ops.params_of(node), in_shapes, boxes, self._consts(node))
            if params is None:
                raise ShapeError(f"step {node.name!r} ({node.op}) cannot run over windows")
            node2 = self._padded[(k, shapes[0][2:4])] = _with_params(node, params)
        self.stats[node.name, "window"] += 1
        out = self._runner(k, node2, values)(values, None, resolve_threads(threads))
        return out[0] if type(out) is tuple else out

    def run_whole(self, k, ins, threads=None):
        """Step k on whole inputs (one (array, FULL) per input, None for plan
        values): every output, as a tuple, for any batch."""
        plan = self.plan
        node = plan.steps[k].node
        values = [None if not name else (plan.static[name] if given is None else given[0])
                  for name, given in zip(node.inputs, ins)]
        self.stats[node.name, "whole"] += 1
        out = self._runner(k, node, values)(values, None, resolve_threads(threads))
        return out if type(out) is tuple else (out,)

    def _run_whole(self, k, ins, out_box, t):
        """The step on whole inputs (assembled from windows where need be), cut to out_box."""
        plan = self.plan
        node = plan.steps[k].node
        values = []
        for name, given in zip(node.inputs, ins):
            if not name:
                values.append(None)
            elif given is None:
                values.append(plan.static[name])
            else:
                arr, box = given
                if box is not FULL and not box.covers(self.shape(name)):
                    raise ShapeError(f"step {node.name!r} ({node.op}) has no region rule for a "
                                     f"window of {name!r}: give that input whole")
                values.append(arr)
        out = self._runner(k, node, values)(values, None, t)
        if type(out) is tuple:
            out = out[0]
        return out[out_box.slices()]

    def _runner(self, k, node, values):
        fn = self._runners.get((k, node.params))     # runners for windows of any size
        if fn is not None:
            return fn
        shapes = tuple(None if v is None else tuple(np.shape(v)) for v in values)
        key = (k, shapes, node.params)
        fn = self._runners.get(key)
        if fn is not None:
            return fn
        plan = self.plan
        step = plan.steps[k]
        if node is step.node and plan.backend.host_values and \
                shapes == tuple(tuple(plan.shapes[i]) if i else None for i in node.inputs):
            runner = step.runner     # the plan's own kernel: same node, same shapes
        else:
            dtypes = [None if v is None else np.asarray(v).dtype for v in values]
            runner, any_size = plan.backend.compile_window(step, node, [s or () for s in shapes], dtypes,
                                                           _out_shapes(node, values, plan), plan.static)
            if any_size:
                key = (k, node.params)
        if runner is None:
            def runner(ins, out, t, node=node):
                res = ops.evaluate(node, ins)
                return res[0] if len(res) == 1 else tuple(res)
        with self._lock:
            self._runners[key] = runner
        return runner

    # ------------------------------------------------------------- a chain
    def run_chain(self, ks, env, out_box, threads=None):
        """Steps ks (in plan order) so that the last makes out_box of its output.

        env: value -> array for every value the chain reads but does not make
        (whole values). Each step runs only over the window its consumers in
        the chain need. Returns {value: (window, box)} for every value made."""
        plan = self.plan
        made = {plan.steps[k].node.outputs[0]: k for k in ks}
        last = plan.steps[ks[-1]].node.outputs[0]
        need = {last: out_box.clip(self.shape(last))}
        for k in reversed(ks):
            node = plan.steps[k].node
            ob = need.get(node.outputs[0])
            if ob is None:
                continue
            for name, box in zip(node.inputs, self.input_boxes(k, ob)):
                if name not in made:
                    continue
                shape = self.shape(name)
                box = Box.full(shape) if box is FULL else box.clip(shape)
                need[name] = box.union(need.get(name))
        windows = {}
        for k in ks:
            node = plan.steps[k].node
            ob = need.get(node.outputs[0])
            if ob is None:
                continue
            ins = []
            for name in node.inputs:
                if not name or name in plan.static:
                    ins.append(None)
                elif name in windows:
                    arr, box = windows[name]
                    ins.append((arr, box))
                else:
                    ins.append((env[name], FULL))
            windows[node.outputs[0]] = (self.run_step(k, ins, ob, threads), ob)
        return windows


_WHOLE = object()   # marker: this input's window cannot be cut from what was given


def _cut(name, given, box, plan, node):
    """The input window `box` (clipped) out of what the caller gave."""
    if not name:
        return None
    if given is None:
        if name in plan.static:
            return plan.static[name]
        raise ShapeError(f"step {node.name!r} ({node.op}): input {name!r} was not given")
    arr, have = given
    shape = plan.shapes.get(name, np.shape(arr))
    if box is FULL:
        return arr if (have is FULL or have.covers(shape)) else _WHOLE
    box = box.clip(shape)
    have = Box.full(shape) if have is FULL else have
    if box.y0 < have.y0 or box.x0 < have.x0 or box.y1 > have.y1 or box.x1 > have.x1:
        raise ShapeError(f"step {node.name!r} ({node.op}) needs rows {box.y0}:{box.y1}, cols "
                         f"{box.x0}:{box.x1} of {name!r}; the window given holds rows "
                         f"{have.y0}:{have.y1}, cols {have.x0}:{have.x1}")
    rel = Box(box.y0 - have.y0, box.y1 - have.y0, box.x0 - have.x0, box.x1 - have.x0)
    return np.ascontiguousarray(arr[rel.slices()])


def _with_params(node, params):
    return Node(node.name, node.op, list(node.inputs), list(node.outputs), node.attrs, params)


def _out_shapes(node, values, plan):
    op = ops.REGISTRY.get(node.op)
    consts = {i: v for i, (name, v) in enumerate(zip(node.inputs, values)) if name in plan.static}
    if op is not None:
        try:
            return [tuple(s) for s in op.infer(ops.params_of(node), [None if v is None else np.shape(v)
                                                                   for v in values], consts)]
        except (NotImplementedError, ShapeError):
            pass
    return [tuple(np.shape(v)) for v in (ops.evaluate(node, values))]
