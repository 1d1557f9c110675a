"""Ops that move pixels: Pad and Resize. Their region rules need the pads or
scales, which from opset 11 are inputs: region() reads them from consts."""
from dataclasses import dataclass, replace

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from ._common import axis_index, const_input, ints, opset
from .base import FULL, Box, OpDef, unsupported, window_pads

_PAD_MODES = ("constant", "reflect", "edge", "wrap")


@dataclass(frozen=True)
class PadParams:
    mode: str = "constant"
    pads: tuple = None    # begin pads then end pads over the axes; None: the pads input (opset 11)
    value: float = None   # None: the value input (opset 11), else 0
    axes: tuple = None    # with pads: the axes they pad (None: all)


def _pad_amounts(p, ins, rank):
    """(begin, end) per axis, negative for a crop."""
    if p.pads is not None:
        pads, axes = list(p.pads), p.axes
    else:
        pads = list(ints(ins[1]))
        axes = ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    axes = list(range(rank)) if axes is None else [axis_index(v, rank) for v in axes]
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"{len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for i, ax in enumerate(axes):
        begin[ax], end[ax] = pads[i], pads[i + len(axes)]
    return begin, end


@register
class Pad(OpDef):
    types = ("Pad",)
    Params = PadParams
    inputs = ("x", "pads", "value", "axes")

    def parse(self, node):
        a = node.attrs
        mode = str(a.get("mode", "constant"))
        if mode not in _PAD_MODES:
            raise unsupported(node, f"mode {mode!r} is not supported")
        if opset(node) < 11:
            return PadParams(mode, ints(a.get("pads", a.get("paddings", []))), float(a.get("value", 0.0)))
        return PadParams(mode)

    def _known(self, p, in_shapes, consts):
        """Pad's inputs as far as plan time knows them (ShapeError when the pads are not known)."""
        ins = [None] * max(len(in_shapes), 4)
        if p.pads is None:
            ins[1] = const_input(in_shapes, consts, 1, "pads")
            ins[3] = const_input(in_shapes, consts, 3, "axes")
        return ins

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        begin, end = _pad_amounts(p, self._known(p, in_shapes, consts), len(x))
        y = tuple(d + b + e for d, b, e in zip(x, begin, end))
        if min(y, default=0) < 0:
            raise ShapeError(f"pads {begin + end} crop more than the input {x}")
        return [y]

    def reference(self, p, ins):
        x = ins[0]
        if p.value is not None:
            value = p.value
        else:
            value = float(np.asarray(ins[2]).reshape(-1)[0]) if len(ins) > 2 and ins[2] is not None \
                and np.size(ins[2]) else 0.0
        rank = x.ndim
        begin, end = _pad_amounts(p, ins, rank)
        # Negative pads crop.
        crop = tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None)
                     for i, (b, e) in enumerate(zip(begin, end)))
        x = x[crop]
        begin = [max(b, 0) for b in begin]
        end = [max(e, 0) for e in end]
        if rank == 4 and x.dtype == np.float32 and begin[:2] == [0, 0] and end[:2] == [0, 0] and p.mode != "wrap":
            return [F.pad(np.ascontiguousarray(x), (begin[2], begin[3], end[2], end[3]), mode=p.mode, value=value)]
        kw = {"constant_values": value} if p.mode == "constant" else {}
        return [np.pad(x, list(zip(begin, end)), mode=p.mode, **kw)]

    def _spatial_pads(self, p, in_shapes, consts):
        """(top, left, bottom, right) when only axes 2 and 3 are padded, else None."""
        if len(in_shapes[0]) != 4:
            return None
        try:
            begin, end = _pad_amounts(p, self._known(p, in_shapes, consts or {}), 4)
        except ShapeError:
            return None
        if begin[:2] != [0, 0] or end[:2] != [0, 0]:
            return None
        return begin[2], begin[3], end[2], end[3]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        pads = self._spatial_pads(p, in_shapes, consts)
        rest = [FULL] * (len(in_shapes) - 1)
        if pads is None:
            return [FULL] + rest
        if p.mode == "constant":   # output pixel (y, x) is input (y - top, x - left) or the value
            return [Box(out_box.y0 - pads[0], out_box.y1 - pads[0], out_box.x0 - pads[1], out_box.x1 - pads[1])] + rest
        h, w = in_shapes[0][2:]
        rows = _read_index(h, pads[0], pads[2], p.mode)[out_box.y0:out_box.y1]
        cols = _read_index(w, pads[1], pads[3], p.mode)[out_box.x0:out_box.x1]
        return [Box(int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)] + rest

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        # reflect / edge / wrap windows mirror or repeat pixels: their boxes do not say where
        if p.mode != "constant" or in_boxes[0] is FULL or self._spatial_pads(p, in_shapes, consts) is None:
            return None
        wpads = window_pads(in_shapes[0], in_boxes[0])
        if wpads is None or min(wpads) < 0:
            return None
        return replace(p, pads=wpads, axes=(2, 3))   # the value input, if any, stays


