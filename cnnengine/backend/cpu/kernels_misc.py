"""Compiled steps for the less common ops of float CNNs: LRN, Pad,
Resize, ConvTranspose, spatial ReduceMean/ReduceMax on NCHW, Expand,
LayerNormalization over the last axis.

Their generic ops reach the same C kernels through cnnengine.functional,
re-deriving and re-checking every argument on each run; here the
arguments are resolved once per plan (see kernels.py). A compiler returns
None where the op's generic path does something the kernel does not
(negative pads, cubic resize, ...), and that step keeps its reference.
"""
import numpy as np

from ... import _kernels as K
from ...functional.elementwise import _OPS as BINOPS
from ...functional.elementwise import _collapse, _strides
from ...ops import params_of
from ...ops.conv import _transpose_geometry
from ...ops.resample import _PAD_MODES, _pad_amounts, _resize_plan
from ...ops.reduce import _axes


def _buf(out, shape):
    return out if out is not None else np.empty(shape, np.float32)


def _flat(x):
    return x.reshape(-1)


def _lrn(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    if len(shapes[0]) != 4:
        return None
    n, c, h, w = shapes[0]
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.lrn(_flat(ins[0]), _flat(y), n, c, h * w, p.size, p.alpha, p.beta, p.bias, t)
        return y
    return run


def _pad(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    if len(shapes[0]) != 4 or p.mode not in _PAD_MODES[:3] or \
            any(i and i not in static for i in node.inputs[1:]):
        return None
    ins = [None] + [static.get(i) if i else None for i in node.inputs[1:]]
    ins += [None] * (4 - len(ins))
    begin, end = _pad_amounts(p, ins, 4)
    if begin[:2] != [0, 0] or end[:2] != [0, 0] or min(begin + end) < 0:
        return None
    value = p.value
    if value is None:
        v = ins[2]
        value = float(np.asarray(v).reshape(-1)[0]) if v is not None and np.size(v) else 0.0
    n, c, h, w = shapes[0]
    if min(n * c, h, w) < 1:
        return None
    pads, mode, value = (begin[2], begin[3], end[2], end[3]), K.PAD_MODES[p.mode], float(value)
    if p.mode == "reflect" and (max(pads[0], pads[2]) >= h or max(pads[1], pads[3]) >= w):
        return None            # the generic op names the error
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.pad(_flat(ins[0]), _flat(y), n * c, h, w, pads, mode, value, t)
        return y
    return run


def _resize(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    x = tuple(shapes[0])
    if len(x) != 4 or any(i and i not in static for i in node.inputs[1:]):
        return None
    ins = [None] + [static.get(i) if i else None for i in node.inputs[1:]]
    ins += [None] * (4 - len(ins))
    size, scale, _ = _resize_plan(p, x, ins)
    coord = p.coordinate_transformation_mode
    moved = {ax for ax in range(4) if size[ax] != x[ax] or scale[ax] != 1.0}
    if not moved <= {2, 3} or p.mode == "cubic" or p.antialias or min(size) < 1 or min(x) < 1 or \
            coord not in K.RESIZE_COORDS:
        return None
    if coord == "align_corners" and not all(scale[i] * x[i] == size[i] for i in (2, 3)):
        return None             # as the generic op's choice of its C path
    n, c, h, w = x
    oh, ow = size[2], size[3]
    mode = K.RESIZE_MODES["linear" if p.mode == "linear" else "nearest"]
    rounding = K.RESIZE_ROUNDINGS[p.nearest_mode or "floor"]
    sh, sw = float(scale[2]), float(scale[3])
    ccode = K.RESIZE_COORDS[coord]
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.resize(_flat(ins[0]), _flat(y), n * c, h, w, oh, ow, mode, ccode, rounding, sh, sw, t)
        return y
    return run


def _conv_transpose(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    ins = node.inputs
    if len(shapes[0]) != 4 or ins[1] not in static or (len(ins) > 2 and ins[2] and ins[2] not in static):
        return None
    w = np.ascontiguousarray(static[ins[1]], dtype=np.float32)
    if w.ndim != 4:
        return None
    b = None
    if len(ins) > 2 and ins[2]:
        b = np.ascontiguousarray(static[ins[2]], dtype=np.float32).reshape(-1)
    (kh, kw), pads = _transpose_geometry(p, tuple(shapes[0]), w.shape)
    if min(pads) < 0 or (kh, kw) != w.shape[2:]:
        return None
    n, c, h, wd = shapes[0]
    oshape = tuple(oshape)
    dims = (n, c, h, wd, oshape[1], kh, kw, p.strides[0], p.strides[1], p.dilations[0], p.dilations[1],
            *pads, int(p.group), oshape[2], oshape[3])
    wf = _flat(w)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.conv_transpose2d(_flat(ins[0]), wf, b, _flat(y), dims, t)
        return y
    return run


def _spatial_reduce(node, shapes, dtypes, oshape, static):
    """ReduceMean / ReduceMax over H and W of an NCHW value: a global pool."""
    p = params_of(node)
    if node.op not in ("ReduceMean", "ReduceMax") or len(shapes[0]) != 4:
        return None
    axes_in = None
    if p.axes is None and len(node.inputs) > 1 and node.inputs[1]:
        if node.inputs[1] not in static:
            return None
        axes_in = static[node.inputs[1]]
    if _axes(p, axes_in, 4) != (2, 3):
        return None
    n, c, h, w = shapes[0]
    if h * w < 1:
        return None
    fn = K.global_avg_pool if node.op == "ReduceMean" else K.global_max_pool
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        fn(_flat(ins[0]), _flat(y), n * c, h * w, t)
        return y
    return run


_ONE = np.ones(1, np.float32)


def _expand(node, shapes, dtypes, oshape, static):
    """Expand as x * 1 broadcast by the binary kernel (exact for every float, NaN and -0 kept)."""
    if len(node.inputs) < 2 or node.inputs[1] not in static:
        return None
    sx, oshape = tuple(shapes[0]), tuple(oshape)
    if len(sx) > len(oshape) or 0 in oshape:
        return None
    dims, sa, sb = _collapse(oshape, _strides(sx, oshape), [0] * len(oshape))
    if len(dims) > 8:
        return None
    code = BINOPS["mul"]

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.binary(code, dims, sa, sb, _flat(ins[0]), _ONE, _flat(y), t)
        return y
    return run


def _layer_norm(node, shapes, dtypes, oshape, static):
    """LayerNormalization over the last axis only (a ConvNeXt head, a
    token norm): each row of `c` values is one pixel of the channel-norm
    kernel's NCHW with H = W = 1. Needs constant scale (and bias) of c values
    and no Mean/InvStdDev outputs."""
    p = params_of(node)
    x = tuple(shapes[0])
    if not x or p.axis not in (-1, len(x) - 1) or any(node.outputs[1:]):
        return None
    c = x[-1]
    rows = int(np.prod(x[:-1], dtype=np.int64))
    if rows < 1 or c < 1:
        return None
    names = (list(node.inputs[1:3]) + [""])[:2]
    consts = [static.get(i) if i else None for i in names]
    if consts[0] is None or (names[1] and consts[1] is None):
        return None
    gamma = np.ascontiguousarray(np.broadcast_to(np.asarray(consts[0], np.float32), (c,)))
    beta = (np.zeros(c, np.float32) if consts[1] is None else
            np.ascontiguousarray(np.broadcast_to(np.asarray(consts[1], np.float32), (c,))))
    eps = float(p.epsilon)
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.channel_norm(_flat(np.ascontiguousarray(ins[0])), gamma, beta, _flat(y), rows, c, 1, False, eps, t)
        return y
    return run


COMPILERS = {"LayerNormalization": _layer_norm, "LRN": _lrn, "Pad": _pad, "Resize": _resize, "ConvTranspose": _conv_transpose,
             "ReduceMean": _spatial_reduce, "ReduceMax": _spatial_reduce, "Expand": _expand}
