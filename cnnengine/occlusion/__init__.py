"""Occlusion sensitivity (Zeiler & Fergus, ZFNet): slide a patch over the
image and record how much the target -- a class's probability, or one
channel's activation -- drops at each position.

    r = ce.occlusion(model, image, patch=16, stride=8)      # r.heatmap: (H', W')

Modes:
  naive        -- every occluded image through the whole network, in batches: the oracle.
  incremental  -- exact; each layer computes only the window the patch can
                  reach, reading the clean image's values elsewhere (incremental.py).
  approximate  -- exact on windows up to a cut a few layers in, first order
                  (one backward pass) past it (approximate.py); the result
                  says how far it is from exact on positions checked exactly.
"""
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ShapeError
from .._kernels import num_cores
from ..functional import _common
from ..ops.base import Box
from . import approximate
from .incremental import Incremental

MODES = ("naive", "incremental", "approximate")


@dataclass
class OcclusionResult:
    heatmap: np.ndarray          # (H', W'): drop in the target at each patch position (NaN: not run)
    target: object               # the class index, or (layer, channel)
    baseline_prob: float         # the target on the clean image (probability, or activation for a unit)
    patch: int
    stride: int
    mode: str
    seconds: float               # the whole call
    timings: dict = field(default_factory=dict)
    error: dict = None           # approximate: its distance to exact on spot-checked positions
    cancelled: bool = False

    def to_json(self):
        return {"target": self.target if isinstance(self.target, int) else list(self.target),
                "baseline_prob": float(self.baseline_prob),
                "heatmap": [[None if not np.isfinite(v) else float(v) for v in row] for row in self.heatmap],
                "patch": self.patch, "stride": self.stride, "mode": self.mode, "seconds": self.seconds,
                "timings": self.timings, "error": self.error, "cancelled": self.cancelled}


def occlusion(model, image, *, patch=16, stride=8, fill="mean", target=None, mode="incremental", batch=None,
              progress=None, cancel=None, reduce="sum", threads=None, budget=approximate.DEFAULT_BUDGET,
              checks=approximate.DEFAULT_CHECKS, cap=None):
    """Occlusion sensitivity map of `model` on `image`.

    image: a preprocessed float32 array (1, C, H, W), or a path / PIL image the
    model's preprocessing turns into one. fill: "mean" (each channel's mean
    over the image), "zero", a number, or "blur" (the image blurred with a
    Gaussian of sigma patch/4). target: a class index (default: the top-1) or
    (layer name, channel), scored by the channel's summed ("sum") or maximum
    ("max") activation (`reduce`). batch: positions per batch. progress:
    called as progress(done, total, heatmap) after each batch; returning
    False stops the run, as does setting the threading.Event `cancel`.
    threads: the model's team size unless given; mode="incremental" runs that
    many batches at once, one kernel thread each (progress still comes in
    order; a cancel waits for the batches already started).

    mode="approximate" (approximate.py): budget -- the share of the
    network's multiply-adds per position computed exactly (the rest to
    first order); checks -- positions recomputed exactly at random to
    measure the error (result.error: max/mean absolute error and rank
    correlation there; 0: not measured); cap -- instead, Krypton's
    threshold: every changed window capped at cap x its map (1: exact).
    """
    t_start = time.perf_counter()
    x = _image(model, image)
    patch, stride = _positive_int(patch, "patch"), _positive_int(stride, "stride")
    _, c, h, w = x.shape
    if patch > min(h, w):
        raise ShapeError(f"occlusion: patch {patch} is larger than the image ({h}x{w})")
    if mode not in MODES:
        raise InputError(f"occlusion: unknown mode {mode!r} (choose from {', '.join(MODES)})")
    if cap is not None and not (isinstance(cap, (int, float)) and 0 < cap <= 1):
        raise InputError(f"occlusion: cap must be in (0, 1], got {cap!r}")
    if not (isinstance(budget, (int, float)) and 0 < budget <= 1):
        raise InputError(f"occlusion: budget must be in (0, 1], got {budget!r}")
    checks = _positive_int(checks, "checks", zero=True)
    fill_at = _filler(x, fill, patch)
    ys, xs = list(range(0, h - patch + 1, stride)), list(range(0, w - patch + 1, stride))
    boxes = [Box(y, y + patch, x0, x0 + patch) for y in ys for x0 in xs]
    batch = _positive_int(batch, "batch") if batch is not None else _default_batch(mode, len(xs))
    scorer = _Scorer(model, x, target, reduce)
    with _common.threads_scope(model.threads if threads is None else _common.resolve_threads(threads)):
        # the incremental setup runs the clean image once, keeping every
        # value: the baseline is read from that run, not run again
        t0 = time.perf_counter()
        if mode == "approximate":
            run = scorer.incremental(cap) if cap is not None else approximate.Linearised(scorer, boxes, budget)
        else:
            run = scorer.naive if mode == "naive" else scorer.incremental(None)
        timings = {"setup_s": time.perf_counter() - t0}
        if mode == "approximate":
            timings["approximate"] = {"scheme": "cap", "cap": cap} if cap is not None else run.info
        t0 = time.perf_counter()
        baseline = scorer.baseline()
        timings["baseline_s"] = time.perf_counter() - t0
        heat = np.full(len(boxes), np.nan, np.float32)
        t0 = time.perf_counter()
        cancelled = False
        parts = [boxes[start:start + batch] for start in range(0, len(boxes), batch)]
        workers = _workers(mode, model.threads if threads is None else threads, len(parts))
        timings["workers"] = workers
        start = 0
        for part, values in _in_order(run, parts, fill_at, workers):
            heat[start:start + len(part)] = baseline - values
            start += len(part)
            view = heat.reshape(len(ys), len(xs))
            if (cancel is not None and cancel.is_set()) or \
                    (progress is not None and progress(start, len(boxes), view) is False):
                cancelled = start < len(boxes)
                break
        timings["positions"] = int(np.isfinite(heat).sum())
        timings["positions_s"] = time.perf_counter() - t0
        timings["ms_per_position"] = 1e3 * timings["positions_s"] / max(1, timings["positions"])
        error = None
        if mode == "approximate" and not cancelled:
            t0 = time.perf_counter()
            error = approximate.spot_check(scorer, boxes, heat, baseline, fill_at, checks,
                                           exact=getattr(run, "exact", None))
            timings["check_s"] = time.perf_counter() - t0
    return OcclusionResult(heat.reshape(len(ys), len(xs)), scorer.target, float(baseline), patch, stride, mode,
                           time.perf_counter() - t_start, timings, error, cancelled)