def _read_index(n, before, after, mode):
    """The input index each output index reads along one axis (reflect, edge, wrap)."""
    idx = np.arange(n)
    idx = idx[max(-before, 0): n + min(after, 0) if after < 0 else None]
    return np.pad(idx, (max(before, 0), max(after, 0)), mode={"edge": "edge", "reflect": "reflect",
                                                               "wrap": "wrap"}[mode])


@dataclass(frozen=True)
class ResizeParams:
    mode: str = "nearest"                # nearest, linear, cubic
    coordinate_transformation_mode: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    antialias: bool = False
    cubic_coeff_a: float = -0.75
    exclude_outside: bool = False
    extrapolation_value: float = 0.0
    keep_aspect_ratio_policy: str = "stretch"
    axes: tuple = None                   # None: every axis
    scales_at_1: bool = False            # opset 10: (x, scales); later (x, roi, scales, sizes)


_COORDS = ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners", "half_pixel_symmetric",
           "tf_crop_and_resize")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _present(ins, i):
    return len(ins) > i and ins[i] is not None and np.size(ins[i]) > 0


def _resize_plan(p, x_shape, ins):
    """(sizes, scales, roi) over every axis, from the scales or sizes input."""
    if p.scales_at_1:
        roi, scales, sizes = None, ins[1], None
    else:
        roi = np.asarray(ins[1], np.float64).reshape(-1) if _present(ins, 1) else None
        scales = ins[2] if _present(ins, 2) else None
        sizes = ins[3] if _present(ins, 3) else None
    rank = len(x_shape)
    axes = [axis_index(v, rank) for v in (p.axes if p.axes is not None else range(rank))]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"repeated axes {list(p.axes)}")
    full_scale = [1.0] * rank
    full_size = list(x_shape)
    if sizes is not None:
        sizes = ints(sizes)
        if len(sizes) != len(axes):
            raise ShapeError(f"{len(sizes)} sizes for {len(axes)} axes")
        for ax, n in zip(axes, sizes):
            full_size[ax], full_scale[ax] = n, n / x_shape[ax] if x_shape[ax] else 1.0
        if p.keep_aspect_ratio_policy in ("not_larger", "not_smaller"):
            pick = min if p.keep_aspect_ratio_policy == "not_larger" else max
            sc = pick(full_scale[ax] for ax in axes)
            for ax in axes:
                full_scale[ax], full_size[ax] = sc, int(sc * x_shape[ax] + 0.5)
    elif scales is not None:
        sc = np.asarray(scales, dtype=np.float64).reshape(-1)
        if sc.size != len(axes):
            raise ShapeError(f"{sc.size} scales for {len(axes)} axes")
        if not np.all(sc > 0):
            raise ShapeError(f"scales must be > 0, got {sc.tolist()}")
        for ax, v in zip(axes, sc):
            full_scale[ax], full_size[ax] = float(v), int(np.floor(x_shape[ax] * v))
    else:
        raise ShapeError("neither scales nor sizes given")
    if roi is not None and len(axes) != rank:
        full_roi = [0.0] * rank + [1.0] * rank
        for i, ax in enumerate(axes):
            full_roi[ax], full_roi[rank + ax] = roi[i], roi[len(axes) + i]
        roi = np.asarray(full_roi)
    for n in full_size:
        if n < 0 or n > (1 << 24):
            raise ShapeError(f"output shape {full_size} is out of range")
    return full_size, full_scale, roi


