"""Exact incremental occlusion (after Krypton, Nakandala et al., SIGMOD 2019).

A patch changes only a window of each layer's output: the patch's
projective field, clipped to the map. For a batch of patch positions this
engine keeps every value of the clean image, and for each step of the
plan computes, per position, just the window its changed inputs reach
(RegionRunner, runtime/regions.py), reading the clean values around it.
Positions whose windows have the same geometry (the same size and the same
padding past the map) run as one batch through the backend's kernels; a
step whose output depends on the whole map (global pooling, dense layers)
runs whole, on the batch; a dense layer multiplies only the input columns
the batch changed, added to its clean output (dense.py). The result is the same as re-running the network
per position, to float rounding.

`cap` (approximate mode) bounds each changed window to a fraction of its
map around the patch's centre: outside it the clean values are kept.
"""
import numpy as np

from .. import ops
from ..ops.base import FULL, Box
from . import dense


_UNCHANGED = object()
_BATCHES = object()      # state key: value -> (positions, batch array) of the values run whole

# a step whose windows cover more than this share of its output map runs
# whole on the batch: a batch of windows costs about its share of the whole
# run up to ~3/4 of the map (ResNet-18's convs, docs/performance.md)
WHOLE_ABOVE = 0.9


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

    def window_t(self, k, i, box):
        """window() as a tuple (y0, y1, x0, x1), or FULL."""
        maps = self._get(k, i)
        if maps is FULL:
            return FULL
        r0, r1, c0, c1 = maps[0]
        return (r0[box.y0], r1[box.y1 - 1], c0[box.x0], c1[box.x1 - 1])

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
        # the maps depend on the plan alone: kept with its runner across calls
        self.maps = self.runner.cache.get("change_maps") or \
            self.runner.cache.setdefault("change_maps", ChangeMaps(self.runner))
        self.limit = limit      # None, or (boxes, shape, centres) -> boxes
        self.steps = _needed_steps(plan, wanted)
        self._clean_pre = {}     # dense step -> its clean output before a fused activation

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
        if dense.sparse_dense(plan, node, state) and self._sparse(k, state, sorted(state[node.inputs[0]]), threads):
            return
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
                any(r.covers(shape) for r in boxes.values()):
            self._whole(k, state, sorted(boxes), threads)
            return
        boxes = {b: r.clip(shape) for b, r in boxes.items()}
        if self.limit is not None:
            boxes = self.limit(boxes, shape, centres)
        # computed over windows grown to a few common sizes; kept over the
        # exact windows (the rest of a grown window holds clean values), so
        # the growth does not spread into the next steps' windows
        exact, boxes = boxes, _common_sizes(boxes, shape)
        dest = state.setdefault(out, {})
        whole = sorted(b for b, r in boxes.items() if r.rows * r.cols > WHOLE_ABOVE * shape[2] * shape[3])
        if whole:
            # windows nearly the map's size: the whole batch run is faster (the
            # kernels' full-map efficiency), and the windows are cut from it
            y = self._whole_outputs(k, state, whole, threads)[0]
            for j, b in enumerate(whole):
                dest[b] = (exact[b], y[j:j + 1][exact[b].slices()])
                del boxes[b]
            if not boxes:
                return
        # a conv reads zeros past the map: its windows are gathered with the
        # zeros in place, so positions at the borders share one kernel call
        padded = _zero_padded(node)
        reads = [(j, name) for j, name in enumerate(node.inputs)
                 if name and not (name in plan.static and name not in state)]
        groups = {}
        for b, box in boxes.items():
            want = {j: self.maps.window_t(k, j, box) for j, _ in reads}
            # the same window sizes (and padding past the map): one batch
            key = (box.rows, box.cols) if padded else \
                tuple(None if w is FULL else (w[1] - w[0], w[3] - w[2], _past_t(w, plan.shapes[node.inputs[j]]))
                      for j, w in want.items())
            groups.setdefault(key, []).append((b, box, want))
        for members in groups.values():
            _, box0, want0 = members[0]
            if not padded and not runner.windowable(k, box0):     # e.g. Resize: whole inputs, the box cut out
                y = self._whole_outputs(k, state, [b for b, _, _ in members], threads)[0]
                for j, (b, box, _) in enumerate(members):
                    dest[b] = (exact[b], np.ascontiguousarray(y[j:j + 1][exact[b].slices()]))
                continue
            ins = [None] * len(node.inputs)
            for j, name in reads:
                arr = self._batch(state, name, [(b, want[j]) for b, _, want in members], padded)
                w0 = want0[j]
                ins[j] = arr if padded else \
                    (arr, FULL if w0 is FULL else Box(*w0).clip(plan.shapes[name]))
            y = runner.run_padded(k, ins, threads) if padded else runner.run_step(k, ins, box0, threads)
            for j, (b, box, _) in enumerate(members):
                e = exact[b]
                dest[b] = (e, y[j:j + 1] if e == box else
                           y[j:j + 1, :, e.y0 - box.y0:e.y1 - box.y0, e.x0 - box.x0:e.x1 - box.x0])

    def _sparse(self, k, state, members, threads):
        """Dense step k for positions `members` on the input columns they
        changed only (dense.py); False, leaving the step to run whole, when
        those are more than dense.SPARSE_BELOW of its input."""
        plan, node = self.plan, self.plan.steps[k].node
        xs = self._batch(state, node.inputs[0], [(b, FULL) for b in members], False)
        key = ("sparse_dense", k)
        layer = self.runner.cache.get(key) or self.runner.cache.setdefault(key, dense.SparseDense(plan, node))
        cols, d = layer.changed_columns(self.clean[node.inputs[0]], xs)
        if len(cols) > dense.SPARSE_BELOW * d.shape[1]:
            return False
        y_clean = self._clean_pre.get(k)
        if y_clean is None:
            y_clean = self._clean_pre[k] = layer.clean_pre(self.clean)
        y = layer.run(y_clean, cols, d, threads)
        out = node.outputs[0]
        state.setdefault(_BATCHES, {})[out] = (members, y)
        dest = state.setdefault(out, {})
        for j, b in enumerate(members):
            dest[b] = (None, y[j:j + 1])
        return True

    def _batch(self, state, name, members, padded):
        """Value `name` over each member's window (b, (y0, y1, x0, x1) | FULL),
        stacked along the batch: clean values with the member's changed window
        pasted in; zeros past the map where `padded`, else the window clipped
        to the map."""
        shape = self.plan.shapes[name]
        clean = self.clean[name] if name in self.clean else self.plan.static[name]
        w0 = members[0][1]
        changed = state.get(name, {})
        if w0 is FULL:
            whole = state.get(_BATCHES, {}).get(name)
            if whole is not None and whole[0] == [b for b, _ in members]:
                return whole[1]        # made whole for these positions, in this order: no copy
            out = np.empty((len(members),) + tuple(shape[1:]), np.float32)
            for j, (b, _) in enumerate(members):
                out[j] = clean[0]
                got = changed.get(b)
                if got is not None:
                    cbox, arr = got
                    if cbox is None:
                        out[j] = arr[0]
                    else:
                        out[j][cbox.slices()[1:]] = arr[0]
            return out
        h, w = shape[2], shape[3]
        cy0, cx0 = min(max(0, w0[0]), h), min(max(0, w0[2]), w)
        cy1, cx1 = max(cy0, min(h, w0[1])), max(cx0, min(w, w0[3]))
        size = (w0[1] - w0[0], w0[3] - w0[2]) if padded else (cy1 - cy0, cx1 - cx0)
        past = padded and any(v[0] < 0 or v[2] < 0 or v[1] > h or v[3] > w for _, v in members)
        out = (np.zeros if past else np.empty)((len(members), shape[1]) + size + tuple(shape[4:]), np.float32)
        for j, (b, v) in enumerate(members):
            y0, y1, x0, x1 = v
            cy0 = min(max(0, y0), h)       # clipped, never inverted (no slice wraps around)
            cy1 = max(cy0, min(h, y1))
            cx0 = min(max(0, x0), w)
            cx1 = max(cx0, min(w, x1))
            oy, ox = (y0, x0) if padded else (cy0, cx0)
            dst = out[j, :, cy0 - oy:cy1 - oy, cx0 - ox:cx1 - ox]
            got = changed.get(b)
            if got is None:
                dst[...] = clean[0, :, cy0:cy1, cx0:cx1]
                continue
            cbox, arr = got
            if cbox is None:
                dst[...] = arr[0, :, cy0:cy1, cx0:cx1]
                continue
            a0, a1 = max(cy0, cbox.y0), min(cy1, cbox.y1)
            b0, b1 = max(cx0, cbox.x0), min(cx1, cbox.x1)
            if not (a0 <= cy0 and b0 <= cx0 and a1 >= cy1 and b1 >= cx1):
                dst[...] = clean[0, :, cy0:cy1, cx0:cx1]
            if a1 > a0 and b1 > b0:
                dst[:, a0 - cy0:a1 - cy0, b0 - cx0:b1 - cx0] = \
                    arr[0, :, a0 - cbox.y0:a1 - cbox.y0, b0 - cbox.x0:b1 - cbox.x0]
        return out

    def _whole_outputs(self, k, state, members, threads):
        """Every output of step k on whole values, for positions `members` (batched)."""
        plan, node = self.plan, self.plan.steps[k].node
        ins = []
        for name in node.inputs:
            if not name or (name in plan.static and name not in state):
                ins.append(None)
                continue
            ins.append((self._batch(state, name, [(b, FULL) for b in members], False), FULL))
        return self.runner.run_whole(k, ins, threads)

    def _whole(self, k, state, members, threads):
        """Step k run on whole values for the positions it changes."""
        node = self.plan.steps[k].node
        outs = self._whole_outputs(k, state, members, threads)
        for name, y in zip(node.outputs, outs):
            if name:
                state.setdefault(_BATCHES, {})[name] = (list(members), y)
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


