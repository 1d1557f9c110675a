"""Approximate occlusion: an exact local head and a linearised tail.

A patch changes a small window of the early layers; the windows grow
layer by layer until they cover whole maps, and from there on every
position costs a full forward pass of the rest of the network -- most of
what incremental (exact) mode still pays. This scheme stops the exact
computation at a *cut*: a value every path from the image to the target
passes through (a residual block's output, say), chosen as the latest
one whose windows cost at most `budget` of the network's multiply-adds
per position. Up to the cut each position runs exactly, on windows
(incremental.Incremental), each window cut to at most max(7, 0.32 x its
map) on a side around the patch (HEAD_CAP; Krypton's projective-field
threshold, applied to the head only): the ring past it carries little of
the change, so the same multiply-adds reach a later cut. Past the cut the
change is carried to the target to first order: one backward pass on the
clean image (vjp.py) gives the gradient g of the target's log-probability
(a unit's activation for unit targets) at the cut, and a position whose
cut value changed by d inside its window scores

    log p(occluded) ~= log p(clean) + <g, d>,

a dot product over the window. Linearising log p rather than p keeps the
estimate a probability; the map's ranking is the same either way.

How far the result is from exact is measured, not assumed:
spot_check() recomputes a few positions drawn at random exactly -- the
head's engine run on, uncapped, to the target: incremental mode's
computation, naive's result to float rounding (naive itself where the fused
plan folds a unit target away) -- and reports the largest and mean absolute
error there, the rank correlation between the two on them, and how it was
estimated (OcclusionResult.error).

`cap` selects the older scheme instead (Krypton's projective-field
threshold): every changed window capped at cap x its map around the patch,
clean values outside it; cap 1 is exact.
"""
import copy
import functools
import itertools

import numpy as np

from ..errors import InputError
from ..ops.base import FULL, Box
from . import vjp
from .incremental import ChangeMaps, Incremental, _needed_steps, step_macs


DEFAULT_BUDGET = 0.06    # per position, of the network's multiply-adds, for the exact head
DEFAULT_CHECKS = 16      # positions checked exactly
# the head's windows at most max(7, 0.32 x the map) on a side: on ResNet-18 the ring past that
# (28x28 maps: 14 -> 9 cells) moves the map's rank correlation by ~0.001 and costs ~30% of the head
HEAD_CAP = (0.32, 7)


