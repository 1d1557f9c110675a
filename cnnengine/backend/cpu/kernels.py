"""Compiled steps for the hot ops: arguments resolved once per plan.

The generic op table (cpu_ops) re-reads attributes and re-validates on every
call; for the ops that carry nearly all the time (Conv, Gemm, pooling,
elementwise, Concat) the planner compiles a closure that calls the C binding
directly with precomputed dims, flattened weights and a preallocated output
buffer from the memory plan. The first run at each signature goes through
cpu_ops (and therefore through cnnengine.functional's validation), so these
closures only ever see shapes that were checked.

A runner is `run(ins, out, threads) -> output array`; `out` is a buffer of
the output's shape or None (allocate). A runner with `bind(ins, out) ->
(BoundStep or None, output)` can be bound once per arena to buffers whose
address never changes and then run inside a program (_kernels.Program, the
executor's fast path); bind checks every size, and returns None for a view
(no kernel to run). compile_step tags it with `kernel`:
"C" (it calls a C kernel), "shape" (it moves no data: a reshape or a view)
or "numpy" (a NumPy copy); `cnnengine bench --layers` shows the tag.
"""
import numpy as np

from ... import _kernels as K
from ...functional._common import ACTIVATIONS
from ...functional.elementwise import _OPS as BINOPS
from ...functional.elementwise import _collapse, _strides
from ...ops.epilogue import KERNEL_ACTS, activation_params
from ...ops import params_of
from ...ops._geometry import resolve_pads
from ...errors import UnsupportedOpError
from ...ops.layout import slice_index
from .kernels_block import block_window, compile_block
from .kernels_misc import COMPILERS as MISC_COMPILERS
from .layout import expand_small_groups, small_groups

_BIN = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


def _buf(out, shape):
    return out if out is not None else np.empty(shape, np.float32)


def compile_step(node, in_shapes, in_dtypes, out_shapes, static):
    """A runner for `node` at these shapes, or None to use the generic op."""
    if any(d is not None and d != np.float32 for d in in_dtypes[:1]):
        return None
    fn = _COMPILERS.get(node.op)
    if fn is None:
        return None
    if node.op in _LAYOUT_OPS:   # made by backend/cpu/layout.py: no generic op to fall back to
        return _tagged(fn(node, in_shapes, in_dtypes, out_shapes[0], static), node.op)
    try:
        return _tagged(fn(node, in_shapes, in_dtypes, out_shapes[0], static), node.op)
    except (KeyError, ValueError, TypeError, IndexError):
        return None


def _tagged(run, op):
    if run is not None and not hasattr(run, "kernel"):
        run.kernel = _NOT_C.get(op, "C")
    return run


def _act_code(p):
    """The kernels' epilogue (code, alpha, beta) of params with a fused activation."""
    return (ACTIVATIONS[p.act] if p.act else 0), float(p.act_alpha), float(p.act_beta)


