"""Which IR ops are kernel activations, and their (name, alpha, beta).

One definition serves the fusion pass (activation into the conv epilogue)
and the compiled standalone activation steps.
"""
from . import params_of
from .activation import clip_bounds

# IR op -> functional._common.ACTIVATIONS name
KERNEL_ACTS = {"Relu": "relu", "Clip": "clip", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid",
               "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Tanh": "tanh",
               "Elu": "elu", "cnn.Silu": "silu", "Gelu": "gelu", "Erf": "erf"}


def activation_params(node, constants):
    """(name, alpha, beta) for the kernel epilogue, or None when `node` is not a
    kernel activation or its parameters are not constants."""
    name = KERNEL_ACTS.get(node.op)
    if name is None:
        return None
    a = node.attrs
    alpha = beta = 0.0
    if node.op == "Clip":
        if any(i and i not in constants for i in node.inputs[1:]):
            return None
        alpha, beta = clip_bounds(params_of(node), [constants.get(i) if i else None for i in node.inputs])
        alpha, beta = max(alpha, -3.4e38), min(beta, 3.4e38)
    elif node.op == "LeakyRelu":
        alpha = float(a.get("alpha", 0.01))
    elif node.op == "Elu":
        alpha = float(a.get("alpha", 1.0))
    elif node.op == "Gelu":
        name = "gelu" if params_of(node).approximate == "none" else "gelu_tanh"
    elif node.op == "HardSigmoid":
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    return name, float(alpha), float(beta)