def _zero_padded(node):
    """Whether the step reads zeros past its input map (a conv's padding)."""
    if node.op == "Conv":
        return True
    return node.op == "cnn.ConvNCHWc" and not getattr(ops.params_of(node), "pooled", False)


def _past_t(w, shape):
    """How far window w (y0, y1, x0, x1) reaches past a map of `shape`: (top, left, bottom, right)."""
    return (max(0, -w[0]), max(0, -w[2]), max(0, w[1] - shape[2]), max(0, w[3] - shape[3]))


# a window joins a batch of windows up to 1/SHARE_WASTE its size (grown to
# theirs); smaller ones form batches of their own: one size for all the
# windows of a batch computed up to 1.37x the exact windows' multiply-adds
# on VGG-16's 14x14 maps (border positions' windows grown to the middle's)
SHARE_WASTE = 0.85


def _common_sizes(boxes, shape):
    """Windows grown to a few common sizes, kept inside the map: the largest
    window's size for every window of at least SHARE_WASTE its area that it
    contains, then the same for those left, so that positions share window
    geometry and run as few batches."""
    left = sorted(boxes.items(), key=lambda kv: -kv[1].rows * kv[1].cols)
    out = {}
    while left:
        rows, cols = left[0][1].rows, left[0][1].cols
        floor = SHARE_WASTE * rows * cols
        rest = []
        for k, b in left:
            if b.rows <= rows and b.cols <= cols and b.rows * b.cols >= floor:
                y0 = min(b.y0, shape[2] - rows)
                x0 = min(b.x0, shape[3] - cols)
                out[k] = Box(y0, y0 + rows, x0, x0 + cols)
            else:
                rest.append((k, b))
        left = rest
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
    if node.op == "cnn.BlockNCHWc":      # a streamed block: its three convs, the expand's over stride^2 pixels
        area = out[2] * out[3] if box is None else box.rows * box.cols
        s = node.params.dw.conv.strides
        ws = [plan.shapes[node.inputs[j]] for j in (1, 3, 5) if node.inputs[j]]
        macs = [w[0] * w[1] * w[2] * w[3] for w in ws]
        if node.inputs[1]:
            macs[0] *= s[0] * s[1]
        return out[0] * area * sum(macs)
    if node.op in ("Gemm", "MatMul"):
        a, b = plan.shapes[node.inputs[0]], plan.shapes[node.inputs[1]]
        return int(np.prod(a)) * (b[0] if len(b) == 2 and b[1] == a[-1] else b[-1])
    return 0


