"""The kernel table: a plan step (op, typed params, shapes) -> a runner that
launches csrc/cuda kernels on the calling thread's stream.

A runner is `run(ins, out, threads) -> DeviceArray` (a tuple for Split):
`ins` hold DeviceArrays for values computed at run time (weights and other
plan constants are uploaded here, once, and ignored in `ins`), `out` the
step's buffer from the memory plan, or None to allocate one stream-ordered.
No runner allocates scratch, syncs or copies to the host, so a whole plan
can be captured as a CUDA graph (graphs.py). A step this table returns None
for runs its reference on the host (KERNEL_OPS / HOST_OPS list which is which).
"""
import ctypes

import numpy as np

from ... import ops
from ...functional._common import ACTIVATIONS
from ...ops import params_of
from ...ops._geometry import resolve_pads
from ...ops.epilogue import KERNEL_ACTS, activation_params
from . import driver as D
from . import launch as L

_F32 = np.dtype(np.float32)
UNARY = {"Abs": 0, "Neg": 1, "Exp": 2, "Log": 3, "Sqrt": 4, "Reciprocal": 5, "Floor": 6, "Ceil": 7,
         "Erf": 8, "Sin": 9, "Cos": 10, "Sign": 11, "Round": 12, "Softplus": 13, "Mish": 14, "Selu": 15}
