"""The op registry: op type name -> OpDef (see base.py).

Every family module registers its definitions on import; this package
imports them all, so `get("Conv")` works after `import cnnengine.ops`.
Layering: ops import ir, functional and errors, never runtime (control.py
takes its subgraph runner from whoever runs graphs).
"""
import numpy as np

from ..errors import Error
from .base import FULL, Box, OpDef, PerPixel, params_dict, unsupported  # noqa: F401

REGISTRY = {}


def register(cls):
    """Class decorator: one instance serves every type name in cls.types."""
    inst = cls()
    for name in cls.types:
        if name in REGISTRY:
            raise RuntimeError(f"op {name} registered twice")
        REGISTRY[name] = inst
    return cls


def get(op_type):
    return REGISTRY[op_type]


def known(op_type):
    return op_type in REGISTRY


def params_of(node):
    """The node's typed params, parsed once and kept on the node."""
    p = node.params
    if p is None:
        try:
            p = REGISTRY[node.op].parse(node)
        except Error:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            # an attribute of the wrong type or shape in the file
            from ..errors import ModelFormatError
            raise ModelFormatError(f"node {node.name!r} ({node.op}): malformed attributes "
                                   f"({type(exc).__name__}: {exc})") from None
        node.params = p
    return p


def evaluate(node, ins):
    """Reference evaluation of one node -> list of outputs; errors name the node."""
    try:
        return REGISTRY[node.op].reference(params_of(node), ins)
    except Error as exc:
        msg = str(exc)
        if node.name in msg:
            raise
        raise type(exc)(f"node {node.name!r} ({node.op}): {msg}") from None


def infer(node, in_shapes, consts=None):
    """Output shapes of one node (consts: input position -> array known at plan time)."""
    try:
        return REGISTRY[node.op].infer(params_of(node), [None if s is None else tuple(s) for s in in_shapes],
                                       consts or {})
    except Error as exc:
        msg = str(exc)
        if node.name in msg:
            raise
        raise type(exc)(f"node {node.name!r} ({node.op}): {msg}") from None


def evaluate_window(op, params, ins, out_shape, out_box, consts=None):
    """Output 0 of `op` (an OpDef) on `ins`, cut to out_box, computed from
    the input windows region() names when cropped() allows (else the whole
    op is run and the box cut out). What region runs and tests build on."""
    shapes = [None if x is None else tuple(np.shape(x)) for x in ins]
    boxes = op.region(params, shapes, tuple(out_shape), out_box, consts)
    p = op.cropped(params, shapes, boxes, consts)
    if p is None:
        return op.reference(params, ins)[0][out_box.slices()]
    cut = [x if b is FULL or x is None else np.ascontiguousarray(x[b.clip(x.shape).slices()])
           for x, b in zip(ins, boxes)]
    return op.reference(p, cut)[0]


# The families: importing each registers its ops.
from . import (activation, control, conv, dense, elementwise, layout, norm, pool,  # noqa: E402,F401
               reduce, resample, shape)
