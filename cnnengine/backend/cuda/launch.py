"""Host-side launch arithmetic of the CUDA kernels, pure Python (tested
without a GPU: tests/cuda/test_launch.py).

The kernel argument structs mirror csrc/cuda/*.cu field for field (ctypes
lays them out with the C rules the device compiler uses); grid sizes follow
each kernel's tiling; shapes are collapsed so broadcasting and strided
copies need at most MAX_DIMS axes.
"""
import ctypes

import numpy as np

MAX_DIMS = 8
ELT_THREADS = 256          # elementwise kernels: grid-stride loops of 256 threads
ROW_WARPS = 8              # reductions: one warp per output row, 8 per block
TILE_M, TILE_N = 64, 64    # conv.cu BM, BN
IGEMM_THREADS = 256        # conv.cu THREADS
TF32_THREADS = 128         # conv.cu TTHREADS
MAX_GRID_X = 2 ** 31 - 1
MAX_GRID_YZ = 65535

_I64 = ctypes.c_longlong


class ConvShape(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int) for f in
                ("n", "c", "h", "w", "k", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl", "groups", "oh", "ow")]


class Epilogue(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_uint64), ("shift", ctypes.c_uint64), ("residual", ctypes.c_uint64),
                ("act", ctypes.c_int), ("alpha", ctypes.c_float), ("beta", ctypes.c_float)]


class PoolShape(ctypes.Structure):
    _fields_ = [("nc", _I64)] + [(f, ctypes.c_int) for f in
                                ("h", "w", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl", "pb", "pr", "oh", "ow",
                                 "count_include_pad")]


class Dims(ctypes.Structure):
    _fields_ = [("ndim", ctypes.c_int), ("size", _I64 * MAX_DIMS), ("sa", _I64 * MAX_DIMS),
                ("sb", _I64 * MAX_DIMS)]


class PadDims(ctypes.Structure):
    _fields_ = [("ndim", ctypes.c_int), ("out", _I64 * MAX_DIMS), ("inp", _I64 * MAX_DIMS),
                ("begin", _I64 * MAX_DIMS), ("stride", _I64 * MAX_DIMS)]


