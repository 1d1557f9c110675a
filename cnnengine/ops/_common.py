"""Small helpers the op families share: attribute reading, dtype and axis checks."""
import numpy as np

from ..errors import Error, ShapeError


def f32(x):
    return x if x.dtype == np.float32 else x.astype(np.float32)


def contig(x):
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return np.asarray(x, order="C")


def ints(v):
    return tuple(int(e) for e in np.asarray(v).reshape(-1))


def opt_ints(v):
    """A tuple of ints, or None for an absent attribute."""
    return None if v is None else tuple(int(e) for e in np.asarray(v).reshape(-1))


def opset(node):
    return int(node.attrs.get("_opset", 13))


def axis_index(axis, rank):
    """A possibly negative axis as an index into `rank` axes; ShapeError when out of range."""
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def given(ins, i):
    """Whether optional input i is present."""
    return len(ins) > i and ins[i] is not None


def const_input(in_shapes, consts, i, what):
    """Input i's value at plan time: None when the input is omitted, ShapeError when unknown."""
    if len(in_shapes) <= i or in_shapes[i] is None:
        return None
    if i not in consts:
        raise ShapeError(f"{what} (input {i}) is not known at plan time")
    return consts[i]


def check_size(shape):
    """Refuse a computed output larger than any tensor the engine will allocate."""
    from ..ir.graph import check_shape
    try:
        check_shape(list(shape), "output")
    except Error as exc:
        raise ShapeError(str(exc)) from None


def check_2d(x, what="input"):
    from ..errors import UnsupportedOpError
    if x.ndim != 4:
        raise UnsupportedOpError(f"only 4-D (N,C,H,W) {what} is supported, got shape {tuple(x.shape)}")


def dummy(shape, dtype=np.float32):
    """A read-only array of `shape` that holds no memory (for shape-only evaluation)."""
    return np.broadcast_to(np.zeros((), dtype), tuple(shape))
