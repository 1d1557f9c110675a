"""Blocked layout for the fast plan: which values live in NCHW8c.

A 4-D activation held blocked is (N, ceil(C/8), H, W, 8) (see the blocked
kernels in csrc/x86/nchwc_avx2.c). Convolutions (groups 1 or depthwise)
write blocked outputs; activations, residual Add/Sub/Mul, pooling,
BatchNormalization and channel Concat of whole blocks keep a blocked input
blocked; every other op sees NCHW. Reorders
are inserted only where a value crosses between the two, so a MobileNet
runs blocked from the stem (which reads the NCHW image directly) to the
global pool, as ONNX Runtime's NCHWc transformer does.

Convolutions that the NCHW engine runs with Winograd stay NCHW, with a
reorder on each side: Winograd beats any direct blocked kernel (3x3 64->64
@56: 0.96 vs 2.6 ms), and the reorders cost less than the blocked 1x1 and
strided convs around them gain (ResNet-50: 79.4 -> 74.9 ms at 1 thread,
46.6 -> 40.7 at 2; ResNet-18 29.3 -> 28.1 and 20.0 -> 17.0; VGG-16, all
Winograd, unchanged).

Padding lanes (channels C..8*ceil(C/8)) must stay finite, because the
next convolution multiplies them by zero weights: Div is never blocked.
"""
import os

import numpy as np

from ..ir.graph import Node
from .activations import KERNEL_ACTS

SUFFIX = "@nchwc"
BLOCK = 8
_BINARY = ("Add", "Sub", "Mul")
_GLOBAL = ("GlobalAveragePool", "GlobalMaxPool")


def wanted():
    """CNNENGINE_LAYOUT=nchw (read when a model loads) keeps every value NCHW:
    A/B timing and debugging."""
    return os.environ.get("CNNENGINE_LAYOUT", "nchwc").lower() != "nchw"


def available():
    from .. import _kernels as K
    return K.active_isa() == "avx2"


