"""The CPU op table: how each IR op (ONNX semantics) runs.

Heavy ops go to the C kernels through cnnengine.functional (which owns
argument validation); shape bookkeeping ops are NumPy. Each entry is
`fn(node, inputs, out) -> list of outputs`, where `inputs` holds NumPy arrays
(None for an omitted optional input) and `out` is an optional preallocated
buffer for the first output that hot ops write into (memory planning).
"""
import math
import numpy as np

from .. import functional as F
from ..errors import Error, ShapeError, UnsupportedOpError

OPS = {}


def op(*names):
    def register(fn):
        for n in names:
            OPS[n] = fn
        return fn
    return register


def _f32(x):
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _contig(x):
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return np.asarray(x, order="C")


def _ints(v):
    return [int(e) for e in np.asarray(v).reshape(-1)]


def _axis(axis, rank, node):
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"node {node.name!r} ({node.op}): axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


# ------------------------------------------------------------- geometry
def spatial_pads(node, in_hw, kernel, strides, dilations):
    """Begin pads then end pads, one per spatial axis, from explicit pads or
    auto_pad; for 2-D that is (top, left, bottom, right)."""
    rank = len(in_hw)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "", None):
        pads = node.attrs.get("pads", [0] * (2 * rank))
        if len(pads) != 2 * rank:
            raise ShapeError(f"node {node.name!r} ({node.op}): {len(pads)} pads for {rank} spatial axes")
        return tuple(int(p) for p in pads)
    if auto == "VALID":
        return (0,) * (2 * rank)
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        if auto == "SAME_UPPER":
            begin.append(small), end.append(big)
        else:
            begin.append(big), end.append(small)
    return tuple(begin + end)


def _check2d(node, x, what="input"):
    if x.ndim != 4:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): only 4-D (N,C,H,W) {what} is supported, "
                                 f"got shape {x.shape}")


# ---------------------------------------------------------- convolution
@op("Conv")
def conv(node, ins, out=None):
    x, w = ins[0], ins[1]
    _check2d(node, x)
    if len(ins) > 4 and ins[4] is not None:    # a fused per-channel gate (passes._fuse_channel_scale)
        x = F.mul(_f32(x), _f32(ins[4]))
    a = node.attrs
    kernel = a.get("kernel_shape") or list(w.shape[2:])
    strides = a.get("strides", [1, 1])
    dil = a.get("dilations", [1, 1])
    pads = spatial_pads(node, x.shape[2:], kernel, strides, dil)
    b = ins[2] if len(ins) > 2 else None
    res = ins[3] if len(ins) > 3 else None
    act = a.get("_act")
    if res is not None:
        oh = (x.shape[2] + pads[0] + pads[2] - dil[0] * (kernel[0] - 1) - 1) // strides[0] + 1
        ow = (x.shape[3] + pads[1] + pads[3] - dil[1] * (kernel[1] - 1) - 1) // strides[1] + 1
        if res.shape != (x.shape[0], w.shape[0], oh, ow) or res.dtype != np.float32:
            # A broadcasting residual: run the epilogue unfused.
            y = F.conv2d(_f32(x), w, b, stride=tuple(strides), padding=pads, dilation=tuple(dil),
                         groups=int(a.get("group", 1)))
            y = F.add(y, _f32(res))
            return [F.activation(y, act, a.get("_alpha", 0.0), a.get("_beta", 0.0)) if act else y]
    return [F.conv2d(_f32(x), w, b, stride=tuple(strides), padding=pads, dilation=tuple(dil),
                     groups=int(a.get("group", 1)), residual=res,
                     activation=act, alpha=a.get("_alpha", 0.0), beta=a.get("_beta", 0.0))]


