"""Op cases for the CUDA tests: the ONNX conformance node cases with float
inputs, each as given and with every input after the first turned into an
initializer (how real models hold weights, scales and pads: the kernel
table takes those as plan constants), plus random odd-shaped convolution,
pooling and dense cases (prime channel counts, sizes that are not multiples
of the 64x64 tiles, batch > 1, asymmetric pads, dilation, groups)."""
import copy

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..importers.test_onnx_conformance import CASES, _array


def frozen(model, inputs):
    """model with graph inputs 1.. as initializers holding inputs[1:]."""
    m = copy.deepcopy(model)
    g = m.graph
    keep = list(g.input)[:1]
    for vi, x in zip(list(g.input)[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.asarray(x), vi.name))
    del g.input[:]
    g.input.extend(keep)
    return m, inputs[:1]


def conformance():
    """(name, model, inputs): the conformance cases with float32 inputs, as given and frozen."""
    out = []
    for name, model, data in CASES:
        inputs = [_array(v) for v in data[0]]
        if not inputs or inputs[0].dtype != np.float32:
            continue
        if all(x.dtype == np.float32 for x in inputs):
            out.append((name, model, inputs))
        if len(inputs) > 1:
            fm, fi = frozen(model, inputs)
            out.append((name + "@frozen", fm, fi))
    return out


