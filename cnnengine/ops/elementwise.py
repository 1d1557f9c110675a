"""Elementwise ops (all per-pixel): binary arithmetic, comparisons and logic,
the variadic Sum/Max/Min/Mean, unary math, Where."""
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from .base import PerPixel


def _broadcast(shapes):
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes if s is not None]))
    except ValueError:
        raise ShapeError(f"cannot broadcast {' with '.join(str(tuple(s)) for s in shapes)}") from None


class _Elementwise(PerPixel):
    def infer(self, p, in_shapes, consts):
        return [_broadcast(in_shapes)]


_BINARY_F = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_BINARY_NP = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Pow": np.power, "Equal": np.equal, "Less": np.less, "Greater": np.greater,
              "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
              "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor, "Mod": np.mod}


@dataclass(frozen=True)
class BinaryParams:
    kind: str            # the ONNX op name
    fmod: bool = False   # Mod: the sign of the dividend (C's fmod) instead of the divisor's
    act: str = ""        # an activation fused after the op
    act_alpha: float = 0.0
    act_beta: float = 0.0


@register
class Binary(_Elementwise):
    types = tuple(_BINARY_NP)
    Params = BinaryParams
    inputs = ("a", "b")

    def parse(self, node):
        return BinaryParams(node.op, bool(node.attrs.get("fmod", 0)))

    def reference(self, p, ins):
        a_, b_ = ins[0], ins[1]
        try:
            if p.kind in _BINARY_F and a_.dtype == np.float32 and b_.dtype == np.float32:
                y = getattr(F, _BINARY_F[p.kind])(a_, b_)
            elif p.kind == "Div" and a_.dtype.kind in "iu" and b_.dtype.kind in "iu":
                y = np.trunc(np.divide(a_, b_)).astype(np.result_type(a_, b_))
            else:
                with np.errstate(all="ignore"):
                    y = (np.fmod if p.fmod and p.kind == "Mod" else _BINARY_NP[p.kind])(a_, b_)
                    if p.kind == "Pow":
                        y = y.astype(a_.dtype)
        except ValueError as exc:
            raise ShapeError(f"cannot broadcast {a_.shape} with {b_.shape}") from exc
        if p.act:
            y = F.activation(y, p.act, p.act_alpha, p.act_beta)
        return [y]


@register
class Variadic(_Elementwise):
    types = ("Sum", "Max", "Min", "Mean")
    inputs = ("x*",)

    @dataclass(frozen=True)
    class Params:
        kind: str

    def parse(self, node):
        return self.Params(node.op)

    def reference(self, p, ins):
        fn = {"Sum": np.add, "Max": np.maximum, "Min": np.minimum, "Mean": np.add}[p.kind]
        y = ins[0]
        for x in ins[1:]:
            y = F.add(y, x) if (p.kind in ("Sum", "Mean") and y.dtype == np.float32) else fn(y, x)
        if p.kind == "Mean":
            y = y / np.float32(len(ins))
        return [np.asarray(y)]


def erf(x):
    """erf to float32 precision (Numerical Recipes erfc Chebyshev, |err| < 1.2e-7)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    r = t * np.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    return np.where(x >= 0, 1.0 - r, r - 1.0)


_UNARY = {
    "Abs": np.abs, "Neg": np.negative, "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt,
    "Reciprocal": np.reciprocal, "Floor": np.floor, "Ceil": np.ceil, "Round": np.rint,
    "Sin": np.sin, "Cos": np.cos, "Sign": np.sign, "Not": np.logical_not,
    "Erf": lambda x: erf(x).astype(x.dtype),
}


@register
class Unary(_Elementwise):
    types = tuple(_UNARY)

    @dataclass(frozen=True)
    class Params:
        kind: str

    def parse(self, node):
        return self.Params(node.op)

    def reference(self, p, ins):
        x = ins[0]
        if p.kind == "Erf" and x.dtype == np.float32:
            return [F.erf(x)]      # the C kernel; NumPy has no erf
        with np.errstate(all="ignore"):
            return [np.asarray(_UNARY[p.kind](x)).astype(x.dtype, copy=False)]


@register
class Where(_Elementwise):
    types = ("Where",)
    inputs = ("cond", "a", "b")

    def reference(self, p, ins):
        return [np.where(ins[0], ins[1], ins[2])]
