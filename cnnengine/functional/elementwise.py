"""Functional elementwise binary ops with NumPy broadcasting (float32 out).

The broadcast shape and per-input element strides (0 on broadcast dims) are
computed here; dims of size 1 are dropped and adjacent dims merged where
both inputs stay affine, so e.g. (N,C,H,W) + (1,C,1,1) reaches C as
(N, C, H*W) with the bias constant along the inner run.
"""
import numpy as np

from .. import _kernels as K
from ..errors import ShapeError
from ._common import as_f32, flat, resolve_threads

__all__ = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"]

_OPS = {"add": 0, "sub": 1, "mul": 2, "div": 3, "maximum": 4, "minimum": 5, "pow": 6}
_MAX_DIMS = 8


def _strides(shape, out_shape):
    """Element strides of a C-contiguous `shape` read as `out_shape` (0 where broadcast)."""
    st = [0] * len(out_shape)
    step = 1
    for i in range(1, len(shape) + 1):
        d = shape[-i]
        st[-i] = step if d != 1 else 0
        step *= d
    return st


def _collapse(shape, sa, sb):
    dims, ca, cb = [], [], []
    for d, a, b in zip(shape, sa, sb):
        if d == 1:
            continue
        if dims and ca[-1] == a * d and cb[-1] == b * d:
            dims[-1] *= d
            ca[-1], cb[-1] = a, b
            continue
        dims.append(d)
        ca.append(a)
        cb.append(b)
    if not dims:
        return [1], [0], [0]
    return dims, ca, cb


def _f32(x, name):
    """as_f32, keeping 0-d inputs 0-d (np.ascontiguousarray makes them 1-D)."""
    zero_d = np.ndim(x) == 0 if isinstance(x, (np.ndarray, np.generic, int, float)) else False
    a = as_f32(x, name)
    return a.reshape(()) if zero_d else a


def _binary(name, a, b, threads):
    a = _f32(a, "a")
    b = _f32(b, "b")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                         "cannot be broadcast together") from None
    y = np.empty(shape, np.float32)
    if y.size == 0:
        return y
    dims, sa, sb = _collapse(shape, _strides(a.shape, shape), _strides(b.shape, shape))
    if len(dims) > _MAX_DIMS:
        raise ShapeError(f"{name}: broadcasting {tuple(a.shape)} with {tuple(b.shape)} needs "
                         f"{len(dims)} dims after merging; at most {_MAX_DIMS} are supported")
    K.binary(_OPS[name], dims, sa, sb, flat(a), flat(b), flat(y), resolve_threads(threads))
    return y


def add(a, b, *, threads=None):
    """a + b with NumPy broadcasting."""
    return _binary("add", a, b, threads)


def sub(a, b, *, threads=None):
    """a - b with NumPy broadcasting."""
    return _binary("sub", a, b, threads)


def mul(a, b, *, threads=None):
    """a * b with NumPy broadcasting."""
    return _binary("mul", a, b, threads)


def div(a, b, *, threads=None):
    """a / b with NumPy broadcasting (x/0 gives +-inf or nan, as NumPy)."""
    return _binary("div", a, b, threads)


def maximum(a, b, *, threads=None):
    """Elementwise max; NaN in either input gives NaN (np.maximum)."""
    return _binary("maximum", a, b, threads)


def minimum(a, b, *, threads=None):
    """Elementwise min; NaN in either input gives NaN (np.minimum)."""
    return _binary("minimum", a, b, threads)


def pow(a, b, *, threads=None):  # noqa: A001 (ONNX Pow)
    """a ** b with NumPy broadcasting (powf)."""
    return _binary("pow", a, b, threads)
