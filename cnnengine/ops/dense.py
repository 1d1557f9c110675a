"""Dense layers: Gemm (with a fused activation from the passes) and MatMul."""
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from ._common import f32
from .base import OpDef


@dataclass(frozen=True)
class GemmParams:
    alpha: float = 1.0
    beta: float = 1.0
    trans_a: bool = False
    trans_b: bool = False
    act: str = ""
    act_alpha: float = 0.0
    act_beta: float = 0.0


@register
class Gemm(OpDef):
    types = ("Gemm",)
    Params = GemmParams
    inputs = ("a", "b", "c")

    def parse(self, node):
        a = node.attrs
        return GemmParams(float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)), bool(a.get("transA", 0)),
                          bool(a.get("transB", 0)))

    def infer(self, p, in_shapes, consts):
        a, b = in_shapes[0], in_shapes[1]
        if len(a) != 2 or len(b) != 2:
            raise ShapeError(f"inputs must be 2-D, got {a} and {b}")
        m, k = (a[1], a[0]) if p.trans_a else a
        kb, n = (b[1], b[0]) if p.trans_b else b
        if k != kb:
            raise ShapeError(f"inner sizes differ: {a} and {b}")
        if len(in_shapes) > 2 and in_shapes[2] is not None:
            try:
                np.broadcast_shapes(tuple(in_shapes[2]), (m, n))
            except ValueError:
                raise ShapeError(f"C {in_shapes[2]} does not broadcast to {(m, n)}") from None
        return [(m, n)]

    def reference(self, p, ins):
        a_, b_ = f32(ins[0]), f32(ins[1])
        c = ins[2] if len(ins) > 2 else None
        if p.trans_a:
            a_ = a_.T
        if a_.ndim != 2 or b_.ndim != 2:
            raise ShapeError(f"inputs must be 2-D, got {ins[0].shape} and {ins[1].shape}")
        w = b_ if p.trans_b else b_.T       # (N, K), linear's layout
        bias = None
        if c is not None and p.beta != 0.0:
            c = f32(c)
            if c.ndim <= 1 and c.size == w.shape[0] and p.alpha == 1.0:
                bias = c.reshape(-1) * p.beta if p.beta != 1.0 else c.reshape(-1)
                c = None
        y = F.linear(np.ascontiguousarray(a_), np.ascontiguousarray(w), bias)
        if p.alpha != 1.0:
            y *= p.alpha
        if c is not None and p.beta != 0.0:
            y = y + p.beta * c
        if p.act:
            y = F.activation(y, p.act, p.act_alpha, p.act_beta)
        return [y.astype(np.float32, copy=False)]


@register
class MatMul(OpDef):
    types = ("MatMul",)
    inputs = ("a", "b")

    def infer(self, p, in_shapes, consts):
        a, b = tuple(in_shapes[0]), tuple(in_shapes[1])
        if not a or not b:
            raise ShapeError(f"MatMul of a scalar: {a} and {b}")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise ShapeError(f"inner sizes differ: {a} and {b}")
        try:
            lead = np.broadcast_shapes(a2[:-2], b2[:-2])
        except ValueError:
            raise ShapeError(f"batch shapes do not broadcast: {a} and {b}") from None
        return [lead + (a2[-2],) * (len(a) > 1) + (b2[-1],) * (len(b) > 1)]

    def reference(self, p, ins):
        a_, b_ = ins
        if a_.dtype == np.float32 and b_.ndim == 2 and a_.ndim >= 2:
            lead = a_.shape[:-1]
            y = F.linear(np.ascontiguousarray(a_.reshape(-1, a_.shape[-1])), np.ascontiguousarray(b_.T))
            return [y.reshape(*lead, b_.shape[1])]
        try:
            return [np.matmul(a_, b_)]
        except ValueError as exc:
            raise ShapeError(str(exc)) from None
