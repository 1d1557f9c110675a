"""Shape bookkeeping: Shape, Size, Cast, ConstantOfShape, Range, Identity, Dropout."""
from dataclasses import dataclass

import numpy as np

from ..errors import Error, ShapeError, UnsupportedOpError
from . import register
from ._common import const_input, ints
from .base import OpDef, PerPixel, unsupported


@register
class Shape(OpDef):
    types = ("Shape",)

    @dataclass(frozen=True)
    class Params:
        start: int = 0
        end: int = None

    def parse(self, node):
        end = node.attrs.get("end")
        return self.Params(int(node.attrs.get("start", 0)), None if end is None else int(end))

    def infer(self, p, in_shapes, consts):
        return [(len(range(len(in_shapes[0]))[p.start:p.end]),)]

    def reference(self, p, ins):
        return [np.asarray(ins[0].shape, dtype=np.int64)[p.start:p.end]]


@register
class Size(OpDef):
    types = ("Size",)

    def infer(self, p, in_shapes, consts):
        return [()]

    def reference(self, p, ins):
        return [np.asarray(ins[0].size, dtype=np.int64)]


_CAST = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
         9: np.bool_, 10: np.float32, 11: np.float32, 12: np.uint32, 13: np.uint64}


@register
class Cast(PerPixel):
    types = ("Cast",)

    @dataclass(frozen=True)
    class Params:
        to: int    # an ONNX TensorProto data type (10, float16, is held as float32 rounded to half)

    def parse(self, node):
        to = int(node.attrs["to"])
        if to not in _CAST:
            raise unsupported(node, f"target type {to} is not supported")
        return self.Params(to)

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        x = ins[0]
        if p.to == 10 and x.dtype != np.float16:   # values round to half precision, held as float32
            return [x.astype(np.float16).astype(np.float32)]
        return [x.astype(_CAST[p.to])]


def _checked_shape(shape):
    from ..ir.graph import check_shape
    try:
        check_shape(shape, "output")
    except Error as exc:
        raise ShapeError(str(exc)) from None
    return tuple(shape)


@register
class ConstantOfShape(OpDef):
    types = ("ConstantOfShape",)
    inputs = ("shape",)

    @dataclass(frozen=True)
    class Params:
        value: object = None     # a NumPy scalar: its dtype is the output's

    def parse(self, node):
        value = node.attrs.get("value", np.zeros(1, np.float32))
        return self.Params(np.asarray(value).reshape(-1)[0])

    def infer(self, p, in_shapes, consts):
        return [_checked_shape(list(ints(const_input(in_shapes, consts, 0, "shape"))))]

    def reference(self, p, ins):
        shape = _checked_shape(list(ints(ins[0])))
        return [np.full(shape, p.value, dtype=p.value.dtype)]


@register
class Range(OpDef):
    types = ("Range",)
    inputs = ("start", "limit", "delta")

    def _count(self, start, limit, delta):
        if delta == 0:
            raise ShapeError("delta is 0")
        n = int(max(np.ceil((limit - start) / delta), 0))
        if n > 1 << 24:
            raise ShapeError(f"{n} elements is too many")
        return n

    def infer(self, p, in_shapes, consts):
        start, limit, delta = (np.asarray(const_input(in_shapes, consts, i, "bound")).reshape(())
                               for i in range(3))
        return [(self._count(start, limit, delta),)]

    def reference(self, p, ins):
        start, limit, delta = (np.asarray(v).reshape(()) for v in ins)
        n = self._count(start, limit, delta)
        return [(start + np.arange(n) * delta).astype(start.dtype)]


@register
class Identity(PerPixel):
    types = ("Identity",)

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])]

    def reference(self, p, ins):
        return [ins[0]]


@register
class Dropout(PerPixel):
    """Inference Dropout: y = x and an all-true mask. (Only kept as Dropout
    when the file asks for the mask or passes training_mode.)"""
    types = ("Dropout",)
    inputs = ("x", "ratio", "training_mode")

    @dataclass(frozen=True)
    class Params:
        ratio: float = 0.5

    def parse(self, node):
        return self.Params(float(node.attrs.get("ratio", 0.5)))

    def infer(self, p, in_shapes, consts):
        return [tuple(in_shapes[0])] * 2

    def reference(self, p, ins):
        x = ins[0]
        ratio = float(np.asarray(ins[1]).reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None else p.ratio
        training = bool(np.asarray(ins[2]).reshape(-1)[0]) if len(ins) > 2 and ins[2] is not None else False
        if training and ratio != 0.0:
            raise UnsupportedOpError(f"training mode (random dropout, ratio {ratio}) is not supported; "
                                     f"this engine runs inference only")
        return [x, np.ones(x.shape, dtype=np.bool_)]