def cdiv(a, b):
    return -(-int(a) // int(b))


def elementwise_grid(n, sms=132):
    """(grid, block) of a grid-stride loop over n elements: enough blocks to
    fill the device several times over, never more than there is work for."""
    blocks = max(1, min(cdiv(n, ELT_THREADS), sms * 32, MAX_GRID_X))
    return (blocks, 1, 1), (ELT_THREADS, 1, 1)


def rows_grid(rows):
    """(grid, block) of a one-warp-per-row kernel."""
    return (max(1, cdiv(rows, ROW_WARPS)), 1, 1), (32 * ROW_WARPS, 1, 1)


def conv_grid(s, tf32=False):
    """(grid, block) of conv.cu's implicit GEMM: a block per TILE_N output
    pixels (all images) x TILE_M output channels of one group."""
    npix = s.n * s.oh * s.ow
    grid = (cdiv(npix, TILE_N), cdiv(s.k // s.groups, TILE_M), s.groups)
    if grid[0] > MAX_GRID_X or grid[1] > MAX_GRID_YZ or grid[2] > MAX_GRID_YZ:
        raise ValueError(f"convolution too large for one launch: grid {grid}")
    return grid, ((TF32_THREADS if tf32 else IGEMM_THREADS), 1, 1)


def conv_shape(x_shape, w_shape, pads, strides, dilations, groups, out_hw, transpose=False):
    """The ConvShape of a conv (w: K, C/g, kh, kw) or a transposed conv
    (transpose: w is C, K/g, kh, kw)."""
    n, c, h, w = (int(v) for v in x_shape)
    k = int(w_shape[1]) * groups if transpose else int(w_shape[0])
    for v in (n * c * h * w, k * int(out_hw[0]) * int(out_hw[1]) * n):
        if v >= 2 ** 31 * 64:
            raise ValueError("tensor too large for the int32 pixel arithmetic of conv.cu")
    return ConvShape(n, c, h, w, k, int(w_shape[2]), int(w_shape[3]), int(strides[0]), int(strides[1]),
                     int(dilations[0]), int(dilations[1]), int(pads[0]), int(pads[1]), int(groups),
                     int(out_hw[0]), int(out_hw[1]))


def conv_kind(s, pads):
    """Which conv.cu kernel: "depthwise" (one input channel per group),
    "1x1" (a plain GEMM: 1x1, stride 1, no padding) or "igemm"."""
    if s.groups == s.c and s.groups > 1 and s.k % s.c == 0:
        return "depthwise"
    if s.kh == 1 and s.kw == 1 and s.sh == 1 and s.sw == 1 and not any(pads):
        return "1x1"
    return "igemm"


def igemm_weights(w, groups):
    """Conv weights (K, C/g, kh, kw) as the implicit GEMM reads them:
    (groups, C/g*kh*kw, K/g), contiguous along the output channels."""
    w = np.asarray(w, np.float32)
    k = w.shape[0]
    kg = k // groups
    return np.ascontiguousarray(w.reshape(groups, kg, -1).transpose(0, 2, 1))


def broadcast_strides(shape, out_shape):
    """Element strides of a C-contiguous `shape` read as `out_shape` (NumPy
    broadcasting: 0 on axes it repeats)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    strides, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = 0 if (shape[i] == 1 and out_shape[i] != 1) else acc
        acc *= shape[i]
    return strides


def collapse(sizes, *stride_lists):
    """Merge neighbouring axes that every operand walks contiguously and drop
    axes of size 1: (sizes, [strides per operand]) with as few axes as possible."""
    keep = [i for i, s in enumerate(sizes) if s != 1]
    sizes = [int(sizes[i]) for i in keep]
    strides = [[int(st[i]) for i in keep] for st in stride_lists]
    out_s, out_st = [], [[] for _ in strides]
    for i, n in enumerate(sizes):
        if out_s and all(st[i] * n == o[-1] for st, o in zip(strides, out_st)):
            out_s[-1] *= n
            for st, o in zip(strides, out_st):
                o[-1] = st[i]
            continue
        out_s.append(n)
        for st, o in zip(strides, out_st):
            o.append(st[i])
    if not out_s:
        out_s, out_st = [1], [[0] for _ in strides]
    return out_s, out_st


def dims(sizes, sa, sb=None):
    """A Dims struct (ValueError past MAX_DIMS axes)."""
    if len(sizes) > MAX_DIMS:
        raise ValueError(f"{len(sizes)} axes after collapsing (at most {MAX_DIMS})")
    d = Dims()
    d.ndim = len(sizes)
    sb = sb if sb is not None else [0] * len(sizes)
    for i, (n, a, b) in enumerate(zip(sizes, sa, sb)):
        d.size[i], d.sa[i], d.sb[i] = int(n), int(a), int(b)
    return d


def binary_dims(a_shape, b_shape, out_shape):
    """The Dims of a broadcasting binary op."""
    out_shape = tuple(out_shape)
    sizes, (sa, sb) = collapse(out_shape, broadcast_strides(a_shape, out_shape), broadcast_strides(b_shape, out_shape))
    return dims(sizes, sa, sb)


def contiguous_strides(shape):
    strides, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = acc
        acc *= int(shape[i])
    return strides


def view_of(result, base):
    """(offset, strides) in elements of `result`, a NumPy view into `base`
    (how a Slice, Transpose or Expand reads its input), or None when it is a copy."""
    if not isinstance(result, np.ndarray) or not np.shares_memory(result, base) or result.size == 0:
        return None
    item = base.itemsize
    off = result.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if off % item or any(s % item for s in result.strides):
        return None
    return off // item, [s // item for s in result.strides]


def copy_dims(shape, src_strides, dst_strides):
    """Dims of strided_copy over `shape` (collapsed)."""
    sizes, (sa, sb) = collapse(shape, src_strides, dst_strides)
    return dims(sizes, sa, sb)


def concat_parts(shapes, axis):
    """Per input of a Concat along `axis`: (dst offset in elements, dst strides)."""
    out_shape = list(shapes[0])
    out_shape[axis] = sum(int(s[axis]) for s in shapes)
    dst = contiguous_strides(out_shape)
    parts, at = [], 0
    for s in shapes:
        parts.append((at * dst[axis], dst))
        at += int(s[axis])
    return parts


def axis_split(shape, axes):
    """(outer, len, inner) when `axes` are contiguous in shape, else None."""
    axes = sorted(a % len(shape) for a in axes) if len(shape) else []
    if not axes:
        return None
    if axes != list(range(axes[0], axes[-1] + 1)):
        return None
    prod = lambda s: int(np.prod(s)) if len(s) else 1
    return prod(shape[:axes[0]]), prod(shape[axes[0]:axes[-1] + 1]), prod(shape[axes[-1] + 1:])


def pad_dims(in_shape, begin, end):
    """(PadDims, input offset in elements, output shape): negative pads crop,
    taken as an offset into the input and smaller input sizes."""
    rank = len(in_shape)
    if rank > MAX_DIMS:
        raise ValueError(f"{rank} axes (at most {MAX_DIMS})")
    src = contiguous_strides(in_shape)
    d = PadDims()
    d.ndim = rank
    off = 0
    out = []
    for i, (n, b, e) in enumerate(zip(in_shape, begin, end)):
        crop0, crop1 = max(-b, 0), max(-e, 0)
        size = int(n) - crop0 - crop1
        off += crop0 * src[i]
        d.inp[i], d.begin[i], d.stride[i] = size, max(b, 0), src[i]
        d.out[i] = size + max(b, 0) + max(e, 0)
        out.append(int(d.out[i]))
    return d, off, tuple(out)


def resize_taps(weights):
    """(indices int32 (n_out, T), weights float32 (n_out, T)) of an (n_out, n_in)
    interpolation matrix: the nonzero taps of each row, padded with zero weights."""
    w = np.asarray(weights, np.float64)
    nz = [np.nonzero(row)[0] for row in w]
    t = max(1, max((len(z) for z in nz), default=1))
    idx = np.zeros((w.shape[0], t), np.int32)
    wt = np.zeros((w.shape[0], t), np.float32)
    for r, z in enumerate(nz):
        if len(z):
            idx[r, :len(z)] = z
            idx[r, len(z):] = z[0]
            wt[r, :len(z)] = w[r, z]
    return idx, wt
