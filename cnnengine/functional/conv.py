"""Convolution, transposed convolution, linear and GEMM with PyTorch's
semantics and weight layouts; arithmetic in csrc/ (conv2d.c, conv_transpose2d.c,
linear.c, gemm.c and their AVX2 variants)."""
import numpy as np

from .. import _kernels as _k
from ..errors import ShapeError
from ._common import (activation_code, as_f32, flat, pair, padding4, positive,
                      resolve_threads)

__all__ = ["conv2d", "conv_transpose2d", "linear", "gemm"]


def _groups(groups, name):
    if not isinstance(groups, (int, np.integer)) or int(groups) < 1:
        raise ShapeError(f"{name}: groups must be an int >= 1, got {groups!r}")
    return int(groups)


def _bias(b, count, name):
    if b is None:
        return None
    b = as_f32(b, "b").reshape(-1) if np.ndim(b) == 1 else as_f32(b, "b", 1)
    if b.shape[0] != count:
        raise ShapeError(f"{name}: bias has {b.shape[0]} values, expected {count} "
                         f"(one per output channel)")
    return b


def _conv_padding(padding, kernel, dilation, stride):
    """int, pair, four values, "valid" or "same" -> (top, left, bottom, right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ShapeError("conv2d: padding='same' needs stride 1, got "
                                 f"stride {stride[0]}x{stride[1]}")
            th, tw = (d * (k - 1) for d, k in zip(dilation, kernel))
            return (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        raise ShapeError(f"conv2d: padding must be an int, a pair, four ints, "
                         f"'same' or 'valid', got {padding!r}")
    return padding4(padding, "conv2d: padding")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, residual=None,
           activation=None, alpha=0.0, beta=0.0, threads=None):
    """y = act(conv2d(x, w) + b + residual), x (N,C,H,W), w (K, C/groups, kh, kw).

    padding: int, (h, w), (top, left, bottom, right), "valid" or "same"
    (stride 1; an odd total goes to the bottom/right, as PyTorch).
    activation: None or a name in functional._common.ACTIVATIONS, with
    alpha/beta its parameters; residual (N,K,OH,OW) is added before it.
    """
    x = as_f32(x, "conv2d: x", 4)
    w = as_f32(w, "conv2d: w", 4)
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    groups = _groups(groups, "conv2d")
    stride = positive(pair(stride, "conv2d: stride"), "conv2d: stride")
    dilation = positive(pair(dilation, "conv2d: dilation"), "conv2d: dilation")
    pt, pl, pb, pr = _conv_padding(padding, (kh, kw), dilation, stride)
    if min(c, h, wd) < 1:
        raise ShapeError(f"conv2d: x has an empty channel or spatial dimension, shape {x.shape}")
    if min(k, cg, kh, kw) < 1:
        raise ShapeError(f"conv2d: w has an empty dimension, shape {w.shape}")
    if c % groups:
        raise ShapeError(f"conv2d: input channels {c} not divisible by groups {groups}")
    if k % groups:
        raise ShapeError(f"conv2d: output channels {k} not divisible by groups {groups}")
    if cg * groups != c:
        raise ShapeError(f"conv2d: weight has {cg} input channels per group but x has "
                         f"{c} channels / groups {groups}")
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    ph, pw = h + pt + pb, wd + pl + pr
    if ph < ekh or pw < ekw:
        raise ShapeError(f"conv2d: kernel {kh}x{kw} (dilated {ekh}x{ekw}) is larger than "
                         f"the padded input {ph}x{pw}")
    oh, ow = (ph - ekh) // stride[0] + 1, (pw - ekw) // stride[1] + 1
    b = _bias(b, k, "conv2d")
    if residual is not None:
        residual = as_f32(residual, "conv2d: residual", 4)
        if residual.shape != (n, k, oh, ow):
            raise ShapeError(f"conv2d: residual shape {residual.shape} != output shape "
                             f"{(n, k, oh, ow)}")
    act = activation_code(activation, "conv2d")
    y = np.empty((n, k, oh, ow), np.float32)
    if y.size == 0:
        return y
    dims = (n, c, h, wd, k, kh, kw, stride[0], stride[1], dilation[0], dilation[1],
            pt, pl, pb, pr, groups, oh, ow)
    _k.conv2d(flat(x), flat(w), b, None if residual is None else flat(residual), flat(y),
              dims, act, float(alpha), float(beta), resolve_threads(threads))
    return y


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, *, threads=None):
    """The adjoint of conv2d: x (N,C,H,W), w (C, K/groups, kh, kw) -> (N,K,OH,OW),
    OH = (H-1)*sh - pt - pb + dh*(kh-1) + 1 + output_padding_h."""
    x = as_f32(x, "conv_transpose2d: x", 4)
    w = as_f32(w, "conv_transpose2d: w", 4)
    n, c, h, wd = x.shape
    cw, kg, kh, kw = w.shape
    groups = _groups(groups, "conv_transpose2d")
    sh, sw = positive(pair(stride, "conv_transpose2d: stride"), "conv_transpose2d: stride")
    dh, dw = positive(pair(dilation, "conv_transpose2d: dilation"),
                      "conv_transpose2d: dilation")
    pt, pl, pb, pr = padding4(padding, "conv_transpose2d: padding")
    oph, opw = pair(output_padding, "conv_transpose2d: output_padding")
    if min(c, h, wd) < 1:
        raise ShapeError(f"conv_transpose2d: x has an empty channel or spatial dimension, "
                         f"shape {x.shape}")
    if min(kg, kh, kw) < 1:
        raise ShapeError(f"conv_transpose2d: w has an empty dimension, shape {w.shape}")
    if cw != c:
        raise ShapeError(f"conv_transpose2d: weight has {cw} input channels but x has {c}")
    if c % groups:
        raise ShapeError(f"conv_transpose2d: input channels {c} not divisible by groups "
                         f"{groups}")
    for op, s, d, axis in ((oph, sh, dh, "height"), (opw, sw, dw, "width")):
        if op < 0 or op >= max(s, d):
            raise ShapeError(f"conv_transpose2d: output_padding {op} ({axis}) must be >= 0 "
                             f"and smaller than stride {s} or dilation {d}")
    k = kg * groups
    oh = (h - 1) * sh - pt - pb + dh * (kh - 1) + 1 + oph
    ow = (wd - 1) * sw - pl - pr + dw * (kw - 1) + 1 + opw
    if oh < 1 or ow < 1:
        raise ShapeError(f"conv_transpose2d: padding {(pt, pl, pb, pr)} leaves an empty "
                         f"output {oh}x{ow}")
    b = _bias(b, k, "conv_transpose2d")
    y = np.empty((n, k, oh, ow), np.float32)
    if y.size == 0:
        return y
    dims = (n, c, h, wd, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, oh, ow)
    _k.conv_transpose2d(flat(x), flat(w), b, flat(y), dims, resolve_threads(threads))
    return y


def linear(x, w, b=None, *, activation=None, alpha=0.0, beta=0.0, threads=None):
    """y = act(x w^T + b): x (..., IN), w (OUT, IN) -> (..., OUT)."""
    x = as_f32(x, "linear: x")
    w = as_f32(w, "linear: w", 2)
    out, inp = w.shape
    if x.ndim < 1:
        raise ShapeError("linear: x must have at least one dimension")
    if x.shape[-1] != inp:
        raise ShapeError(f"linear: x has {x.shape[-1]} input features but w expects {inp} "
                         f"(w shape {w.shape})")
    if inp < 1 or out < 1:
        raise ShapeError(f"linear: w has an empty dimension, shape {w.shape}")
    b = _bias(b, out, "linear")
    act = activation_code(activation, "linear")
    lead = x.shape[:-1]
    y = np.empty(lead + (out,), np.float32)
    if y.size == 0:
        return y
    rows = y.size // out
    _k.linear(flat(x), flat(w), b, flat(y), rows, inp, out, act, float(alpha), float(beta),
              resolve_threads(threads))
    return y


def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, threads=None):
    """alpha op(a) op(b) + beta c as a new (M,N) array; op transposes when asked;
    c (if given) broadcasts to (M,N) as ONNX Gemm's C."""
    a = as_f32(a, "gemm: a", 2)
    b = as_f32(b, "gemm: b", 2)
    m, ka = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if ka != kb:
        raise ShapeError(f"gemm: op(a) is {m}x{ka} but op(b) is {kb}x{n}")
    if c is not None and beta != 0.0:
        c = as_f32(c, "gemm: c")
        try:
            y = np.ascontiguousarray(np.broadcast_to(c, (m, n)), dtype=np.float32).copy()
        except ValueError:
            raise ShapeError(f"gemm: c shape {c.shape} does not broadcast to {(m, n)}") from None
    else:
        y = np.empty((m, n), np.float32)
        beta = 0.0
    if y.size == 0:
        return y
    _k.gemm(bool(trans_a), bool(trans_b), m, n, ka, float(alpha),
            flat(a) if a.size else None, a.shape[1] if a.size else 1,
            flat(b) if b.size else None, b.shape[1] if b.size else 1,
            float(beta), flat(y), n, resolve_threads(threads))
    return y
