"""Pooling: MaxPool (with its optional Indices output), AveragePool, and the global pools."""
from dataclasses import dataclass, replace

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from ._common import check_2d, f32, opt_ints
from ._geometry import AUTO_PADS, pool_out, pool_taps, resolve_pads, window_pads, window_region
from .base import FULL, OpDef, unsupported


@dataclass(frozen=True)
class PoolParams:
    kernel_shape: tuple
    strides: tuple = None        # None: ones
    dilations: tuple = None      # None: ones
    pads: tuple = None           # begin pads then end pads; None: zeros
    auto_pad: str = "NOTSET"
    ceil_mode: bool = False
    count_include_pad: bool = False   # AveragePool
    storage_order: int = 0            # MaxPool's Indices: 1 = column-major
    indices: bool = False             # MaxPool: the node asks for Indices


def _geometry(p, x_shape):
    """(kernel, strides, pads, dilations) for an input of x_shape."""
    k = p.kernel_shape
    rank = len(k)
    s = p.strides or (1,) * rank
    d = p.dilations or (1,) * rank
    if len(x_shape) != rank + 2 or len(s) != rank or len(d) != rank:
        raise ShapeError(f"kernel {list(k)} does not fit input {tuple(x_shape)}")
    return k, s, resolve_pads(p.auto_pad, p.pads, x_shape[2:], k, s, d), d


class _Pool(OpDef):
    Params = PoolParams

    def parse(self, node):
        a = node.attrs
        if not opt_ints(a.get("kernel_shape")) or min(opt_ints(a["kernel_shape"])) < 1:
            raise unsupported(node, f"kernel_shape must be positive sizes, got {a.get('kernel_shape')!r}")
        auto = a.get("auto_pad", "NOTSET") or "NOTSET"
        if auto not in AUTO_PADS:
            raise unsupported(node, f"auto_pad {auto!r} is not supported")
        return PoolParams(opt_ints(a["kernel_shape"]), opt_ints(a.get("strides")), opt_ints(a.get("dilations")),
                          opt_ints(a.get("pads")), auto, bool(a.get("ceil_mode", 0)),
                          bool(a.get("count_include_pad", 0)), int(a.get("storage_order", 0)),
                          len(node.outputs) > 1 and bool(node.outputs[1]))

    def infer(self, p, in_shapes, consts):
        x = in_shapes[0]
        k, s, pads, d = _geometry(p, x)
        rank = len(k)
        out = tuple(pool_out(x[2 + i], k[i], s[i], d[i], pads[i], pads[rank + i], p.ceil_mode) for i in range(rank))
        if min(out, default=1) < 1:
            raise ShapeError(f"kernel {k} does not fit the padded input {x}")
        y = tuple(x[:2]) + out
        return [y, y] if p.indices else [y]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        if len(p.kernel_shape) != 2:
            return [FULL]
        k, s, pads, d = _geometry(p, in_shapes[0])
        return [window_region(out_box, k, s, d, pads)]

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        if len(p.kernel_shape) != 2 or p.indices or in_boxes[0] is FULL:
            return None      # indices count from the whole input's origin
        x = in_shapes[0]
        k, s, pads, d = _geometry(p, x)
        box = in_boxes[0]
        if p.count_include_pad and (box.y1 > x[2] + pads[2] or box.x1 > x[3] + pads[3]):
            return None      # the window reaches the ceil_mode overhang, which does not count
        wpads = window_pads(x, box)
        if wpads is None:
            return None
        return replace(p, strides=s, dilations=d, pads=wpads, auto_pad="NOTSET", ceil_mode=False)


@register
class MaxPool(_Pool):
    types = ("MaxPool",)

    def reference(self, p, ins):
        x = ins[0]
        k, s, pads, d = _geometry(p, x.shape)
        if x.ndim != 4 and not p.indices:
            return [_pool_nd(x, "max", k, s, pads, d, p.ceil_mode, False)]
        check_2d(x)
        if p.indices:
            return _max_pool_indices(x, k, s, pads, d, p.ceil_mode, p.storage_order)
        y = F.max_pool2d(f32(x), k, stride=s, padding=pads, dilation=d, ceil_mode=p.ceil_mode)
        return [y if x.dtype == np.float32 else y.astype(x.dtype)]


@register
class AveragePool(_Pool):
    types = ("AveragePool",)

    def reference(self, p, ins):
        x = ins[0]
        k, s, pads, d = _geometry(p, x.shape)
        if x.ndim != 4:
            return [_pool_nd(f32(x), "avg", k, s, pads, d, p.ceil_mode, p.count_include_pad)]
        if d != (1, 1):
            return [_avg_pool_dilated(f32(x), k, s, pads, d, p.ceil_mode, p.count_include_pad)]
        return [F.avg_pool2d(f32(x), k, stride=s, padding=pads, ceil_mode=p.ceil_mode,
                             count_include_pad=p.count_include_pad)]