U_SCALE, U_GELU_TANH = 16, 17
BINARY = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Pow": 4, "Max": 5, "Min": 6, "PRelu": 7}
REDUCE = {"ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3, "ReduceSumSquare": 4, "ReduceL2": 5}
VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
MOVES = ("Slice", "Transpose", "Expand", "Split", "DepthToSpace", "SpaceToDepth", "Tile", "Gather")


def P(a):
    """A device pointer argument (0 for None)."""
    return ctypes.c_uint64(0 if a is None else a.ptr)


def I64(v):
    return ctypes.c_longlong(int(v))


def I32(v):
    return ctypes.c_int(int(v))


def F32(v):
    return ctypes.c_float(float(v))


def _out(out, shape):
    return out if out is not None else D.empty(shape, D.stream())


def _go(fn, grid, block, *args):
    D.launch(fn, grid, block, args, D.stream())


def _elt(n):
    return L.elementwise_grid(n, D.device().sms)


def compile_step(be, node, in_shapes, in_dtypes, out_shapes, static):
    """A runner for `node` at these shapes, or None for the host reference."""
    fn = _COMPILERS.get(node.op)
    if fn is None:
        return None
    # every run-time input must be float32 (shape tensors and masks stay on the host)
    for name, dt in zip(node.inputs, in_dtypes):
        if name and name not in static and np.dtype(dt) != _F32:
            return None
    if any(0 in tuple(s) for s in out_shapes):
        return None    # empty outputs: nothing to launch (a grid cannot be empty); the reference makes them
    try:
        run = fn(be, node, [tuple(s) for s in in_shapes], [tuple(s) for s in out_shapes], static)
    except (ValueError, KeyError, TypeError, IndexError, NotImplementedError):
        return None    # a case the kernels do not take (too many axes, odd params): the reference runs it
    if run is not None and sum(1 for o in node.outputs if o) > getattr(run, "outputs", 1):
        return None    # e.g. Dropout's mask: an output the runner does not make
    return run


def _static_f32(be, static, name):
    """A plan constant on the device (uploaded once per backend), or None."""
    if not name:
        return None
    return be.constant(static[name], "f32")


def _runtime(node, static, i):
    return len(node.inputs) > i and bool(node.inputs[i]) and node.inputs[i] not in static


# ------------------------------------------------------------------ convolution
def _conv(be, node, shapes, oshapes, static):
    p = params_of(node)
    xs = shapes[0]
    if len(xs) != 4 or node.inputs[1] not in static or _runtime(node, static, 2):
        return None
    oshape = oshapes[0]
    w = np.asarray(static[node.inputs[1]], np.float32)
    kernel = tuple(p.kernel_shape or w.shape[2:])
    if kernel != tuple(w.shape[2:]):
        return None
    pads = resolve_pads(p.auto_pad, p.pads, xs[2:], kernel, p.strides, p.dilations)
    s = L.conv_shape(xs, w.shape, pads, p.strides, p.dilations, int(p.group), oshape[2:])
    has_res = _runtime(node, static, 3)
    if has_res and shapes[3] != tuple(oshape):
        return None          # a broadcasting residual: the reference adds it
    has_gate = _runtime(node, static, 4)
    if has_gate and int(np.prod(shapes[4])) != xs[0] * xs[1]:
        return None
    if len(node.inputs) > 3 and node.inputs[3] in static or len(node.inputs) > 4 and node.inputs[4] in static:
        return None
    bias = _static_f32(be, static, node.inputs[2] if len(node.inputs) > 2 else "")
    act = ACTIVATIONS[p.act] if p.act else 0
    alpha, beta = float(p.act_alpha), float(p.act_beta)
    kind = L.conv_kind(s, pads)
    tf32 = be.precision == "tf32" and kind != "depthwise"
    if kind == "depthwise":
        wd = be.constant(static[node.inputs[1]], "f32")
        fn = D.device().function("conv", "conv2d_depthwise")
        grid, block = _elt(s.n * s.k * s.oh * s.ow)
    else:
        wd = be.constant(static[node.inputs[1]], ("igemm", int(p.group)), lambda a: L.igemm_weights(a, int(p.group)))
        name = ("conv2d_1x1" if kind == "1x1" else "conv2d_igemm") + ("_tf32" if tf32 else "")
        fn = D.device().function("conv", name)
        grid, block = L.conv_grid(s, tf32)

    def run(ins, out, t):
        y = _out(out, oshape)
        ep = L.Epilogue(0, 0 if bias is None else bias.ptr, ins[3].ptr if has_res else 0, act, alpha, beta)
        _go(fn, grid, block, s, P(ins[0]), P(wd), P(ins[4] if has_gate else None), P(y), ep)
        return y
    run.kind = kind
    return run


def _conv_transpose(be, node, shapes, oshapes, static):
    from ...ops.conv import _transpose_geometry
    p = params_of(node)
    xs = shapes[0]
    if len(xs) != 4 or node.inputs[1] not in static or _runtime(node, static, 2):
        return None
    w = np.asarray(static[node.inputs[1]], np.float32)
    kernel, pads = _transpose_geometry(p, xs, w.shape)
    if tuple(kernel) != tuple(w.shape[2:]):
        return None
    oshape = oshapes[0]
    s = L.conv_shape(xs, w.shape, pads, p.strides, p.dilations, int(p.group), oshape[2:], transpose=True)
    wd = be.constant(static[node.inputs[1]], "f32")
    bias = _static_f32(be, static, node.inputs[2] if len(node.inputs) > 2 else "")
    fn = D.device().function("conv", "conv_transpose2d")
    grid, block = _elt(int(np.prod(oshape)))

    def run(ins, out, t):
        y = _out(out, oshape)
        ep = L.Epilogue(0, 0 if bias is None else bias.ptr, 0, 0, 0.0, 0.0)
        _go(fn, grid, block, s, P(ins[0]), P(wd), P(y), ep)
        return y
    return run


# ------------------------------------------------------------------- dense
def _dense_as_conv(be, rows, kdim, nout, wd, bias, act, alpha, beta, oshape):
    """y (rows, N) = x (rows, K) . W + b as a 1x1 conv of `rows` 1x1 images
    (wd: W as (K, N) on the device)."""
    s = L.conv_shape((rows, kdim, 1, 1), (nout, kdim, 1, 1), (0, 0, 0, 0), (1, 1), (1, 1), 1, (1, 1))
    tf32 = be.precision == "tf32"
    fn = D.device().function("conv", "conv2d_1x1_tf32" if tf32 else "conv2d_1x1")
    grid, block = L.conv_grid(s, tf32)

    def run(ins, out, t):
        y = _out(out, oshape)
        ep = L.Epilogue(0, 0 if bias is None else bias.ptr, 0, act, alpha, beta)
        _go(fn, grid, block, s, P(ins[0]), P(wd), P(None), P(y), ep)
        return y
    return run


def _gemm(be, node, shapes, oshapes, static):
    p = params_of(node)
    if len(shapes[0]) != 2 or p.trans_a or node.inputs[1] not in static:
        return None
    src = static[node.inputs[1]]
    if np.ndim(src) != 2:
        return None
    kdim, nout = (src.shape[1], src.shape[0]) if p.trans_b else src.shape
    if kdim != shapes[0][1]:
        return None
    alpha = float(p.alpha)
    wd = be.constant(src, ("gemm", bool(p.trans_b), alpha),
                     lambda w: np.asarray(w.T if p.trans_b else w, np.float32) * np.float32(alpha))   # (K, N)
    bias = None
    if len(node.inputs) > 2 and node.inputs[2]:
        c = static.get(node.inputs[2])
        if c is None or c.size != nout or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            return None
        beta = float(p.beta)
        bias = be.constant(c, ("gemm-bias", beta), lambda v: np.asarray(v, np.float32).reshape(-1) * np.float32(beta))
    act = ACTIVATIONS[p.act] if p.act else 0
    return _dense_as_conv(be, shapes[0][0], kdim, nout, wd, bias, act, p.act_alpha, p.act_beta, oshapes[0])


def _matmul(be, node, shapes, oshapes, static):
    a, b = shapes[0], shapes[1]
    if len(a) < 2 or len(b) < 2 or node.inputs[0] in static:
        return None
    oshape = oshapes[0]
    if node.inputs[1] in static and len(b) == 2:
        rows = int(np.prod(a[:-1]))
        wd = be.constant(static[node.inputs[1]], "f32")
        return _dense_as_conv(be, rows, a[-1], b[-1], wd, None, 0, 0.0, 0.0, oshape)
    m, k, n = a[-2], a[-1], b[-1]
    batch = tuple(oshape[:-2])
    sa = L.broadcast_strides(a[:-2], batch)
    sb = L.broadcast_strides(b[:-2], batch)
    sizes = list(batch) or [1]
    d = L.dims(sizes, [v * m * k for v in sa] or [0], [v * k * n for v in sb] or [0])
    nb = int(np.prod(batch)) if batch else 1
    if nb > L.MAX_GRID_YZ:
        return None
    bconst = _static_f32(be, static, node.inputs[1] if node.inputs[1] in static else "")
    fn = D.device().function("dense", "matmul_batched")
    grid = (L.cdiv(n, 16), L.cdiv(m, 16), nb)

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, (16, 16, 1), d, P(ins[0]), P(bconst if bconst is not None else ins[1]), P(y),
            I32(m), I32(n), I32(k))
        return y
    return run


