"""Exact incremental occlusion (after Krypton, Nakandala et al., SIGMOD 2019).

A patch changes only a window of each layer's output: the patch's
projective field, clipped to the map. For a batch of patch positions this
engine keeps every value of the clean image, and for each step of the
plan computes, per position, just the window its changed inputs reach
(RegionRunner, runtime/regions.py), reading the clean values around it.
Positions whose windows have the same geometry (the same size and the same
padding past the map) run as one batch through the backend's kernels; a
step whose output depends on the whole map (global pooling, dense layers)
runs whole, on the batch. The result is the same as re-running the network
per position, to float rounding.

`cap` (approximate mode) bounds each changed window to a fraction of its
map around the patch's centre: outside it the clean values are kept.
"""
import numpy as np

from .. import ops
from ..ops.base import FULL, Box


_UNCHANGED = object()


class ChangeMaps:
    """Per step and spatial input: for each output row (col), the input rows
    (cols) [r0, r1) it reads, as arrays, so that the output window a changed
    input window reaches is two searchsorted calls."""

    def __init__(self, runner):
        self.runner = runner
        self._maps = {}

    def _get(self, k, i):
        maps = self._maps.get((k, i), _UNCHANGED)     # FULL (None) is a cached answer too
        if maps is _UNCHANGED:
            maps = self._maps[(k, i)] = self._make(k, i)
        return maps

    def reach(self, k, i, box):
        """The output window of step k that input i's changed `box` (inside
        the input) reaches: a Box, or FULL when the step reads input i whole."""
        maps = self._get(k, i)
        if maps is FULL:
            return FULL
        first_row, end_row, first_col, end_col = maps[1]
        return Box(first_row[box.y0], end_row[box.y1], first_col[box.x0], end_col[box.x1])

    def window(self, k, i, box):
        """The (unclipped) window of input i that step k reads for output `box`, or FULL."""
        maps = self._get(k, i)
        if maps is FULL:
            return FULL
        r0, r1, c0, c1 = maps[0]
        return Box(r0[box.y0], r1[box.y1 - 1], c0[box.x0], c1[box.x1 - 1])

    def _make(self, k, i):
        plan = self.runner.plan
        node = plan.steps[k].node
        out_shape = plan.shapes[node.outputs[0]]
        in_shape = plan.shapes.get(node.inputs[i]) if node.inputs[i] else None
        if len(out_shape) < 4 or in_shape is None or len(in_shape) < 4:
            return FULL
        oh, ow = out_shape[2], out_shape[3]
        rows = [self.runner.input_boxes(k, Box(y, y + 1, 0, ow))[i] for y in range(oh)]
        cols = [self.runner.input_boxes(k, Box(0, oh, x, x + 1))[i] for x in range(ow)]
        if any(b is FULL for b in rows + cols):
            return FULL
        r0, r1 = np.array([b.y0 for b in rows]), np.array([b.y1 for b in rows])
        c0, c1 = np.array([b.x0 for b in cols]), np.array([b.x1 for b in cols])
        # input row a -> the first output row reading it or below; input end b ->
        # the output rows reading above b: reach() is then four list look-ups
        ys, xs = np.arange(in_shape[2] + 1), np.arange(in_shape[3] + 1)
        reach = (np.searchsorted(r1, ys, side="right").tolist(), np.searchsorted(r0, ys, side="left").tolist(),
                 np.searchsorted(c1, xs, side="right").tolist(), np.searchsorted(c0, xs, side="left").tolist())
        return (r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist()), reach