class _GlobalPool(OpDef):
    def infer(self, p, in_shapes, consts):
        x = in_shapes[0]
        if len(x) != 4:
            raise ShapeError(f"only 4-D (N,C,H,W) input is supported, got shape {x}")
        return [tuple(x[:2]) + (1, 1)]


@register
class GlobalAveragePool(_GlobalPool):
    types = ("GlobalAveragePool",)

    def reference(self, p, ins):
        check_2d(ins[0])
        return [F.global_avg_pool2d(f32(ins[0]))]


@register
class GlobalMaxPool(_GlobalPool):
    types = ("GlobalMaxPool",)

    def reference(self, p, ins):
        check_2d(ins[0])
        return [F.global_max_pool2d(f32(ins[0]))]


# ----------------------------------------------------- NumPy fallbacks
def _pool_nd(x, kind, k, s, p, d, ceil, include):
    """Pooling over any number of spatial axes (1-D, 3-D, the 5-D AveragePool
    of torch's LRN export). A box window is separable: one axis at a time."""
    rank = len(k)
    y = x.astype(np.float64)
    count = 1.0
    for ax in range(rank):
        size = x.shape[2 + ax]
        taps = pool_taps(size, k[ax], s[ax], d[ax], p[ax], p[rank + ax], ceil)   # (out, k)
        valid = (taps >= 0) & (taps < size)
        if not valid.any(axis=1).all():
            raise ShapeError(f"pooling window lies entirely in padding along spatial axis {ax}")
        g = np.take(y, np.clip(taps, 0, size - 1), axis=2 + ax)        # (..., out, k, ...)
        shape = [1] * g.ndim
        shape[2 + ax], shape[3 + ax] = valid.shape
        mask = valid.reshape(shape)
        if kind == "max":
            y = np.where(mask, g, -np.inf).max(axis=3 + ax)
        else:
            y = np.where(mask, g, 0.0).sum(axis=3 + ax)
            inside = ((taps >= -p[ax]) & (taps < size + p[rank + ax])) if include else valid
            cshape = [1] * y.ndim
            cshape[2 + ax] = taps.shape[0]
            count = count * inside.sum(axis=1).reshape(cshape)
    if kind != "max":
        y = y / np.maximum(count, 1)
    return y.astype(x.dtype if x.dtype.kind == "f" else np.float32)


def _pool_windows(x, k, s, p, d, ceil):
    """(N, C, OH, KH, OW, KW) windows, in-range masks and tap positions."""
    ih = pool_taps(x.shape[2], k[0], s[0], d[0], p[0], p[2], ceil)
    iw = pool_taps(x.shape[3], k[1], s[1], d[1], p[1], p[3], ceil)
    vh = (ih >= 0) & (ih < x.shape[2])
    vw = (iw >= 0) & (iw < x.shape[3])
    win = x[:, :, np.clip(ih, 0, x.shape[2] - 1)][:, :, :, :, np.clip(iw, 0, x.shape[3] - 1)]
    return win, vh, vw, ih, iw


def _max_pool_indices(x, k, s, p, d, ceil, storage_order):
    """MaxPool with its Indices output (flat NCHW offsets, or N C W H with storage_order=1)."""
    n, c, h, w = x.shape
    win, vh, vw, ih, iw = _pool_windows(x, k, s, p, d, ceil)
    valid = vh[:, :, None, None] & vw[None, None]                    # (OH, KH, OW, KW)
    win = np.where(valid, win.astype(np.float64), -np.inf)
    win = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ih.shape[0], iw.shape[0], -1)
    arg = np.argmax(win, axis=-1)
    y = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0].astype(x.dtype)
    th = ih[np.arange(ih.shape[0])[:, None], arg // k[1]]            # (OH, OW) per n, c
    tw = iw[np.arange(iw.shape[0])[None, :], arg % k[1]]
    base = (np.arange(n)[:, None] * c + np.arange(c)[None, :]).reshape(n, c, 1, 1) * (h * w)
    idx = base + tw * h + th if storage_order else base + th * w + tw
    return [y, idx.astype(np.int64)]


def _avg_pool_dilated(x, k, s, p, d, ceil, include):
    """Dilated average pooling (the C kernel has no dilation)."""
    win, vh, vw, ih, iw = _pool_windows(x, k, s, p, d, ceil)
    mask = (vh[:, :, None, None] & vw[None, None]).astype(np.float64)
    total = np.einsum("ncakbl,akbl->ncab", win.astype(np.float64), mask)
    if include:   # padding cells count, the ceil_mode overhang past them does not
        ch = ((ih >= -p[0]) & (ih < x.shape[2] + p[2])).sum(axis=1)
        cw = ((iw >= -p[1]) & (iw < x.shape[3] + p[3])).sum(axis=1)
    else:
        ch, cw = vh.sum(axis=1), vw.sum(axis=1)
    count = np.maximum(ch[:, None] * cw[None, :], 1)
    return (total / count).astype(np.float32)