# ----------------------------------------------------------------- pooling
def _pool(be, node, shapes, oshapes, static):
    p = params_of(node)
    xs = shapes[0]
    if len(xs) != 4 or p.indices or len(p.kernel_shape) != 2 or len(node.outputs) > 1 and node.outputs[1]:
        return None
    kernel = tuple(p.kernel_shape)
    strides = tuple(p.strides or (1, 1))
    dil = tuple(p.dilations or (1, 1))
    pt, pl, pb, pr = resolve_pads(p.auto_pad, p.pads, xs[2:], kernel, strides, dil)
    oshape = oshapes[0]
    s = L.PoolShape(xs[0] * xs[1], xs[2], xs[3], kernel[0], kernel[1], strides[0], strides[1], dil[0], dil[1],
                    pt, pl, pb, pr, oshape[2], oshape[3], int(bool(p.count_include_pad)))
    fn = D.device().function("pool", "max_pool2d" if node.op == "MaxPool" else "avg_pool2d")
    grid, block = _elt(int(np.prod(oshape)))

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, s, P(ins[0]), P(y))
        return y
    return run


def _reduce_runner(x_shape, split, op, oshape):
    outer, length, inner = split
    fn = D.device().function("reduce", "reduce_axis")
    grid, block = L.rows_grid(outer * inner)

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(outer), I64(length), I64(inner), I32(op))
        return y
    return run


