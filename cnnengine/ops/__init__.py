"""The op registry: op type name -> OpDef (see base.py).

Every family module registers its definitions on import; this package
imports them all, so `get("Conv")` works after `import cnnengine.ops`.
"""
from .base import FULL, Box, OpDef, params_dict, unsupported  # noqa: F401

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
        p = REGISTRY[node.op].parse(node)
        node.params = p
    return p


def evaluate(node, ins):
    """Reference evaluation of one node -> list of outputs."""
    return REGISTRY[node.op].reference(params_of(node), ins)
