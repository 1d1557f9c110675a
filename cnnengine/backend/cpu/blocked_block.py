"""An inverted-residual block as one blocked step: cnn.BlockNCHWc.

MobileNetV2's block is a 1x1 expand (BN, ReLU6 fused), a kxk depthwise
(BN, ReLU6) and a 1x1 projection (BN, residual Add fused): three
cnn.ConvNCHWc steps after the layout pass, the first writing an expanded
value (112x112x96 floats: 4.8 MB) that the second reads back, and the
second one the third reads. fuse_blocks turns each such chain whose
expanded value does not fit the L2 into one step whose kernel
(csrc/ops/nchwc_block.c) makes those values a few rows at a time in each
thread's cache. Blocks with a squeeze-excitation gate (MobileNetV3,
EfficientNet) fuse expand -> depthwise (with the depthwise's plane means,
the squeeze); the projection needs the gate of the whole map.

The in-between values are gone from the plan, as a channel shuffle's are:
a capture of one runs the unfused plan (Model.run, Executor.computes).
CNNENGINE_FUSE_BLOCKS=0 (read when a plan is made) keeps the three steps;
=all fuses every block whatever its size (tests).
"""
import os
from dataclasses import dataclass, replace

from ...ir.graph import Node
from ...ops import register
from ...ops.base import FULL, OpDef
from .blocked_ops import ConvNCHWc, ConvNCHWcParams

_CONV = ConvNCHWc()


@dataclass(frozen=True)
class BlockNCHWcParams:
    dw: ConvNCHWcParams                  # pooled: a second output, its plane means
    expand: ConvNCHWcParams = None       # None: the block starts at the depthwise
    project: ConvNCHWcParams = None      # None: it ends there


@register
class BlockNCHWc(OpDef):
    """project(dw(expand(x))) (+ residual); the three convs' semantics in sequence."""
    types = ("cnn.BlockNCHWc",)
    Params = BlockNCHWcParams
    inputs = ("x", "we", "be", "wd", "bd", "wp", "bp", "residual")

    @staticmethod
    def _ins(ins):
        ins = list(ins) + [None] * (8 - len(ins))
        return ins[1:3], ins[3:5], ins[5:7], ins[7]

    def _shapes(self, p, in_shapes):
        """The blocked input shapes of expand, dw and project (None: absent)."""
        we, wd, wp, res = self._ins(in_shapes)
        s = in_shapes[0]
        e_in = d_in = p_in = None
        if p.expand is not None:
            e_in = [s] + we
            (s,) = _CONV.infer(p.expand, e_in, {})
        d_in = [s] + wd
        s = _CONV.infer(p.dw, d_in, {})[0]
        if p.project is not None:
            p_in = [s] + wp + [res]
        return e_in, d_in, p_in

    def infer(self, p, in_shapes, consts):
        _, d_in, p_in = self._shapes(p, in_shapes)
        if p.project is None:
            return _CONV.infer(p.dw, d_in, consts)
        return _CONV.infer(p.project, p_in, consts)

    def reference(self, p, ins):
        we, wd, wp, res = self._ins(ins)
        x = ins[0]
        if p.expand is not None:
            (x,) = _CONV.reference(p.expand, [x] + we)
        outs = _CONV.reference(p.dw, [x] + wd)
        if p.project is None:
            return outs
        return _CONV.reference(p.project, [outs[0]] + wp + [res])

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        e_in, d_in, p_in = self._shapes(p, in_shapes)
        boxes = [FULL] * len(in_shapes)
        box = out_box
        if p.project is not None:
            pb = _CONV.region(p.project, p_in, out_shape, box, consts)
            box = pb[0]
            if len(in_shapes) > 7 and in_shapes[7] is not None:
                boxes[7] = pb[3]
        d_out = _CONV.infer(p.dw, d_in, {})[0]
        box = _CONV.region(p.dw, d_in, d_out, box, consts)[0]
        if p.expand is not None:
            box = _CONV.region(p.expand, e_in, d_in[0], box, consts)[0]
        boxes[0] = box
        return boxes

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        if p.dw.pooled:
            return None       # the mean is over the whole map
        if len(in_shapes) > 7 and in_shapes[7] is not None and in_boxes[7] is FULL:
            return None
        _, d_in, _ = self._shapes(p, in_shapes)
        # the 1x1s read their window as it is: the depthwise's padding is the block's
        dw = _CONV.cropped(p.dw, d_in, [in_boxes[0], FULL, FULL], consts)
        return None if dw is None else replace(p, dw=dw)


def _switch():
    """CNNENGINE_FUSE_BLOCKS: 0 off, "all" every block whatever its size
    (tests), "over=BYTES" another size threshold (experiments), else by size."""
    return os.environ.get("CNNENGINE_FUSE_BLOCKS", "1").lower()