def mac_bound(engine, boxes, sparse_dense=True):
    """(naive MACs, incremental MACs) per position, averaged over `boxes`:
    the whole network against each step over the window its patch reaches
    (exact windows, no batching growth). Their ratio bounds the speedup.
    sparse_dense: a dense layer after a Flatten counts only the columns of
    the cells the patch changed (dense.py); False counts it whole (the
    bound before that route existed)."""
    plan = engine.plan
    full = sum(step_macs(plan, k) for k in engine.steps)
    x = plan.graph.inputs[0].name
    total = 0
    for box in boxes:
        reach = {x: box}
        flat = {}
        for k in engine.steps:
            node = plan.steps[k].node
            if not any(v in reach for v in node.inputs):
                continue
            if sparse_dense:
                cmap = dense.flatten_map(plan, node)
                if cmap is not None:
                    flat[node.outputs[0]] = (cmap, reach[node.inputs[0]])
                    reach[node.outputs[0]] = None
                    continue
                got = flat.get(node.inputs[0])
                if got is not None and dense.sparse_dense(plan, node, reach):
                    cmap, cbox = got
                    total += len(dense.box_cells(cbox, cmap)) * cmap[0] * plan.shapes[node.outputs[0]][-1]
                    reach[node.outputs[0]] = None
                    continue
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