@op("ConvTranspose")
def conv_transpose(node, ins, out=None):
    x, w = ins[0], ins[1]
    _check2d(node, x)
    a = node.attrs
    kernel = a.get("kernel_shape") or list(w.shape[2:])
    strides = a.get("strides", [1, 1])
    dil = a.get("dilations", [1, 1])
    outpad = a.get("output_padding", [0, 0])
    groups = int(a.get("group", 1))
    b = ins[2] if len(ins) > 2 else None
    if "output_shape" in a or a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        # Solve for the pads that give the requested / SAME output size.
        h, wd = x.shape[2:]
        if "output_shape" in a:
            target = list(a["output_shape"])[-2:]
        elif a["auto_pad"] == "VALID":
            target = [(h - 1) * strides[0] + (kernel[0] - 1) * dil[0] + 1 + outpad[0],
                      (wd - 1) * strides[1] + (kernel[1] - 1) * dil[1] + 1 + outpad[1]]
        else:
            target = [h * strides[0], wd * strides[1]]
        begin, end = [], []
        for i, size in enumerate((h, wd)):
            total = strides[i] * (size - 1) + outpad[i] + (kernel[i] - 1) * dil[i] + 1 - target[i]
            if a.get("auto_pad") == "SAME_UPPER":
                begin.append(total // 2), end.append(total - total // 2)
            else:
                begin.append(total - total // 2), end.append(total // 2)
        pads = (begin[0], begin[1], end[0], end[1])
    else:
        pads = tuple(a.get("pads", [0, 0, 0, 0]))
    if min(pads) < 0:
        # A requested output larger than the full result: the extra rows and
        # columns receive no input, only the bias.
        y = F.conv_transpose2d(_f32(x), w, None, stride=tuple(strides), padding=tuple(max(p, 0) for p in pads),
                               output_padding=tuple(outpad), dilation=tuple(dil), groups=groups)
        grow = [(0, 0), (0, 0), (max(-pads[0], 0), max(-pads[2], 0)), (max(-pads[1], 0), max(-pads[3], 0))]
        y = np.pad(y, grow)
        return [y if b is None else (y + _f32(b).reshape(1, -1, 1, 1)).astype(np.float32)]
    return [F.conv_transpose2d(_f32(x), w, b, stride=tuple(strides), padding=pads,
                               output_padding=tuple(outpad), dilation=tuple(dil), groups=groups)]


@op("Gemm")
def gemm(node, ins, out=None):
    a_, b_ = _f32(ins[0]), _f32(ins[1])
    c = ins[2] if len(ins) > 2 else None
    at = node.attrs
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    if at.get("transA", 0):
        a_ = a_.T
    if a_.ndim != 2 or b_.ndim != 2:
        raise ShapeError(f"node {node.name!r} (Gemm): inputs must be 2-D, got {ins[0].shape} and {ins[1].shape}")
    w = b_ if at.get("transB", 0) else b_.T       # (N, K), linear's layout
    bias = None
    if c is not None and beta != 0.0:
        c = _f32(c)
        if c.ndim <= 1 and c.size == w.shape[0] and alpha == 1.0:
            bias = c.reshape(-1) * beta if beta != 1.0 else c.reshape(-1)
            c = None
    y = F.linear(np.ascontiguousarray(a_), np.ascontiguousarray(w), bias)
    if alpha != 1.0:
        y *= alpha
    if c is not None and beta != 0.0:
        y = y + beta * c
    if node.attrs.get("_act"):
        y = F.activation(y, node.attrs["_act"], node.attrs.get("_alpha", 0.0), node.attrs.get("_beta", 0.0))
    return [y.astype(np.float32, copy=False)]


@op("MatMul")
def matmul(node, ins, out=None):
    a_, b_ = ins
    if a_.dtype == np.float32 and b_.ndim == 2 and a_.ndim >= 2:
        lead = a_.shape[:-1]
        y = F.linear(np.ascontiguousarray(a_.reshape(-1, a_.shape[-1])), np.ascontiguousarray(b_.T))
        return [y.reshape(*lead, b_.shape[1])]
    try:
        return [np.matmul(a_, b_)]
    except ValueError as exc:
        raise ShapeError(f"node {node.name!r} (MatMul): {exc}") from None


# -------------------------------------------------------------- pooling
def _pool_geometry(node, x):
    a = node.attrs
    kernel = list(a["kernel_shape"])
    rank = len(kernel)
    strides = a.get("strides", [1] * rank)
    dil = a.get("dilations", [1] * rank)
    if x.ndim != rank + 2 or len(strides) != rank or len(dil) != rank:
        raise ShapeError(f"node {node.name!r} ({node.op}): kernel {kernel} does not fit input {x.shape}")
    pads = spatial_pads(node, x.shape[2:], kernel, strides, dil)
    return tuple(kernel), tuple(strides), pads, tuple(dil), bool(a.get("ceil_mode", 0))


def _pool_nd(x, kind, k, s, p, d, ceil, include):
    """NumPy fallback for pooling over any number of spatial axes (1-D, 3-D,
    the 5-D AveragePool of torch's LRN export). A box window is separable, so
    it reduces one axis at a time."""
    rank = len(k)
    y = x.astype(np.float64)
    count = 1.0
    for ax in range(rank):
        size = x.shape[2 + ax]
        taps = _pool_taps(size, k[ax], s[ax], d[ax], p[ax], p[rank + ax], ceil)   # (out, k)
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


def _pool_taps(size, k, s, d, p0, p1, ceil):
    """Input index of each (output, tap) along one axis, as the pool kernels count them."""
    eff = size + p0 + p1 - d * (k - 1) - 1
    out = (-(-eff // s) if ceil else eff // s) + 1
    if ceil and (out - 1) * s >= size + p0:
        out -= 1   # the last window would start in the end padding
    return np.arange(max(out, 0))[:, None] * s - p0 + np.arange(k)[None, :] * d


def _pool_windows(x, k, s, p, d, ceil):
    """NumPy fallback: (N, C, OH, KH, OW, KW) windows, in-range masks and tap positions."""
    ih = _pool_taps(x.shape[2], k[0], s[0], d[0], p[0], p[2], ceil)
    iw = _pool_taps(x.shape[3], k[1], s[1], d[1], p[1], p[3], ceil)
    vh = (ih >= 0) & (ih < x.shape[2])
    vw = (iw >= 0) & (iw < x.shape[3])
    win = x[:, :, np.clip(ih, 0, x.shape[2] - 1)][:, :, :, :, np.clip(iw, 0, x.shape[3] - 1)]
    return win, vh, vw, ih, iw


@op("MaxPool")
def max_pool(node, ins, out=None):
    x = ins[0]
    k, s, p, d, ceil = _pool_geometry(node, x)
    if x.ndim != 4 and not (len(node.outputs) > 1 and node.outputs[1]):
        return [_pool_nd(x, "max", k, s, p, d, ceil, False)]
    _check2d(node, x)
    if len(node.outputs) > 1 and node.outputs[1]:
        return _max_pool_indices(node, x, k, s, p, d, ceil)
    y = F.max_pool2d(_f32(x), k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    return [y if x.dtype == np.float32 else y.astype(x.dtype)]


def _max_pool_indices(node, x, k, s, p, d, ceil):
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
    if int(node.attrs.get("storage_order", 0)):
        idx = base + tw * h + th
    else:
        idx = base + th * w + tw
    return [y, idx.astype(np.int64)]


@op("AveragePool")
def avg_pool(node, ins, out=None):
    x = ins[0]
    k, s, p, d, ceil = _pool_geometry(node, x)
    include = bool(node.attrs.get("count_include_pad", 0))
    if x.ndim != 4:
        return [_pool_nd(_f32(x), "avg", k, s, p, d, ceil, include)]
    if d != (1, 1):
        return [_avg_pool_dilated(_f32(x), k, s, p, d, ceil, include)]
    return [F.avg_pool2d(_f32(x), k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=include)]


def _avg_pool_dilated(x, k, s, p, d, ceil, include):
    """NumPy fallback for dilated average pooling (the C kernel has no dilation)."""
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


@op("GlobalAveragePool")
def global_avg_pool(node, ins, out=None):
    _check2d(node, ins[0])
    return [F.global_avg_pool2d(_f32(ins[0]))]


@op("GlobalMaxPool")
def global_max_pool(node, ins, out=None):
    _check2d(node, ins[0])
    return [F.global_max_pool2d(_f32(ins[0]))]


# -------------------------------------------------------- normalisation
@op("BatchNormalization")
def batch_norm(node, ins, out=None):
    x, scale, bias, mean, var = ins[:5]
    if x.ndim < 2:
        raise ShapeError(f"node {node.name!r} (BatchNormalization): input rank {x.ndim} < 2")
    shape = x.shape
    eps = float(node.attrs.get("epsilon", 1e-5))
    if any(v.ndim > 1 for v in (scale, bias, mean, var)):
        # spatial=0 (opset 7-8): statistics per activation, shape (C, D1, ...).
        stats = [np.asarray(v, np.float64)[None] for v in (scale, bias, mean, var)]
        y = ((x - stats[2]) / np.sqrt(stats[3] + eps) * stats[0] + stats[1]).astype(np.float32)
    else:
        x4 = _f32(x).reshape(shape[0], shape[1], -1, 1)
        y = F.batch_norm(x4, mean, var, scale, bias, eps=eps).reshape(shape)
    if node.attrs.get("_act"):      # a fused activation (passes._fuse_activation)
        y = F.activation(y, node.attrs["_act"], node.attrs.get("_alpha", 0.0), node.attrs.get("_beta", 0.0))
    return [y]


@op("LRN")
def lrn(node, ins, out=None):
    a = node.attrs
    x = ins[0]
    _check2d(node, x)
    return [F.local_response_norm(_f32(x), int(a["size"]), alpha=float(a.get("alpha", 1e-4)),
                                  beta=float(a.get("beta", 0.75)), k=float(a.get("bias", 1.0)),
                                  convention="onnx")]


@op("Softmax", "LogSoftmax")
def softmax(node, ins, out=None):
    x = _f32(ins[0])
    opset = node.attrs.get("_opset", 13)
    axis = _axis(node.attrs.get("axis", -1 if opset >= 13 else 1), x.ndim, node)
    if opset < 13:
        # Old semantics: flatten to (prod(shape[:axis]), prod(shape[axis:])).
        y = F.softmax(x.reshape(math.prod(x.shape[:axis]), -1), axis=1).reshape(x.shape)
    else:
        y = F.softmax(x, axis=axis)
    if node.op == "LogSoftmax":
        y = np.log(y)
    return [y]


@op("LayerNormalization")
def layer_norm(node, ins, out=None):
    x = _f32(ins[0])
    axis = _axis(node.attrs.get("axis", -1), x.ndim, node)
    eps = float(node.attrs.get("epsilon", 1e-5))
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    y = (x - mean) * inv_std * ins[1]
    if len(ins) > 2 and ins[2] is not None:
        y = y + ins[2]
    # Optional outputs Mean and InvStdDev keep the reduced axes as size 1.
    return [y.astype(np.float32), mean.astype(np.float32), inv_std.astype(np.float32)]


@op("InstanceNormalization")
def instance_norm(node, ins, out=None):
    x = _f32(ins[0])
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean) / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    return [(y * ins[1].reshape(shape) + ins[2].reshape(shape)).astype(np.float32)]


# ---------------------------------------------------------- activations
def _clip_bounds(node, ins):
    """(min, max); when min > max ONNX sets every value to max."""
    if node.attrs.get("_opset", 13) < 11:
        lo, hi = float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))
    else:
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
        lo = float(np.asarray(lo).reshape(-1)[0]) if np.size(lo) else -np.inf
        hi = float(np.asarray(hi).reshape(-1)[0]) if np.size(hi) else np.inf
    return (hi, hi) if lo > hi else (lo, hi)


@op("Clip")
def clip(node, ins, out=None):
    lo, hi = _clip_bounds(node, ins)
    if ins[0].dtype != np.float32:
        return [np.clip(ins[0], lo, hi).astype(ins[0].dtype)]
    return [F.activation(ins[0], "clip", max(lo, -3.4e38), min(hi, 3.4e38))]


_SIMPLE_ACTS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}


@op(*_SIMPLE_ACTS)
def simple_act(node, ins, out=None):
    return [F.activation(_f32(ins[0]), _SIMPLE_ACTS[node.op])]


@op("LeakyRelu")
def leaky(node, ins, out=None):
    return [F.activation(_f32(ins[0]), "leaky_relu", float(node.attrs.get("alpha", 0.01)))]


@op("Elu")
def elu(node, ins, out=None):
    return [F.activation(_f32(ins[0]), "elu", float(node.attrs.get("alpha", 1.0)))]


@op("HardSigmoid")
def hard_sigmoid(node, ins, out=None):
    return [F.activation(_f32(ins[0]), "hardsigmoid", float(node.attrs.get("alpha", 0.2)),
                         float(node.attrs.get("beta", 0.5)))]


@op("Gelu")
def gelu(node, ins, out=None):
    if node.attrs.get("approximate", "none") != "none":
        x = _f32(ins[0]).astype(np.float64)
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
        return [y.astype(np.float32)]
    return [F.activation(_f32(ins[0]), "gelu")]


@op("PRelu")
def prelu(node, ins, out=None):
    x, slope = _f32(ins[0]), _f32(ins[1])
    if x.ndim >= 2 and slope.size in (1, x.shape[1]) and slope.size == np.prod(slope.shape) and \
            (slope.ndim <= 1 or slope.shape[1:] == (1,) * (slope.ndim - 1) or slope.size == 1):
        return [F.prelu(x, slope.reshape(-1))]
    return [np.where(x > 0, x, x * slope).astype(np.float32)]


@op("Selu")
def selu(node, ins, out=None):
    a = float(node.attrs.get("alpha", 1.67326319217681884765625))
    g = float(node.attrs.get("gamma", 1.05070102214813232421875))
    x = _f32(ins[0])
    return [(g * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))).astype(np.float32)]


