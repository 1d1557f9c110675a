"""One occluded image through the network, cheaply enough to follow a
dragged patch: the occlusion panel's model side, free of Qt so the worker
thread and the tests call it directly.

It reuses the exact incremental engine of ce.occlusion
(cnnengine/occlusion/incremental.py): the clean image's activations are
kept once per (model, image), and each probe recomputes only the window of
each layer the patch can reach. The engine's per-position state also names
that window for every layer, which is the "affected region" the panel
outlines. Like ce.occlusion it reaches into the model's executors; that is
the one place the viewer does.

Measured on ResNet-18, 224x224, one thread, a busy 2-core machine: a full
batch-1 run 47-58 ms, one incremental probe (patch 32) 31-49 ms.
"""
import time
from dataclasses import dataclass

import numpy as np

from . import atlas

def parse_fill(text):
    """The fill box's text -> what ce.occlusion takes: a named fill or a number
    (InputError, a ValueError, otherwise)."""
    from ..occlusion import parse_fill as parse
    return parse(str(text).strip().lower())


def patch_box(y, x, patch, hw):
    """The occluded box (top, left, bottom, right) of a patch at (y, x), kept inside the image."""
    h, w = hw
    y = int(min(max(0, y), h - patch))
    x = int(min(max(0, x), w - patch))
    return y, x, y + patch, x + patch


@dataclass
class ProbeResult:
    box: tuple                  # (top, left, bottom, right) occluded, in input pixels
    probs: np.ndarray           # (classes,) class probabilities of the occluded image
    occluded: np.ndarray        # (1, C, H, W) the occluded model input
    layer: str = None           # the layer whose change is reported
    delta: np.ndarray = None    # (C, h, w) or (C,) occluded minus clean of that layer
    clean: np.ndarray = None    # (C, h, w) or (C,) the clean activation of that layer
    region: tuple = None        # (top, left, bottom, right) of the layer's map the patch can reach
    seconds: float = 0.0


class Probe:
    """probe(box, fill) for one (model, image): the occluded image's
    probabilities and, for `layer`, occluded minus clean with the changed
    region. Engines are built on first use and kept; not for concurrent calls
    (the panel runs one probe at a time)."""

    def __init__(self, model, x):
        self.model = model
        self.x = np.ascontiguousarray(x, np.float32)
        self.input = model.inputs[0].name
        self.output = model.outputs[0].name
        self._engines = {}       # "fused" | "plain" -> Incremental
        self._fillers = {}       # (fill, patch) -> fill_at; ("clean", engine, value) -> activation;
                                 # ("steps", value) -> the unfused plan's steps up to value

    # ------------------------------------------------------------ engines
    def _engine(self, which):
        from ..functional import _common
        from ..occlusion.incremental import Incremental

        eng = self._engines.get(which)
        if eng is None:
            executor = self.model._exec if which == "fused" else self.model._exec_unfused
            feeds = {self.input: self.x}
            with _common.threads_scope(self.model.threads):
                eng = self._engines[which] = Incremental(executor, feeds, [self.output])
        return eng

    def _where(self, layer):
        """(engine, value it is read from, its NCHW shape, blocked?, steps) for a
        layer: the fused plan where it makes the value (or its blocked twin);
        else the unfused plan (a conv whose output the fused plan never forms),
        run only up to that layer (`steps`) since the fused run gives the classes."""
        from ..occlusion.incremental import _needed_steps

        (value,) = self.model._layer_values([layer]).values()
        eng = self._engine("fused")
        plan = eng.plan
        made = {o for st in plan.steps for o in st.node.outputs if o}
        if value in made:
            return eng, value, plan.shapes[value], False, None
        if value in plan.blocked and plan.blocked[value] in made:
            return eng, plan.blocked[value], plan.shapes[value], True, None
        eng = self._engine("plain")
        key = ("steps", value)
        if key not in self._fillers:
            self._fillers[key] = _needed_steps(eng.plan, [value])
        return eng, value, eng.plan.shapes[value], False, self._fillers[key]

    def _clean(self, eng, value, shape, blocked):
        """The clean image's activation (C, h, w) of a value, unblocked once."""
        key = ("clean", id(eng), value)
        if key not in self._fillers:
            clean = eng.gather({}, value, 0, None)
            if blocked:
                clean = eng.plan.backend.unblock(clean, shape, self.model.threads)
            self._fillers[key] = np.array(clean, np.float32)[0]
        return self._fillers[key]

    def filler(self, fill, patch):
        from ..occlusion import _filler
        key = (fill, patch)
        if key not in self._fillers:
            self._fillers[key] = _filler(self.x, fill, patch)
        return self._fillers[key]

    # -------------------------------------------------------------- probe
    def probe(self, box, fill="mean", layer=None):
        """box = (top, left, bottom, right) of the patch, in input pixels."""
        from ..functional import _common
        from ..ops.base import Box

        t0 = time.perf_counter()
        t, l, b, r = (int(v) for v in box)
        patch = max(b - t, r - l)
        if not 0 < patch <= min(self.x.shape[2:]):
            raise ValueError(f"patch {patch} does not fit the {self.x.shape[2]}x{self.x.shape[3]} input")
        t, l, b, r = patch_box(t, l, patch, self.x.shape[2:])   # an empty window would reach no kernel
        fill_at = self.filler(fill, patch)
        pbox = Box(t, b, l, r)
        window = fill_at(pbox)
        where = self._where(layer) if layer else None
        fused = self._engine("fused")
        states = {}
        with _common.threads_scope(self.model.threads):
            states[id(fused)] = fused.run(self.input, [(pbox, window)])
            if where is not None and where[4] is not None:
                plain = where[0]
                plain.steps = where[4]    # Incremental.run runs engine.steps: here only up to the layer
                states[id(plain)] = plain.run(self.input, [(pbox, window)])
        out = fused.gather(states[id(fused)], self.output, 0, None)
        occluded = self.x.copy()
        occluded[pbox.slices()] = window
        result = ProbeResult((t, l, b, r), atlas.probabilities(np.asarray(out).reshape(-1)), occluded,
                             layer=layer)
        if where is not None:
            eng, value, shape, blocked, _ = where
            state = states[id(eng)]
            now = eng.gather(state, value, 0, None)
            if blocked:
                now = eng.plan.backend.unblock(now, shape, self.model.threads)
            clean = self._clean(eng, value, shape, blocked)
            result.delta, result.clean = np.asarray(now, np.float32)[0] - clean, clean
            result.region = _region(state.get(value, {}).get(0), shape)
        result.seconds = time.perf_counter() - t0
        return result

    def top_k(self, result, k=5):
        return atlas.top_k(result.probs, self.model.labels, k=k)


def _region(got, shape):
    """The window the engine recomputed (top, left, bottom, right): the whole
    map where it ran the step whole, None where the patch changed nothing."""
    if got is None or len(shape) < 4:
        return None
    box = got[0]
    if box is None:
        return (0, 0, int(shape[2]), int(shape[3]))
    return (box.y0, box.x0, box.y1, box.x1)