class Linearised:
    """run(boxes, fill_at) -> the target's approximate value per position."""

    def __init__(self, scorer, boxes, budget=DEFAULT_BUDGET, cut=None, head_cap=HEAD_CAP):
        """cut: a value of the plain graph to cut at instead of the budget's
        choice (for measurements and tests). head_cap: (share, cells) -- each
        window of the head at most max(cells, share x its map) on a side
        around its patch (None: the whole projective field)."""
        model = scorer.model
        feeds = {scorer.input: scorer.x}
        self.scorer, self.input = scorer, scorer.input
        plain, fused = model._exec_unfused, model._exec
        # the plain run the backward pass reads (its first run also makes its plan)
        values = plain.run(feeds, keep=[o for n in plain.graph.nodes for o in n.outputs if o])
        values.update(feeds)
        pplan, fplan = plain.plan_for(feeds), fused.plan_for(feeds)
        target = scorer.unit[2] if scorer.unit else model.outputs[0].name
        if not scorer.unit:
            scorer.clean_out = values[target]       # the baseline (and the default class) from this run
            scorer.baseline()
        # cuts as the plain graph names them, and their values in the fused plan
        made = {o for st in fplan.steps for o in st.node.outputs if o}
        cuts = [(c, c if c in made else fplan.blocked.get(c)) for c in vjp.cuts(pplan, self.input, target)
                if len(pplan.shapes[c]) == 4]
        cuts = [(c, v) for c, v in cuts if v in made]
        runner = fused.regions(feeds)
        # the geometry depends on the plan alone: kept with its runner across calls, as Incremental does
        maps = runner.cache.get("change_maps") or runner.cache.setdefault("change_maps", ChangeMaps(runner))
        fused_target = target if target in made else fplan.blocked.get(target)
        full = sum(step_macs(fplan, k) for k in _needed_steps(fplan, [fused_target] if fused_target in made else
                                                               [o.name for o in fplan.graph.outputs]))
        sample = [boxes[i] for i in np.linspace(0, len(boxes) - 1, min(len(boxes), 25)).astype(int)]
        self.cut, self.share, grad = None, 1.0, None
        if cut is not None:
            if cut not in dict(cuts):
                raise InputError(f"occlusion: {cut!r} is not a value every path to the target passes through")
            cuts = cuts[:[c for c, _ in cuts].index(cut) + 1]
            budget = 1.0
        limit = None if head_cap is None else functools.partial(_cap_head, *head_cap)
        # shares depend on the plan, the patches and the cap alone: kept with the runner across calls
        memo = runner.cache.setdefault(("approximate_shares", tuple(sample), head_cap), {})
        within = list(itertools.takewhile(lambda w: w[2] <= budget, _shares(fplan, maps, cuts, sample, limit,
                                                                                full, memo)))
        within = [w for w in within if cut is None or w[0] == cut]
        if within:
            self.base, seed = _seed(scorer, values[target])
            # the latest cut within the budget that a backward pass reaches
            for cut, value, share in reversed(within):
                try:
                    grad = vjp.backward(pplan, values, target, seed, cut)
                except vjp.NotLinearisable:
                    continue
                self.cut, self.value, self.share = cut, value, share
                break
        self.info = {"scheme": "linearised tail", "cut": self.cut, "exact_share": round(self.share, 4),
                     "head_cap": None if head_cap is None else list(head_cap)}
        if self.cut is None:
            self.info.update(scheme="exact (no cut within the budget that a backward pass reaches)", head_cap=None)
            self.fallback = scorer.incremental(None)
            return
        self.fallback = None
        self.engine = Incremental(fused, feeds, [self.value], limit)
        self.grad = _like(grad.astype(np.float32), self.engine.clean[self.value].shape)
        # the spot checks' exact route: this engine run on past the cut to the target
        self.target_value = fused_target if fused_target in made else None

    def exact(self, boxes, fill_at):
        """The target at `boxes` computed exactly, as incremental mode does
        (naive's result to float rounding), by running the head's engine on
        to the target; None where that engine does not make the target (a
        unit whose layer the fused plan folds away): the caller runs naive."""
        if self.fallback is not None:
            return self.fallback(boxes, fill_at)
        if self.target_value is None:
            return None
        whole = copy.copy(self.engine)       # shares the clean run, the geometry and the kernels
        whole.steps, whole.limit = _needed_steps(whole.plan, [self.target_value]), None
        state = whole.run(self.input, [(box, fill_at(box)) for box in boxes])
        outs = np.concatenate([whole.gather(state, self.target_value, b, None) for b in range(len(boxes))])
        if not self.scorer.unit:
            return self.scorer._score(outs)
        ch = self.scorer.unit[1]      # a blocked value holds channel ch at [block, ..., lane]
        return self.scorer._unit_score(outs[:, ch // outs.shape[4], :, :, ch % outs.shape[4]]
                                       if outs.ndim == 5 else outs[:, ch])

    def __call__(self, boxes, fill_at):
        if self.fallback is not None:
            return self.fallback(boxes, fill_at)
        state = self.engine.run(self.input, [(box, fill_at(box)) for box in boxes])
        clean, got = self.engine.clean[self.value], state.get(self.value, {})
        est = np.zeros(len(boxes))
        for b in range(len(boxes)):
            if b not in got:
                continue
            cbox, arr = got[b]
            sl = (slice(None),) * 4 if cbox is None else cbox.slices()
            est[b] = float(np.vdot(self.grad[sl], arr - clean[sl]))
        if self.scorer.unit:
            return self.base + est
        return np.minimum(1.0, self.base * np.exp(est))


def _seed(scorer, out):
    """(target's clean value, d target / d out): the gradient of log p_t for a
    class (p_t from the output's softmax, or the output itself when it
    already is probabilities), of the channel's sum or max for a unit."""
    from . import _probabilities   # noqa: PLC0415 (the package imports this module)
    if scorer.unit:
        ch = out[0, scorer.unit[1]].astype(np.float64)
        seed = np.zeros(out.shape)
        if scorer.reduce == "sum":
            seed[0, scorer.unit[1]] = 1.0
            return float(ch.sum()), seed
        i = np.unravel_index(int(np.argmax(ch)), ch.shape)
        seed[(0, scorer.unit[1]) + i] = 1.0
        return float(ch.max()), seed
    flat = np.asarray(out, np.float64).reshape(1, -1)
    probs = _probabilities(flat)
    t = scorer.target
    if np.all(flat >= 0) and np.allclose(flat.sum(), 1.0, atol=1e-3):   # as _probabilities: kept as given
        # d log y_t / d y = e_t / y_t
        seed = np.zeros_like(flat)
        seed[0, t] = 1.0 / max(flat[0, t], 1e-30)
    else:                  # logits: d log softmax_t / d z = e_t - p
        seed = -probs
        seed[0, t] += 1.0
    return float(probs[0, t]), seed.reshape(out.shape)


def _like(grad, shape):
    """The gradient (1, C, H, W) in the engine's layout of the cut: plain, or
    blocked (1, C/B, H, W, B) with zero lanes past C."""
    if grad.shape == tuple(shape):
        return grad
    _, cb, h, w, blk = shape
    padded = np.zeros((1, cb * blk, h, w), np.float32)
    padded[:, :grad.shape[1]] = grad
    return np.ascontiguousarray(padded.reshape(1, cb, blk, h, w).transpose(0, 1, 3, 4, 2))


def _shares(plan, maps, cuts, sample, limit, full, memo):
    """(cut, value, share) per cut, in plan order: the share of the network's
    multiply-adds its exact head costs per position (averaged over `sample`,
    windows as the patch reaches them, capped by `limit`); it only grows
    along the plan. memo: value -> share, from earlier calls."""
    x = plan.graph.inputs[0].name
    h, w = plan.shapes[x][2:4]
    for cut, value in cuts:
        if value in memo:
            yield cut, value, memo[value]
            continue
        steps = _needed_steps(plan, [value])
        total = 0
        for box in sample:
            centre = [((box.y0 + box.y1) / 2 / h, (box.x0 + box.x1) / 2 / w)]
            total += _head_macs(plan, maps, steps, box, centre, limit)
        memo[value] = total / max(1, len(sample)) / max(1, full)
        yield cut, value, memo[value]


def _head_macs(plan, maps, steps, box, centre, limit):
    """Multiply-adds of `steps` over the windows one patch at `box` changes,
    each clipped to its map and passed through `limit` as Incremental does."""
    reach = {plan.graph.inputs[0].name: box}
    total = 0
    for k in steps:
        node = plan.steps[k].node
        got = [(i, reach[v]) for i, v in enumerate(node.inputs) if v in reach]
        if not got:
            continue
        shape = plan.shapes[node.outputs[0]]
        r = None
        for i, b in got:
            b = FULL if b is FULL else maps.reach(k, i, b)
            if b is FULL:
                r = FULL
                break
            r = b if r is None else r.union(b)
        if r is FULL or len(shape) < 4 or r.covers(shape):
            total += step_macs(plan, k)
            reach.update((o, FULL) for o in node.outputs if o)
            continue
        r = r.clip(shape)
        if limit is not None:
            r = limit({0: r}, shape, centre)[0]
        total += step_macs(plan, k, r)
        reach.update((o, r) for o in node.outputs if o)
    return total


def _cap_head(share, cells, boxes, shape, centres):
    """The head's windows (Incremental's `limit` hook): at most
    max(cells, share x the map) on a side, around the patch's centre."""
    rows, cols = max(cells, int(np.ceil(share * shape[2]))), max(cells, int(np.ceil(share * shape[3])))
    return _limit(boxes, rows, cols, shape, centres)


def capped(boxes, shape, cap, centres):
    """Each window limited to cap x the map's size around its patch's centre
    (Krypton's threshold): the `limit` hook of Incremental for the cap scheme."""
    rows, cols = max(1, int(np.ceil(cap * shape[2]))), max(1, int(np.ceil(cap * shape[3])))
    return _limit(boxes, rows, cols, shape, centres)


def _limit(boxes, rows, cols, shape, centres):
    """Each window cut to at most rows x cols around its patch's centre."""
    out = {}
    for b, box in boxes.items():
        if box.rows <= rows and box.cols <= cols:
            out[b] = box
            continue
        cy, cx = centres[b][0] * shape[2], centres[b][1] * shape[3]
        y0 = int(min(max(box.y0, round(cy - rows / 2)), max(box.y0, box.y1 - rows)))
        x0 = int(min(max(box.x0, round(cx - cols / 2)), max(box.x0, box.x1 - cols)))
        out[b] = Box(y0, min(box.y1, y0 + rows), x0, min(box.x1, x0 + cols))
    return out


def spot_check(scorer, boxes, heat, baseline, fill_at, count=DEFAULT_CHECKS, seed=0, exact=None):
    """The approximate map against the exact one on `count` positions drawn
    uniformly at random (fixed seed): max and mean absolute error and, with 4
    or more, the Spearman rank correlation between the two there. exact:
    run(boxes, fill_at) -> the target exactly (Linearised.exact: incremental
    mode's computation), or None -> naive mode's (each position a full inference)."""
    done = np.flatnonzero(np.isfinite(heat))
    if count <= 0 or not len(done):
        return None
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(done, size=min(count, len(done)), replace=False))
    picked = [boxes[i] for i in pick]
    got = None if exact is None else exact(picked, fill_at)
    reference = "incremental" if got is not None else "naive"
    if got is None:
        got = np.concatenate([scorer.naive([boxes[i] for i in part], fill_at)
                              for part in np.array_split(pick, -(-len(pick) // 16))])
    truth = baseline - np.asarray(got, np.float64)
    approx = heat[pick].astype(np.float64)
    diff = np.abs(truth - approx)
    out = {"sampled_positions": len(pick), "positions": [int(i) for i in pick],
           "max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean()),
           "rank_corr": None, "reference": reference,
           "estimated": f"on {len(pick)} of {len(done)} positions drawn uniformly at random, recomputed "
                        f"exactly by {reference} mode"}
    if len(pick) >= 4:
        out["rank_corr"] = _spearman(approx, truth)
    return out


def _spearman(a, b):
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 1.0 if np.array_equal(ra, rb) else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(a):
    """Ranks with ties given their mean rank."""
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a))
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


__all__ = ["Linearised", "capped", "spot_check", "DEFAULT_BUDGET", "DEFAULT_CHECKS"]