def _global_pool(be, node, shapes, oshapes, static):
    xs = shapes[0]
    if len(xs) < 3:
        return None
    split = (xs[0] * xs[1], int(np.prod(xs[2:])), 1)
    return _reduce_runner(xs, split, REDUCE["ReduceMean" if node.op == "GlobalAveragePool" else "ReduceMax"],
                          oshapes[0])


def _reduce(be, node, shapes, oshapes, static):
    from ...ops.reduce import _axes
    p = params_of(node)
    xs = shapes[0]
    if p.kind not in REDUCE or any(_runtime(node, static, i) for i in range(1, len(node.inputs))):
        return None
    axes_in = static.get(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    axes = _axes(p, axes_in, len(xs))
    if axes is None or not xs:
        return None
    split = L.axis_split(xs, axes)
    if split is None or split[1] == 0:
        return None
    return _reduce_runner(xs, split, REDUCE[p.kind], oshapes[0])


# -------------------------------------------------------------- elementwise
def _act(be, node, shapes, oshapes, static):
    got = activation_params(node, static)
    if got is None:
        return None
    name, alpha, beta = got
    return _map_runner("activation", ACTIVATIONS[name], alpha, beta, oshapes[0])


def _map_runner(kernel, code, alpha, beta, oshape):
    """An eltwise.cu kernel mapping each element: "activation" (a cnn_act
    code) or "unary" (a UNARY code), both (x, y, n, code, alpha, beta)."""
    n = int(np.prod(oshape))
    fn = D.device().function("eltwise", kernel)
    grid, block = _elt(n)

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(n), I32(code), F32(alpha), F32(beta))
        return y
    return run


def _unary(be, node, shapes, oshapes, static):
    p = params_of(node)
    if node.op == "Gelu":
        if p.approximate == "none":
            return _map_runner("activation", ACTIVATIONS["gelu"], 0.0, 0.0, oshapes[0])
        return _map_runner("unary", U_GELU_TANH, 0.0, 0.0, oshapes[0])
    if node.op == "Selu":
        return _map_runner("unary", UNARY["Selu"], p.alpha, p.gamma, oshapes[0])
    return _map_runner("unary", UNARY[node.op], 0.0, 0.0, oshapes[0])


def _binary_runner(be, node, static, a_name, b_name, a_shape, b_shape, oshape, op, act=0, alpha=0.0, beta=0.0):
    """Returns run(a, b, y): one launch of the broadcasting binary kernel."""
    d = L.binary_dims(a_shape, b_shape, oshape)
    n = int(np.prod(oshape))
    ca = _static_f32(be, static, a_name) if a_name in static else None
    cb = _static_f32(be, static, b_name) if b_name in static else None
    fn = D.device().function("eltwise", "binary")
    grid, block = _elt(n)

    def run(a, b, y):
        _go(fn, grid, block, d, P(ca if ca is not None else a), P(cb if cb is not None else b), P(y), I64(n),
            I32(op), I32(act), F32(alpha), F32(beta))
    return run


def _const_ok(static, name):
    return name not in static or np.asarray(static[name]).dtype.kind == "f"


