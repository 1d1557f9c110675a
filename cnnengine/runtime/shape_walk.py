"""A plan's shapes from shape inference alone, for the common float ops.

The executor's first run at a new signature used to evaluate every op by
its reference to learn the shapes, dtypes and views of the values, then
compile the plan and return the reference's outputs: on EfficientNet-Lite0
that run cost ~50 steady runs (the reference convolutions, then packing
for the plan). Where every step is a float op whose output shapes its
OpDef.infer gives (below), the walk here learns the same from the shapes:
nodes that depend only on weights and input shapes are still evaluated
(Shape -> Gather -> Concat -> Reshape chains, with stand-in arrays of the
right shape for Shape/Size), the rest only inferred; the executor then
compiles the plan and runs it once for the first run's outputs. Anything
else (an integer or boolean value, control flow, an op outside FLOAT_OPS,
an infer that fails) answers None, and the executor walks by reference as
before, which also names the failing node and shapes.

Views are not known without values: every step that no C kernel runs is
taken as a possible view of its first non-constant input (memory_plan then
keeps that input's buffer alive as long as the step's output); C kernels
write their own buffers.
"""
import numpy as np

from .. import ops
from ..errors import Error
from ..ir.weights import copy_weights, dtype_of, is_unread, shape_of

# ops whose outputs are float32 when their non-constant inputs are
FLOAT_OPS = frozenset((
    "Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "BatchNormalization", "LRN", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish",
    "HardSigmoid", "Tanh", "Elu", "cnn.Silu", "PRelu", "Add", "Sub", "Mul", "Div", "Concat", "Reshape",
    "Flatten", "Squeeze", "Unsqueeze", "Slice", "Split", "Transpose", "Pad", "Resize", "ReduceMean",
    "ReduceMax", "Softmax", "Expand", "Identity", "Erf", "Sqrt", "Pow", "LayerNormalization",
))
_F32 = np.dtype(np.float32)


def walk(graph, feeds):
    """(env of constant values, static names, shapes, dtypes, step nodes), or None."""
    env = copy_weights(graph.weights)       # unread file weights stay unread (ir/weights.py)
    static = set(graph.weights)
    env.update(feeds)
    shapes = {k: shape_of(env, k) for k in env}
    dtypes = {k: dtype_of(env, k) for k in env}
    if any(dtypes[k] != _F32 for k in feeds):
        return None
    steps = []
    for node in graph.nodes:
        if node.op in ("Shape", "Size") or all((not i) or i in static for i in node.inputs):
            ins = [(env[i] if i in env else _stand_in(shapes[i], dtypes[i])) if i else None
                   for i in node.inputs]
            try:
                outs = ops.evaluate(node, ins)
            except Exception:  # noqa: BLE001 - the reference walk names it
                return None
            for name, value in zip(node.outputs, outs):
                if name:
                    env[name] = value
                    static.add(name)
                    shapes[name] = tuple(np.shape(value))
                    dtypes[name] = np.asarray(value).dtype
            continue
        named = [o for o in node.outputs if o]
        if node.op not in FLOAT_OPS or (len(named) != 1 and node.op != "Split"):
            return None
        if any(i and i not in static and dtypes[i] != _F32 for i in node.inputs):
            return None
        # a weight still in its file stands in by its shape: infer reads the
        # values only of small constants (shapes, axes, scales), which import keeps
        consts = {k: (_stand_in(shapes[i], dtypes[i]) if is_unread(env, i) else env[i])
                  for k, i in enumerate(node.inputs) if i and i in static}
        try:
            outs = ops.infer(node, [shapes[i] if i else None for i in node.inputs], consts)
        except (Error, Exception):  # noqa: BLE001 - the reference walk names it
            return None
        if len(outs) < len(node.outputs):
            return None
        for name, shape in zip(node.outputs, outs):
            if name:
                shapes[name], dtypes[name] = tuple(int(d) for d in shape), _F32
        steps.append(node)
    return env, static, shapes, dtypes, steps


def _stand_in(shape, dtype):
    """An array of this shape that takes no memory (Shape and Size read only the shape)."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def possible_views(steps, static):
    """{output: input} for every step no C kernel runs (module docstring)."""
    views = {}
    for st in steps:
        if getattr(st.runner, "kernel", None) == "C":
            continue
        src = next((i for i in st.node.inputs if i and i not in static), None)
        if src is not None:
            for o in st.node.outputs:
                if o:
                    views[o] = src
    return views
