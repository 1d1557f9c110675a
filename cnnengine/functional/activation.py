"""Functional activation ops: any rank, any shape, float32 out.

Each op runs the C epilogue kernel (cnn_activation_f32, scalar or AVX2);
`activation(x, name, alpha, beta)` is the generic entry the engine uses.
"""
import math

import numpy as np

from .. import _kernels as K
from ..errors import ShapeError, UnsupportedOpError
from ._common import ACTIVATIONS, as_f32, flat, resolve_threads


def _f32(x, name="x"):
    """as_f32, keeping 0-d inputs 0-d (np.ascontiguousarray makes them 1-D)."""
    zero_d = np.ndim(x) == 0 if isinstance(x, (np.ndarray, np.generic, int, float)) else False
    a = as_f32(x, name)
    return a.reshape(()) if zero_d else a

__all__ = ["activation", "relu", "relu6", "leaky_relu", "prelu", "elu", "sigmoid", "tanh",
           "silu", "hardswish", "hardsigmoid", "gelu", "erf", "clip"]


def activation(x, name, alpha=0.0, beta=0.0, *, out=None, threads=None):
    """y = act(x) for an ACTIVATIONS name; alpha/beta as cnn_epilogue
    (clip min/max, leaky slope, elu alpha, hardsigmoid alpha/beta).
    `out` (float32, C-contiguous, x's shape) may be x itself (in place)."""
    if name not in ACTIVATIONS:
        raise UnsupportedOpError(f"activation: unknown name {name!r}; expected one of {sorted(ACTIVATIONS)}")
    x = _f32(x)
    if out is None:
        y = np.empty(x.shape, np.float32)
    else:
        if not (isinstance(out, np.ndarray) and out.dtype == np.float32
                and out.flags.c_contiguous and out.shape == x.shape):
            raise ShapeError(f"out: expected a C-contiguous float32 array of shape {x.shape}, got "
                             f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
        if not out.flags.writeable:
            raise ShapeError("out: array is read-only")
        y = out
    if x.size == 0:
        return y
    K.activation(ACTIVATIONS[name], float(alpha), float(beta), flat(x), flat(y),
                 resolve_threads(threads))
    return y


def relu(x, *, threads=None):
    """max(x, 0)."""
    return activation(x, "relu", threads=threads)


def relu6(x, *, threads=None):
    """min(max(x, 0), 6)."""
    return activation(x, "clip", 0.0, 6.0, threads=threads)


def clip(x, min=None, max=None, *, threads=None):  # noqa: A002 (PyTorch's names)
    """Clamp to [min, max]; None leaves that side open."""
    lo = -math.inf if min is None else float(min)
    hi = math.inf if max is None else float(max)
    return activation(x, "clip", lo, hi, threads=threads)


def leaky_relu(x, negative_slope=0.01, *, threads=None):
    """x if x >= 0 else negative_slope * x."""
    return activation(x, "leaky_relu", negative_slope, threads=threads)


def elu(x, alpha=1.0, *, threads=None):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return activation(x, "elu", alpha, threads=threads)


def sigmoid(x, *, threads=None):
    """1 / (1 + exp(-x))."""
    return activation(x, "sigmoid", threads=threads)


def tanh(x, *, threads=None):
    return activation(x, "tanh", threads=threads)


def silu(x, *, threads=None):
    """x * sigmoid(x) (swish)."""
    return activation(x, "silu", threads=threads)


def hardswish(x, *, threads=None):
    """x * relu6(x + 3) / 6."""
    return activation(x, "hardswish", threads=threads)


def hardsigmoid(x, alpha=1.0 / 6.0, beta=0.5, *, threads=None):
    """clamp(alpha * x + beta, 0, 1): PyTorch's relu6(x + 3) / 6 by default,
    ONNX HardSigmoid with alpha=0.2, beta=0.5."""
    return activation(x, "hardsigmoid", alpha, beta, threads=threads)


def gelu(x, approximate="none", *, threads=None):
    """0.5 x (1 + erf(x / sqrt 2)); approximate="tanh" gives PyTorch's tanh form."""
    if approximate not in ("none", "tanh"):
        raise ShapeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return activation(x, "gelu" if approximate == "none" else "gelu_tanh", threads=threads)


def erf(x, *, threads=None):
    """The error function, elementwise (float32)."""
    return activation(x, "erf", threads=threads)


def prelu(x, slope, *, threads=None):
    """x if x > 0 else slope[c] * x, c the channel (axis 1); `slope` holds C
    values (any shape, e.g. (C,) or ONNX's (C, 1, 1)) or a single shared one."""
    x = _f32(x)
    s = as_f32(slope, "slope").reshape(-1)
    if x.ndim >= 2:
        n, c = x.shape[0], x.shape[1]
        hw = int(np.prod(x.shape[2:], dtype=np.int64))
    else:
        n, c, hw = 1, 1, x.size
    if s.size == 1 and c != 1:
        s = np.full(c, s[0], np.float32)
    elif s.size != c:
        raise ShapeError(f"prelu: slope has {s.size} values; expected 1 or the {c} channels "
                         f"of x (axis 1 of shape {tuple(x.shape)})")
    y = np.empty(x.shape, np.float32)
    if y.size == 0:
        return y
    K.prelu(n, c, hw, flat(x), np.ascontiguousarray(s), flat(y), resolve_threads(threads))
    return y
