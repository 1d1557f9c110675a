"""Graph IR: nodes with ONNX operator semantics, named values, weights."""
from .graph import Graph, Node, ValueInfo  # noqa: F401