def _workers(mode, threads, count):
    """Batches run at once, each by one thread (incremental mode): a batch's
    layers are many small kernel calls whose teams would meet at a barrier
    per call, so the threads take whole batches instead."""
    if mode != "incremental" or count < 2:
        return 1
    team = _common.resolve_threads(threads) or num_cores()
    return max(1, min(team, num_cores(), count))      # more than the cores: only more batches in memory


def _in_order(run, parts, fill_at, workers):
    """(part, run(part, fill_at)) for each part, in order; with workers > 1
    the parts after the first run ahead on a pool, one kernel thread each
    (the first runs alone on the whole team: the app shows it sooner).
    Closing the generator (a cancel) waits for the parts already started."""
    if workers <= 1 or len(parts) < 2:
        for part in parts:
            yield part, run(part, fill_at)
        return
    yield parts[0], run(parts[0], fill_at)
    parts = parts[1:]

    def one(part):
        with _common.threads_scope(1):
            return run(part, fill_at)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="occlusion")
    try:
        pending = deque(pool.submit(one, part) for part in parts[:workers])
        ahead = workers
        for part in parts:
            values = pending.popleft().result()
            if ahead < len(parts):
                pending.append(pool.submit(one, parts[ahead]))
                ahead += 1
            yield part, values
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _default_batch(mode, per_row):
    """Positions per batch: 8 images for naive; for the window modes whole
    rows of positions (at least 8, at most 64 positions), since a batch's
    windows grow to a common size and the positions of one row share the
    rows of each map they change."""
    if mode == "naive":
        return 8
    if mode == "approximate":
        return 64       # small windows: bigger batches amortise each window run
    return min(64, per_row * max(1, 8 // per_row))


class _Scorer:
    """The target on batches of occluded images, by either route."""

    def __init__(self, model, x, target, reduce):
        self.model, self.x = model, x
        if reduce not in ("sum", "max"):
            raise InputError(f"occlusion: reduce must be 'sum' or 'max', got {reduce!r}")
        self.reduce = reduce
        self.input = model.inputs[0].name
        if len(model.inputs) != 1:
            raise InputError(f"occlusion: the model has {len(model.inputs)} inputs; it needs one image input")
        self.unit = None
        if isinstance(target, (tuple, list)):
            if len(target) != 2:
                raise InputError(f"occlusion: a unit target is (layer, channel), got {target!r}")
            layer, channel = target
            (value,) = model._layer_values([layer]).values()
            self.unit = (layer, _positive_int(channel, "channel", zero=True), value)
            self.target = (layer, self.unit[1])
        elif target is not None and not isinstance(target, (int, np.integer)):
            raise InputError(f"occlusion: target must be a class index or (layer, channel), got {target!r}")
        self.target = self.target if self.unit else (None if target is None else int(target))
        self.clean_out = None        # the class output of the clean image, once a clean run made it

    def baseline(self):
        if self.unit:
            _, acts = self.model.run(self.x, capture=[self.unit[0]])
            fmap = acts[self.unit[0]]
            if fmap.ndim != 4 or self.unit[1] >= fmap.shape[1]:
                raise InputError(f"occlusion: layer {self.unit[0]!r} has output {fmap.shape}; channel "
                                 f"{self.unit[1]} is not one of its channels")
            return float(self._unit_score(fmap[:, self.unit[1]])[0])
        out = self.clean_out if self.clean_out is not None else self._output(self.model.run(self.x))
        probs = _probabilities(out)
        if self.target is None:
            self.target = int(np.argmax(probs[0]))
        if not 0 <= self.target < probs.shape[1]:
            raise InputError(f"occlusion: class {self.target} out of range (the model has {probs.shape[1]} classes)")
        return float(probs[0, self.target])

    def _unit_score(self, ch):
        """The unit target of channel maps (N, H, W)."""
        return ch.sum(axis=(1, 2), dtype=np.float64) if self.reduce == "sum" else ch.max(axis=(1, 2))

    def _output(self, out):
        return next(iter(out.values())) if isinstance(out, dict) else out

    def _score(self, out):
        return _probabilities(out)[:, self.target]

    def _images(self, boxes, fill_at):
        xb = np.repeat(self.x, len(boxes), axis=0)
        for j, box in enumerate(boxes):
            xb[j:j + 1][box.slices()] = fill_at(box)
        return xb

    def naive(self, boxes, fill_at):
        xb = self._images(boxes, fill_at)
        if self.unit:
            _, acts = self.model.run(xb, capture=[self.unit[0]])
            return self._unit_score(acts[self.unit[0]][:, self.unit[1]])
        return self._score(self._output(self.model.run(xb)))

    def incremental(self, cap):
        """run(boxes, fill_at) on windows; cap: None (exact) or approximate.capped's threshold."""
        model = self.model
        feeds = {self.input: self.x}
        value = self.unit[2] if self.unit else model.outputs[0].name
        executor = model._exec
        plan = executor.plan_for(feeds)
        made = {o for st in plan.steps for o in st.node.outputs}
        twin = None
        if value not in made:
            if value in plan.blocked:
                twin = plan.blocked[value]
            else:
                executor = model._exec_unfused
        limit = None if cap is None else (lambda boxes, shape, centres: approximate.capped(boxes, shape, cap, centres))
        engine = Incremental(executor, feeds, [twin or value], limit)
        if not self.unit and value in engine.clean:
            self.clean_out = engine.clean[value]

        def run(boxes, fill_at):
            windows = [(box, fill_at(box)) for box in boxes]
            state = engine.run(self.input, windows)     # batches may run concurrently (_in_order)
            outs = np.concatenate([engine.gather(state, twin or value, b, None) for b in range(len(boxes))])
            if self.unit:
                ch = self.unit[1]     # a blocked twin holds channel ch at [block, ..., lane]
                return self._unit_score(outs[:, ch // 8, :, :, ch % 8] if twin else outs[:, ch])
            return self._score(outs)
        return run


def _probabilities(out):
    """Softmax of logits; outputs that already are probabilities are kept."""
    out = np.asarray(out, np.float64).reshape(out.shape[0], -1)
    if np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        return out
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _image(model, image):
    if isinstance(image, np.ndarray):
        x = image
    else:
        from ..preprocess import load_image
        x = load_image(image, model.preprocess)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"occlusion: image must be one preprocessed image (1, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise InputError(f"occlusion: image dtype {x.dtype}, expected float32")
    return np.ascontiguousarray(x, dtype=np.float32)


def _positive_int(v, name, zero=False):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if zero else 1):
        raise InputError(f"occlusion: {name} must be a {'non-negative' if zero else 'positive'} integer, "
                         f"got {v!r}")
    return int(v)


FILLS = ("mean", "zero", "blur")


def parse_fill(fill):
    """A fill as occlusion() takes it: one of FILLS, or a finite number (also as text).
    Raises InputError otherwise; the CLI and the app check their input with it."""
    if isinstance(fill, str):
        if fill in FILLS:
            return fill
        try:
            fill = float(fill)
        except ValueError:
            raise InputError(f"occlusion: fill must be mean, zero, blur or a number, got {fill!r}") from None
    if isinstance(fill, bool) or not isinstance(fill, (int, float, np.floating, np.integer)) or \
            not np.isfinite(fill):
        raise InputError(f"occlusion: fill must be mean, zero, blur or a finite number, got {fill!r}")
    return float(fill)


def _filler(x, fill, patch):
    """fill_at(box) -> the occluded window (1, C, rows, cols) of x."""
    c = x.shape[1]
    fill = parse_fill(fill)
    if fill == "blur":
        blurred = _blur(x, patch / 4.0)
        return lambda box: blurred[box.slices()]
    if fill == "mean":
        value = x.mean(axis=(2, 3), dtype=np.float64).astype(np.float32).reshape(1, c, 1, 1)
    elif fill == "zero":
        value = np.zeros((1, c, 1, 1), np.float32)
    else:
        value = np.full((1, c, 1, 1), fill, np.float32)
    return lambda box: np.broadcast_to(value, (1, c, box.rows, box.cols)).copy()


def _blur(x, sigma):
    """Separable Gaussian blur of every channel (edge pixels repeated past the border)."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    y = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (r, r), (r, r)), mode="edge")
    y = sum(k[i] * y[:, :, i:i + x.shape[2], :] for i in range(2 * r + 1))
    y = sum(k[i] * y[:, :, :, i:i + x.shape[3]] for i in range(2 * r + 1))
    return y.astype(np.float32)


__all__ = ["occlusion", "OcclusionResult", "MODES", "FILLS", "parse_fill"]
