"""Blocked layout for the fast plan: which values live in NCHW8c.

A 4-D activation held blocked is (N, ceil(C/8), H, W, 8) (see the blocked
kernels in csrc/x86/nchwc_avx2.c). Convolutions (groups 1, depthwise,
groups of whole blocks, or of 2 or 4 channels: csrc/ops/nchwc_grouped.c)
write blocked outputs; activations, residual Add/Sub/Mul, pooling,
BatchNormalization and channel Concat keep a blocked input blocked; channel
Slice and Split and ShuffleNet's channel shuffle (Reshape -> Transpose ->
Reshape) become blocked channel gathers, a chain of them traced to its
sources so that only the values a kernel reads are made (ShuffleNetV2 at 2
threads: 1.7 ms of reorders and 1 ms of NCHW Concat/Transpose per run
became 0.3 ms of gathers). Every other op sees NCHW. Reorders are inserted only where a
value crosses between the two, so a MobileNet
runs blocked from the stem (which reads the NCHW image directly) to the
global pool, as ONNX Runtime's NCHWc transformer does.

Stride-1 3x3 convolutions run Winograd on the blocked layout too (the
packer chooses per shape, csrc/ops/nchwc.c), so they need no reorders
either: DenseNet-121, whose Concat/BatchNormalization/ReLU had stayed NCHW
around plain-layout Winograd convs, spent 2.2 ms of 38 at 2 threads in
reorders.

Padding lanes (channels C..8*ceil(C/8)) must stay finite, because the
next convolution multiplies them by zero weights: Div is never blocked.
"""
import os

import numpy as np

from dataclasses import replace

from ...ir.graph import Node
from ...ir.weights import shape_of
from ...ops import params_of
from ...ops.epilogue import KERNEL_ACTS
from .blocked_block import flat_1x1, fuse_blocks
from .blocked_ops import BLOCK, blocked_shape  # noqa: F401  (re-exported for kernels.py)
from .blocked_ops import (AffineParams, ChannelNormNCHWcParams, Channels, ConvNCHWcParams, GatherParams,
                          GlobalPoolNCHWcParams, PoolNCHWcParams, ToNCHWParams)

SUFFIX = "@nchwc"
_BINARY = ("Add", "Sub", "Mul")
_GLOBAL = ("GlobalAveragePool", "GlobalMaxPool")


def wanted():
    """CNNENGINE_LAYOUT=nchw (read when a model loads) keeps every value NCHW:
    A/B timing and debugging."""
    return os.environ.get("CNNENGINE_LAYOUT", "nchwc").lower() != "nchw"


def available():
    from ... import _kernels as K
    return K.active_isa() in ("avx2", "avx512")