def _binary(be, node, shapes, oshapes, static):
    p = params_of(node)
    if node.op not in BINARY or len(node.inputs) != 2 or not all(node.inputs):
        return None
    if not all(_const_ok(static, i) for i in node.inputs) or len(oshapes[0]) > 8:
        return None
    act = ACTIVATIONS[p.act] if getattr(p, "act", "") else 0
    alpha, beta = (float(p.act_alpha), float(p.act_beta)) if act else (0.0, 0.0)
    oshape = oshapes[0]
    go = _binary_runner(be, node, static, node.inputs[0], node.inputs[1], shapes[0], shapes[1], oshape,
                        BINARY[node.op], act, alpha, beta)

    def run(ins, out, t):
        y = _out(out, oshape)
        go(ins[0], ins[1], y)
        return y
    return run


def _variadic(be, node, shapes, oshapes, static):
    """Sum / Max / Min / Mean of n inputs: n - 1 binary launches into the output (then a scale for Mean)."""
    kind = params_of(node).kind
    names = list(node.inputs)
    if not names or not all(names) or not all(_const_ok(static, i) for i in names):
        return None
    oshape = oshapes[0]
    op = BINARY["Add" if kind in ("Sum", "Mean") else kind]
    if len(names) == 1:
        steps = []
        first = _binary_runner(be, node, static, names[0], names[0], shapes[0], shapes[0], oshape, BINARY["Max"])
    else:
        first = _binary_runner(be, node, static, names[0], names[1], shapes[0], shapes[1], oshape, op)
        steps = [_binary_runner(be, node, static, "", name, oshape, shape, oshape, op)
                 for name, shape in zip(names[2:], shapes[2:])]
    scale = _map_runner("unary", U_SCALE, 1.0 / len(names), 0.0, oshape) if kind == "Mean" else None

    def run(ins, out, t):
        y = _out(out, oshape)
        first(ins[0], ins[1] if len(ins) > 1 else ins[0], y)
        for go, x in zip(steps, ins[2:]):
            go(y, x, y)
        return scale([y], y, t) if scale is not None else y
    return run


def _prelu(be, node, shapes, oshapes, static):
    oshape = oshapes[0]
    if not _const_ok(static, node.inputs[1]):
        return None
    go = _binary_runner(be, node, static, node.inputs[0], node.inputs[1], shapes[0], shapes[1], oshape,
                        BINARY["PRelu"])

    def run(ins, out, t):
        y = _out(out, oshape)
        go(ins[0], ins[1], y)
        return y
    return run


def _batchnorm(be, node, shapes, oshapes, static):
    p = params_of(node)
    xs = shapes[0]
    if len(xs) < 2 or len(node.inputs) < 5 or not all(i in static for i in node.inputs[1:5]) or \
            any(o for o in node.outputs[1:]):
        return None
    gamma, beta, mean, var = (np.asarray(static[i], np.float64).reshape(-1) for i in node.inputs[1:5])
    c = xs[1]
    if any(v.size != c for v in (gamma, beta, mean, var)):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = gamma / np.sqrt(var + p.epsilon)
    shift = beta - mean * scale
    sd, hd = be.constant(scale), be.constant(shift)
    act = ACTIVATIONS[p.act] if p.act else 0
    inner = int(np.prod(xs[2:])) if len(xs) > 2 else 1
    n = int(np.prod(xs))
    fn = D.device().function("eltwise", "channel_affine")
    grid, block = _elt(n)
    oshape = oshapes[0]

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(xs[0]), I64(c), I64(inner), P(sd), P(hd), I32(act),
            F32(p.act_alpha), F32(p.act_beta))
        return y
    return run


def _lrn(be, node, shapes, oshapes, static):
    p = params_of(node)
    xs = shapes[0]
    if len(xs) < 3:
        return None
    inner = int(np.prod(xs[2:]))
    fn = D.device().function("eltwise", "lrn")
    grid, block = _elt(int(np.prod(xs)))
    oshape = oshapes[0]

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(xs[0]), I32(xs[1]), I64(inner), I32(p.size), F32(p.alpha),
            F32(p.beta), F32(p.bias))
        return y
    return run


