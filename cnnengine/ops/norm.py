"""Normalisation: BatchNormalization (inference, with a fused activation), its
training mode (cnn.BatchNormTraining: batch statistics), LRN,
LayerNormalization, InstanceNormalization."""
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from ._common import axis_index, check_2d, f32
from .base import FULL, OpDef, PerPixel


@dataclass(frozen=True)
class BatchNormParams:
    epsilon: float = 1e-5
    act: str = ""
    act_alpha: float = 0.0
    act_beta: float = 0.0


@register
class BatchNormalization(OpDef):
    types = ("BatchNormalization",)
    Params = BatchNormParams
    inputs = ("x", "scale", "bias", "mean", "var")

    def parse(self, node):
        return BatchNormParams(float(node.attrs.get("epsilon", 1e-5)))

    def infer(self, p, in_shapes, consts):
        x = in_shapes[0]
        if len(x) < 2:
            raise ShapeError(f"input rank {len(x)} < 2")
        return [tuple(x)]

    def reference(self, p, ins):
        x, scale, bias, mean, var = ins[:5]
        if x.ndim < 2:
            raise ShapeError(f"input rank {x.ndim} < 2")
        shape = x.shape
        if any(v.ndim > 1 for v in (scale, bias, mean, var)):
            # spatial=0 (opset 7-8): statistics per activation, shape (C, D1, ...).
            stats = [np.asarray(v, np.float64)[None] for v in (scale, bias, mean, var)]
            y = ((x - stats[2]) / np.sqrt(stats[3] + p.epsilon) * stats[0] + stats[1]).astype(np.float32)
        else:
            x4 = f32(x).reshape(shape[0], shape[1], -1, 1)
            y = F.batch_norm(x4, mean, var, scale, bias, eps=p.epsilon).reshape(shape)
        if p.act:
            y = F.activation(y, p.act, p.act_alpha, p.act_beta)
        return [y]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        if len(out_shape) < 4:
            return [FULL] * len(in_shapes)
        return [out_box] + [FULL] * (len(in_shapes) - 1)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        # per-position statistics (spatial=0) would have to be cut with the map
        if in_boxes[0] is FULL or any(s is not None and len(s) > 1 for s in in_shapes[1:]):
            return None
        return p


@dataclass(frozen=True)
class BatchNormTrainingParams:
    epsilon: float = 1e-5
    momentum: float = 0.9


@register
class BatchNormTraining(OpDef):
    """BatchNormalization with training_mode=1 (opset 14+), as ONNX defines it:
    normalise by the statistics of the given batch (mean and population
    variance over every axis but 1) and output the updated running mean and
    variance. Weight standardisation (NF-ResNet's ScaledStdConv) exports this
    over constant weights, where it folds at load. The importer gives the
    node this type so no inference pass (BN folding, the blocked BN) takes it
    for the running-statistics form."""
    types = ("cnn.BatchNormTraining",)
    Params = BatchNormTrainingParams
    inputs = ("x", "scale", "bias", "mean", "var")

    def parse(self, node):
        return BatchNormTrainingParams(float(node.attrs.get("epsilon", 1e-5)),
                                       float(node.attrs.get("momentum", 0.9)))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        if len(x) < 2:
            raise ShapeError(f"input rank {len(x)} < 2")
        for name, s in zip(self.inputs[1:], in_shapes[1:5]):
            if s is not None and tuple(s) != (x[1],):
                raise ShapeError(f"{name} has shape {tuple(s)}, expected ({x[1]},) for input {x}")
        return [x, (x[1],), (x[1],)]

    def reference(self, p, ins):
        x, scale, bias, mean, var = ins[:5]
        self.infer(p, [np.shape(v) for v in ins[:5]], {})
        if x.size == 0:
            raise ShapeError(f"batch statistics of an empty tensor {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        x64 = np.asarray(x, np.float64)
        bmean = x64.mean(axis=axes)
        bvar = x64.var(axis=axes)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x64 - bmean.reshape(shape)) / np.sqrt(bvar.reshape(shape) + p.epsilon) * \
            np.asarray(scale, np.float64).reshape(shape) + np.asarray(bias, np.float64).reshape(shape)
        run_mean = np.asarray(mean, np.float64) * p.momentum + bmean * (1 - p.momentum)
        run_var = np.asarray(var, np.float64) * p.momentum + bvar * (1 - p.momentum)
        return [y.astype(np.float32), run_mean.astype(np.float32), run_var.astype(np.float32)]