class Incremental:
    """Runs batches of occluded images over one plan, step by step, on windows."""

    def __init__(self, executor, feeds, wanted, limit=None):
        """feeds: the clean input {name: (1, C, H, W) array}; wanted: the values
        whose occluded versions the caller reads (outputs or a layer)."""
        self.runner = executor.regions(feeds)
        plan = self.plan = self.runner.plan
        keep = [o for st in plan.steps for o in st.node.outputs if o]
        self.clean = executor.run(feeds, keep=keep)
        self.clean.update(feeds)
        self.maps = ChangeMaps(self.runner)
        self.limit = limit      # None, or (boxes, shape, centres) -> boxes
        self.steps = _needed_steps(plan, wanted)

    # ---------------------------------------------------------------- values
    def gather(self, state, v, b, box):
        """Position b's value v over box (None: whole), clean where b changed nothing."""
        clean = self.clean[v] if v in self.clean else self.plan.static[v]
        got = state.get(v, {}).get(b)
        if got is None:
            return clean if box is None else clean[box.slices()]
        cbox, arr = got
        if cbox is None:
            return arr if box is None else arr[box.slices()]
        if box is None:
            out = clean.copy()
            out[cbox.slices()] = arr
            return out
        out = np.array(clean[box.slices()])
        y0, y1, x0, x1 = max(box.y0, cbox.y0), min(box.y1, cbox.y1), max(box.x0, cbox.x0), min(box.x1, cbox.x1)
        if y1 > y0 and x1 > x0:
            out[:, :, y0 - box.y0:y1 - box.y0, x0 - box.x0:x1 - box.x0] = \
                arr[:, :, y0 - cbox.y0:y1 - cbox.y0, x0 - cbox.x0:x1 - cbox.x0]
        return out

    # ------------------------------------------------------------------ run
    def run(self, x_name, windows, threads=None):
        """windows: per position b, (box, occluded input window (1, C, rows, cols)).
        Returns the per-position state {value: {b: (box | None, array)}}."""
        state = {x_name: {b: (box, arr) for b, (box, arr) in enumerate(windows)}}
        centres = [((box.y0 + box.y1) / 2 / self.clean[x_name].shape[2],
                    (box.x0 + box.x1) / 2 / self.clean[x_name].shape[3]) for box, _ in windows]
        for k in self.steps:
            self._step(k, state, len(windows), centres, threads)
        return state

    def _step(self, k, state, count, centres, threads):
        plan, runner = self.plan, self.runner
        node = plan.steps[k].node
        spatial = [(i, v) for i, v in enumerate(node.inputs) if v and v in state]
        if not spatial:
            return
        out = node.outputs[0]
        shape = plan.shapes[out]
        boxes = {}
        for b in range(count):
            reach = _UNCHANGED       # FULL is None: a separate marker for "nothing yet"
            for i, v in spatial:
                got = state[v].get(b)
                if got is None:
                    continue
                r = FULL if got[0] is None else self.maps.reach(k, i, got[0])
                if r is FULL:
                    reach = FULL
                    break
                reach = r if reach is _UNCHANGED else reach.union(r)
            if reach is not _UNCHANGED:
                boxes[b] = reach
        if not boxes:
            return
        if len(shape) < 4 or any(r is FULL for r in boxes.values()) or len(node.outputs) > 1 or \
                any(Box.full(shape).clip(shape) == r.clip(shape) for r in boxes.values()):
            self._whole(k, state, sorted(boxes), threads)
            return
        boxes = {b: r.clip(shape) for b, r in boxes.items()}
        if self.limit is not None:
            boxes = self.limit(boxes, shape, centres)
        boxes = _same_size(boxes, shape)
        groups = {}
        for b, box in boxes.items():
            want = [self.maps.window(k, i, box) if v else FULL for i, v in enumerate(node.inputs)]
            # same relative window and the same padding past the map: one batch
            key = tuple(None if w is FULL else (w.y0 - box.y0, w.y1 - box.y0, w.x0 - box.x0, w.x1 - box.x0,
                                                _past(w, plan.shapes[v]))
                        for w, v in zip(want, node.inputs) if v)
            groups.setdefault(key, []).append((b, box, want))
        dest = state.setdefault(out, {})
        for members in groups.values():
            _, box0, want0 = members[0]
            if not runner.windowable(k, box0):     # e.g. Resize: whole inputs, the box cut out
                y = self._whole_outputs(k, state, [b for b, _, _ in members], threads)[0]
                for j, (b, box, _) in enumerate(members):
                    dest[b] = (box, np.ascontiguousarray(y[j:j + 1][box.slices()]))
                continue
            ins = []
            for j, (name, w0) in enumerate(zip(node.inputs, want0)):
                if not name or (name in plan.static and name not in state):
                    ins.append(None)
                    continue
                shape_in = plan.shapes[name]
                parts = [self.gather(state, name, b, None if want[j] is FULL else want[j].clip(shape_in))
                         for b, _, want in members]
                arr = np.ascontiguousarray(np.concatenate(parts, axis=0))
                ins.append((arr, FULL if w0 is FULL else w0.clip(shape_in)))
            y = runner.run_step(k, ins, box0, threads)
            for j, (b, box, _) in enumerate(members):
                dest[b] = (box, y[j:j + 1])

    def _whole_outputs(self, k, state, members, threads):
        """Every output of step k on whole values, for positions `members` (batched)."""
        plan, node = self.plan, self.plan.steps[k].node
        ins = []
        for name in node.inputs:
            if not name or (name in plan.static and name not in state):
                ins.append(None)
                continue
            ins.append((np.ascontiguousarray(np.concatenate([self.gather(state, name, b, None) for b in members],
                                                            axis=0)), FULL))
        return self.runner.run_whole(k, ins, threads)

    def _whole(self, k, state, members, threads):
        """Step k run on whole values for the positions it changes."""
        node = self.plan.steps[k].node
        outs = self._whole_outputs(k, state, members, threads)
        for name, y in zip(node.outputs, outs):
            if name:
                dest = state.setdefault(name, {})
                for j, b in enumerate(members):
                    dest[b] = (None, y[j:j + 1])