def _softmax(be, node, shapes, oshapes, static):
    p = params_of(node)
    xs = shapes[0]
    if not xs:
        return None
    axis = p.axis % len(xs)
    if p.flatten:
        split = (int(np.prod(xs[:axis])), int(np.prod(xs[axis:])), 1)
    else:
        split = L.axis_split(xs, [axis])
    outer, length, inner = split
    fn = D.device().function("reduce", "softmax_axis")
    grid, block = L.rows_grid(outer * inner)
    oshape = oshapes[0]

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(outer), I64(length), I64(inner), I32(bool(p.log)))
        return y
    return run


def _layer_norm(be, node, shapes, oshapes, static):
    p = params_of(node)
    xs = shapes[0]
    if not xs or node.inputs[1] not in static or _runtime(node, static, 2) or any(node.outputs[1:]):
        return None
    axis = p.axis % len(xs)
    length = int(np.prod(xs[axis:]))
    rows = int(np.prod(xs[:axis]))
    gamma = np.asarray(static[node.inputs[1]], np.float32)
    beta = static.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if gamma.size != length or (beta is not None and np.size(beta) != length):
        return None
    gd = be.constant(static[node.inputs[1]], "f32")
    bd = None if beta is None else be.constant(beta, "f32")
    fn = D.device().function("reduce", "layer_norm")
    grid, block = L.rows_grid(rows)
    oshape = oshapes[0]

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(rows), I64(length), P(gd), P(bd), F32(p.epsilon))
        return y
    return run


def _channel_norm(be, node, shapes, oshapes, static):
    """cnn.ChannelNorm (the passes' layer norm across the channels of each
    NCHW pixel), scale and bias constants of C values."""
    xs = shapes[0]
    if len(xs) != 4 or len(node.inputs) != 3 or not all(i in static for i in node.inputs[1:]):
        return None
    n, c, h, w = (int(d) for d in xs)
    gamma = np.asarray(static[node.inputs[1]], np.float32).reshape(-1)
    beta = np.asarray(static[node.inputs[2]], np.float32).reshape(-1)
    if gamma.size != c or beta.size != c:
        return None
    gd, bd = be.constant(gamma, "f32"), be.constant(beta, "f32")
    eps = float(params_of(node).epsilon)
    fn = D.device().function("reduce", "channel_norm")
    grid, block = _elt(n * h * w)
    oshape = oshapes[0]

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(n), I64(c), I64(h * w), P(gd), P(bd), F32(eps))
        return y
    return run


# ------------------------------------------------------------------ layout
def _view(be, node, shapes, oshapes, static):
    if any(_runtime(node, static, i) for i in range(1, len(node.inputs))):
        return None
    oshape = oshapes[0]

    def run(ins, out, t):
        return ins[0].reshape(oshape)
    run.allocates = False
    return run


def _cast(be, node, shapes, oshapes, static):
    to = node.attrs.get("to")
    if to not in (1, "float32", "FLOAT"):
        return None
    return _view(be, node, shapes, oshapes, static)


def _concat(be, node, shapes, oshapes, static):
    oshape = oshapes[0]
    axis = int(node.attrs.get("axis", 1)) % len(oshape)
    parts = L.concat_parts(shapes, axis)
    fn = D.device().function("layout", "strided_copy")
    copies = []
    for i, (name, shape, (off, dst)) in enumerate(zip(node.inputs, shapes, parts)):
        n = int(np.prod(shape))
        if n == 0:
            continue
        d = L.copy_dims(shape, L.contiguous_strides(shape), dst)
        src = _static_f32(be, static, name) if name in static else None
        copies.append((i, src, d, off, n, _elt(n)))

    def run(ins, out, t):
        y = _out(out, oshape)
        for i, src, d, off, n, (grid, block) in copies:
            _go(fn, grid, block, d, P(src if src is not None else ins[i]), I64(0), P(y), I64(off), I64(n))
        return y
    return run


