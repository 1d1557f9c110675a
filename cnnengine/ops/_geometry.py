"""Window arithmetic shared by convolution and pooling: output sizes, pads
from auto_pad, the input rows an output box reads, a window's own pads."""
import numpy as np

from ..errors import ShapeError
from .base import Box, window_pads

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def resolve_pads(auto_pad, pads, in_hw, kernel, strides, dilations):
    """Begin pads then end pads, one per spatial axis, from explicit pads or
    auto_pad; for 2-D that is (top, left, bottom, right)."""
    rank = len(in_hw)
    if auto_pad in ("NOTSET", "", None):
        pads = (0,) * (2 * rank) if pads is None else tuple(pads)
        if len(pads) != 2 * rank:
            raise ShapeError(f"{len(pads)} pads for {rank} spatial axes")
        return tuple(int(p) for p in pads)
    if auto_pad == "VALID":
        return (0,) * (2 * rank)
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-int(size) // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - int(size), 0)
        small, big = total // 2, total - total // 2
        if auto_pad == "SAME_UPPER":
            begin.append(small), end.append(big)
        else:
            begin.append(big), end.append(small)
    return tuple(begin + end)


def spatial_pads(node, in_hw, kernel, strides, dilations):
    """resolve_pads from a raw node's attributes (for nodes no OpDef parses:
    the blocked-layout nodes backend/cpu/layout.py makes keep ONNX pool attributes)."""
    a = node.attrs
    return resolve_pads(a.get("auto_pad", "NOTSET"), a.get("pads"), in_hw, kernel, strides, dilations)


def conv_out(size, k, s, d, p0, p1):
    """Output length of a convolution window along one axis (floor mode)."""
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def pool_out(size, k, s, d, p0, p1, ceil):
    """Output length of a pooling window along one axis, as the pool kernels count it."""
    eff = size + p0 + p1 - d * (k - 1) - 1
    out = (-(-eff // s) if ceil else eff // s) + 1
    if ceil and (out - 1) * s >= size + p0:
        out -= 1   # the last window would start in the end padding
    return out


def pool_taps(size, k, s, d, p0, p1, ceil):
    """Input index of each (output, tap) along one axis, as the pool kernels count them."""
    out = pool_out(size, k, s, d, p0, p1, ceil)
    return np.arange(max(out, 0))[:, None] * s - p0 + np.arange(k)[None, :] * d


def window_region(out_box, kernel, strides, dilations, pads):
    """The unclipped input box the windows of out_box read: rows oy0*s - top up
    to (oy1-1)*s - top + (k-1)*d + 1, columns alike."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    top, left = pads[0], pads[1]
    return Box(out_box.y0 * sh - top, (out_box.y1 - 1) * sh - top + (kh - 1) * dh + 1,
               out_box.x0 * sw - left, (out_box.x1 - 1) * sw - left + (kw - 1) * dw + 1)


__all__ = ["AUTO_PADS", "resolve_pads", "spatial_pads", "conv_out", "pool_out", "pool_taps",
           "window_region", "window_pads"]