@dataclass(frozen=True)
class LRNParams:
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0


@register
class LRN(PerPixel):
    """Across channels at each pixel: a per-pixel op."""
    types = ("LRN",)
    Params = LRNParams

    def parse(self, node):
        a = node.attrs
        return LRNParams(int(a["size"]), float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)),
                         float(a.get("bias", 1.0)))

    def infer(self, p, in_shapes, consts):
        if len(in_shapes[0]) != 4:
            raise ShapeError(f"only 4-D (N,C,H,W) input is supported, got shape {in_shapes[0]}")
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        x = ins[0]
        check_2d(x)
        return [F.local_response_norm(f32(x), p.size, alpha=p.alpha, beta=p.beta, k=p.bias, convention="onnx")]


@dataclass(frozen=True)
class LayerNormParams:
    axis: int = -1
    epsilon: float = 1e-5


@register
class LayerNormalization(OpDef):
    """Normalises over axes axis..rank-1: on NCHW that always includes space (FULL)."""
    types = ("LayerNormalization",)
    Params = LayerNormParams
    inputs = ("x", "scale", "bias")

    def parse(self, node):
        return LayerNormParams(int(node.attrs.get("axis", -1)), float(node.attrs.get("epsilon", 1e-5)))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        axis = axis_index(p.axis, len(x))
        stat = x[:axis] + (1,) * (len(x) - axis)
        return [x, stat, stat]

    def reference(self, p, ins):
        x = f32(ins[0])
        axis = axis_index(p.axis, x.ndim)
        axes = tuple(range(axis, x.ndim))
        mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + p.epsilon)
        y = (x - mean) * inv_std * ins[1]
        if len(ins) > 2 and ins[2] is not None:
            y = y + ins[2]
        # Optional outputs Mean and InvStdDev keep the reduced axes as size 1.
        return [y.astype(np.float32), mean.astype(np.float32), inv_std.astype(np.float32)]


@dataclass(frozen=True)
class ChannelNormParams:
    epsilon: float = 1e-5


@register
class ChannelNorm(PerPixel):
    """Layer norm across the channels of each pixel of an NCHW value, with a
    per-channel scale and bias: what a Transpose(0,2,3,1) -> LayerNormalization
    over the last axis -> Transpose(0,3,1,2) computes (made by the passes,
    runtime/fusions_modern.py)."""
    types = ("cnn.ChannelNorm",)
    Params = ChannelNormParams
    inputs = ("x", "scale", "bias")

    def parse(self, node):
        return ChannelNormParams(float(node.attrs.get("epsilon", 1e-5)))

    def infer(self, p, in_shapes, consts):
        x = tuple(in_shapes[0])
        if len(x) < 2:
            raise ShapeError(f"input rank {len(x)} < 2")
        for name, s in zip(self.inputs[1:], in_shapes[1:3]):
            if s is not None and tuple(s) != (x[1],):
                raise ShapeError(f"{name} has shape {tuple(s)}, expected ({x[1]},) for input {x}")
        return [x]

    def reference(self, p, ins):
        return [F.channel_norm(f32(ins[0]), ins[1], ins[2] if len(ins) > 2 else None, p.epsilon)]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        if len(out_shape) < 4:
            return [FULL] * len(in_shapes)
        return [out_box] + [FULL] * (len(in_shapes) - 1)

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return None if in_boxes[0] is FULL else p


@dataclass(frozen=True)
class InstanceNormParams:
    epsilon: float = 1e-5


@register
class InstanceNormalization(OpDef):
    types = ("InstanceNormalization",)
    Params = InstanceNormParams
    inputs = ("x", "scale", "bias")

    def parse(self, node):
        return InstanceNormParams(float(node.attrs.get("epsilon", 1e-5)))

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        x = f32(ins[0])
        axes = tuple(range(2, x.ndim))
        mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - mean) / np.sqrt(var + p.epsilon)
        return [(y * ins[1].reshape(shape) + ins[2].reshape(shape)).astype(np.float32)]