def _conv(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    if node.inputs[1] not in static or len(shapes[0]) != 4:
        return None
    w = np.ascontiguousarray(static[node.inputs[1]], dtype=np.float32)
    b = None
    if len(node.inputs) > 2 and node.inputs[2]:
        if node.inputs[2] not in static:
            return None
        b = np.ascontiguousarray(static[node.inputs[2]], dtype=np.float32).reshape(-1)
    has_res = len(node.inputs) > 3 and node.inputs[3]
    if has_res and (tuple(shapes[3]) != tuple(oshape) or dtypes[3] != np.float32):
        return None
    if len(node.inputs) > 4 and node.inputs[4]:   # a fused gate: cpu_ops scales x first
        return None
    dims = conv_dims(p, shapes[0], w.shape, oshape)
    act, alpha, beta = _act_code(p)
    oshape = tuple(oshape)
    # weights packed once per plan for the ISA active now (cnn_conv2d_pack_f32)
    pk = K.PackedConv2d(w.reshape(-1), dims, act, alpha, beta)

    def run(ins, out, t):
        y = _buf(out, oshape)
        res = ins[3].reshape(-1) if has_res else None
        pk.run(ins[0].reshape(-1), b, res, y.reshape(-1), t)
        return y
    return run


def conv_dims(p, in_shape, w_shape, oshape):
    """The kernels' conv dims tuple (see _k_conv.pxi) of ConvParams p."""
    n, c, h, wd = in_shape
    k, _, kh, kw = w_shape
    strides, dil = p.strides, p.dilations
    pads = resolve_pads(p.auto_pad, p.pads, (h, wd), (kh, kw), strides, dil)
    return (n, c, h, wd, k, kh, kw, strides[0], strides[1], dil[0], dil[1], *pads,
            int(p.group), oshape[2], oshape[3])


def _conv_nchwc(node, shapes, dtypes, oshape, static):
    """Blocked conv (backend/cpu/layout.py): input blocked or, for a stem, NCHW."""
    p = params_of(node)
    xs = shapes[0]
    in_shape = tuple(xs) if p.in_nchw else (xs[0], p.channels, xs[2], xs[3])
    w = np.ascontiguousarray(static[node.inputs[1]], dtype=np.float32)
    b = None
    if len(node.inputs) > 2 and node.inputs[2]:
        b = np.ascontiguousarray(static[node.inputs[2]], dtype=np.float32).reshape(-1)
    has_res = len(node.inputs) > 3 and bool(node.inputs[3])
    has_gate = len(node.inputs) > 4 and bool(node.inputs[4])   # y = conv(x * gate)
    n, cb, oh, ow, _ = oshape
    dims = conv_dims(p.conv, in_shape, w.shape, (n, w.shape[0], oh, ow))
    g = dims[15]
    act, alpha, beta = _act_code(p.conv)
    try:
        # groups of 2, 4 or 8 channels: AVX-512 interleaves them (csrc/ops/nchwc_grouped.c)
        pk = K.ConvNCHWc(w.reshape(-1), b, dims, act, alpha, beta, bool(p.in_nchw))
    except UnsupportedOpError:
        if not small_groups(in_shape[1], w.shape[0], g):
            raise
        w = expand_small_groups(w, g)
        dims = dims[:15] + (in_shape[1] // 8,) + dims[16:]
        pk = K.ConvNCHWc(w.reshape(-1), b, dims, act, alpha, beta, bool(p.in_nchw))
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        pk.run(ins[0], ins[3] if has_res else None, y, t)
        return y
    run.bind = lambda ins, out: (K.bind_conv(pk, ins[0], ins[3] if has_res else None, out), out)

    pshape = (n, cb, 1, 1, 8)
    # a grouped conv this CPU does not interleave (no AVX-512) pools in a pass
    in_conv = [True]

    def run_pooled(ins, out, t):
        # and the mean over the plane (layout._pool_in_conv): a second
        # output, small, made per run so that concurrent runs stay apart
        y, pool = _buf(out, oshape), np.empty(pshape, np.float32)
        if in_conv[0]:
            try:
                pk.run_pooled(ins[0], ins[3] if has_res else None, y, pool, t)
                return y, pool
            except UnsupportedOpError:
                in_conv[0] = False
        pk.run(ins[0], ins[3] if has_res else None, y, t)
        K.global_pool_nchwc(y.reshape(-1), pool.reshape(-1), n, w.shape[0], oh * ow, False, t)
        return y, pool

    def run_gated(ins, out, t):
        # the kernel scales the activations (planes smaller than K) or the
        # weights, each thread its own copy of what it reads
        y = _buf(out, oshape)
        pk.run_scaled(ins[0].reshape(-1), ins[4].reshape(-1), ins[3].reshape(-1) if has_res else None,
                      y.reshape(-1), t)
        return y

    def bind_pooled(ins, out):
        pool = np.empty(pshape, np.float32)     # one per arena
        return K.bind_conv(pk, ins[0], ins[3] if has_res else None, out, pool=pool), (out, pool)
    run_pooled.bind = bind_pooled
    run_gated.bind = lambda ins, out: (K.bind_conv(pk, ins[0], ins[3] if has_res else None, out, s=ins[4]),
                                       out)

    if p.pre is not None:
        return _conv_pre(pk, p.pre, in_shape[1], has_res, oshape)
    if len(node.outputs) > 1:
        return run_pooled
    if not has_gate:
        run.pack, run.dims = pk, dims      # for window runs (conv_window)
        return run
    return run_gated


def _conv_pre(pk, pre, c, has_res, oshape):
    """conv(act(x * scale + shift)) (layout.fuse_affines): the C driver
    normalises each thread's input chunks as it reads them."""
    cb = (c + 7) // 8
    scale, shift = np.zeros(cb * 8, np.float32), np.zeros(cb * 8, np.float32)
    scale[:c], shift[:c] = pre.scale, pre.shift
    act = _act_code(pre)

    def run(ins, out, t):
        y = _buf(out, oshape)
        pk.run_affine(ins[0].reshape(-1), scale, shift, ins[3].reshape(-1) if has_res else None,
                      y.reshape(-1), t, *act)
        return y
    run.bind = lambda ins, out: (K.bind_conv(pk, ins[0], ins[3] if has_res else None, out,
                                             pre=(scale, shift) + act), out)
    return run


def conv_window(plan_runner, node):
    """A runner of a blocked conv over windows of its map, with the weights
    its plan step packed: node is the step's node with the window's params
    (OpDef.cropped); the window's size comes from the input at each call."""
    if node.op == "cnn.BlockNCHWc":
        return block_window(plan_runner, node)
    pk = getattr(plan_runner, "pack", None)
    if pk is None or node.op != "cnn.ConvNCHWc" or params_of(node).pre is not None:
        return None
    p = params_of(node)
    c = p.conv
    _, ch, _, _, k, kh, kw, sh, sw, dh, dw, _, _, _, _, groups, _, _ = plan_runner.dims
    has_res = len(node.inputs) > 3 and bool(node.inputs[3])
    ocb = (k + 7) // 8

    def run(ins, out, t):
        n, _, h, w = ins[0].shape[:4]
        pt, pl, pb, pr = resolve_pads(c.auto_pad, c.pads, (h, w), (kh, kw), (sh, sw), (dh, dw))
        oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
        ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
        y = _buf(out, (n, ocb, oh, ow, 8))
        pk.run_window(ins[0], ins[3] if has_res else None, y,
                      (n, ch, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, oh, ow), t)
        return y
    return run


def _to_nchwc(node, shapes, dtypes, oshape, static):
    n, c, h, w = shapes[0]
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.nchw_to_nchwc(ins[0].reshape(-1), y.reshape(-1), n, c, h * w, t)
        return y
    run.bind = lambda ins, out: (K.bind_layout(True, ins[0], out, n, c, h * w), out)
    return run


def _to_nchw(node, shapes, dtypes, oshape, static):
    n, c, h, w = tuple(oshape) + (1,) * (4 - len(oshape))     # (N, C): a pooled (N, C, 1, 1)
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.nchwc_to_nchw(ins[0].reshape(-1), y.reshape(-1), n, c, h * w, t)
        return y
    run.bind = lambda ins, out: (K.bind_layout(False, ins[0], out, n, c, h * w), out)
    return run


def _global_pool_nchwc(node, shapes, dtypes, oshape, static):
    n, _, h, w, _ = shapes[0]
    p = params_of(node)
    c, is_max = p.channels, p.is_max
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.global_pool_nchwc(ins[0].reshape(-1), y.reshape(-1), n, c, h * w, is_max, t)
        return y
    run.bind = lambda ins, out: (K.bind_global_pool(ins[0], out, n, c, h * w, is_max), out)
    return run


def _scale_nchwc(node, shapes, dtypes, oshape, static):
    n, _, h, w, _ = oshape
    c = params_of(node).channels
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.nchwc_scale(ins[0].reshape(-1), ins[1].reshape(-1), y.reshape(-1), n, c, h * w, t)
        return y
    run.bind = lambda ins, out: (K.bind_scale(ins[0], ins[1], out, n, c, h * w), out)
    return run


def _gather_nchwc(node, shapes, dtypes, oshape, static):
    n, _, h, w, _ = oshape
    p = params_of(node)
    cs = np.array(p.sizes, np.int64)
    src_in, src_ch = np.array(p.src_in, np.int32), np.array(p.src_ch, np.int64)
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.nchwc_gather([x.reshape(-1) for x in ins], cs, src_in, src_ch, y.reshape(-1), n, h * w, t)
        return y
    run.bind = lambda ins, out: (K.bind_gather(list(ins), cs, src_in, src_ch, out, n, h * w), out)
    return run


def _affine_nchwc(node, shapes, dtypes, oshape, static):
    n, cb, h, w, _ = oshape
    p = params_of(node)
    c = p.channels
    scale = np.zeros(cb * 8, np.float32)
    shift = np.zeros(cb * 8, np.float32)
    scale[:c], shift[:c] = p.scale, p.shift
    act, alpha, beta = _act_code(p)
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.nchwc_affine(ins[0].reshape(-1), scale, shift, y.reshape(-1), n, c, h * w, t, act,
                       alpha, beta)
        return y
    run.bind = lambda ins, out: (K.bind_affine(ins[0], scale, shift, out, n, c, h * w, act, alpha, beta),
                                 out)
    return run


def _channel_norm(node, shapes, dtypes, oshape, static):
    """cnn.ChannelNorm (NCHW) or its blocked twin: scale and bias padded to
    whole blocks for the blocked kernel (zero past C)."""
    blocked = node.op == "cnn.ChannelNormNCHWc"
    if len(node.inputs) != 3 or not all(i in static for i in node.inputs[1:]) or \
            len(shapes[0]) != (5 if blocked else 4):
        return None
    p = params_of(node)
    n, _, h, w = shapes[0][:4]
    c = p.channels if blocked else shapes[0][1]
    cp = (c + 7) // 8 * 8 if blocked else c
    gamma, beta = np.zeros(cp, np.float32), np.zeros(cp, np.float32)
    gamma[:c] = np.asarray(static[node.inputs[1]], np.float32).reshape(-1)
    beta[:c] = np.asarray(static[node.inputs[2]], np.float32).reshape(-1)
    eps = float(p.epsilon)
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.channel_norm(ins[0].reshape(-1), gamma, beta, y.reshape(-1), n, c, h * w, blocked, eps, t)
        return y
    run.bind = lambda ins, out: (K.bind_channel_norm(ins[0], gamma, beta, out, n, c, h * w, blocked, eps),
                                 out)
    return run


def _pool_nchwc(node, shapes, dtypes, oshape, static):
    bp = params_of(node)
    p = bp.pool
    n, _, h, w, _ = shapes[0]
    c = bp.channels
    kernel, strides, dil, pads = _pool_geometry(p, (h, w))
    is_max = bp.kind == "MaxPool"
    cip = bool(p.count_include_pad)
    out_hw = tuple(oshape[2:4])
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.pool2d_nchwc(ins[0].reshape(-1), y.reshape(-1), (n, c, h, w), kernel, strides, dil,
                       pads, out_hw, is_max, cip, t)
        return y
    run.bind = lambda ins, out: (K.bind_pool(ins[0], out, (n, c, h, w), kernel, strides, dil, pads, out_hw,
                                             is_max, cip), out)
    return run


def _gemm(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    if len(shapes[0]) != 2 or p.trans_a or node.inputs[1] not in static:
        return None
    if float(p.alpha) != 1.0:
        return None
    w = np.asarray(static[node.inputs[1]], dtype=np.float32)     # no copy when already float32
    w = np.ascontiguousarray(w if p.trans_b else w.T)        # (N, K)
    b = None
    if len(node.inputs) > 2 and node.inputs[2]:
        c = static.get(node.inputs[2])
        if c is None or float(p.beta) != 1.0 or c.size != w.shape[0] or \
                (c.ndim == 2 and c.shape[0] != 1):
            return None
        b = np.ascontiguousarray(c, dtype=np.float32).reshape(-1)
    act, alpha, beta = _act_code(p)
    m, kdim = shapes[0]
    nout = w.shape[0]
    wf = w.reshape(-1)
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.linear(ins[0].reshape(-1), wf, b, y.reshape(-1), m, kdim, nout, act, alpha, beta, t)
        return y
    run.bind = lambda ins, out: (K.bind_linear(ins[0], wf, b, out, m, kdim, nout, act, alpha, beta), out)
    return run


def _pool_geometry(p, in_hw):
    """(kernel, strides, dilations, pads) of 2-D PoolParams at an input size."""
    kernel = tuple(p.kernel_shape)
    strides = tuple(p.strides or (1, 1))
    dil = tuple(p.dilations or (1, 1))
    return kernel, strides, dil, tuple(resolve_pads(p.auto_pad, p.pads, in_hw, kernel, strides, dil))


def _pool(node, shapes, dtypes, oshape, static):
    p = params_of(node)
    if len(shapes[0]) != 4 or p.indices or len(p.kernel_shape) != 2:
        return None
    kernel, strides, dil, pads = _pool_geometry(p, shapes[0][2:])
    shape = tuple(shapes[0])
    out_hw = tuple(oshape[2:])
    oshape = tuple(oshape)
    if node.op == "MaxPool":
        def run(ins, out, t):
            y = _buf(out, oshape)
            K.max_pool2d(ins[0].reshape(-1), y.reshape(-1), shape, kernel, strides, dil, pads, out_hw, t)
            return y
    else:
        if dil != (1, 1):
            return None
        cip = bool(p.count_include_pad)

        def run(ins, out, t):
            y = _buf(out, oshape)
            K.avg_pool2d(ins[0].reshape(-1), y.reshape(-1), shape, kernel, strides, dil, pads, out_hw,
                         cip, t)
            return y
    return run


def _global_pool(node, shapes, dtypes, oshape, static):
    if len(shapes[0]) != 4:
        return None
    n, c, h, w = shapes[0]
    fn = K.global_avg_pool if node.op == "GlobalAveragePool" else K.global_max_pool
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        fn(ins[0].reshape(-1), y.reshape(-1), n * c, h * w, t)
        return y
    return run


def _act(node, shapes, dtypes, oshape, static):
    params = activation_params(node, static)
    if params is None:
        return None
    name, alpha, beta = params
    code = ACTIVATIONS[name]
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.activation(code, alpha, beta, ins[0].reshape(-1), y.reshape(-1), t)
        return y
    run.bind = lambda ins, out: (K.bind_activation(code, alpha, beta, ins[0], out), out)
    return run


def _binary(node, shapes, dtypes, oshape, static):
    if params_of(node).act or len(dtypes) != 2 or dtypes[1] != np.float32:
        return None
    sa, sb = tuple(shapes[0]), tuple(shapes[1])
    oshape = tuple(oshape)
    dims, stra, strb = _collapse(oshape, _strides(sa, oshape), _strides(sb, oshape))
    if len(dims) > 8:
        return None
    code = BINOPS[_BIN[node.op]]
    const_b = static.get(node.inputs[1])
    const_a = static.get(node.inputs[0])
    ca = None if const_a is None else np.ascontiguousarray(const_a, dtype=np.float32).reshape(-1)
    cb = None if const_b is None else np.ascontiguousarray(const_b, dtype=np.float32).reshape(-1)

    def run(ins, out, t):
        y = _buf(out, oshape)
        xa = ca if ca is not None else ins[0].reshape(-1)
        xb = cb if cb is not None else ins[1].reshape(-1)
        K.binary(code, dims, stra, strb, xa, xb, y.reshape(-1), t)
        return y
    run.bind = lambda ins, out: (K.bind_binary(code, dims, stra, strb, ca if ca is not None else ins[0],
                                               cb if cb is not None else ins[1], out), out)
    return run


def _concat(node, shapes, dtypes, oshape, static):
    if any(d != np.float32 for d in dtypes) or any(i in static for i in node.inputs):
        return None
    rank = len(oshape)
    axis = int(node.attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    outer = int(np.prod(oshape[:axis]))
    inner = int(np.prod(oshape[axis + 1:]))
    sizes = [int(s[axis]) for s in shapes]
    keep = [i for i, s in enumerate(sizes) if s > 0]
    sizes = [sizes[i] for i in keep]
    oshape = tuple(oshape)

    def run(ins, out, t):
        y = _buf(out, oshape)
        K.concat([ins[i].reshape(-1) for i in keep], sizes, y.reshape(-1), outer, inner, t)
        return y
    run.bind = lambda ins, out: (K.bind_concat([ins[i] for i in keep], sizes, out, outer, inner), out)
    return run


def _view(node, shapes, dtypes, oshape, static):
    """Reshape, Flatten, Squeeze, Unsqueeze at a fixed input shape are one
    reshape to the output shape the plan recorded: the generic ops spend
    4-10 us per call re-deriving it from their shape inputs (ShuffleNetV2
    runs 32 Reshapes)."""
    if any(i and i not in static for i in node.inputs[1:]):
        return None
    oshape = tuple(oshape)

    def run(ins, out, t):
        return ins[0].reshape(oshape)
    run.bind = lambda ins, out: (None, ins[0].reshape(oshape))
    return run


def _slice(node, shapes, dtypes, oshape, static):
    """Slice with constant bounds: the index computed once (a view where the
    generic op gives one, a copy where it copies)."""
    if any(i and i not in static for i in node.inputs[1:]):
        return None
    index = slice_index(node, [None] + [static.get(i) if i else None for i in node.inputs[1:]],
                        tuple(shapes[0]))

    def run(ins, out, t):
        y = ins[0][index]
        return y if y.flags.c_contiguous else np.ascontiguousarray(y)
    probe = np.empty(tuple(shapes[0]), np.uint8)[index]
    run.kernel = "shape" if probe.flags.c_contiguous else "numpy"
    return run


_COMPILERS = {"Conv": _conv, "Gemm": _gemm, "MaxPool": _pool, "AveragePool": _pool,
              "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool, "Concat": _concat}
_LAYOUT_OPS = {"cnn.ConvNCHWc": _conv_nchwc, "cnn.BlockNCHWc": compile_block, "cnn.ToNCHWc": _to_nchwc, "cnn.ToNCHW": _to_nchw,
               "cnn.GlobalPoolNCHWc": _global_pool_nchwc, "cnn.ScaleNCHWc": _scale_nchwc,
               "cnn.GatherNCHWc": _gather_nchwc,
               "cnn.AffineNCHWc": _affine_nchwc, "cnn.PoolNCHWc": _pool_nchwc,
               "cnn.ChannelNormNCHWc": _channel_norm}
_COMPILERS.update(_LAYOUT_OPS)
_COMPILERS.update({op: _view for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")})
_COMPILERS["Slice"] = _slice
_COMPILERS["cnn.ChannelNorm"] = _channel_norm
# compilers whose runners call no C kernel (the rest do)
_NOT_C = {"Reshape": "shape", "Flatten": "shape", "Squeeze": "shape", "Unsqueeze": "shape"}
_COMPILERS.update({op: _act for op in KERNEL_ACTS})
_COMPILERS.update({op: _binary for op in _BIN})
_COMPILERS.update(MISC_COMPILERS)
