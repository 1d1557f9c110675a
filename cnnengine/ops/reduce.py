"""Reductions: ReduceMean/Sum/Max/Min/Prod/L2/SumSquare, ArgMax/ArgMin."""
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from . import register
from ._common import axis_index, const_input, ints, opt_ints
from .base import FULL, OpDef

_REDUCE = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min,
           "ReduceProd": np.prod}


@dataclass(frozen=True)
class ReduceParams:
    kind: str
    axes: tuple = None          # None: from the axes input (opset 18; ReduceSum from 13), or all
    keepdims: bool = True
    noop_with_empty_axes: bool = False


def _axes(p, axes_input, rank):
    """The reduced axes, or None for the no-op of empty axes with noop_with_empty_axes."""
    axes = p.axes
    if axes is None and axes_input is not None:
        axes = ints(axes_input)
    if not axes:
        return None if p.noop_with_empty_axes else tuple(range(rank))
    return tuple(axis_index(a, rank) for a in axes)


@register
class Reduce(OpDef):
    """Over spatial axes a reduction reads the whole map (FULL, the default)."""
    types = tuple(_REDUCE) + ("ReduceL2", "ReduceSumSquare")
    Params = ReduceParams
    inputs = ("x", "axes")

    def parse(self, node):
        a = node.attrs
        return ReduceParams(node.op, opt_ints(a.get("axes")), bool(a.get("keepdims", 1)),
                            bool(a.get("noop_with_empty_axes", 0)))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axes_in = None if p.axes is not None else const_input(in_shapes, consts, 1, "axes")
        axes = _axes(p, axes_in, len(x))
        if axes is None:
            return [x]
        if p.keepdims:
            return [tuple(1 if i in axes else d for i, d in enumerate(x))]
        return [tuple(d for i, d in enumerate(x) if i not in axes)]

    def reference(self, p, ins):
        x = ins[0]
        axes = _axes(p, ins[1] if len(ins) > 1 else None, x.ndim)
        if axes is None:
            return [x]
        keep = p.keepdims
        if p.kind == "ReduceMean" and x.dtype == np.float32 and x.ndim == 4 and axes == (2, 3):
            y = F.global_avg_pool2d(x)
            return [y if keep else y.reshape(x.shape[:2])]
        if p.kind == "ReduceL2":
            y = np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=axes, keepdims=keep))
        elif p.kind == "ReduceSumSquare":
            y = np.sum(np.square(x, dtype=np.float64), axis=axes, keepdims=keep)
        elif p.kind in ("ReduceMax", "ReduceMin") and x.size == 0:
            # The empty set reduces to the identity of max / min.
            lo, hi = (False, True) if x.dtype == np.bool_ else \
                ((-np.inf, np.inf) if x.dtype.kind == "f" else (np.iinfo(x.dtype).min, np.iinfo(x.dtype).max))
            y = _REDUCE[p.kind](x, axis=axes, keepdims=keep, initial=lo if p.kind == "ReduceMax" else hi)
        else:
            y = _REDUCE[p.kind](x, axis=axes, keepdims=keep)
        return [np.asarray(y).astype(x.dtype, copy=False)]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        # over non-spatial axes only (a mean over channels) a reduction is per-pixel
        consts = consts or {}
        x, full = in_shapes[0], [FULL] * len(in_shapes)
        known = p.axes is not None or len(in_shapes) < 2 or in_shapes[1] is None or 1 in consts
        if len(x) != 4 or not p.keepdims or not known:
            return full
        axes = _axes(p, consts.get(1) if p.axes is None else None, 4)
        if axes is not None and set(axes) & {2, 3}:
            return full
        return [out_box] + full[1:]

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return p if in_boxes[0] is not FULL else None


@register
class ArgMax(OpDef):
    types = ("ArgMax", "ArgMin")

    @dataclass(frozen=True)
    class Params:
        kind: str
        axis: int = 0
        keepdims: bool = True
        select_last_index: bool = False

    def parse(self, node):
        a = node.attrs
        return self.Params(node.op, int(a.get("axis", 0)), bool(a.get("keepdims", 1)),
                           bool(a.get("select_last_index", 0)))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axis = axis_index(p.axis, len(x))
        return [x[:axis] + (1,) * p.keepdims + x[axis + 1:]]

    def reference(self, p, ins):
        x = ins[0]
        axis = axis_index(p.axis, x.ndim)
        fn = np.argmax if p.kind == "ArgMax" else np.argmin
        if p.select_last_index:
            y = x.shape[axis] - 1 - fn(np.flip(x, axis=axis), axis=axis)
        else:
            y = fn(x, axis=axis)
        if p.keepdims:
            y = np.expand_dims(y, axis)
        return [y.astype(np.int64)]
