"""Functional layout ops: concat, pad, resize."""
import numpy as np

from .. import _kernels as _k
from ..errors import ShapeError
from ._common import as_f32, flat, pair, padding4, resolve_threads

__all__ = ["concat", "pad", "resize"]


def concat(xs, axis=1, *, threads=None):
    """Join arrays of equal rank along `axis` (negative counts from the end);
    every other dimension must match."""
    threads = resolve_threads(threads)
    if isinstance(xs, np.ndarray) or not hasattr(xs, "__len__") or len(xs) == 0:
        raise ShapeError("concat: xs: expected a non-empty list of arrays")
    xs = [as_f32(a, f"xs[{i}]") for i, a in enumerate(xs)]
    first = xs[0]
    if first.ndim == 0:
        raise ShapeError("concat: xs[0]: cannot concatenate 0-d arrays")
    ax = int(axis)
    if not -first.ndim <= ax < first.ndim:
        raise ShapeError(f"concat: axis {axis} out of range for {first.ndim}-D inputs")
    ax %= first.ndim
    for i, a in enumerate(xs[1:], 1):
        if a.ndim != first.ndim:
            raise ShapeError(f"concat: xs[{i}] is {a.ndim}-D, xs[0] is {first.ndim}-D")
        for d in range(first.ndim):
            if d != ax and a.shape[d] != first.shape[d]:
                raise ShapeError(f"concat: xs[{i}] has size {a.shape[d]} in dim {d}, xs[0] has "
                                 f"{first.shape[d]} (only axis {ax} may differ)")
    shape = list(first.shape)
    shape[ax] = sum(a.shape[ax] for a in xs)
    y = np.empty(shape, dtype=np.float32)
    if y.size == 0:
        return y
    parts = [a for a in xs if a.size]
    outer = int(np.prod(shape[:ax], dtype=np.int64))
    inner = int(np.prod(shape[ax + 1:], dtype=np.int64))
    _k.concat([flat(a) for a in parts], [a.shape[ax] for a in parts], flat(y), outer, inner,
              threads)
    return y


_PAD_ALIASES = {"constant": "constant", "reflect": "reflect", "edge": "edge",
                "replicate": "edge"}


def pad(x, pads, mode="constant", value=0.0, *, threads=None):
    """Pad the last two dims of x (N,C,H,W) or (C,H,W); pads = (top, left,
    bottom, right) (or an int / (h, w) pair). Modes: constant (value),
    reflect (edge not repeated, each pad < its dim), edge (= replicate)."""
    threads = resolve_threads(threads)
    x = as_f32(x, "x")
    if x.ndim not in (3, 4):
        raise ShapeError(f"pad: x: expected a 3-D or 4-D array, got shape {tuple(x.shape)}")
    if mode not in _PAD_ALIASES:
        raise ShapeError(f"pad: unknown mode {mode!r}; expected constant, reflect or edge")
    mode = _PAD_ALIASES[mode]
    pt, pl, pb, pr = padding4(pads, "pads")
    h, w = x.shape[-2:]
    if mode == "reflect" and (max(pt, pb) >= h or max(pl, pr) >= w):
        raise ShapeError(f"pad: reflect padding must be smaller than the padded dim: pads "
                         f"{(pt, pl, pb, pr)} for height {h}, width {w}")
    if mode == "edge" and (h == 0 or w == 0) and (pt or pb or pl or pr):
        raise ShapeError(f"pad: edge padding of an empty dim (height {h}, width {w})")
    y = np.empty(x.shape[:-2] + (h + pt + pb, w + pl + pr), dtype=np.float32)
    if y.size == 0:
        return y
    if x.size == 0:      # constant padding of an empty plane
        y.fill(value)
        return y
    nc = x.size // (h * w)
    _k.pad(flat(x), flat(y), nc, h, w, (pt, pl, pb, pr), _k.PAD_MODES[mode], float(value),
           threads)
    return y


def resize(x, size=None, mode="nearest", *, coordinate_transformation_mode=None,
           nearest_mode=None, scales=None, threads=None):
    """Resize the last two dims of x (N,C,H,W) or (C,H,W) to size = (H, W).

    mode "nearest" is PyTorch's (asymmetric coordinates, floor); "bilinear"
    (or "linear") uses half-pixel centres as align_corners=False. The ONNX
    importer picks the ONNX variants with coordinate_transformation_mode
    (half_pixel, pytorch_half_pixel, asymmetric, align_corners) and
    nearest_mode (round_prefer_floor, round_prefer_ceil, floor, ceil);
    scales = (sh, sw) are used by the coordinate transform, and give the
    size floor(in * scale) when size is None."""
    threads = resolve_threads(threads)
    x = as_f32(x, "x")
    if x.ndim not in (3, 4):
        raise ShapeError(f"resize: x: expected a 3-D or 4-D array, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if mode in ("bilinear", "linear"):
        kmode = _k.RESIZE_MODES["linear"]
        coord = coordinate_transformation_mode or "half_pixel"
    elif mode == "nearest":
        kmode = _k.RESIZE_MODES["nearest"]
        coord = coordinate_transformation_mode or "asymmetric"
    else:
        raise ShapeError(f"resize: unknown mode {mode!r}; expected nearest or bilinear")
    if coord not in _k.RESIZE_COORDS:
        raise ShapeError(f"resize: unknown coordinate_transformation_mode {coord!r}; expected "
                         f"one of {sorted(_k.RESIZE_COORDS)}")
    rounding = nearest_mode or "floor"
    if rounding not in _k.RESIZE_ROUNDINGS:
        raise ShapeError(f"resize: unknown nearest_mode {rounding!r}; expected one of "
                         f"{sorted(_k.RESIZE_ROUNDINGS)}")
    if scales is not None:
        try:
            sh, sw = (float(s) for s in scales)
        except (TypeError, ValueError):
            raise ShapeError(f"resize: scales: expected two numbers, got {scales!r}") from None
        if not (sh > 0 and sw > 0 and np.isfinite(sh) and np.isfinite(sw)):
            raise ShapeError(f"resize: scales must be finite and > 0, got {scales!r}")
    if size is None:
        if scales is None:
            raise ShapeError("resize: give size or scales")
        oh, ow = int(np.floor(h * sh)), int(np.floor(w * sw))
    else:
        oh, ow = pair(size, "size")
    if oh < 1 or ow < 1:
        raise ShapeError(f"resize: output size must be >= 1, got {(oh, ow)}")
    if h < 1 or w < 1:
        raise ShapeError(f"resize: x: spatial size must be >= 1, got shape {tuple(x.shape)}")
    if scales is None:   # as ONNX Runtime: the ratio in float32
        sh, sw = np.float32(oh) / np.float32(h), np.float32(ow) / np.float32(w)
    y = np.empty(x.shape[:-2] + (oh, ow), dtype=np.float32)
    if y.size == 0:
        return y
    _k.resize(flat(x), flat(y), x.size // (h * w), h, w, oh, ow, kmode, _k.RESIZE_COORDS[coord],
              _k.RESIZE_ROUNDINGS[rounding], float(sh), float(sw), threads)
    return y