@register
class Resize(OpDef):
    """Resize (and Upsample, which the importer renames): each output row reads
    the input rows around its source coordinate."""
    types = ("Resize",)
    Params = ResizeParams
    inputs = ("x", "roi", "scales", "sizes")

    def parse(self, node):
        a = node.attrs
        old = opset(node)
        mode = str(a.get("mode", "nearest"))
        if mode not in ("nearest", "linear", "cubic"):
            raise unsupported(node, f"mode {mode!r} is not supported")
        coord = str(a.get("coordinate_transformation_mode", "asymmetric" if old == 10 else "half_pixel"))
        if coord not in _COORDS:
            raise unsupported(node, f"coordinate_transformation_mode {coord!r} is not supported")
        nearest = str(a.get("nearest_mode", "round_prefer_floor" if old >= 11 else "floor"))
        if old == 10 and mode == "nearest":
            nearest = "floor"
        if mode == "nearest" and nearest not in _NEAREST:
            raise unsupported(node, f"nearest_mode {nearest!r} is not supported")
        policy = str(a.get("keep_aspect_ratio_policy", "stretch"))
        if policy not in ("stretch", "not_larger", "not_smaller"):
            raise unsupported(node, f"keep_aspect_ratio_policy {policy!r}")
        axes = a.get("axes")
        return ResizeParams(mode, coord, nearest, bool(a.get("antialias", 0)) and mode != "nearest",
                            float(a.get("cubic_coeff_a", -0.75)), bool(a.get("exclude_outside", 0)),
                            float(a.get("extrapolation_value", 0.0)), policy,
                            None if axes is None else ints(axes), old == 10)

    def _known(self, p, in_shapes, consts):
        ins = [None] * max(len(in_shapes), 4)
        for i in range(1, len(in_shapes)):
            if in_shapes[i] is not None and (0 not in tuple(in_shapes[i])):
                ins[i] = const_input(in_shapes, consts, i, "roi, scales or sizes")
        return ins

    def infer(self, p, in_shapes, consts):
        size, _, _ = _resize_plan(p, tuple(in_shapes[0]), self._known(p, in_shapes, consts))
        return [tuple(size)]

    def reference(self, p, ins):
        x = ins[0]
        full_size, full_scale, roi = _resize_plan(p, x.shape, ins)
        rank = x.ndim
        mode, coord = p.mode, p.coordinate_transformation_mode
        moved = [ax for ax in range(rank) if full_size[ax] != x.shape[ax] or full_scale[ax] != 1.0]
        kernel_ok = (x.ndim == 4 and x.dtype == np.float32 and set(moved) <= {2, 3} and mode != "cubic"
                     and not p.antialias and coord in ("half_pixel", "pytorch_half_pixel", "asymmetric")
                     and min(full_size) > 0)
        if kernel_ok or (x.ndim == 4 and coord == "align_corners" and mode != "cubic" and not p.antialias
                         and set(moved) <= {2, 3} and min(full_size) > 0
                         and all(full_scale[i] * x.shape[i] == full_size[i] for i in (2, 3))):
            return [F.resize(x, (full_size[2], full_size[3]), mode="bilinear" if mode == "linear" else "nearest",
                             coordinate_transformation_mode=coord, nearest_mode=p.nearest_mode,
                             scales=(full_scale[2], full_scale[3]))]
        return [_resize_nd(p, x, full_size, full_scale, roi)]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        x = tuple(in_shapes[0])
        rest = [FULL] * (len(in_shapes) - 1)
        if len(x) != 4 or p.antialias or p.coordinate_transformation_mode == "tf_crop_and_resize":
            return [FULL] + rest
        try:
            size, scale, roi = _resize_plan(p, x, self._known(p, in_shapes, consts or {}))
        except ShapeError:
            return [FULL] + rest
        if size[:2] != list(x[:2]) or scale[:2] != [1.0, 1.0]:
            return [FULL] + rest
        span = []
        for ax, (o0, o1) in ((2, (out_box.y0, out_box.y1)), (3, (out_box.x0, out_box.x1))):
            read = _taps_read(p, x[ax], size[ax], scale[ax])[o0:o1]
            span.append((int(read.min()), int(read.max()) + 1))
        return [Box(span[0][0], span[0][1], span[1][0], span[1][1])] + rest


