"""The ops the blocked layout pass makes (layout.py), as typed op definitions.

A blocked value is (N, ceil(C/8), H, W, 8) (NCHW8c); its spatial axes are
2 and 3 as in NCHW, so the region rules of the plain ops serve their
blocked twins unchanged. Each reference unblocks its inputs, runs the
plain op's reference and blocks the result: slow, exact, and what region
runs fall back on and tests compare against.
"""
from dataclasses import dataclass, replace

import numpy as np

from ... import ops
from ...ops import register
from ...ops.base import FULL, OpDef, PerPixel
from ...ops.conv import ConvParams
from ...ops.pool import PoolParams

BLOCK = 8


def blocked_shape(shape):
    n, c, h, w = shape
    return (n, (c + BLOCK - 1) // BLOCK, h, w, BLOCK)


def block(x):
    """NCHW -> NCHW8c, padding lanes zero."""
    n, c, h, w = x.shape
    cb = (c + BLOCK - 1) // BLOCK
    y = np.zeros((n, cb * BLOCK, h, w), np.float32)
    y[:, :c] = x
    return np.ascontiguousarray(y.reshape(n, cb, BLOCK, h, w).transpose(0, 1, 3, 4, 2))


def unblock(xb, c):
    n, cb, h, w, _ = xb.shape
    return np.ascontiguousarray(xb.transpose(0, 1, 4, 2, 3).reshape(n, cb * BLOCK, h, w)[:, :c])


def plain_shape(shape, c):
    """The NCHW shape of a blocked shape with c channels."""
    return (shape[0], c) + tuple(shape[2:4])


@dataclass(frozen=True)
class ConvNCHWcParams:
    conv: ConvParams          # geometry and the fused epilogue
    channels: int             # C of the input
    out_channels: int         # K of the output
    in_nchw: bool = False     # a stem reading the NCHW image directly
    pooled: bool = False      # a second output: the spatial mean of the output (a squeeze)
    pre: "AffineParams" = None  # act(x * scale + shift) applied to x as it is read (layout.fuse_affines)


@register
class ConvNCHWc(OpDef):
    types = ("cnn.ConvNCHWc",)
    Params = ConvNCHWcParams
    inputs = ("x", "w", "b", "residual", "gate")

    def _plain(self, p, in_shapes):
        shapes = list(in_shapes)
        if not p.in_nchw:
            shapes[0] = plain_shape(shapes[0], p.channels)
        if len(shapes) > 3 and shapes[3] is not None:
            shapes[3] = plain_shape(shapes[3], p.out_channels)
        if len(shapes) > 4 and shapes[4] is not None:
            shapes[4] = plain_shape(shapes[4], p.channels)
        return shapes

    def infer(self, p, in_shapes, consts):
        (y,) = ops.get("Conv").infer(p.conv, self._plain(p, in_shapes)[:3], consts)
        yb = blocked_shape(y)
        return [yb, yb[:2] + (1, 1, BLOCK)] if p.pooled else [yb]

    def reference(self, p, ins):
        x = ins[0] if p.in_nchw else unblock(ins[0], p.channels)
        if p.pre is not None:
            x = affine(p.pre, x)
        plain = [x] + list(ins[1:3])
        if len(ins) > 3:
            plain.append(None if ins[3] is None else unblock(ins[3], p.out_channels))
        if len(ins) > 4:
            plain.append(None if ins[4] is None else unblock(ins[4], p.channels))
        (y,) = ops.get("Conv").reference(p.conv, plain)
        yb = block(y)
        if not p.pooled:
            return [yb]
        return [yb, block(y.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32))]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        plain_out = plain_shape(out_shape, p.out_channels)
        return ops.get("Conv").region(p.conv, self._plain(p, in_shapes), plain_out, out_box, consts)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        if p.pooled:
            return None       # the mean is over the whole map
        conv = ops.get("Conv").cropped(p.conv, self._plain(p, in_shapes), in_boxes, consts)
        return None if conv is None else replace(p, conv=conv)


@dataclass(frozen=True)
class PoolNCHWcParams:
    pool: PoolParams
    kind: str                 # "MaxPool" or "AveragePool"
    channels: int


@register
class PoolNCHWc(OpDef):
    types = ("cnn.PoolNCHWc",)
    Params = PoolNCHWcParams

    def infer(self, p, in_shapes, consts):
        (y,) = ops.get(p.kind).infer(p.pool, [plain_shape(in_shapes[0], p.channels)], consts)
        return [blocked_shape(y)]

    def reference(self, p, ins):
        return [block(ops.get(p.kind).reference(p.pool, [unblock(ins[0], p.channels)])[0])]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        return ops.get(p.kind).region(p.pool, [plain_shape(in_shapes[0], p.channels)],
                                      plain_shape(out_shape, p.channels), out_box, consts)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        pool = ops.get(p.kind).cropped(p.pool, [plain_shape(in_shapes[0], p.channels)], in_boxes, consts)
        return None if pool is None else replace(p, pool=pool)