def _affine_map(m):
    """(offset, strides) when index map m is offset + sum idx_k * stride_k, else None."""
    if m.size == 0 or m.ndim > L.MAX_DIMS or (m < 0).any():
        return None
    off = int(m.reshape(-1)[0])
    strides = []
    for ax, n in enumerate(m.shape):
        one = [0] * m.ndim
        if n > 1:
            one[ax] = 1
            strides.append(int(m[tuple(one)]) - off)
        else:
            strides.append(0)
    grid = np.full(m.shape, off, np.int64)
    for ax, st in enumerate(strides):
        shape = [1] * m.ndim
        shape[ax] = m.shape[ax]
        grid = grid + np.arange(m.shape[ax], dtype=np.int64).reshape(shape) * st
    return (off, strides) if np.array_equal(grid, m) else None


def _move(be, node, shapes, oshapes, static):
    """Ops that only move values: the op's own reference run on an index
    array says where each output element comes from; an affine map becomes
    a strided copy, any other an index map on the device."""
    if node.inputs[0] in static or any(_runtime(node, static, i) for i in range(1, len(node.inputs))):
        return None
    xs = shapes[0]
    idx = np.arange(int(np.prod(xs)), dtype=np.int64).reshape(xs)
    ins = [idx] + [static[i] if i else None for i in node.inputs[1:]]
    maps = ops.evaluate(node, ins)
    if len(maps) != len(oshapes) or any(np.asarray(m).dtype != np.int64 or tuple(np.shape(m)) != tuple(s)
                                        for m, s in zip(maps, oshapes)):
        return None
    copy_fn = D.device().function("layout", "strided_copy")
    map_fn = D.device().function("layout", "gather_map")
    parts = []
    for k, (m, shape) in enumerate(zip(maps, oshapes)):
        m = np.asarray(m)
        n = int(m.size)
        aff = _affine_map(m)
        if aff is not None and len(shape) <= L.MAX_DIMS:
            off, strides = aff
            d = L.copy_dims(shape, strides, L.contiguous_strides(shape))
            parts.append((shape, n, ("copy", d, off), _elt(n)))
        else:
            md = be.constant(m, raw=True)
            parts.append((shape, n, ("map", md, 0), _elt(n)))

    def one(k, x, y):
        shape, n, (how, a, off), (grid, block) = parts[k]
        if n == 0:
            return
        if how == "copy":
            _go(copy_fn, grid, block, a, P(x), I64(off), P(y), I64(0), I64(n))
        else:
            _go(map_fn, grid, block, P(x), P(a), P(y), I64(n), F32(0.0))

    if len(parts) == 1:
        def run(ins, out, t):
            y = _out(out, parts[0][0])
            one(0, ins[0], y)
            return y
        return run

    def run_many(ins, out, t):
        # out: the first output's buffer, every output's (graphs.py), or None
        bufs = list(out) if isinstance(out, tuple) else [out] + [None] * (len(parts) - 1)
        ys = [_out(b, part[0]) for b, part in zip(bufs, parts)]
        for k, y in enumerate(ys):
            one(k, ins[0], y)
        return tuple(ys)
    run_many.outputs = len(parts)
    return run_many