def blocked_shape(shape):
    n, c, h, w = shape
    return (n, (c + BLOCK - 1) // BLOCK, h, w, BLOCK)


def _conv_ok(node, shapes, dtypes, static):
    from .. import _kernels as K
    if node.op != "Conv" or len(node.inputs) < 2 or node.inputs[1] not in static:
        return False
    x = node.inputs[0]
    if len(shapes.get(x, ())) != 4 or dtypes.get(x) != np.float32:
        return False
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in static:
        return False
    w = static[node.inputs[1]]
    if w.ndim != 4:
        return False
    c, k, g = shapes[x][1], w.shape[0], int(node.attrs.get("group", 1))
    grouped = g > 1 and c % g == 0 and k % g == 0 and (c // g) % BLOCK == 0 and (k // g) % BLOCK == 0
    if not (g == 1 or (g == c == k and c > 1) or grouped):
        return False
    return True


def _winograd(node, shapes, static):
    """Should this conv stay NCHW for Winograd? Only where the packer picks
    Winograd and it beats the blocked direct kernel: not for few outputs
    on small planes (DenseNet's 128->32 @14x14: 0.15 vs 0.10 ms, @7x7:
    0.09 vs 0.04), where its transforms outweigh the saved multiplies."""
    from .. import _kernels as K
    from .fast_ops import conv_dims
    w = static[node.inputs[1]]
    if int(node.attrs.get("group", 1)) != 1 or w.shape[2:] != (3, 3):
        return False
    oshape = shapes[node.outputs[0]]
    if w.shape[0] <= 64 and oshape[2] * oshape[3] <= 196:
        return False
    try:
        dims = conv_dims(node, shapes[node.inputs[0]], w.shape, shapes[node.outputs[0]])
        return K.PackedConv2d(np.zeros(w.size, np.float32), dims).algo.startswith("winograd")
    except Exception:
        return False


def to_blocked(nodes, shapes, dtypes, static, outputs):
    """Rewrite the plan's step nodes to use blocked values where it pays.

    Returns (nodes, blocked) where blocked maps a value to its blocked twin
    (for values that exist only blocked, the caller reorders on demand).
    shapes/dtypes gain the twins' entries."""
    convs = [n for n in nodes if _conv_ok(n, shapes, dtypes, static)]
    wino = {n.name for n in convs if _winograd(n, shapes, static)}
    if len(wino) == len(convs):
        return nodes, {}
    blk = {}                 # value -> blocked twin name
    plain = set()            # values available in NCHW
    out = []

    def twin(v):
        name = v + SUFFIX
        shapes[name] = blocked_shape(shapes[v])
        dtypes[name] = np.dtype(np.float32)
        return name

    def need_blocked(v):
        if v not in blk:
            blk[v] = twin(v)
            out.append(Node(f"{v}/to_nchwc", "cnn.ToNCHWc", [v], [blk[v]]))
        return blk[v]

    def need_plain(v):
        if v and v not in plain and v in blk and v not in static:
            out.append(Node(f"{v}/to_nchw", "cnn.ToNCHW", [blk[v]], [v]))
            plain.add(v)

    def is4(v):
        return bool(v) and len(shapes.get(v, ())) == 4 and dtypes.get(v) == np.float32

    for node in nodes:
        ins = node.inputs
        if node.name not in wino and _conv_ok(node, shapes, dtypes, static):
            x = ins[0]
            attrs = dict(node.attrs, _in_shape=tuple(shapes[x]))
            if x in blk:
                xin, attrs["_in_nchw"] = blk[x], False
            elif shapes[x][1] <= 4 and int(node.attrs.get("group", 1)) == 1:
                xin, attrs["_in_nchw"] = x, True       # a stem on the image
            else:
                xin, attrs["_in_nchw"] = need_blocked(x), False
            new_ins = [xin] + list(ins[1:3])
            if len(ins) > 3 and ins[3]:
                while len(new_ins) < 3:
                    new_ins.append("")
                new_ins.append(need_blocked(ins[3]) if ins[3] not in blk else blk[ins[3]])
            y = node.outputs[0]
            blk[y] = twin(y)
            out.append(Node(node.name, "cnn.ConvNCHWc", new_ins, [blk[y]], attrs))
            continue
        if node.op in KERNEL_ACTS and ins and ins[0] in blk and is4(ins[0]) and \
                all((not i) or i in static for i in ins[1:]):
            y = node.outputs[0]
            blk[y] = twin(y)
            out.append(Node(node.name, node.op, [blk[ins[0]]] + list(ins[1:]), [blk[y]],
                            dict(node.attrs)))
            continue
        if node.op in _BINARY and not node.attrs.get("_act") and len(ins) == 2 and \
                all(i in blk and is4(i) for i in ins):
            sa, sb, so = shapes[ins[0]], shapes[ins[1]], shapes[node.outputs[0]]
            if sa[:2] == sb[:2] == so[:2] and all(s[2:] in (so[2:], (1, 1)) for s in (sa, sb)):
                y = node.outputs[0]
                blk[y] = twin(y)
                if node.op == "Mul" and sa != sb and (1, 1) in (sa[2:], sb[2:]):
                    # squeeze-and-excitation: one factor per channel
                    xin, sin = (ins[0], ins[1]) if sb[2:] == (1, 1) else (ins[1], ins[0])
                    out.append(Node(node.name, "cnn.ScaleNCHWc", [blk[xin], blk[sin]], [blk[y]],
                                    {"_c": so[1]}))
                    continue
                out.append(Node(node.name, node.op, [blk[ins[0]], blk[ins[1]]], [blk[y]],
                                dict(node.attrs)))
                continue
        if node.op in ("MaxPool", "AveragePool") and ins[0] in blk and is4(ins[0]) and \
                len(node.outputs) == 1 and len(node.attrs.get("kernel_shape", ())) == 2 and \
                not (node.op == "AveragePool" and tuple(node.attrs.get("dilations", (1, 1))) != (1, 1)):
            y = node.outputs[0]
            blk[y] = twin(y)
            out.append(Node(node.name, "cnn.PoolNCHWc", [blk[ins[0]]], [blk[y]],
                            dict(node.attrs, _op=node.op, _in_shape=tuple(shapes[ins[0]]))))
            continue
        if node.op == "BatchNormalization" and ins[0] in blk and is4(ins[0]) and \
                len(node.outputs) == 1 and all(i in static and static[i].ndim == 1 for i in ins[1:5]):
            g, b, mean, var = (static[i].astype(np.float64) for i in ins[1:5])
            scale = g / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
            y = node.outputs[0]
            blk[y] = twin(y)
            out.append(Node(node.name, "cnn.AffineNCHWc", [blk[ins[0]]], [blk[y]],
                            {"_c": shapes[ins[0]][1], "_scale": scale.astype(np.float32),
                             "_shift": (b - mean * scale).astype(np.float32)}))
            continue
        if node.op == "Concat" and len(ins) > 1 and all(i in blk and is4(i) for i in ins) and \
                int(node.attrs.get("axis", 1)) in (1, -3) and \
                all(shapes[i][1] % BLOCK == 0 for i in ins):
            # whole blocks: the blocked concat is a concat of block planes
            y = node.outputs[0]
            blk[y] = twin(y)
            out.append(Node(node.name, "Concat", [blk[i] for i in ins], [blk[y]], {"axis": 1}))
            continue
        if node.op in _GLOBAL and ins[0] in blk and is4(ins[0]):
            y = node.outputs[0]
            blk[y] = twin(y)
            out.append(Node(node.name, "cnn.GlobalPoolNCHWc", [blk[ins[0]]], [blk[y]],
                            {"_max": node.op == "GlobalMaxPool", "_c": shapes[ins[0]][1]}))
            continue
        for v in ins:
            need_plain(v)
        out.append(node)
        plain.update(o for o in node.outputs if o)
    for v in outputs:
        need_plain(v)
    return out, blk


def unblock(xb, shape, threads):
    """The NCHW array of a blocked value of NCHW shape `shape`."""
    from .. import _kernels as K
    n, c, h, w = shape
    y = np.empty(shape, np.float32)
    K.nchwc_to_nchw(np.ascontiguousarray(xb).reshape(-1), y.reshape(-1), n, c, h * w, threads)
    return y