def _needed_steps(plan, wanted):
    """Plan steps the wanted values depend on, in order."""
    index = {o: k for k, st in enumerate(plan.steps) for o in st.node.outputs if o}
    need, todo = set(), [v for v in wanted if v in index]
    while todo:
        k = index[todo.pop()]
        if k in need:
            continue
        need.add(k)
        todo.extend(i for i in plan.steps[k].node.inputs if i in index)
    return sorted(need)


def _past(w, shape):
    """How far window w reaches past a map of `shape`: (top, left, bottom, right)."""
    c = w.clip(shape)
    return (c.y0 - w.y0, c.x0 - w.x0, w.y1 - c.y1, w.x1 - c.x1)


def _same_size(boxes, shape):
    """Every window grown to the largest size among them, kept inside the map,
    so that positions share window geometry and run as one batch."""
    rows = max(b.rows for b in boxes.values())
    cols = max(b.cols for b in boxes.values())
    out = {}
    for k, b in boxes.items():
        y0 = min(b.y0, shape[2] - rows)
        x0 = min(b.x0, shape[3] - cols)
        out[k] = Box(y0, y0 + rows, x0, x0 + cols)
    return out


__all__ = ["Incremental", "ChangeMaps", "ops"]


def step_macs(plan, k, box=None):
    """Multiply-adds of step k over output box (None: the whole output):
    convolutions and dense layers, which carry nearly all of a CNN's work."""
    node = plan.steps[k].node
    out = plan.shapes[node.outputs[0]]
    if node.op in ("Conv", "cnn.ConvNCHWc"):
        w = plan.shapes[node.inputs[1]]
        area = out[2] * out[3] if box is None else box.rows * box.cols
        k_out = w[0]
        return out[0] * area * k_out * w[1] * w[2] * w[3]
    if node.op in ("Gemm", "MatMul"):
        a, b = plan.shapes[node.inputs[0]], plan.shapes[node.inputs[1]]
        return int(np.prod(a)) * (b[0] if len(b) == 2 and b[1] == a[-1] else b[-1])
    return 0


def mac_bound(engine, boxes):
    """(naive MACs, incremental MACs) per position, averaged over `boxes`:
    the whole network against each step over the window its patch reaches
    (exact windows, no batching growth). Their ratio bounds the speedup."""
    plan = engine.plan
    full = sum(step_macs(plan, k) for k in engine.steps)
    x = plan.graph.inputs[0].name
    total = 0
    for box in boxes:
        reach = {x: box}
        for k in engine.steps:
            node = plan.steps[k].node
            r = _UNCHANGED
            for i, v in enumerate(node.inputs):
                if v not in reach:
                    continue
                got = FULL if reach[v] is None else engine.maps.reach(k, i, reach[v])
                if got is FULL:
                    r = FULL
                    break
                r = got if r is _UNCHANGED else r.union(got)
            if r is _UNCHANGED:
                continue
            shape = plan.shapes[node.outputs[0]]
            if r is FULL or len(shape) < 4:
                total += step_macs(plan, k)
                for o in node.outputs:
                    reach[o] = None
                continue
            r = r.clip(shape)
            total += step_macs(plan, k, r)
            for o in node.outputs:
                reach[o] = None if r.covers(shape) else r
    return full, total / max(1, len(boxes))
