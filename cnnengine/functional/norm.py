"""Functional normalisation ops: inference batch norm, LRN, softmax."""
import numpy as np

from .. import _kernels as _k
from ..errors import ShapeError
from ._common import as_f32, flat, resolve_threads

__all__ = ["batch_norm", "channel_norm", "local_response_norm", "softmax"]


def _per_channel(v, name, c, default):
    if v is None:
        return None if default is None else np.full(c, default, np.float32)
    v = as_f32(v, name)
    if v.shape != (c,):
        raise ShapeError(f"batch_norm: {name}: expected shape ({c},) to match x's {c} "
                         f"channels, got {tuple(np.shape(v))}")
    return v


def batch_norm(x, mean, var, gamma=None, beta=None, eps=1e-5, *, threads=None):
    """x (N,C,...) -> (x - mean) / sqrt(var + eps) * gamma + beta per channel,
    with running statistics (inference). gamma / beta None mean 1 / 0."""
    threads = resolve_threads(threads)
    x = as_f32(x, "x")
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: x: expected at least 2-D (N, C, ...), got shape "
                         f"{tuple(x.shape)}")
    n, c = x.shape[:2]
    mean = _per_channel(mean, "mean", c, None)
    var = _per_channel(var, "var", c, None)
    gamma = _per_channel(gamma, "gamma", c, None)
    beta = _per_channel(beta, "beta", c, None)
    y = np.empty_like(x)
    if y.size == 0:
        return y
    _k.batch_norm(flat(x), flat(y), n, c, x.size // (n * c), mean, var, gamma, beta,
                  float(eps), threads)
    return y


def channel_norm(x, gamma, beta=None, eps=1e-5, *, threads=None):
    """Layer norm across the channels of every pixel of x (N,C,...):
    (x - mean_c) / sqrt(var_c + eps) * gamma + beta (PyTorch's LayerNorm
    over a channels-last axis, ConvNeXt's LayerNorm2d)."""
    threads = resolve_threads(threads)
    x = as_f32(x, "x")
    if x.ndim < 2:
        raise ShapeError(f"channel_norm: x: expected at least 2-D (N, C, ...), got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    gamma = _per_channel(gamma, "gamma", c, None)
    beta = _per_channel(beta, "beta", c, 0.0)
    y = np.empty_like(x)
    if y.size == 0:
        return y
    _k.channel_norm(flat(x), gamma, beta, flat(y), n, c, x.size // (n * c), False, float(eps), threads)
    return y


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0, *, convention="torch",
                        threads=None):
    """Across-channel LRN: y = x / (k + alpha/size * sum_window x^2)^beta.

    The window holds `size` channels around c: PyTorch's
    [c - size//2, c + (size-1)//2] (convention="torch") or ONNX's
    [c - (size-1)//2, c + size//2] (convention="onnx"); they differ only for
    an even size."""
    threads = resolve_threads(threads)
    x = as_f32(x, "x")
    if x.ndim < 3:
        raise ShapeError(f"local_response_norm: x: expected at least 3-D (N, C, ...), got "
                         f"shape {tuple(x.shape)}")
    size = int(size)
    if size < 1:
        raise ShapeError(f"local_response_norm: size must be >= 1, got {size}")
    if convention not in ("torch", "onnx"):
        raise ShapeError(f"local_response_norm: convention must be 'torch' or 'onnx', got "
                         f"{convention!r}")
    n, c = x.shape[:2]
    y = np.empty_like(x)
    if y.size == 0:
        return y
    mirror = convention == "torch" and size % 2 == 0
    if mirror:   # PyTorch's even window is ONNX's mirrored along the channels
        x = np.ascontiguousarray(x[:, ::-1])
    _k.lrn(flat(x), flat(y), n, c, x.size // (n * c), size, float(alpha), float(beta),
           float(k), threads)
    return np.ascontiguousarray(y[:, ::-1]) if mirror else y


def softmax(x, axis=-1, *, threads=None):
    """exp(x - max) / sum(exp(x - max)) along `axis` (any rank >= 1)."""
    threads = resolve_threads(threads)
    if np.ndim(x) == 0:
        raise ShapeError("softmax: x: expected at least 1-D, got a scalar")
    x = as_f32(x, "x")
    ax = int(axis)
    if not -x.ndim <= ax < x.ndim:
        raise ShapeError(f"softmax: axis {axis} out of range for a {x.ndim}-D x")
    ax %= x.ndim
    y = np.empty_like(x)
    if y.size == 0:
        return y
    outer = int(np.prod(x.shape[:ax], dtype=np.int64))
    inner = int(np.prod(x.shape[ax + 1:], dtype=np.int64))
    _k.softmax(flat(x), flat(y), outer, x.shape[ax], inner, threads)
    return y