def _taps_read(p, n_in, n_out, scale):
    """(n_out, taps) input indices each output index reads, zero-weight taps included
    (a kernel that multiplies a NaN by 0 still reads it)."""
    src = _resize_coords(n_in, n_out, scale, None, p.coordinate_transformation_mode)
    if p.mode == "nearest":
        w, _ = _resize_weights(p, n_in, n_out, scale, None)
        return np.argmax(w, axis=1)[:, None]
    offsets = np.arange(0, 2) if p.mode == "linear" else np.arange(-1, 3)
    return np.clip(np.floor(src)[:, None] + offsets[None, :], 0, n_in - 1).astype(np.int64)


def _resize_nd(p, x, sizes, scales, roi):
    """NumPy Resize, one axis at a time (ONNX resize is separable)."""
    y = x.astype(np.float64)
    rank = x.ndim
    coord = p.coordinate_transformation_mode
    for ax in range(rank):
        if sizes[ax] == x.shape[ax] and scales[ax] == 1.0 and (
                roi is None or coord != "tf_crop_and_resize" or (roi[ax] == 0 and roi[rank + ax] == 1)):
            continue
        ax_roi = None if roi is None else (roi[ax], roi[rank + ax])
        w, outside = _resize_weights(p, x.shape[ax], sizes[ax], scales[ax], ax_roi)
        y = np.moveaxis(np.tensordot(w, np.moveaxis(y, ax, 0), axes=(1, 0)), 0, ax)
        if outside is not None and outside.any():
            shape = [1] * rank
            shape[ax] = -1
            y = np.where(outside.reshape(shape), p.extrapolation_value, y)
    return y.astype(x.dtype) if x.dtype.kind == "f" else np.rint(y).astype(x.dtype)


def _resize_coords(n_in, n_out, scale, roi, coord):
    """Source coordinate of each output index along one axis (ONNX formulas)."""
    o = np.arange(n_out, dtype=np.float64)
    length = scale * n_in          # the (possibly fractional) resized length
    if coord == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if coord == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if length > 1 else np.full(n_out, -0.5)
    if coord == "asymmetric":
        return o / scale
    if coord == "align_corners":
        return o * (n_in - 1) / (length - 1) if length != 1 else np.zeros(n_out)
    if coord == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (o + 0.5) / scale - 0.5
    lo, hi = (0.0, 1.0) if roi is None else roi     # tf_crop_and_resize
    if length == 1:
        return np.full(n_out, (hi - lo) * (n_in - 1) / 2 + lo * (n_in - 1))
    return o * (hi - lo) * (n_in - 1) / (length - 1) + lo * (n_in - 1)


def _resize_weights(p, n_in, n_out, scale, roi):
    """(n_out, n_in) interpolation matrix and the extrapolated-output mask (or None)."""
    coord = p.coordinate_transformation_mode
    src = _resize_coords(n_in, n_out, scale, roi, coord)
    outside = ((src < 0) | (src > n_in - 1)) if coord == "tf_crop_and_resize" else None
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if p.mode == "nearest":
        pick = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}[p.nearest_mode]
        w[rows, np.clip(pick(src), 0, n_in - 1).astype(np.int64)] = 1.0
        return w, outside
    support = 1.0 if p.mode == "linear" else 2.0
    s = min(scale, 1.0) if p.antialias else 1.0     # antialias widens the filter when downsampling
    reach = int(np.ceil(support / s)) + 1
    taps = np.floor(src)[:, None] + np.arange(-reach, reach + 1)[None, :]
    t = np.abs(taps - src[:, None]) * s
    if p.mode == "linear":
        k = np.maximum(1.0 - t, 0.0)
    else:
        A = p.cubic_coeff_a
        k = np.where(t <= 1, ((A + 2) * t - (A + 3)) * t * t + 1,
                     np.where(t < 2, ((A * t - 5 * A) * t + 8 * A) * t - 4 * A, 0.0))
    if p.antialias:
        k = k / k.sum(axis=1, keepdims=True)
    if p.exclude_outside:
        k = np.where((taps < 0) | (taps > n_in - 1), 0.0, k)
        k = k / np.where(k.sum(axis=1, keepdims=True) == 0, 1.0, k.sum(axis=1, keepdims=True))
    np.add.at(w, (np.repeat(rows, taps.shape[1]), np.clip(taps, 0, n_in - 1).astype(np.int64).reshape(-1)),
              k.reshape(-1))
    return w, outside