def _pointwise(node):
    """A plain 1x1 stride-1 unpadded groups-1 conv on blocked input, one output."""
    if node is None or node.op != "cnn.ConvNCHWc" or len(node.outputs) != 1:
        return False
    p = node.params
    c = p.conv
    if p.in_nchw or p.pooled or p.pre is not None or c.group != 1 or (len(node.inputs) > 4 and node.inputs[4]):
        return False
    return tuple(c.strides) == (1, 1) and not any(c.pads or ()) and c.auto_pad in ("NOTSET", "VALID") and \
        tuple(c.kernel_shape or (1, 1)) == (1, 1)


def _depthwise(node, shapes):
    if node is None or node.op != "cnn.ConvNCHWc" or node.params.in_nchw:
        return False
    p = node.params
    if p.conv.group != p.channels or p.channels != p.out_channels or p.channels <= 1:
        return False
    if len(node.inputs) > 3 and any(node.inputs[3:]):     # residual or gate
        return False
    k = shapes.get(node.inputs[1], ())
    return len(k) == 4 and k[2] == k[3] and k[2] in (3, 5, 7) and tuple(p.conv.dilations) == (1, 1) and \
        tuple(p.conv.strides) in ((1, 1), (2, 2))


def _weights_1x1(node, shapes):
    k = shapes.get(node.inputs[1], ())
    return len(k) == 4 and k[2] == k[3] == 1


def flat_1x1(node, shapes):
    """node is a cnn.ConvNCHWc 1x1, stride 1, unpadded, groups 1, on
    blocked input, with one output and nothing applied to its input."""
    return _pointwise(node) and _weights_1x1(node, shapes)


def _streamable_1x1(node, shapes, with_residual):
    if not flat_1x1(node, shapes):
        return False
    return with_residual or not (len(node.inputs) > 3 and node.inputs[3])


def _bytes(shape):
    """Bytes of one image of a blocked value."""
    return shape[1] * shape[2] * shape[3] * shape[4] * 4


def fuse_blocks(nodes, shapes, outputs, l2_bytes):
    """(nodes, the values no step makes any more): nodes (the layout pass's
    result) with each streamable block as one cnn.BlockNCHWc step:
    [expand ->] depthwise [-> project], each link's value read by the next
    step alone and no graph output, where the value the fusion keeps in
    cache (the expanded one, or without an expand the depthwise output)
    exceeds l2_bytes per image."""
    if _switch() == "0":
        return nodes, set()
    every = _switch() == "all"
    if every:
        l2_bytes = 0
    elif _switch().startswith("over="):       # experiments: another size threshold in bytes
        l2_bytes = int(_switch()[5:])
    consumers = {}
    for n in nodes:
        for v in n.inputs:
            if v:
                consumers.setdefault(v, []).append(n)
    protected = set(outputs)

    def only(v):
        users = consumers.get(v, [])
        return users[0] if len(users) == 1 and v not in protected else None

    producer = {o: n for n in nodes for o in n.outputs if o}
    fused, drop = {}, set()
    for d in nodes:
        if not _depthwise(d, shapes):
            continue
        e = producer.get(d.inputs[0])
        if not (e is not None and id(e) not in drop and id(e) not in fused and
                _streamable_1x1(e, shapes, False) and only(e.outputs[0]) is d):
            e = None
        pj = only(d.outputs[0]) if len(d.outputs) == 1 else None
        if not (pj is not None and _streamable_1x1(pj, shapes, True) and pj.inputs[0] == d.outputs[0]):
            pj = None
        if e is not None:
            if _bytes(shapes[d.inputs[0]]) <= l2_bytes or (pj is None and len(d.outputs) != 2):
                continue
            # without the projection only the expanded value stays in cache:
            # that pays at stride 2 alone, where it is 4x the depthwise output
            # (EfficientNet-B0 24->144 @56 s1 + SiLU: 0.71 -> 0.74 ms fused)
            if pj is None and not every and tuple(d.params.conv.strides) != (2, 2):
                continue
        elif pj is None or _bytes(shapes[d.outputs[0]]) <= l2_bytes:
            continue
        ins = [e.inputs[0] if e is not None else d.inputs[0]]
        ins += _pad(e.inputs[1:3]) if e is not None else ["", ""]
        ins += _pad(d.inputs[1:3])
        if pj is not None:
            ins += _pad(pj.inputs[1:3]) + [pj.inputs[3] if len(pj.inputs) > 3 else ""]
        outs = list(pj.outputs if pj is not None else d.outputs)
        chain = [x for x in (e, d, pj) if x is not None]
        params = BlockNCHWcParams(d.params, e.params if e is not None else None,
                                  pj.params if pj is not None else None)
        folded = chain[0].fused + tuple(f for x in chain[1:] for f in (x.name,) + x.fused)
        node = Node(chain[0].name, "cnn.BlockNCHWc", ins, outs, {}, params, folded)
        fused[id(chain[-1])] = node
        drop.update(id(x) for x in chain[:-1])
        for o in outs:
            producer[o] = node
    kept = [fused.get(id(n), n) for n in nodes if id(n) not in drop]
    made = {o for n in kept for o in n.outputs}
    return kept, {o for n in nodes for o in n.outputs if o and o not in made}


def _pad(pair):
    return (list(pair) + ["", ""])[:2]