@op("Softplus")
def softplus(node, ins, out=None):
    x = _f32(ins[0])
    return [np.logaddexp(0, x).astype(np.float32)]


@op("Mish")
def mish(node, ins, out=None):
    x = _f32(ins[0])
    return [(x * np.tanh(np.logaddexp(0, x))).astype(np.float32)]


def erf(x):
    """erf to float32 precision (Numerical Recipes erfc Chebyshev, |err| < 1.2e-7)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    r = t * np.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    return np.where(x >= 0, 1.0 - r, r - 1.0)


_UNARY = {
    "Abs": np.abs, "Neg": np.negative, "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt,
    "Reciprocal": np.reciprocal, "Floor": np.floor, "Ceil": np.ceil, "Round": np.rint,
    "Sin": np.sin, "Cos": np.cos, "Sign": np.sign, "Not": np.logical_not,
    "Erf": lambda x: erf(x).astype(x.dtype),
}


@op(*_UNARY)
def unary(node, ins, out=None):
    x = ins[0]
    with np.errstate(all="ignore"):
        return [np.asarray(_UNARY[node.op](x)).astype(x.dtype, copy=False)]


# ---------------------------------------------------------- elementwise
_BINARY_F = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_BINARY_NP = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Pow": np.power, "Equal": np.equal, "Less": np.less, "Greater": np.greater,
              "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
              "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor, "Mod": np.mod}


@op(*_BINARY_NP)
def binary(node, ins, out=None):
    a_, b_ = ins[0], ins[1]
    try:
        if node.op in _BINARY_F and a_.dtype == np.float32 and b_.dtype == np.float32:
            y = getattr(F, _BINARY_F[node.op])(a_, b_)
        elif node.op == "Div" and a_.dtype.kind in "iu" and b_.dtype.kind in "iu":
            y = np.trunc(np.divide(a_, b_)).astype(np.result_type(a_, b_))
        else:
            with np.errstate(all="ignore"):
                y = _BINARY_NP[node.op](a_, b_)
                if node.op == "Pow":
                    y = y.astype(a_.dtype)
    except ValueError as exc:
        raise ShapeError(f"node {node.name!r} ({node.op}): cannot broadcast {a_.shape} with {b_.shape}") from exc
    if node.attrs.get("_act"):
        y = F.activation(y, node.attrs["_act"], node.attrs.get("_alpha", 0.0), node.attrs.get("_beta", 0.0))
    return [y]


@op("Sum", "Max", "Min", "Mean")
def variadic(node, ins, out=None):
    fn = {"Sum": np.add, "Max": np.maximum, "Min": np.minimum, "Mean": np.add}[node.op]
    y = ins[0]
    for x in ins[1:]:
        y = F.add(y, x) if (node.op in ("Sum", "Mean") and y.dtype == np.float32) else fn(y, x)
    if node.op == "Mean":
        y = y / np.float32(len(ins))
    return [np.asarray(y)]


@op("Where")
def where(node, ins, out=None):
    return [np.where(ins[0], ins[1], ins[2])]


# ------------------------------------------------------------ reductions
def _reduce_axes(node, ins, rank):
    axes = node.attrs.get("axes")
    if axes is None and len(ins) > 1 and ins[1] is not None:
        axes = _ints(ins[1])
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return None
        return tuple(range(rank))
    return tuple(_axis(a, rank, node) for a in axes)


_REDUCE = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min,
           "ReduceProd": np.prod}


@op(*_REDUCE, "ReduceL2", "ReduceSumSquare")
def reduce(node, ins, out=None):
    x = ins[0]
    axes = _reduce_axes(node, ins, x.ndim)
    if axes is None:
        return [x]
    keep = bool(node.attrs.get("keepdims", 1))
    if node.op == "ReduceMean" and x.dtype == np.float32 and x.ndim == 4 and axes == (2, 3):
        y = F.global_avg_pool2d(x)
        return [y if keep else y.reshape(x.shape[:2])]
    if node.op == "ReduceL2":
        y = np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=axes, keepdims=keep))
    elif node.op == "ReduceSumSquare":
        y = np.sum(np.square(x, dtype=np.float64), axis=axes, keepdims=keep)
    elif node.op in ("ReduceMax", "ReduceMin") and x.size == 0:
        # The empty set reduces to the identity of max / min.
        lo, hi = (False, True) if x.dtype == np.bool_ else \
            ((-np.inf, np.inf) if x.dtype.kind == "f" else (np.iinfo(x.dtype).min, np.iinfo(x.dtype).max))
        y = _REDUCE[node.op](x, axis=axes, keepdims=keep, initial=lo if node.op == "ReduceMax" else hi)
    else:
        y = _REDUCE[node.op](x, axis=axes, keepdims=keep)
    return [np.asarray(y).astype(x.dtype, copy=False)]


@op("ArgMax", "ArgMin")
def argmax(node, ins, out=None):
    x = ins[0]
    axis = _axis(node.attrs.get("axis", 0), x.ndim, node)
    fn = np.argmax if node.op == "ArgMax" else np.argmin
    if node.attrs.get("select_last_index", 0):
        y = x.shape[axis] - 1 - fn(np.flip(x, axis=axis), axis=axis)
    else:
        y = fn(x, axis=axis)
    if node.attrs.get("keepdims", 1):
        y = np.expand_dims(y, axis)
    return [y.astype(np.int64)]


# --------------------------------------------------------------- layout
@op("Identity")
def identity(node, ins, out=None):
    return [ins[0]]


@op("Dropout")
def dropout(node, ins, out=None):
    """Inference Dropout: y = x and an all-true mask. (Only kept as Dropout
    when the file asks for the mask or passes training_mode.)"""
    x = ins[0]
    ratio = float(np.asarray(ins[1]).reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None \
        else float(node.attrs.get("ratio", 0.5))
    training = bool(np.asarray(ins[2]).reshape(-1)[0]) if len(ins) > 2 and ins[2] is not None else False
    if training and ratio != 0.0:
        raise UnsupportedOpError(f"node {node.name!r} (Dropout): training mode (random dropout, "
                                 f"ratio {ratio}) is not supported; this engine runs inference only")
    return [x, np.ones(x.shape, dtype=np.bool_)]


@op("Reshape")
def reshape(node, ins, out=None):
    x, shape = ins[0], _ints(ins[1])
    if not node.attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    try:
        return [x.reshape(shape)]
    except ValueError:
        raise ShapeError(f"node {node.name!r} (Reshape): cannot reshape {x.shape} to {shape}") from None


@op("Flatten")
def flatten(node, ins, out=None):
    x = ins[0]
    axis = int(node.attrs.get("axis", 1))
    if not -x.ndim <= axis <= x.ndim:
        raise ShapeError(f"node {node.name!r} (Flatten): axis {axis} is out of range for rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    # math.prod, not np.prod: a NumPy reduction right after the kernels pays
    # 70-90 us on this machine (measured; the cause is inside NumPy)
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@op("Transpose")
def transpose(node, ins, out=None):
    perm = node.attrs.get("perm")
    return [_contig(np.transpose(ins[0], perm))]


@op("Squeeze")
def squeeze(node, ins, out=None):
    x = ins[0]
    axes = node.attrs.get("axes")
    if axes is None and len(ins) > 1 and ins[1] is not None:
        axes = _ints(ins[1])
    if axes is None:
        return [np.squeeze(x)]
    axes = tuple(_axis(a, x.ndim, node) for a in axes)
    for a in axes:
        if x.shape[a] != 1:
            raise ShapeError(f"node {node.name!r} (Squeeze): axis {a} has size {x.shape[a]}, not 1")
    return [np.squeeze(x, axis=axes)]


@op("Unsqueeze")
def unsqueeze(node, ins, out=None):
    x = ins[0]
    axes = node.attrs.get("axes")
    if axes is None:
        axes = _ints(ins[1])
    rank = x.ndim + len(axes)
    axes = sorted(_axis(a, rank, node) for a in axes)
    y = x
    for a in axes:
        y = np.expand_dims(y, a)
    return [y]


@op("Concat")
def concat(node, ins, out=None):
    xs = [x for x in ins if x is not None]
    axis = _axis(node.attrs.get("axis", 1), xs[0].ndim, node)
    if all(x.dtype == np.float32 for x in xs):
        return [F.concat(xs, axis=axis)]
    try:
        return [np.concatenate(xs, axis=axis)]
    except ValueError as exc:
        raise ShapeError(f"node {node.name!r} (Concat): {exc}") from None


@op("Split")
def split(node, ins, out=None):
    x = ins[0]
    axis = _axis(node.attrs.get("axis", 0), x.ndim, node)
    sizes = node.attrs.get("split")
    if sizes is None and len(ins) > 1 and ins[1] is not None:
        sizes = _ints(ins[1])
    n = len(node.outputs)
    if sizes is None:
        step = -(-x.shape[axis] // n)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(n)]
    if sum(sizes) != x.shape[axis]:
        raise ShapeError(f"node {node.name!r} (Split): sizes {sizes} do not add up to {x.shape[axis]}")
    bounds = np.cumsum(sizes)[:-1]
    return [_contig(p) for p in np.split(x, bounds, axis=axis)]


@op("Slice")
def slice_(node, ins, out=None):
    x = ins[0]
    return [_contig(x[slice_index(node, ins, x.shape)])]


def slice_index(node, ins, shape):
    """The basic index of a Slice node on an input of `shape` (ins[1:]
    the starts/ends/axes/steps inputs from opset 10)."""
    ndim = len(shape)
    a = node.attrs
    if a.get("_opset", 13) < 10:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = _axis(ax, ndim, node)
        if st == 0:
            raise ShapeError(f"node {node.name!r} (Slice): step 0")
        dim = shape[ax]
        s = max(-dim - 1, min(s, dim + 1))
        e = max(-dim - 1, min(e, dim + 1))
        if st < 0 and e < -dim:
            e = None
        index[ax] = slice(s, e, st)
    return tuple(index)


@op("Gather")
def gather(node, ins, out=None):
    x, idx = ins
    axis = _axis(node.attrs.get("axis", 0), x.ndim, node)
    idx = np.asarray(idx).astype(np.int64)
    dim = x.shape[axis]
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise ShapeError(f"node {node.name!r} (Gather): index out of range for axis of size {dim}")
    return [np.take(x, np.where(idx < 0, idx + dim, idx), axis=axis)]


@op("Shape")
def shape(node, ins, out=None):
    s = np.asarray(ins[0].shape, dtype=np.int64)
    start = node.attrs.get("start", 0)
    end = node.attrs.get("end")
    return [s[start:end]]


@op("Size")
def size(node, ins, out=None):
    return [np.asarray(ins[0].size, dtype=np.int64)]


_CAST = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
         9: np.bool_, 10: np.float32, 11: np.float32, 12: np.uint32, 13: np.uint64}


@op("Cast")
def cast(node, ins, out=None):
    to = int(node.attrs["to"])
    if to not in _CAST:
        raise UnsupportedOpError(f"node {node.name!r} (Cast): target type {to} is not supported")
    x = ins[0]
    if to == 10 and x.dtype != np.float16:   # values round to half precision, held as float32
        return [x.astype(np.float16).astype(np.float32)]
    return [x.astype(_CAST[to])]


@op("ConstantOfShape")
def constant_of_shape(node, ins, out=None):
    shape = _ints(ins[0])
    from ..ir.graph import check_shape
    try:
        check_shape(shape, f"node {node.name!r}")
    except Exception as exc:
        raise ShapeError(str(exc)) from None
    value = node.attrs.get("value", np.zeros(1, np.float32))
    value = np.asarray(value).reshape(-1)
    return [np.full(shape, value[0], dtype=value.dtype)]


@op("Range")
def range_(node, ins, out=None):
    start, limit, delta = (np.asarray(v).reshape(()) for v in ins)
    if delta == 0:
        raise ShapeError(f"node {node.name!r} (Range): delta is 0")
    n = int(max(np.ceil((limit - start) / delta), 0))
    if n > 1 << 24:
        raise ShapeError(f"node {node.name!r} (Range): {n} elements is too many")
    return [(start + np.arange(n) * delta).astype(start.dtype)]


@op("Expand")
def expand(node, ins, out=None):
    x, shape = ins[0], _ints(ins[1])
    try:
        target = np.broadcast_shapes(x.shape, tuple(shape))
    except ValueError:
        raise ShapeError(f"node {node.name!r} (Expand): cannot expand {x.shape} to {shape}") from None
    _check_size(node, target)
    return [_contig(np.broadcast_to(x, target))]


@op("Tile")
def tile(node, ins, out=None):
    reps = _ints(ins[1])
    if len(reps) != ins[0].ndim or min(reps, default=0) < 0:
        raise ShapeError(f"node {node.name!r} (Tile): repeats {reps} do not fit shape {ins[0].shape}")
    _check_size(node, [d * r for d, r in zip(ins[0].shape, reps)])
    return [np.tile(ins[0], reps)]


def _check_size(node, shape):
    """Refuse a computed output larger than any tensor the engine will allocate."""
    from ..ir.graph import check_shape
    try:
        check_shape(list(shape), f"node {node.name!r} ({node.op}): output")
    except Error as exc:
        raise ShapeError(str(exc)) from None


@op("Pad")
def pad(node, ins, out=None):
    x = ins[0]
    a = node.attrs
    mode = a.get("mode", "constant")
    if a.get("_opset", 13) < 11:
        pads, value = list(a.get("pads", a.get("paddings", []))), float(a.get("value", 0.0))
        axes = None
    else:
        pads = _ints(ins[1])
        value = float(np.asarray(ins[2]).reshape(-1)[0]) if len(ins) > 2 and ins[2] is not None \
            and np.size(ins[2]) else 0.0
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [_axis(v, rank, node) for v in axes]
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"node {node.name!r} (Pad): {len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for i, ax in enumerate(axes):
        begin[ax], end[ax] = pads[i], pads[i + len(axes)]
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise UnsupportedOpError(f"node {node.name!r} (Pad): mode {mode!r} is not supported")
    # Negative pads crop.
    crop = tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None)
                 for i, (b, e) in enumerate(zip(begin, end)))
    x = x[crop]
    begin = [max(b, 0) for b in begin]
    end = [max(e, 0) for e in end]
    if rank == 4 and x.dtype == np.float32 and begin[:2] == [0, 0] and end[:2] == [0, 0] and mode != "wrap":
        return [F.pad(np.ascontiguousarray(x), (begin[2], begin[3], end[2], end[3]), mode=mode, value=value)]
    kw = {"constant_values": value} if mode == "constant" else {}
    return [np.pad(x, list(zip(begin, end)), mode=mode, **kw)]


@op("Resize")
def resize(node, ins, out=None):
    x = ins[0]
    a = node.attrs
    opset = a.get("_opset", 13)
    given = lambda i: len(ins) > i and ins[i] is not None and np.size(ins[i]) > 0   # noqa: E731
    roi = scales = sizes = None
    if opset == 10:
        scales = ins[1]
    else:
        roi = np.asarray(ins[1], np.float64).reshape(-1) if given(1) else None
        scales = ins[2] if given(2) else None
        sizes = ins[3] if given(3) else None
    rank = x.ndim
    axes = [_axis(v, rank, node) for v in a.get("axes", range(rank))]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"node {node.name!r} (Resize): repeated axes {a['axes']}")
    full_scale = [1.0] * rank
    full_size = list(x.shape)
    if sizes is not None:
        sizes = _ints(sizes)
        if len(sizes) != len(axes):
            raise ShapeError(f"node {node.name!r} (Resize): {len(sizes)} sizes for {len(axes)} axes")
        for ax, n in zip(axes, sizes):
            full_size[ax], full_scale[ax] = n, n / x.shape[ax] if x.shape[ax] else 1.0
        policy = a.get("keep_aspect_ratio_policy", "stretch")
        if policy in ("not_larger", "not_smaller"):
            pick = min if policy == "not_larger" else max
            sc = pick(full_scale[ax] for ax in axes)
            for ax in axes:
                full_scale[ax], full_size[ax] = sc, int(sc * x.shape[ax] + 0.5)
        elif policy != "stretch":
            raise UnsupportedOpError(f"node {node.name!r} (Resize): keep_aspect_ratio_policy {policy!r}")
    elif scales is not None:
        sc = np.asarray(scales, dtype=np.float64).reshape(-1)
        if sc.size != len(axes):
            raise ShapeError(f"node {node.name!r} (Resize): {sc.size} scales for {len(axes)} axes")
        if not np.all(sc > 0):
            raise ShapeError(f"node {node.name!r} (Resize): scales must be > 0, got {sc.tolist()}")
        for ax, v in zip(axes, sc):
            full_scale[ax], full_size[ax] = float(v), int(np.floor(x.shape[ax] * v))
    else:
        raise ShapeError(f"node {node.name!r} (Resize): neither scales nor sizes given")
    if roi is not None and len(axes) != rank:
        full_roi = [0.0] * rank + [1.0] * rank
        for i, ax in enumerate(axes):
            full_roi[ax], full_roi[rank + ax] = roi[i], roi[len(axes) + i]
        roi = np.asarray(full_roi)
    for n in full_size:
        if n < 0 or n > (1 << 24):
            raise ShapeError(f"node {node.name!r} (Resize): output shape {full_size} is out of range")

    mode = a.get("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedOpError(f"node {node.name!r} (Resize): mode {mode!r} is not supported")
    coord = a.get("coordinate_transformation_mode", "asymmetric" if opset == 10 else "half_pixel")
    nearest = a.get("nearest_mode", "round_prefer_floor" if opset >= 11 else "floor")
    if opset == 10 and mode == "nearest":
        nearest = "floor"
    antialias = bool(a.get("antialias", 0)) and mode != "nearest"
    moved = [ax for ax in range(rank) if full_size[ax] != x.shape[ax] or full_scale[ax] != 1.0]
    kernel_ok = (x.ndim == 4 and x.dtype == np.float32 and set(moved) <= {2, 3} and mode != "cubic"
                 and not antialias and coord in ("half_pixel", "pytorch_half_pixel", "asymmetric")
                 and min(full_size) > 0)
    if kernel_ok or (x.ndim == 4 and coord == "align_corners" and mode != "cubic" and not antialias
                     and set(moved) <= {2, 3} and min(full_size) > 0
                     and all(full_scale[i] * x.shape[i] == full_size[i] for i in (2, 3))):
        return [F.resize(x, (full_size[2], full_size[3]), mode="bilinear" if mode == "linear" else "nearest",
                         coordinate_transformation_mode=coord, nearest_mode=nearest,
                         scales=(full_scale[2], full_scale[3]))]
    return [_resize_nd(node, x, full_size, full_scale, roi, mode, coord, nearest, antialias)]


def _resize_nd(node, x, sizes, scales, roi, mode, coord, nearest, antialias):
    """NumPy Resize, one axis at a time (ONNX resize is separable)."""
    a = node.attrs
    y = x.astype(np.float64)
    rank = x.ndim
    for ax in range(rank):
        if sizes[ax] == x.shape[ax] and scales[ax] == 1.0 and (
                roi is None or coord != "tf_crop_and_resize" or (roi[ax] == 0 and roi[rank + ax] == 1)):
            continue
        ax_roi = None if roi is None else (roi[ax], roi[rank + ax])
        w, outside = _resize_weights(node, x.shape[ax], sizes[ax], scales[ax], ax_roi, mode, coord, nearest,
                                     antialias, float(a.get("cubic_coeff_a", -0.75)),
                                     bool(a.get("exclude_outside", 0)))
        y = np.moveaxis(np.tensordot(w, np.moveaxis(y, ax, 0), axes=(1, 0)), 0, ax)
        if outside is not None and outside.any():
            shape = [1] * rank
            shape[ax] = -1
            y = np.where(outside.reshape(shape), float(a.get("extrapolation_value", 0.0)), y)
    return y.astype(x.dtype) if x.dtype.kind == "f" else np.rint(y).astype(x.dtype)


def _resize_coords(node, n_in, n_out, scale, roi, coord):
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
    if coord == "tf_crop_and_resize":
        lo, hi = (0.0, 1.0) if roi is None else roi
        if length == 1:
            return np.full(n_out, (hi - lo) * (n_in - 1) / 2 + lo * (n_in - 1))
        return o * (hi - lo) * (n_in - 1) / (length - 1) + lo * (n_in - 1)
    raise UnsupportedOpError(f"node {node.name!r} (Resize): coordinate_transformation_mode {coord!r} "
                             f"is not supported")


def _resize_weights(node, n_in, n_out, scale, roi, mode, coord, nearest, antialias, cubic_a, exclude):
    """(n_out, n_in) interpolation matrix and the extrapolated-output mask (or None)."""
    src = _resize_coords(node, n_in, n_out, scale, roi, coord)
    outside = ((src < 0) | (src > n_in - 1)) if coord == "tf_crop_and_resize" else None
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if mode == "nearest":
        pick = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}.get(nearest)
        if pick is None:
            raise UnsupportedOpError(f"node {node.name!r} (Resize): nearest_mode {nearest!r} is not supported")
        w[rows, np.clip(pick(src), 0, n_in - 1).astype(np.int64)] = 1.0
        return w, outside
    support = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if antialias else 1.0     # antialias widens the filter when downsampling
    reach = int(np.ceil(support / s)) + 1
    taps = np.floor(src)[:, None] + np.arange(-reach, reach + 1)[None, :]
    t = np.abs(taps - src[:, None]) * s
    if mode == "linear":
        k = np.maximum(1.0 - t, 0.0)
    else:
        A = cubic_a
        k = np.where(t <= 1, ((A + 2) * t - (A + 3)) * t * t + 1,
                     np.where(t < 2, ((A * t - 5 * A) * t + 8 * A) * t - 4 * A, 0.0))
    if antialias:
        k = k / k.sum(axis=1, keepdims=True)
    if exclude:
        k = np.where((taps < 0) | (taps > n_in - 1), 0.0, k)
        k = k / np.where(k.sum(axis=1, keepdims=True) == 0, 1.0, k.sum(axis=1, keepdims=True))
    np.add.at(w, (np.repeat(rows, taps.shape[1]), np.clip(taps, 0, n_in - 1).astype(np.int64).reshape(-1)),
              k.reshape(-1))
    return w, outside


@op("DepthToSpace", "SpaceToDepth")
def depth_space(node, ins, out=None):
    x = ins[0]
    _check2d(node, x)
    b = int(node.attrs["blocksize"])
    n, c, h, w = x.shape
    if node.op == "SpaceToDepth":
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return [np.ascontiguousarray(y.reshape(n, c * b * b, h // b, w // b))]
    if node.attrs.get("mode", "DCR") == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return [np.ascontiguousarray(y.reshape(n, c // (b * b), h * b, w * b))]


@op("cnn.Silu")
def silu(node, ins, out=None):
    return [F.activation(_f32(ins[0]), "silu")]


@op("If")
def if_(node, ins, out=None):
    """Run the branch the condition picks; inputs after the condition are the
    outer values the branches read, in the order of the branch graphs' inputs."""
    cond = np.asarray(ins[0])
    if cond.size != 1:
        raise ShapeError(f"node {node.name!r} (If): condition has {cond.size} elements, expected 1")
    key = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    branch = node.attrs[key]
    executors = node.attrs.setdefault("_executors", {})
    if key not in executors:
        from .executor import Executor
        executors[key] = Executor(branch)
    feeds = {v.name: x for v, x in zip(branch.inputs, ins[1:]) if x is not None}
    result = executors[key].run(feeds)
    return [result[o.name] for o in branch.outputs]
