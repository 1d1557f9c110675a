"""How one value of a convolution is computed (CNN Explainer), free of Qt.

For output unit (c, y, x) of a Conv layer: the input window each input
channel of c's group contributes through (zeros where the window reaches
into the padding), the kernel slice w[c, j], their element-wise products
and sum, and the bias; the contributions, summed in float64, plus the bias
make the layer's own output at that unit. The conv is the one of the
source graph (model.graph, before fusion), so its output is what the
capture of that layer gives: before any BatchNormalization or activation
that follows it, which `followed_by` names.
"""
from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..errors import InputError
from ..ops.conv import _conv_geometry

FOLLOW_OPS = ("BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "HardSigmoid", "Tanh",
              "Elu", "PRelu", "Gelu", "cnn.Silu")


@dataclass
class Contribution:
    channel: int                 # input channel index (of the whole input, not of the group)
    window: np.ndarray           # (kh, kw) input values the kernel taps read; 0 in the padding
    inside: np.ndarray           # (kh, kw) bool: the tap reads the input (False: padding)
    kernel: np.ndarray           # (kh, kw) w[c, j]
    products: np.ndarray         # window * kernel
    total: float                 # products.sum() (float64)


@dataclass
class Explanation:
    layer: str
    channel: int
    y: int
    x: int
    kernel: tuple                # (kh, kw)
    strides: tuple
    dilations: tuple
    pads: tuple                  # (top, left, bottom, right)
    group: int
    rows: np.ndarray             # input row each kernel row reads (may be outside: padding)
    cols: np.ndarray
    contributions: list          # every input channel of the group, by |total| descending
    bias: float
    total: float                 # sum of contributions + bias (float64)
    output: float = None         # the layer's own output at the unit (engine), when given
    input_name: str = ""         # the layer whose output is the conv's input ("" = the model input)
    followed_by: list = field(default_factory=list)   # [(layer, op)] of the BN/activation chain after it

    def top(self, n):
        return self.contributions[:n]

    def rest(self, n):
        """Sum of the contributions after the first n."""
        return float(sum(c.total for c in self.contributions[n:]))


def explain_conv(params, xin, w, b, c, y, x):
    """The Explanation of unit (c, y, x) of a conv with ConvParams `params`
    on input xin (1, C, H, W), weights w (M, C/group, kh, kw), bias b or None."""
    xin = np.asarray(xin)
    m, cg = w.shape[0], w.shape[1]
    (kh, kw), pads = _conv_geometry(params, xin.shape, w.shape)
    (sh, sw), (dh, dw) = params.strides, params.dilations
    g = c // (m // params.group)
    rows = y * sh - pads[0] + np.arange(kh) * dh
    cols = x * sw - pads[1] + np.arange(kw) * dw
    h, wd = xin.shape[2:]
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < wd))[None, :]
    ri, ci = np.clip(rows, 0, h - 1), np.clip(cols, 0, wd - 1)
    contributions = []
    for j in range(cg):
        ch = g * cg + j
        win = np.where(inside, xin[0, ch][np.ix_(ri, ci)], 0).astype(np.float32)
        k = np.asarray(w[c, j], np.float32)
        prod = win.astype(np.float64) * k.astype(np.float64)
        contributions.append(Contribution(ch, win, inside, k, prod.astype(np.float32), float(prod.sum())))
    contributions.sort(key=lambda t: -abs(t.total))
    bias = float(b[c]) if b is not None else 0.0
    total = float(sum(t.total for t in contributions) + bias)
    return Explanation("", int(c), int(y), int(x), (kh, kw), tuple(params.strides), tuple(params.dilations),
                       tuple(pads), int(params.group), rows, cols, contributions, bias, total)


# ----------------------------------------------------------------- model
def conv_node(model, layer):
    """The Conv node of model.graph (the unfused graph) named `layer`."""
    node = next((n for n in model.graph.nodes if n.name == layer), None)
    if node is None or node.op != "Conv":
        op = node.op if node is not None else "not a node of the engine's graph"
        raise InputError(f"{layer} ({op}) is not a convolution: pick a Conv layer")
    if len(node.inputs) < 2 or node.inputs[1] not in model.graph.weights:
        raise InputError(f"{layer}: the conv's weights are computed, not stored")
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in model.graph.weights:
        raise InputError(f"{layer}: the conv's bias is computed, not stored")
    return node


def input_layer(model, node):
    """The layer whose output is the conv's input, "" for the model's input."""
    value = node.inputs[0]
    if value in {v.name for v in model.graph.inputs}:
        return ""
    for n in model.graph.nodes:
        if n.outputs and n.outputs[0] == value:
            return n.name
    raise InputError(f"{node.name}: its input {value!r} is not a layer's first output")


def followed_by(model, node):
    """The chain of BatchNormalization / activation layers that only this conv feeds."""
    consumers = {}
    for n in model.graph.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    outs = {v.name for v in model.graph.outputs}
    chain, value = [], node.outputs[0]
    while value not in outs and len(consumers.get(value, [])) == 1:
        nxt = consumers[value][0]
        if nxt.op not in FOLLOW_OPS:
            break
        chain.append((nxt.name, nxt.op))
        value = nxt.outputs[0]
    return chain


class ConvProbe:
    """The captured input and output of one Conv layer for one image, so
    that every click on a unit is answered without running the model."""

    def __init__(self, model, layer, x):
        self.node = conv_node(model, layer)
        self.layer = layer
        self.params = ops.params_of(self.node)
        g = model.graph.weights
        self.w = g[self.node.inputs[1]]
        self.b = g[self.node.inputs[2]] if len(self.node.inputs) > 2 and self.node.inputs[2] else None
        self.input_name = input_layer(model, self.node)
        names = [layer] + ([self.input_name] if self.input_name else [])
        _, acts = model.run(x, capture=names)
        self.output = np.asarray(acts[layer])
        self.input = np.asarray(acts[self.input_name]) if self.input_name else np.asarray(x)
        if self.input.ndim != 4 or self.output.ndim != 4:
            raise InputError(f"{layer}: a 4-D input and output are needed, got {self.input.shape} -> "
                             f"{self.output.shape}")
        self.followed_by = followed_by(model, self.node)

    def explain(self, c, y, x):
        n, m, h, w = self.output.shape
        if not (0 <= c < m and 0 <= y < h and 0 <= x < w):
            raise InputError(f"{self.layer}: unit ({c}, {y}, {x}) is outside its output {self.output.shape}")
        e = explain_conv(self.params, self.input[:1], self.w, self.b, c, y, x)
        e.layer, e.output, e.input_name, e.followed_by = self.layer, float(self.output[0, c, y, x]), \
            self.input_name, self.followed_by
        return e

    def strongest(self, c):
        """(y, x) of channel c's largest output."""
        m = self.output[0, c]
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape))
