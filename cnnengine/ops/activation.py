"""Activations (all per-pixel) and Softmax / LogSoftmax."""
import math
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from . import register
from ._common import axis_index, f32, opset
from .base import FULL, OpDef, PerPixel, pixel_windowable, unsupported


class _Activation(PerPixel):
    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]


# IR op -> the kernels' activation name (functional._common.ACTIVATIONS)
_SIMPLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish", "cnn.Silu": "silu"}


@register
class SimpleActivation(_Activation):
    """The kernel activations without parameters (cnn.Silu: x*sigmoid(x), made by the passes)."""
    types = tuple(_SIMPLE)

    @dataclass(frozen=True)
    class Params:
        kind: str

    def parse(self, node):
        return self.Params(_SIMPLE[node.op])

    def reference(self, p, ins):
        return [F.activation(f32(ins[0]), p.kind)]


@dataclass(frozen=True)
class AlphaParams:
    alpha: float


@register
class LeakyRelu(_Activation):
    types = ("LeakyRelu",)
    Params = AlphaParams

    def parse(self, node):
        return AlphaParams(float(node.attrs.get("alpha", 0.01)))

    def reference(self, p, ins):
        return [F.activation(f32(ins[0]), "leaky_relu", p.alpha)]


@register
class Elu(_Activation):
    types = ("Elu",)
    Params = AlphaParams

    def parse(self, node):
        return AlphaParams(float(node.attrs.get("alpha", 1.0)))

    def reference(self, p, ins):
        return [F.activation(f32(ins[0]), "elu", p.alpha)]


@register
class HardSigmoid(_Activation):
    types = ("HardSigmoid",)

    @dataclass(frozen=True)
    class Params:
        alpha: float = 0.2
        beta: float = 0.5

    def parse(self, node):
        return self.Params(float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5)))

    def reference(self, p, ins):
        return [F.activation(f32(ins[0]), "hardsigmoid", p.alpha, p.beta)]


@register
class Gelu(_Activation):
    types = ("Gelu",)

    @dataclass(frozen=True)
    class Params:
        approximate: str = "none"   # "none" (erf) or "tanh"

    def parse(self, node):
        a = node.attrs.get("approximate", "none")
        a = a.decode() if isinstance(a, bytes) else str(a)
        if a not in ("none", "tanh"):
            raise unsupported(node, f"approximate={a!r} (expected 'none' or 'tanh')")
        return self.Params(a)

    def reference(self, p, ins):
        return [F.gelu(f32(ins[0]), p.approximate)]


@register
class PRelu(_Activation):
    types = ("PRelu",)
    inputs = ("x", "slope")

    def infer(self, p, in_shapes, consts):
        return [tuple(np.broadcast_shapes(tuple(in_shapes[0]), tuple(in_shapes[1])))]

    def reference(self, p, ins):
        x, slope = f32(ins[0]), f32(ins[1])
        if x.ndim >= 2 and slope.size in (1, x.shape[1]) and slope.size == np.prod(slope.shape) and \
                (slope.ndim <= 1 or slope.shape[1:] == (1,) * (slope.ndim - 1) or slope.size == 1):
            return [F.prelu(x, slope.reshape(-1))]
        return [np.where(x > 0, x, x * slope).astype(np.float32)]


@register
class Selu(_Activation):
    types = ("Selu",)

    @dataclass(frozen=True)
    class Params:
        alpha: float = 1.67326319217681884765625
        gamma: float = 1.05070102214813232421875

    def parse(self, node):
        d = self.Params()
        return self.Params(float(node.attrs.get("alpha", d.alpha)), float(node.attrs.get("gamma", d.gamma)))

    def reference(self, p, ins):
        x = f32(ins[0])
        return [(p.gamma * np.where(x > 0, x, p.alpha * np.expm1(np.minimum(x, 0)))).astype(np.float32)]


@register
class Softplus(_Activation):
    types = ("Softplus",)

    def reference(self, p, ins):
        return [np.logaddexp(0, f32(ins[0])).astype(np.float32)]


@register
class Mish(_Activation):
    types = ("Mish",)

    def reference(self, p, ins):
        x = f32(ins[0])
        return [(x * np.tanh(np.logaddexp(0, x))).astype(np.float32)]


@dataclass(frozen=True)
class ClipParams:
    min: float = None   # opset < 11: the attributes; from 11 min/max are inputs (None here)
    max: float = None


def clip_bounds(p, ins):
    """(min, max) of a Clip from its params and its min/max inputs; when min > max
    ONNX sets every value to max."""
    if p.min is not None or p.max is not None:
        lo = -np.inf if p.min is None else p.min
        hi = np.inf if p.max is None else p.max
    else:
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
        lo = float(np.asarray(lo).reshape(-1)[0]) if np.size(lo) else -np.inf
        hi = float(np.asarray(hi).reshape(-1)[0]) if np.size(hi) else np.inf
    return (hi, hi) if lo > hi else (lo, hi)


@register
class Clip(_Activation):
    types = ("Clip",)
    Params = ClipParams
    inputs = ("x", "min", "max")

    def parse(self, node):
        if opset(node) < 11:
            return ClipParams(float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf)))
        return ClipParams()

    def reference(self, p, ins):
        lo, hi = clip_bounds(p, ins)
        if ins[0].dtype != np.float32:
            return [np.clip(ins[0], lo, hi).astype(ins[0].dtype)]
        return [F.activation(ins[0], "clip", max(lo, -3.4e38), min(hi, 3.4e38))]


@dataclass(frozen=True)
class SoftmaxParams:
    axis: int
    flatten: bool     # opset < 13: over the flattened axes from `axis` on
    log: bool = False  # LogSoftmax


@register
class Softmax(OpDef):
    """Softmax and LogSoftmax; per-pixel when taken over the channels of a map."""
    types = ("Softmax", "LogSoftmax")
    Params = SoftmaxParams

    def parse(self, node):
        old = opset(node) < 13
        return SoftmaxParams(int(node.attrs.get("axis", 1 if old else -1)), old, node.op == "LogSoftmax")

    def infer(self, p, in_shapes, consts):
        axis_index(p.axis, len(in_shapes[0]))
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        x = f32(ins[0])
        axis = axis_index(p.axis, x.ndim)
        if p.flatten:
            # Old semantics: flatten to (prod(shape[:axis]), prod(shape[axis:])).
            y = F.softmax(x.reshape(math.prod(x.shape[:axis]), -1), axis=1).reshape(x.shape)
        else:
            y = F.softmax(x, axis=axis)
        if p.log:
            y = np.log(y)
        return [y]

    def _per_pixel(self, p, shape):
        return len(shape) >= 4 and not p.flatten and axis_index(p.axis, len(shape)) not in (2, 3)

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        return [out_box if self._per_pixel(p, in_shapes[0]) else FULL]

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        return p if self._per_pixel(p, in_shapes[0]) and pixel_windowable(in_shapes, in_boxes) else None