@dataclass(frozen=True)
class Channels:
    channels: int


class _Reorder(OpDef):
    """A layout change: pixel (y, x) of the output is pixel (y, x) of the input."""

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        return [out_box]

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return p


@register
class ToNCHWc(_Reorder):
    types = ("cnn.ToNCHWc",)

    def infer(self, p, in_shapes, consts):
        return [blocked_shape(in_shapes[0])]

    def reference(self, p, ins):
        return [block(ins[0])]


@dataclass(frozen=True)
class ToNCHWParams:
    channels: int
    flat: bool = False        # (N, C) out of pooled (N, C/8, 1, 1, 8) blocks: a ReduceMean without keepdims


@register
class ToNCHW(_Reorder):
    types = ("cnn.ToNCHW",)
    Params = ToNCHWParams

    def infer(self, p, in_shapes, consts):
        y = plain_shape(in_shapes[0], p.channels)
        return [y[:2] if p.flat else y]

    def reference(self, p, ins):
        y = unblock(ins[0], p.channels)
        return [y.reshape(y.shape[:2]) if p.flat else y]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        return [FULL] if p.flat else super().region(p, in_shapes, out_shape, out_box, consts)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return None if p.flat else super().cropped(p, in_shapes, in_boxes, consts)


@dataclass(frozen=True)
class GlobalPoolNCHWcParams:
    channels: int
    is_max: bool


@register
class GlobalPoolNCHWc(OpDef):
    types = ("cnn.GlobalPoolNCHWc",)
    Params = GlobalPoolNCHWcParams

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0][:2]) + (1, 1, BLOCK)]

    def reference(self, p, ins):
        x = unblock(ins[0], p.channels)
        y = x.max(axis=(2, 3), keepdims=True) if p.is_max else \
            x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
        return [block(y)]


@register
class ScaleNCHWc(PerPixel):
    """x * s with s one factor per image and channel (squeeze-excitation)."""
    types = ("cnn.ScaleNCHWc",)
    Params = Channels
    inputs = ("x", "scale")

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        return [(ins[0] * ins[1]).astype(np.float32)]


@dataclass(frozen=True)
class GatherParams:
    sizes: tuple              # channels of each input
    src_in: tuple             # output channel j comes from input src_in[j] ...
    src_ch: tuple             # ... channel src_ch[j]


@register
class GatherNCHWc(PerPixel):
    """Channel gathers: channel Concat of partial blocks, Slice/Split along
    channels, ShuffleNet's channel shuffle (layout.py)."""
    types = ("cnn.GatherNCHWc",)
    Params = GatherParams
    inputs = ("x", "*")

    def infer(self, p, in_shapes, consts):
        return [blocked_shape(plain_shape(in_shapes[0], len(p.src_ch)))]

    def reference(self, p, ins):
        plain = [unblock(x, c) for x, c in zip(ins, p.sizes)]
        return [block(np.stack([plain[i][:, k] for i, k in zip(p.src_in, p.src_ch)], axis=1))]


@dataclass(frozen=True)
class AffineParams:
    channels: int
    scale: tuple              # per channel
    shift: tuple
    act: str = ""             # an activation fused after (DenseNet's BN-ReLU)
    act_alpha: float = 0.0
    act_beta: float = 0.0


@register
class AffineNCHWc(PerPixel):
    """A BatchNormalization no conv absorbed, as a per-channel affine."""
    types = ("cnn.AffineNCHWc",)
    Params = AffineParams

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        return [block(affine(p, unblock(ins[0], p.channels)))]


def affine(p, x):
    """AffineParams p on NCHW x: act(x * scale + shift) per channel."""
    from ... import functional as F
    s = np.asarray(p.scale, np.float32).reshape(1, -1, 1, 1)
    t = np.asarray(p.shift, np.float32).reshape(1, -1, 1, 1)
    y = (x * s + t).astype(np.float32)
    return F.activation(y, p.act, p.act_alpha, p.act_beta) if p.act else y


@dataclass(frozen=True)
class ChannelNormNCHWcParams:
    channels: int
    epsilon: float


@register
class ChannelNormNCHWc(PerPixel):
    """cnn.ChannelNorm on a blocked value (padding lanes become 0)."""
    types = ("cnn.ChannelNormNCHWc",)
    Params = ChannelNormNCHWcParams
    inputs = ("x", "scale", "bias")

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        x = unblock(ins[0], p.channels)
        (y,) = ops.get("cnn.ChannelNorm").reference(ops.get("cnn.ChannelNorm").Params(p.epsilon), [x] + list(ins[1:3]))
        return [block(y)]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        return [out_box] + [FULL] * (len(in_shapes) - 1)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return None if in_boxes[0] is FULL else p