def _conv_ok(node, shapes, dtypes, static):
    if node.op != "Conv" or len(node.inputs) < 2 or node.inputs[1] not in static:
        return False
    x = node.inputs[0]
    if len(shapes.get(x, ())) != 4 or dtypes.get(x) != np.float32:
        return False
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in static:
        return False
    w = shape_of(static, node.inputs[1])     # the shape only: the weights may still be in their file
    if len(w) != 4:
        return False
    c, k, g = shapes[x][1], w[0], int(node.attrs.get("group", 1))
    grouped = g > 1 and c % g == 0 and k % g == 0 and (c // g) % BLOCK == 0 and (k // g) % BLOCK == 0
    return g == 1 or (g == c == k and c > 1) or grouped or small_groups(c, k, g) > 1


def small_groups(c, k, g):
    """Groups of 2 or 4 channels each way that tile whole blocks (ResNeXt
    32x4d's first stage: 128 channels in 32 groups): how many such groups
    share a block, else 0. The conv runs as one group per block with
    block-diagonal weights (expand_small_groups), twice or four times the
    multiplies but in the blocked kernel, where the plain grouped conv ran
    at a fifth of its speed (128->128 g32 @56: 2.4 ms plain)."""
    if g <= 1 or c != k or c % g or c % BLOCK:
        return 0
    cg = c // g
    return BLOCK // cg if cg in (2, 4) else 0


def expand_small_groups(w, g):
    """Weights (K, C/g, kh, kw) of small_groups' convs as (K, 8, kh, kw)
    for K/8 groups: zero between channels of different original groups."""
    k, cg, kh, kw = w.shape
    out = np.zeros((k, BLOCK, kh, kw), np.float32)
    for o in range(k):
        lo = (o // cg) * cg % BLOCK        # the group's first channel inside its block
        out[o, lo:lo + cg] = w[o]
    return out


def to_blocked(nodes, shapes, dtypes, static, outputs):
    """Rewrite the plan's step nodes to use blocked values where it pays.

    Returns (nodes, blocked) where blocked maps a value to its blocked twin
    (for values that exist only blocked, the caller reorders on demand).
    shapes/dtypes gain the twins' entries."""
    if not any(_conv_ok(n, shapes, dtypes, static) for n in nodes):
        return nodes, {}
    rw = _Rewrite(shapes, dtypes, static)
    for node in nodes:
        for v in node.inputs:
            rw.consumers.setdefault(v, []).append(node)
    rw.protected = set(outputs)
    for node in nodes:
        if id(node) in rw.skip:
            continue
        new = None
        for rule in _RULES:
            new = rule(rw, node)
            if new is not None:
                break
        if new is None:                   # an NCHW op: its blocked inputs leave
            for v in node.inputs:
                rw.need_plain(v)
            rw.out.append(node)
            rw.plain.update(o for o in node.outputs if o)
        elif new is not _MADE:
            rw.out.append(new)
            for o in new.outputs:
                rw.producer[o] = new
    for v in outputs:
        rw.need_plain(v)
    _drop_unused_gathers(rw)
    normalised = fuse_affines(rw.out, shapes, outputs)
    from ... import _kernels as K
    nodes, gone = fuse_blocks(rw.out, shapes, outputs, K.l2_bytes())
    gone |= normalised
    return nodes, {v: t for v, t in rw.blk.items() if t not in gone}


def fuse_affines(nodes, shapes, outputs):
    """Each standalone BatchNormalization (cnn.AffineNCHWc, its activation
    with it) that only a flat 1x1 conv reads becomes that conv's input
    normalisation (ConvNCHWcParams.pre), in place in nodes: DenseNet's
    norm -> relu -> 1x1 on every concatenated input, whose separate pass
    wrote what the conv then reread (at 2 threads half of it crossing
    between the cores). The step keeps the affine's name, as fused blocks
    keep their first layer's. Returns the values no step makes any more
    (a capture of one runs the unfused plan). CNNENGINE_FUSE_AFFINE=0
    (read when a plan is made) keeps the two steps."""
    if os.environ.get("CNNENGINE_FUSE_AFFINE", "1") == "0":
        return set()
    readers = {}
    for n in nodes:
        for v in n.inputs:
            if v:
                readers.setdefault(v, []).append(n)
    protected = {v + SUFFIX for v in outputs}
    gone = set()
    for i, aff in enumerate(nodes):
        if aff is None or aff.op != "cnn.AffineNCHWc" or aff.outputs[0] in protected:
            continue
        users = readers.get(aff.outputs[0], [])
        conv = users[0] if len(users) == 1 else None
        if conv is None or not flat_1x1(conv, shapes) or conv.inputs[0] != aff.outputs[0] or \
                aff.outputs[0] in conv.inputs[1:]:
            continue
        j = next(k for k, n in enumerate(nodes) if n is conv)
        nodes[j] = Node(aff.name, conv.op, [aff.inputs[0]] + list(conv.inputs[1:]), list(conv.outputs),
                        {}, replace(conv.params, pre=aff.params), aff.fused + (conv.name,) + conv.fused)
        nodes[i] = None
        gone.add(aff.outputs[0])
    nodes[:] = [n for n in nodes if n is not None]
    return gone


class _Rewrite:
    """The state of one pass: blocked twins, values available NCHW, output."""

    def __init__(self, shapes, dtypes, static):
        self.shapes, self.dtypes, self.static = shapes, dtypes, static
        self.blk = {}          # value -> blocked twin name
        self.plain = set()     # values available in NCHW
        self.out = []
        self.gathers = {}      # value a GatherNCHWc makes -> its [(source value, channel)]
        self.consumers = {}    # value -> the input nodes that read it
        self.protected = set()  # graph outputs
        self.skip = set()      # ids of input nodes a rule already replaced
        self.producer = {}     # blocked value -> the rewritten node that makes it

    def twin(self, v):
        name = v + SUFFIX
        self.shapes[name] = blocked_shape(self.shapes[v])
        self.dtypes[name] = np.dtype(np.float32)
        self.blk[v] = name
        return name

    def need_blocked(self, v):
        if v not in self.blk:
            self.out.append(Node(f"{v}/to_nchwc", "cnn.ToNCHWc", [v], [self.twin(v)]))
        return self.blk[v]

    def need_plain(self, v):
        if v and v not in self.plain and v in self.blk and v not in self.static:
            self.out.append(Node(f"{v}/to_nchw", "cnn.ToNCHW", [self.blk[v]], [v], {},
                                 ToNCHWParams(self.shapes[v][1], len(self.shapes[v]) == 2)))
            self.plain.add(v)

    def only_consumer(self, v):
        """The one node that reads v, when v is not a graph output."""
        users = self.consumers.get(v, [])
        return users[0] if len(users) == 1 and v not in self.protected else None

    def blocked4(self, v):
        """v is a 4-D float32 value available blocked."""
        return bool(v) and v in self.blk and len(self.shapes.get(v, ())) == 4 and \
            self.dtypes.get(v) == np.float32


# Each rule returns the blocked replacement of a node, or None.

def _conv(rw, node):
    if not _conv_ok(node, rw.shapes, rw.dtypes, rw.static):
        return None
    ins, x = node.inputs, node.inputs[0]
    if len(ins) > 3 and ins[3] and rw.shapes[ins[3]] != rw.shapes[node.outputs[0]]:
        return None        # a fused residual Add that broadcasts: the plain conv's generic path adds it
    conv = params_of(node)
    in_nchw = False
    gate = ins[4] if len(ins) > 4 and ins[4] else ""   # passes._fuse_channel_scale
    if x in rw.blk:
        xin = rw.blk[x]
    elif rw.shapes[x][1] <= 4 and conv.group == 1 and not gate:
        xin, in_nchw = x, True                 # a stem on the image
    else:
        xin = rw.need_blocked(x)
    new_ins = [xin] + list(ins[1:3])
    if len(ins) > 3 and ins[3]:                # fused residual
        new_ins += [""] * (3 - len(new_ins)) + [rw.need_blocked(ins[3])]
    if gate:
        new_ins += [""] * (4 - len(new_ins)) + [rw.need_blocked(gate)]
    params = ConvNCHWcParams(conv, rw.shapes[x][1], rw.shapes[node.outputs[0]][1], in_nchw)
    return Node(node.name, "cnn.ConvNCHWc", new_ins, [rw.twin(node.outputs[0])], {}, params, node.fused)


def _activation(rw, node):
    ins = node.inputs
    if node.op not in KERNEL_ACTS or not ins or not rw.blocked4(ins[0]) or \
            any(i and i not in rw.static for i in ins[1:]):
        return None
    return Node(node.name, node.op, [rw.blk[ins[0]]] + list(ins[1:]),
                [rw.twin(node.outputs[0])], dict(node.attrs), params_of(node), node.fused)


def _binary(rw, node):
    ins = node.inputs
    if node.op not in _BINARY or params_of(node).act or len(ins) != 2 or \
            not all(rw.blocked4(i) for i in ins):
        return None
    sa, sb, so = rw.shapes[ins[0]], rw.shapes[ins[1]], rw.shapes[node.outputs[0]]
    if not (sa[:2] == sb[:2] == so[:2] and all(s[2:] in (so[2:], (1, 1)) for s in (sa, sb))):
        return None
    if node.op == "Mul" and sa != sb:
        # squeeze-and-excitation: one factor per channel
        xin, sin = (ins[0], ins[1]) if sb[2:] == (1, 1) else (ins[1], ins[0])
        return Node(node.name, "cnn.ScaleNCHWc", [rw.blk[xin], rw.blk[sin]],
                    [rw.twin(node.outputs[0])], {}, Channels(so[1]))
    return Node(node.name, node.op, [rw.blk[i] for i in ins], [rw.twin(node.outputs[0])],
                dict(node.attrs), params_of(node), node.fused)


def _pool(rw, node):
    a = node.attrs
    if node.op not in ("MaxPool", "AveragePool") or not rw.blocked4(node.inputs[0]) or \
            len(node.outputs) != 1 or len(a.get("kernel_shape", ())) != 2 or \
            (node.op == "AveragePool" and tuple(a.get("dilations", (1, 1))) != (1, 1)):
        return None
    x = node.inputs[0]
    return Node(node.name, "cnn.PoolNCHWc", [rw.blk[x]], [rw.twin(node.outputs[0])], {},
                PoolNCHWcParams(params_of(node), node.op, rw.shapes[x][1]))


# A rule's answer when it changed an earlier node instead of making one.
_MADE = object()


def _global_pool(rw, node):
    x = node.inputs[0] if node.inputs else ""
    if node.op not in _GLOBAL or not rw.blocked4(x):
        return None
    if node.op == "GlobalAveragePool" and _pool_in_conv(rw, x, node.outputs[0]):
        return _MADE
    return Node(node.name, "cnn.GlobalPoolNCHWc", [rw.blk[x]], [rw.twin(node.outputs[0])], {},
                GlobalPoolNCHWcParams(rw.shapes[x][1], node.op == "GlobalMaxPool"))


def _pool_in_conv(rw, x, pooled):
    """The spatial mean of x taken by the depthwise or small-group conv that
    makes it, as it writes x (a squeeze-excitation block's squeeze:
    EfficientNet's 16, MobileNetV3's 8, RegNetY's 16 after its grouped
    convs), instead of a pass that reads x again: the conv's second output
    (kernels.py pools in a pass where the pack cannot)."""
    conv = rw.producer.get(rw.blk[x])
    if conv is None or conv.op != "cnn.ConvNCHWc" or len(conv.outputs) != 1 or \
            len(conv.inputs) > 4 or conv.params.in_nchw:
        return False
    c, g = conv.params.channels, conv.params.conv.group
    small = g > 1 and c % g == 0 and c // g in (2, 4, 8) and c % BLOCK == 0
    if not (g == c or small) or rw.shapes[x][1] != c:
        return False
    conv.outputs.append(rw.twin(pooled))
    conv.params = replace(conv.params, pooled=True)
    rw.producer[conv.outputs[1]] = conv
    return True


def _batch_norm(rw, node):
    """Inference BatchNormalization that no conv absorbed (DenseNet's, after
    a Concat): a per-channel affine."""
    ins = node.inputs
    if node.op != "BatchNormalization" or len(ins) < 5 or not rw.blocked4(ins[0]) or \
            len(node.outputs) != 1 or \
            not all(i in rw.static and rw.static[i].ndim == 1 for i in ins[1:5]):
        return None
    bn = params_of(node)
    g, b, mean, var = (rw.static[i].astype(np.float64) for i in ins[1:5])
    scale = g / np.sqrt(var + bn.epsilon)
    shift = b - mean * scale
    params = AffineParams(rw.shapes[ins[0]][1], tuple(float(v) for v in scale.astype(np.float32)),
                          tuple(float(v) for v in shift.astype(np.float32)), bn.act, bn.act_alpha, bn.act_beta)
    return Node(node.name, "cnn.AffineNCHWc", [rw.blk[ins[0]]], [rw.twin(node.outputs[0])], {}, params,
                node.fused)


def _channel_norm(rw, node):
    """Layer norm across channels (cnn.ChannelNorm) with constant scale and bias."""
    ins = node.inputs
    if node.op != "cnn.ChannelNorm" or len(ins) != 3 or not rw.blocked4(ins[0]) or \
            not all(i in rw.static for i in ins[1:]):
        return None
    params = ChannelNormNCHWcParams(rw.shapes[ins[0]][1], params_of(node).epsilon)
    return Node(node.name, "cnn.ChannelNormNCHWc", [rw.blk[ins[0]]] + list(ins[1:]),
                [rw.twin(node.outputs[0])], {}, params, node.fused)


def _concat(rw, node):
    """Channel Concat: of block planes when every part is whole blocks, else
    (ShuffleNet's 58 + 58 channels) a gather."""
    ins = node.inputs
    if node.op != "Concat" or not ins or int(node.attrs.get("axis", 1)) not in (1, -3) or \
            not all(rw.blocked4(i) for i in ins):
        return None
    if all(rw.shapes[i][1] % BLOCK == 0 and i not in rw.gathers for i in ins):
        return Node(node.name, "Concat", [rw.blk[i] for i in ins], [rw.twin(node.outputs[0])],
                    {"axis": 1})
    return _gather(rw, node.name, [(i, k) for i in ins for k in range(rw.shapes[i][1])],
                   node.outputs[0])


def _channel_slice(rw, node):
    """Slice along channels only, constant bounds."""
    ins = node.inputs
    if node.op != "Slice" or not ins or not rw.blocked4(ins[0]) or len(node.outputs) != 1:
        return None
    if len(ins) > 1:                       # opset 10+: bounds are inputs
        if len(ins) < 3 or not all(i in rw.static for i in ins[1:] if i):
            return None
        starts, ends = (np.asarray(rw.static[i]).reshape(-1) for i in ins[1:3])
        axes = np.asarray(rw.static[ins[3]]).reshape(-1) if len(ins) > 3 and ins[3] else \
            np.arange(len(starts))
        steps = np.asarray(rw.static[ins[4]]).reshape(-1) if len(ins) > 4 and ins[4] else \
            np.ones(len(starts), np.int64)
    else:
        a = node.attrs
        starts, ends = a.get("starts", ()), a.get("ends", ())
        axes, steps = a.get("axes", range(len(starts))), [1] * len(starts)
    if len(starts) != 1 or len(ends) != 1 or len(axes) != 1 or len(steps) != 1 or \
            int(axes[0]) % 4 != 1 or int(steps[0]) == 0:
        return None
    x, y = ins[0], node.outputs[0]
    chans = range(rw.shapes[x][1])[slice(int(starts[0]), int(ends[0]), int(steps[0]))]
    if not chans or rw.shapes.get(y) != rw.shapes[x][:1] + (len(chans),) + rw.shapes[x][2:]:
        return None
    return _gather(rw, node.name, [(x, k) for k in chans], y)


def _channel_split(rw, node):
    """Split along channels: a gather per part."""
    ins, outs = node.inputs, node.outputs
    if node.op != "Split" or not ins or not rw.blocked4(ins[0]) or \
            int(node.attrs.get("axis", 0)) % 4 != 1 or not outs or not all(outs):
        return None
    x = ins[0]
    n, c, h, w = rw.shapes[x]
    if any(rw.shapes.get(o, ())[:1] + rw.shapes.get(o, ())[2:] != (n, h, w) or
           rw.shapes[o][1] < 1 for o in outs) or sum(rw.shapes[o][1] for o in outs) != c:
        return None
    start, last = 0, None
    for k, o in enumerate(outs):
        part = _gather(rw, node.name if k == 0 else f"{node.name}/{k}",
                       [(x, start + j) for j in range(rw.shapes[o][1])], o)
        start += rw.shapes[o][1]
        if last is not None:
            rw.out.append(last)
        last = part
    return last


def _channel_shuffle(rw, node):
    """Reshape (N, C, H, W) -> (N, g, C/g, H, W), Transpose [0, 2, 1, 3, 4],
    Reshape back (ShuffleNet's channel_shuffle): one gather, made here; the
    Transpose and the second Reshape are skipped."""
    if node.op != "Reshape" or not node.inputs or not rw.blocked4(node.inputs[0]):
        return None
    x, mid = node.inputs[0], node.outputs[0]
    n, c, h, w = rw.shapes[x]
    s5 = tuple(rw.shapes.get(mid, ()))
    if len(s5) != 5 or s5[0] != n or s5[3:] != (h, w) or s5[1] * s5[2] != c:
        return None
    t = rw.only_consumer(mid)
    if t is None or t.op != "Transpose" or list(t.attrs.get("perm", ())) != [0, 2, 1, 3, 4]:
        return None
    r = rw.only_consumer(t.outputs[0])
    if r is None or r.op != "Reshape" or tuple(rw.shapes.get(r.outputs[0], ())) != (n, c, h, w):
        return None
    g, cg = s5[1], s5[2]
    rw.skip.update((id(t), id(r)))
    # output channel j = b * g + a holds input channel a * cg + b
    return _gather(rw, r.name, [(x, (j % g) * cg + j // g) for j in range(c)], r.outputs[0])


def _gather(rw, name, sources, out):
    """A GatherNCHWc node: blocked `out` whose channel j is channel c of the
    blocked value v for sources[j] = (v, c). Sources made by an earlier
    gather of this pass are traced to that gather's own sources, so a chain
    (ShuffleNet: Concat -> shuffle -> Slice) moves the data once and the
    links nobody else reads are dropped (_drop_unused_gathers); but not past
    4 inputs, each of which costs a gather per output block and pixel."""
    traced = [rw.gathers[v][c] if v in rw.gathers else (v, c) for v, c in sources]
    if len({v for v, _ in traced}) <= 4:
        sources = traced
    inputs = list(dict.fromkeys(v for v, _ in sources))
    index = {v: i for i, v in enumerate(inputs)}
    rw.gathers[out] = sources
    params = GatherParams(tuple(int(rw.shapes[v][1]) for v in inputs),
                          tuple(index[v] for v, _ in sources), tuple(int(k) for _, k in sources))
    return Node(name, "cnn.GatherNCHWc", [rw.blk[v] for v in inputs], [rw.twin(out)], {}, params)


def _drop_unused_gathers(rw):
    """Gathers whose output no step reads (links of a traced chain)."""
    while True:
        read = {i for node in rw.out for i in node.inputs}
        dead = [node for node in rw.out
                if node.op == "cnn.GatherNCHWc" and node.outputs[0] not in read]
        if not dead:
            return
        for node in dead:
            rw.out.remove(node)
            plain = node.outputs[0][:-len(SUFFIX)]
            del rw.blk[plain]
            rw.gathers.pop(plain, None)


def _spatial_mean(rw, node):
    """ReduceMean / ReduceMax over H and W (MNASNet's and ShuffleNet's
    `x.mean([2, 3])`): the blocked global pool. Without keepdims the
    (N, C) result is reordered straight out of the pooled blocks."""
    ins = node.inputs
    if node.op not in ("ReduceMean", "ReduceMax") or not ins or not rw.blocked4(ins[0]) or \
            len(node.outputs) != 1:
        return None
    axes = node.attrs.get("axes")
    if axes is None and len(ins) > 1 and ins[1] in rw.static:
        axes = [int(a) for a in np.asarray(rw.static[ins[1]]).reshape(-1)]
    if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
        return None
    x, y = ins[0], node.outputs[0]
    n, c = rw.shapes[x][:2]
    params = GlobalPoolNCHWcParams(c, node.op == "ReduceMax")
    mean = node.op == "ReduceMean"
    if int(node.attrs.get("keepdims", 1)):
        if mean and _pool_in_conv(rw, x, y):
            return _MADE
        return Node(node.name, "cnn.GlobalPoolNCHWc", [rw.blk[x]], [rw.twin(y)], {}, params)
    mid = y + "/keepdims"
    rw.shapes[mid], rw.dtypes[mid] = (n, c, 1, 1), np.dtype(np.float32)
    if not (mean and _pool_in_conv(rw, x, mid)):
        rw.out.append(Node(node.name, "cnn.GlobalPoolNCHWc", [rw.blk[x]], [rw.twin(mid)], {}, params))
    rw.plain.add(y)
    return Node(f"{y}/to_nchw", "cnn.ToNCHW", [rw.blk[mid]], [y], {}, ToNCHWParams(c, True))


_RULES = (_conv, _activation, _binary, _pool, _global_pool, _batch_norm, _channel_norm, _concat, _spatial_mean,
          _channel_slice, _channel_split, _channel_shuffle)


def unblock(xb, shape, threads):
    """The NCHW array of a blocked value of NCHW shape `shape`."""
    from ... import _kernels as K
    n, c, h, w = shape
    y = np.empty(shape, np.float32)
    K.nchwc_to_nchw(np.ascontiguousarray(xb).reshape(-1), y.reshape(-1), n, c, h * w, threads)
    return y
