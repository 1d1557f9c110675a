"""Functional pooling ops: max / average 2-D pooling and global pooling (NCHW).

Semantics are PyTorch's (output size, ceil_mode, count_include_pad), with two
ONNX-style extensions: asymmetric padding (top, left, bottom, right) and
padding larger than half the kernel. A window that would cover no input
element at all (possible with such padding, dilation or ceil_mode) is a
ShapeError rather than a silent -inf / NaN.
"""
import numpy as np

from .. import _kernels as _k
from ..errors import ShapeError
from ._common import as_f32, flat, pair, padding4, positive, resolve_threads

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d", "global_max_pool2d"]


def _out_size(op, axis, size, k, s, d, p0, p1, ceil_mode):
    """PyTorch's pooling_output_shape with asymmetric padding."""
    eff = size + p0 + p1 - d * (k - 1) - 1
    if eff < 0:
        raise ShapeError(
            f"{op}: kernel extent {d * (k - 1) + 1} (kernel {k}, dilation {d}) is larger "
            f"than the padded input {axis} {size + p0 + p1}")
    out = (-(-eff // s) if ceil_mode else eff // s) + 1
    if ceil_mode and (out - 1) * s >= size + p0:
        out -= 1   # the last window would start in the bottom/right padding
    # every window must hold an input element
    o = np.arange(out, dtype=np.int64)[:, None] * s - p0 + np.arange(k, dtype=np.int64)[None, :] * d
    empty = ~((o >= 0) & (o < size)).any(axis=1)
    if empty.any():
        i = int(np.argmax(empty))
        raise ShapeError(
            f"{op}: output {axis} index {i} would pool only padding (input {axis} {size}, "
            f"kernel {k}, stride {s}, dilation {d}, padding {p0}/{p1})")
    return out


def _prepare(op, x, kernel, stride, padding, dilation, ceil_mode):
    x = as_f32(x, "x", ndim=4)
    kh, kw = positive(pair(kernel, "kernel"), "kernel")
    sh, sw = positive(pair(kernel if stride is None else stride, "stride"), "stride")
    dh, dw = positive(pair(dilation, "dilation"), "dilation")
    pt, pl, pb, pr = padding4(padding)
    n, c, h, w = x.shape
    if h < 1 or w < 1:
        raise ShapeError(f"{op}: x: spatial size must be >= 1, got shape {tuple(x.shape)}")
    oh = _out_size(op, "height", h, kh, sh, dh, pt, pb, ceil_mode)
    ow = _out_size(op, "width", w, kw, sw, dw, pl, pr, ceil_mode)
    return x, (n, c, h, w), (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr), (oh, ow)


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, *, threads=None):
    """x (N,C,H,W) -> (N,C,OH,OW): max over each window; padding never wins."""
    threads = resolve_threads(threads)
    x, shape, k, s, d, pads, out = _prepare("max_pool2d", x, kernel, stride, padding,
                                            dilation, bool(ceil_mode))
    y = np.empty(shape[:2] + out, dtype=np.float32)
    if y.size == 0:
        return y
    _k.max_pool2d(flat(x), flat(y), shape, k, s, d, pads, out, threads)
    return y


def avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               *, threads=None):
    """x (N,C,H,W) -> (N,C,OH,OW): window mean. With count_include_pad the
    divisor counts padding cells (not the ceil_mode overhang past them)."""
    threads = resolve_threads(threads)
    x, shape, k, s, d, pads, out = _prepare("avg_pool2d", x, kernel, stride, padding, 1,
                                            bool(ceil_mode))
    y = np.empty(shape[:2] + out, dtype=np.float32)
    if y.size == 0:
        return y
    _k.avg_pool2d(flat(x), flat(y), shape, k, s, d, pads, out, bool(count_include_pad),
                  threads)
    return y


def _global(op, fn, x, threads):
    threads = resolve_threads(threads)
    x = as_f32(x, "x", ndim=4)
    n, c, h, w = x.shape
    if h < 1 or w < 1:
        raise ShapeError(f"{op}: x: spatial size must be >= 1, got shape {tuple(x.shape)}")
    y = np.empty((n, c, 1, 1), dtype=np.float32)
    if y.size == 0:
        return y
    fn(flat(x), flat(y), n * c, h * w, threads)
    return y


def global_avg_pool2d(x, *, threads=None):
    """x (N,C,H,W) -> (N,C,1,1): mean over H*W."""
    return _global("global_avg_pool2d", _k.global_avg_pool, x, threads)


def global_max_pool2d(x, *, threads=None):
    """x (N,C,H,W) -> (N,C,1,1): max over H*W."""
    return _global("global_max_pool2d", _k.global_max_pool, x, threads)