def _pad(be, node, shapes, oshapes, static):
    from ...ops.resample import _pad_amounts
    p = params_of(node)
    xs = shapes[0]
    if any(_runtime(node, static, i) for i in range(1, len(node.inputs))):
        return None
    ins = [None] + [static[i] if i else None for i in node.inputs[1:]]
    begin, end = _pad_amounts(p, ins, len(xs))
    if p.value is not None:
        value = p.value
    else:
        v = ins[2] if len(ins) > 2 else None
        value = float(np.asarray(v).reshape(-1)[0]) if v is not None and np.size(v) else 0.0
    d, off, out_shape = L.pad_dims(xs, begin, end)
    if out_shape != tuple(oshapes[0]):
        return None
    mode = {"constant": 0, "reflect": 1, "edge": 2, "wrap": 3}[p.mode]
    if mode and any(d.inp[i] == 0 for i in range(len(xs))):
        return None
    n = int(np.prod(out_shape))
    fn = D.device().function("layout", "pad_nd")
    grid, block = _elt(n)

    def run(ins, out, t):
        y = _out(out, out_shape)
        _go(fn, grid, block, d, P(ins[0]), I64(off), P(y), I64(n), I32(mode), F32(value))
        return y
    return run


def _resize(be, node, shapes, oshapes, static):
    from ...ops.resample import _resize_plan, _resize_weights
    p = params_of(node)
    xs = shapes[0]
    if len(xs) != 4 or p.coordinate_transformation_mode == "tf_crop_and_resize" or \
            any(_runtime(node, static, i) for i in range(1, len(node.inputs))):
        return None
    ins = [None] + [static[i] if i else None for i in node.inputs[1:]]
    size, scale, _ = _resize_plan(p, xs, ins)
    if tuple(size[:2]) != tuple(xs[:2]) or scale[:2] != [1.0, 1.0] or tuple(size) != tuple(oshapes[0]):
        return None
    wy, _ = _resize_weights(p, xs[2], size[2], scale[2], None)
    wx, _ = _resize_weights(p, xs[3], size[3], scale[3], None)
    iy, ty = L.resize_taps(wy)
    ix, tx = L.resize_taps(wx)
    d_iy, d_wy = be.constant(iy, raw=True), be.constant(ty)
    d_ix, d_wx = be.constant(ix, raw=True), be.constant(tx)
    oshape = tuple(size)
    n = int(np.prod(oshape))
    fn = D.device().function("layout", "resize2d")
    grid, block = _elt(n)

    def run(ins, out, t):
        y = _out(out, oshape)
        _go(fn, grid, block, P(ins[0]), P(y), I64(xs[0] * xs[1]), I32(xs[2]), I32(xs[3]), I32(size[2]),
            I32(size[3]), P(d_iy), P(d_wy), I32(iy.shape[1]), P(d_ix), P(d_wx), I32(ix.shape[1]))
        return y
    return run


_COMPILERS = {"Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
              "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool,
              "GlobalMaxPool": _global_pool, "BatchNormalization": _batchnorm, "LRN": _lrn,
              "Softmax": _softmax, "LogSoftmax": _softmax, "LayerNormalization": _layer_norm,
              "cnn.ChannelNorm": _channel_norm,
              "Concat": _concat, "Pad": _pad, "Resize": _resize, "PRelu": _prelu, "Gelu": _unary,
              "Sum": _variadic, "Max": _variadic, "Min": _variadic, "Mean": _variadic, "Cast": _cast,
              "Dropout": _view}
_COMPILERS.update({op: _act for op in KERNEL_ACTS})
_COMPILERS.update({op: _unary for op in UNARY})
_COMPILERS.update({op: _binary for op in ("Add", "Sub", "Mul", "Div", "Pow")})
_COMPILERS.update({op: _reduce for op in REDUCE})
_COMPILERS.update({op: _view for op in VIEWS})
_COMPILERS.update({op: _move for op in MOVES})

# ops with a kernel (some cases of them may still run on the host: a
# broadcasting conv residual, MaxPool's Indices output, non-contiguous reduce
# axes, Resize's tf_crop_and_resize, inputs that are not float32)
KERNEL_OPS = tuple(sorted(_COMPILERS))
# every other op the engine knows runs its NumPy reference on the host
HOST_OPS = tuple(sorted(set(ops.REGISTRY) - set(_COMPILERS)))
