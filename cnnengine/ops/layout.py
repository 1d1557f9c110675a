"""Layout ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split,
Slice, Gather, DepthToSpace / SpaceToDepth, Expand, Tile."""
import math
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from ._common import axis_index, check_2d, check_size, const_input, contig, dummy, given, ints, opset, opt_ints
from .base import FULL, Box, OpDef, PerPixel, pixel_windowable, unsupported


@register
class Reshape(OpDef):
    types = ("Reshape",)
    inputs = ("x", "shape")

    @dataclass(frozen=True)
    class Params:
        allowzero: bool = False

    def parse(self, node):
        return self.Params(bool(node.attrs.get("allowzero", 0)))

    def _target(self, p, x_shape, shape):
        shape = list(ints(shape))
        if not p.allowzero:
            shape = [x_shape[i] if s == 0 and i < len(x_shape) else s for i, s in enumerate(shape)]
        return shape

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        shape = self._target(p, x, const_input(in_shapes, consts, 1, "shape"))
        known = math.prod(d for d in shape if d != -1)
        size = math.prod(x)
        fits = (known > 0 and size % known == 0) if -1 in shape else size == known
        if shape.count(-1) > 1 or any(d < -1 for d in shape) or not fits:
            raise ShapeError(f"cannot reshape {x} to {shape}")
        return [tuple(math.prod(x) // known if d == -1 else d for d in shape)]

    def reference(self, p, ins):
        x = ins[0]
        shape = self._target(p, x.shape, ins[1])
        try:
            return [x.reshape(shape)]
        except ValueError:
            raise ShapeError(f"cannot reshape {x.shape} to {shape}") from None


@register
class Flatten(OpDef):
    types = ("Flatten",)

    @dataclass(frozen=True)
    class Params:
        axis: int = 1

    def parse(self, node):
        return self.Params(int(node.attrs.get("axis", 1)))

    def _axis(self, p, rank):
        if not -rank <= p.axis <= rank:
            raise ShapeError(f"axis {p.axis} is out of range for rank {rank}")
        return p.axis + rank if p.axis < 0 else p.axis

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axis = self._axis(p, len(x))
        return [(math.prod(x[:axis]), math.prod(x[axis:]))]

    def reference(self, p, ins):
        x = ins[0]
        axis = self._axis(p, x.ndim)
        # math.prod, not np.prod: a NumPy reduction right after the kernels pays
        # 70-90 us on this machine (measured; the cause is inside NumPy)
        return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@register
class Transpose(OpDef):
    types = ("Transpose",)

    @dataclass(frozen=True)
    class Params:
        perm: tuple = None    # None: reverse the axes

    def parse(self, node):
        return self.Params(opt_ints(node.attrs.get("perm")))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        perm = p.perm if p.perm is not None else tuple(reversed(range(len(x))))
        if sorted(perm) != list(range(len(x))):
            raise ShapeError(f"perm {list(perm)} does not fit rank {len(x)}")
        return [tuple(x[i] for i in perm)]

    def reference(self, p, ins):
        return [contig(np.transpose(ins[0], p.perm))]


@dataclass(frozen=True)
class AxesParams:
    axes: tuple = None    # None: from the axes input (opset 13)


def _axes_of(p, ins_or_value):
    return p.axes if p.axes is not None else (None if ins_or_value is None else ints(ins_or_value))


@register
class Squeeze(OpDef):
    types = ("Squeeze",)
    Params = AxesParams
    inputs = ("x", "axes")

    def parse(self, node):
        return AxesParams(opt_ints(node.attrs.get("axes")))

    def _axes(self, x_shape, axes):
        if axes is None:
            return tuple(i for i, d in enumerate(x_shape) if d == 1)
        axes = tuple(axis_index(a, len(x_shape)) for a in axes)
        for a in axes:
            if x_shape[a] != 1:
                raise ShapeError(f"axis {a} has size {x_shape[a]}, not 1")
        return axes

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axes = self._axes(x, _axes_of(p, None if p.axes is not None else const_input(in_shapes, consts, 1, "axes")))
        return [tuple(d for i, d in enumerate(x) if i not in axes)]

    def reference(self, p, ins):
        x = ins[0]
        axes = _axes_of(p, ins[1] if given(ins, 1) else None)
        if axes is None:
            return [np.squeeze(x)]
        return [np.squeeze(x, axis=self._axes(x.shape, axes))]


@register
class Unsqueeze(OpDef):
    types = ("Unsqueeze",)
    Params = AxesParams
    inputs = ("x", "axes")

    def parse(self, node):
        return AxesParams(opt_ints(node.attrs.get("axes")))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axes = p.axes if p.axes is not None else ints(const_input(in_shapes, consts, 1, "axes"))
        rank = len(x) + len(axes)
        axes = sorted(axis_index(a, rank) for a in axes)
        y = list(x)
        for a in axes:
            y.insert(a, 1)
        return [tuple(y)]

    def reference(self, p, ins):
        x = ins[0]
        axes = _axes_of(p, ins[1] if given(ins, 1) else None)
        rank = x.ndim + len(axes)
        y = x
        for a in sorted(axis_index(a, rank) for a in axes):
            y = np.expand_dims(y, a)
        return [y]


@register
class Concat(PerPixel):
    """Per-pixel along channels (or batch); along a spatial axis it reads whole maps."""
    types = ("Concat",)
    inputs = ("x*",)

    @dataclass(frozen=True)
    class Params:
        axis: int = 1

    def parse(self, node):
        return self.Params(int(node.attrs.get("axis", 1)))

    def infer(self, p, in_shapes, consts):
        xs = [tuple(s) for s in in_shapes if s is not None]
        axis = axis_index(p.axis, len(xs[0]))
        for s in xs[1:]:
            if len(s) != len(xs[0]) or any(a != b for i, (a, b) in enumerate(zip(s, xs[0])) if i != axis):
                raise ShapeError(f"shapes {xs} differ off axis {axis}")
        return [xs[0][:axis] + (sum(s[axis] for s in xs),) + xs[0][axis + 1:]]

    def reference(self, p, ins):
        xs = [x for x in ins if x is not None]
        axis = axis_index(p.axis, xs[0].ndim)
        if all(x.dtype == np.float32 for x in xs):
            return [F.concat(xs, axis=axis)]
        try:
            return [np.concatenate(xs, axis=axis)]
        except ValueError as exc:
            raise ShapeError(str(exc)) from None

    def _spatial(self, p, out_shape):
        return len(out_shape) >= 4 and axis_index(p.axis, len(out_shape)) in (2, 3)

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        if self._spatial(p, out_shape):
            return [FULL] * len(in_shapes)
        return super().region(p, in_shapes, out_shape, out_box, consts)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        rank = max(len(s) for s in in_shapes if s is not None)
        if self._spatial(p, (0,) * rank):
            return None
        return p if pixel_windowable(in_shapes, in_boxes) else None


@register
class Split(OpDef):
    """Per-pixel when it splits channels."""
    types = ("Split",)
    inputs = ("x", "split")

    @dataclass(frozen=True)
    class Params:
        axis: int = 0
        split: tuple = None    # None: from the split input, or equal parts
        num_outputs: int = 1

    def parse(self, node):
        a = node.attrs
        return self.Params(int(a.get("axis", 0)), opt_ints(a.get("split")), len(node.outputs))

    def _sizes(self, p, dim, split):
        sizes = p.split if p.split is not None else (None if split is None else ints(split))
        if sizes is None:
            step = -(-dim // p.num_outputs)
            sizes = [min(step, dim - i * step) for i in range(p.num_outputs)]
        if sum(sizes) != dim:
            raise ShapeError(f"sizes {list(sizes)} do not add up to {dim}")
        return sizes

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axis = axis_index(p.axis, len(x))
        split = None if p.split is not None else const_input(in_shapes, consts, 1, "split")
        return [x[:axis] + (s,) + x[axis + 1:] for s in self._sizes(p, x[axis], split)]

    def reference(self, p, ins):
        x = ins[0]
        axis = axis_index(p.axis, x.ndim)
        sizes = self._sizes(p, x.shape[axis], ins[1] if given(ins, 1) else None)
        bounds = np.cumsum(sizes)[:-1]
        return [contig(part) for part in np.split(x, bounds, axis=axis)]

    def _per_pixel(self, p, shape):
        return len(shape) >= 4 and axis_index(p.axis, len(shape)) not in (2, 3)

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        if self._per_pixel(p, in_shapes[0]):
            return [out_box] + [FULL] * (len(in_shapes) - 1)
        return [FULL] * len(in_shapes)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return p if self._per_pixel(p, in_shapes[0]) else None


@dataclass(frozen=True)
class SliceParams:
    starts: tuple = None   # opset < 10: attributes; later the inputs (None here)
    ends: tuple = None
    axes: tuple = None


def _slice_args(p, ins):
    """(starts, ends, axes, steps) from the params (opset < 10) or ins[1:5]."""
    if p.starts is not None:
        return p.starts, p.ends, p.axes, None
    return (ints(ins[1]), ints(ins[2]), ints(ins[3]) if given(ins, 3) else None,
            ints(ins[4]) if given(ins, 4) else None)


def slice_of(p, ins, shape):
    """The basic index of a Slice on an input of `shape` (ins[1:] its bound inputs)."""
    ndim = len(shape)
    starts, ends, axes, steps = _slice_args(p, ins)
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = axis_index(ax, ndim)
        if st == 0:
            raise ShapeError("step 0")
        dim = shape[ax]
        s = max(-dim - 1, min(s, dim + 1))
        e = max(-dim - 1, min(e, dim + 1))
        if st < 0 and e < -dim:
            e = None
        index[ax] = slice(s, e, st)
    return tuple(index)


def slice_index(node, ins, shape):
    """slice_of for a Slice node (what the compiled steps call)."""
    from . import params_of
    return slice_of(params_of(node), ins, shape)


@register
class Slice(OpDef):
    """Per-pixel when it leaves the spatial axes whole (a slice of channels)."""
    types = ("Slice",)
    Params = SliceParams
    inputs = ("x", "starts", "ends", "axes", "steps")

    def parse(self, node):
        a = node.attrs
        if opset(node) < 10:
            return SliceParams(ints(a["starts"]), ints(a["ends"]), opt_ints(a.get("axes")))
        return SliceParams()

    def _consts(self, p, in_shapes, consts):
        ins = [None] * len(in_shapes)
        if p.starts is None:
            for i in range(1, len(in_shapes)):
                ins[i] = const_input(in_shapes, consts, i, "slice bound")
        return ins

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        return [dummy(x, np.int8)[slice_of(p, self._consts(p, in_shapes, consts), x)].shape]

    def reference(self, p, ins):
        x = ins[0]
        return [contig(x[slice_of(p, ins, x.shape)])]

    def _per_pixel(self, p, in_shapes, consts):
        x = in_shapes[0]
        if len(x) < 4:
            return False
        try:
            index = slice_of(p, self._consts(p, in_shapes, consts or {}), x)
        except ShapeError:
            return False
        return all(index[ax] == slice(None) or index[ax].indices(x[ax]) == (0, x[ax], 1) for ax in (2, 3))

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        if self._per_pixel(p, in_shapes, consts):
            return [out_box] + [FULL] * (len(in_shapes) - 1)
        return [FULL] * len(in_shapes)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return p if self._per_pixel(p, in_shapes, consts) else None


@register
class Gather(OpDef):
    types = ("Gather",)
    inputs = ("x", "indices")

    @dataclass(frozen=True)
    class Params:
        axis: int = 0

    def parse(self, node):
        return self.Params(int(node.attrs.get("axis", 0)))

    def infer(self, p, in_shapes, consts):
        x, idx = tuple(in_shapes[0]), tuple(in_shapes[1])
        axis = axis_index(p.axis, len(x))
        return [x[:axis] + idx + x[axis + 1:]]

    def reference(self, p, ins):
        x, idx = ins
        axis = axis_index(p.axis, x.ndim)
        idx = np.asarray(idx).astype(np.int64)
        dim = x.shape[axis]
        if idx.size and (idx.min() < -dim or idx.max() >= dim):
            raise ShapeError(f"index out of range for axis of size {dim}")
        return [np.take(x, np.where(idx < 0, idx + dim, idx), axis=axis)]


@register
class DepthSpace(OpDef):
    """DepthToSpace and SpaceToDepth: pixel (y, x) of one side is block
    (y // b, x // b) of the other."""
    types = ("DepthToSpace", "SpaceToDepth")

    @dataclass(frozen=True)
    class Params:
        blocksize: int
        to_space: bool         # DepthToSpace
        mode: str = "DCR"      # DCR or CRD (DepthToSpace; SpaceToDepth from opset 28)

    def parse(self, node):
        mode = str(node.attrs.get("mode", "DCR"))
        if mode not in ("DCR", "CRD"):
            raise unsupported(node, f"mode {mode!r} is not supported")
        return self.Params(int(node.attrs["blocksize"]), node.op == "DepthToSpace", mode)

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        if len(x) != 4:
            raise ShapeError(f"only 4-D (N,C,H,W) input is supported, got shape {x}")
        n, c, h, w = x
        b = p.blocksize
        if p.to_space:
            if c % (b * b):
                raise ShapeError(f"channels {c} do not divide by blocksize {b} squared")
            return [(n, c // (b * b), h * b, w * b)]
        if h % b or w % b:
            raise ShapeError(f"spatial size {(h, w)} does not divide by blocksize {b}")
        return [(n, c * b * b, h // b, w // b)]

    def reference(self, p, ins):
        x = ins[0]
        check_2d(x)
        b = p.blocksize
        n, c, h, w = x.shape
        if not p.to_space:
            y = x.reshape(n, c, h // b, b, w // b, b)
            # DCR: channel (by, bx, c); CRD: channel (c, by, bx)
            y = y.transpose(0, 3, 5, 1, 2, 4) if p.mode == "DCR" else y.transpose(0, 1, 3, 5, 2, 4)
            return [np.ascontiguousarray(y.reshape(n, c * b * b, h // b, w // b))]
        if p.mode == "DCR":
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [np.ascontiguousarray(y.reshape(n, c // (b * b), h * b, w * b))]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        b = p.blocksize
        if p.to_space:
            return [Box(out_box.y0 // b, -(-out_box.y1 // b), out_box.x0 // b, -(-out_box.x1 // b))]
        return [Box(out_box.y0 * b, out_box.y1 * b, out_box.x0 * b, out_box.x1 * b)]

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        # SpaceToDepth's blocks are whole in the window; DepthToSpace's would
        # need the output box to fall on block edges
        return None if p.to_space else p


def _shape_arg(v):
    return list(ints(v))


@register
class Expand(OpDef):
    types = ("Expand",)
    inputs = ("x", "shape")

    def _target(self, x_shape, shape):
        try:
            target = np.broadcast_shapes(tuple(x_shape), tuple(shape))
        except ValueError:
            raise ShapeError(f"cannot expand {tuple(x_shape)} to {shape}") from None
        check_size(target)
        return target

    def infer(self, p, in_shapes, consts):
        return [self._target(in_shapes[0], _shape_arg(const_input(in_shapes, consts, 1, "shape")))]

    def reference(self, p, ins):
        x = ins[0]
        return [contig(np.broadcast_to(x, self._target(x.shape, _shape_arg(ins[1]))))]


@register
class Tile(OpDef):
    types = ("Tile",)
    inputs = ("x", "repeats")

    def _target(self, x_shape, reps):
        if len(reps) != len(x_shape) or min(reps, default=0) < 0:
            raise ShapeError(f"repeats {reps} do not fit shape {tuple(x_shape)}")
        target = tuple(d * r for d, r in zip(x_shape, reps))
        check_size(target)
        return target

    def infer(self, p, in_shapes, consts):
        return [self._target(in_shapes[0], _shape_arg(const_input(in_shapes, consts, 1, "repeats")))]

    def reference(self, p, ins):
        reps = _shape_arg(ins[1])
        self._target(ins[0].shape, reps)
        return [np.tile(ins[0], reps)]
