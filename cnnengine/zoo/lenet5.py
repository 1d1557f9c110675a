"""LeNet-5 (LeCun et al., 1998) as an ONNX graph, from a state dict.

The layer plan of the lecture notes (32x32 grayscale input, tanh):

======  ===============================  ===========  ======
layer   operation                         output       params
======  ===============================  ===========  ======
c1      6 conv 5x5                        6x28x28      156
s2      average pool 2x2 / 2              6x14x14      0
c3      16 conv 5x5 (full connection)     16x10x10     2,416
s4      average pool 2x2 / 2              16x5x5       0
c5      120 conv 5x5                      120x1x1      48,120
f6      fully connected 120 -> 84         84           10,164
output  fully connected 84 -> 10          10           850
======  ===============================  ===========  ======

Simplifications against the paper, as the notes allow: C3 is fully connected
to S2 (2,416 instead of 1,516 weights), S2/S4 are plain average pools (the
paper's trainable coefficient and bias per map are dropped), and the output
is a linear layer giving logits rather than Gaussian (RBF) connections.
Activations are tanh after c1, c3, c5 and f6.

Node names: c1, c1.tanh, s2, c3, c3.tanh, s4, c5, c5.tanh, flatten, f6,
f6.tanh, output; the graph output is "logits".
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError

NAME = "lenet5"
SHAPES = {
    "c1.weight": (6, 1, 5, 5), "c1.bias": (6,),
    "c3.weight": (16, 6, 5, 5), "c3.bias": (16,),
    "c5.weight": (120, 16, 5, 5), "c5.bias": (120,),
    "f6.weight": (84, 120), "f6.bias": (84,),
    "output.weight": (10, 84), "output.bias": (10,),
}
PARAMS = {"c1": 156, "c3": 2416, "c5": 48120, "f6": 10164, "output": 850}


def check_state_dict(state_dict):
    for key, shape in SHAPES.items():
        if key not in state_dict:
            raise ModelFormatError(f"not a LeNet-5 state dict: {key} is missing")
        got = tuple(np.shape(state_dict[key]))
        if got != shape:
            raise ModelFormatError(f"LeNet-5 state dict: {key} has shape {got}, expected {shape}")
    extra = [k for k in state_dict if k not in SHAPES]
    if extra:
        raise ModelFormatError(f"not a LeNet-5 state dict: unexpected keys {extra[:4]}")


def build_onnx(state_dict, *, doc=""):
    """LeNet-5 as an ONNX ModelProto (opset 13), input "input" (N, 1, 32, 32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_state_dict(state_dict)
    inits = [numpy_helper.from_array(np.asarray(state_dict[k], dtype=np.float32), k) for k in SHAPES]
    nodes = []

    def conv(name, x):
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [name], name=name,
                                      kernel_shape=[5, 5], strides=[1, 1], pads=[0, 0, 0, 0]))
        return name

    def tanh(x):
        nodes.append(helper.make_node("Tanh", [x], [x + ".tanh"], name=x + ".tanh"))
        return x + ".tanh"

    def pool(name, x):
        nodes.append(helper.make_node("AveragePool", [x], [name], name=name,
                                      kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]))
        return name

    def fc(name, x, out=None):
        nodes.append(helper.make_node("Gemm", [x, f"{name}.weight", f"{name}.bias"], [out or name],
                                      name=name, alpha=1.0, beta=1.0, transB=1))
        return out or name

    x = pool("s2", tanh(conv("c1", "input")))
    x = pool("s4", tanh(conv("c3", x)))
    x = tanh(conv("c5", x))
    nodes.append(helper.make_node("Flatten", [x], ["flatten"], name="flatten", axis=1))
    x = tanh(fc("f6", "flatten"))
    fc("output", x, out="logits")
    graph = helper.make_graph(
        nodes, NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="cnnengine.zoo", producer_version="1")
    model.ir_version = 8
    model.doc_string = doc or "LeNet-5 (cnnengine zoo)"
    onnx.checker.check_model(model)
    return model