def _node_model(op, x_shape, weights, attrs, opset=17, extra_inputs=()):
    rng = np.random.default_rng(abs(hash((op, x_shape))) % 2**32)
    inits = [numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k)
             for k, v in weights.items()]
    node = helper.make_node(op, ["x"] + list(weights) + list(extra_inputs), ["y"], **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model, [rng.standard_normal(x_shape).astype(np.float32)]


def _graph_model(nodes, x_shape, inits, opset=13):
    rng = np.random.default_rng(abs(hash(x_shape)) % 2**32)
    graph = helper.make_graph(nodes, "fused", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), \
        [rng.standard_normal(x_shape).astype(np.float32)]


def fused_cases():
    """Graphs the passes fuse into one conv or dense step: residual add and
    activation, squeeze-excitation gate, BatchNorm + activation, Gemm + activation."""
    rng = np.random.default_rng(5)

    def w(*shape):
        return rng.standard_normal(shape) * 0.3
    out = []
    mk = helper.make_node
    c = 13
    out.append(("fused_residual_relu", *_graph_model(
        [mk("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), mk("Add", ["c", "x"], ["a"]),
         mk("Relu", ["a"], ["y"])], (2, c, 9, 7), {"w": w(c, c, 3, 3), "b": w(c)})))
    out.append(("fused_se_gate", *_graph_model(
        [mk("GlobalAveragePool", ["x"], ["p"]), mk("Conv", ["p", "w1", "b1"], ["q"]), mk("Relu", ["q"], ["r"]),
         mk("Conv", ["r", "w2", "b2"], ["s0"]), mk("Sigmoid", ["s0"], ["s"]), mk("Mul", ["x", "s"], ["m"]),
         mk("Conv", ["m", "w3"], ["y"])], (2, c, 6, 5),
        {"w1": w(5, c, 1, 1), "b1": w(5), "w2": w(c, 5, 1, 1), "b2": w(c), "w3": w(17, c, 1, 1)})))
    out.append(("fused_conv_bn_hardswish", *_graph_model(
        [mk("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 0, 1, 1]),
         mk("BatchNormalization", ["c", "g", "bb", "mu", "var"], ["n"]), mk("HardSwish", ["n"], ["y"])],
        (1, 6, 11, 10), {"w": w(9, 6, 3, 3), "g": w(9), "bb": w(9), "mu": w(9), "var": np.abs(w(9)) + 0.5}, 14)))
    out.append(("fused_gemm_clip", *_graph_model(
        [mk("Gemm", ["x", "w", "b"], ["g"], transB=1), mk("Clip", ["g", "lo", "hi"], ["y"])], (5, 71),
        {"w": w(33, 71), "b": w(33), "lo": np.array(0.0), "hi": np.array(6.0)})))
    return out


def kernel_test_convs():
    """The CPU kernel tests' convolution cases (tests/kernels/test_conv2d.py), with bias and a ReLU."""
    from ..kernels.test_conv2d import CASES as CONV_CASES
    rng = np.random.default_rng(11)
    out = []
    for i, (n, c, h, wd, k, kh, kw, stride, pads, dil, groups) in enumerate(CONV_CASES):
        inits = {"w": rng.standard_normal((k, c // groups, kh, kw)) * 0.3, "b": rng.standard_normal(k)}
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=list(stride), pads=list(pads),
                                  dilations=list(dil), group=groups), helper.make_node("Relu", ["c"], ["y"])]
        out.append((f"kernel_conv_{i}", *_graph_model(nodes, (n, c, h, wd), inits)))
    return out


def kernel_test_pools():
    """The CPU kernel tests' pooling cases (tests/kernels/test_pool2d.py): max, and
    average with and without the padding counted (dilated ones: max only, as ONNX
    AveragePool takes dilations only from opset 19)."""
    from ..kernels.test_pool2d import CASES as POOL_CASES
    out = []
    for i, (n, c, h, w, k, s, pads, dil, ceil) in enumerate(POOL_CASES):
        if max(pads[0], pads[2]) >= k[0] or max(pads[1], pads[3]) >= k[1]:
            continue     # ONNX Runtime-style pools refuse pads as large as the kernel
        attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(pads), ceil_mode=int(ceil))
        m, x = _node_model("MaxPool", (n, c, h, w), {}, dict(attrs, dilations=list(dil)), opset=13)
        out.append((f"kernel_maxpool_{i}", m, x))
        if dil == (1, 1):
            for cip in (0, 1):
                m, x = _node_model("AveragePool", (n, c, h, w), {}, dict(attrs, count_include_pad=cip), opset=13)
                out.append((f"kernel_avgpool_{i}_cip{cip}", m, x))
    return out


def odd_cases():
    """Random cases with odd sizes for the kernels whose tiling the conformance cases barely touch."""
    rng = np.random.default_rng(20261206)
    out = []

    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)
    convs = [  # (N, C, H, W), K, kernel, stride, dilation, pads, group
        ((2, 3, 17, 19), 7, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
        ((3, 13, 11, 9), 67, (3, 5), (2, 1), (1, 2), (0, 2, 1, 3), 1),
        ((2, 29, 8, 10), 131, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),
        ((1, 37, 7, 7), 37, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 37),
        ((2, 11, 12, 13), 22, (5, 5), (1, 2), (2, 1), (2, 2, 3, 1), 11),
        ((2, 12, 9, 9), 18, (3, 3), (1, 1), (1, 1), (1, 0, 1, 2), 3),
        ((1, 5, 4, 4), 1, (4, 4), (1, 1), (1, 1), (0, 0, 0, 0), 1),
        ((2, 70, 6, 5), 65, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 1),
    ]
    for i, (xs, k, ker, st, dil, pads, g) in enumerate(convs):
        m, x = _node_model("Conv", xs, {"w": w(k, xs[1] // g, *ker), "b": w(k)},
                           dict(strides=st, dilations=dil, pads=pads, group=g))
        out.append((f"odd_conv_{i}", m, x))
    for i, (xs, k, ker, st, pads, outpad, g) in enumerate([
            ((2, 5, 7, 6), 3, (3, 3), (2, 2), (1, 0, 1, 1), (1, 0), 1),
            ((1, 6, 5, 5), 4, (4, 2), (3, 1), (0, 0, 0, 0), (0, 0), 2)]):
        m, x = _node_model("ConvTranspose", xs, {"w": w(xs[1], k, *ker), "b": w(k * g)},
                           dict(strides=st, pads=pads, output_padding=outpad, group=g))
        out.append((f"odd_conv_transpose_{i}", m, x))
    for i, (op, xs, ker, st, pads, ceil, cip) in enumerate([
            ("MaxPool", (2, 7, 13, 11), (3, 3), (2, 2), (1, 1, 0, 0), 1, 0),
            ("AveragePool", (3, 5, 10, 9), (3, 2), (2, 3), (1, 0, 1, 1), 1, 1),
            ("AveragePool", (1, 3, 9, 9), (4, 4), (3, 3), (2, 2, 2, 2), 0, 0)]):
        attrs = dict(kernel_shape=ker, strides=st, pads=pads, ceil_mode=ceil)
        if op == "AveragePool":
            attrs["count_include_pad"] = cip
        m, x = _node_model(op, xs, {}, attrs)
        out.append((f"odd_{op.lower()}_{i}", m, x))
    for i, (rows, kdim, nout) in enumerate([(1, 97, 1000), (64, 129, 67), (3, 5, 7)]):
        m, x = _node_model("Gemm", (rows, kdim), {"w": w(nout, kdim), "b": w(nout)}, dict(transB=1))
        out.append((f"odd_gemm_{i}", m, x))
    m, x = _node_model("BatchNormalization", (2, 13, 5, 7),
                       {"s": w(13), "bb": w(13), "mean": w(13), "var": np.abs(w(13)) + 0.5}, {})
    out.append(("odd_batchnorm", m, x))
    m, x = _node_model("LRN", (2, 17, 6, 5), {}, dict(size=4, alpha=1e-3, beta=0.75, bias=1.5))
    out.append(("odd_lrn", m, x))
    for axis in (-1, 1):
        shape = (2, 7, 5, 3)
        norm = shape[axis:] if axis > 0 else shape[-1:]
        m, x = _node_model("LayerNormalization", shape, {"g": w(*norm), "bb": w(*norm)}, dict(axis=axis, epsilon=1e-5))
        out.append((f"odd_layernorm_axis{axis}", m, x))
    # Transpose -> LayerNorm(last axis) -> Transpose: the passes make it one cnn.ChannelNorm
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t", "g", "bb"], ["n"], axis=-1, epsilon=1e-6),
             helper.make_node("Transpose", ["n"], ["y"], perm=[0, 3, 1, 2])]
    m, x = _graph_model(nodes, (2, 11, 5, 3), {"g": w(11), "bb": w(11)}, opset=17)
    out.append(("odd_channel_norm", m, x))
    m, x = _node_model("Softmax", (3, 1001), {}, dict(axis=-1))
    out.append(("odd_softmax", m, x))
    for op in ("Sin", "Cos", "Round", "Sign", "Mish", "Erf", "Softplus"):
        m, x = _node_model(op, (2, 3, 5), {}, {}, opset=18)
        out.append((f"odd_{op.lower()}", m, x))
    for op in ("ReduceMin", "ReduceSumSquare", "ReduceL2", "ReduceMean", "ReduceMax"):
        m, x = _node_model(op, (2, 5, 4, 3), {}, dict(axes=[1, 2], keepdims=1), opset=13)
        out.append((f"odd_{op.lower()}", m, x))
    return out + fused_cases() + kernel_test_convs() + kernel_test_pools()
