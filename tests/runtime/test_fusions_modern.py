"""The modern-family passes (runtime/fusions_modern.py) on hand-built graphs:
what they rewrite, what they must leave alone, and that the result still
matches ONNX Runtime on the unfused graph."""
import collections
import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce

from .onnx_builders import init, ort_run

ort = pytest.importorskip("onnxruntime")


def _const(name, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


def _model(nodes, inits, in_shape, out_shape, opset=17):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _fused_ops(model):
    return collections.Counter(n.op for n in model._fused.nodes)


def _check(onnx_model, x, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    m = ce.load(path)
    ref = ort_run(onnx_model, x)
    y = m.run(x)
    assert np.abs(y - ref).max() <= 2e-5 * max(1.0, float(np.abs(ref).max()))
    return m


def _gelu_erf(x, out, k=1 / math.sqrt(2), half=0.5, form=0):
    """x * 0.5 * (1 + erf(x / sqrt 2)) in three operand orders."""
    div = helper.make_node("Mul", [x, "k"], ["d"]) if form == 2 else helper.make_node("Div", [x, "sq2"], ["d"])
    nodes = [div, helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["one", "e"], ["a"])]
    if form == 0:
        nodes += [helper.make_node("Mul", [x, "a"], ["m"]), helper.make_node("Mul", ["m", "half"], [out])]
    elif form == 1:
        nodes += [helper.make_node("Mul", [x, "half"], ["h"]), helper.make_node("Mul", ["h", "a"], [out])]
    else:
        nodes += [helper.make_node("Mul", ["a", "half"], ["m"]), helper.make_node("Mul", ["m", x], [out])]
    inits = [_const("sq2", math.sqrt(2) if k == 1 / math.sqrt(2) else 1 / k), _const("k", k),
             _const("one", 1.0), _const("half", half)]
    return nodes, inits


@pytest.mark.parametrize("form", [0, 1, 2])
def test_gelu_erf_forms_fuse_into_the_conv(rng, tmp_path, form):
    nodes, inits = _gelu_erf("c", "y", form=form)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])] + nodes
    m = _check(_model(nodes, inits + [init(rng, "w", 12, 5, 3, 3)], [1, 5, 9, 7], [1, 12, 9, 7]),
               rng.standard_normal((1, 5, 9, 7)).astype(np.float32) * 3, tmp_path)
    ops = _fused_ops(m)
    assert ops == {"Conv": 1}, ops
    assert m._fused.nodes[0].params.act == "gelu"


def test_gelu_lookalikes_stay(rng, tmp_path):
    """A different scale inside erf, or a third reader of an inner value: no fusion."""
    nodes, inits = _gelu_erf("x", "y", k=0.6)
    m = _check(_model(nodes, inits, [2, 3, 4, 5], [2, 3, 4, 5]),
               rng.standard_normal((2, 3, 4, 5)).astype(np.float32), tmp_path)
    assert _fused_ops(m)["Erf"] == 1 and _fused_ops(m)["Gelu"] == 0
    nodes, inits = _gelu_erf("x", "g")
    nodes.append(helper.make_node("Add", ["g", "e"], ["y"]))       # erf's output read twice
    m = _check(_model(nodes, inits, [2, 3, 4, 5], [2, 3, 4, 5]),
               rng.standard_normal((2, 3, 4, 5)).astype(np.float32), tmp_path)
    assert _fused_ops(m)["Gelu"] == 0


def test_gelu_tanh_form(rng, tmp_path):
    nodes = [helper.make_node("Mul", ["x", "x"], ["x2"]), helper.make_node("Mul", ["x", "x2"], ["x3"]),
             helper.make_node("Mul", ["c1", "x3"], ["t"]), helper.make_node("Add", ["x", "t"], ["s"]),
             helper.make_node("Mul", ["c2", "s"], ["u"]), helper.make_node("Tanh", ["u"], ["th"]),
             helper.make_node("Add", ["one", "th"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
             helper.make_node("Mul", ["half", "m"], ["y"])]
    inits = [_const("c1", 0.044715), _const("c2", math.sqrt(2 / math.pi)), _const("one", 1.0),
             _const("half", 0.5)]
    m = _check(_model(nodes, inits, [1, 4, 6, 6], [1, 4, 6, 6]),
               rng.standard_normal((1, 4, 6, 6)).astype(np.float32) * 3, tmp_path)
    assert _fused_ops(m) == {"Gelu": 1}
    assert m._fused.nodes[0].attrs["approximate"] == "tanh"


def _cl_block(rng, c=12, scale_shape=None, extra=None):
    """dw conv -> Transpose -> LN -> MatMul + b -> Relu -> MatMul + b -> Transpose [-> Mul scale] -> + x."""
    nodes = [helper.make_node("Conv", ["x", "dw"], ["c"], group=c, pads=[3] * 4, kernel_shape=[7, 7]),
             helper.make_node("Transpose", ["c"], ["t1"], perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t1", "g", "b"], ["ln"], axis=-1, epsilon=1e-6),
             helper.make_node("MatMul", ["ln", "w1"], ["m1"]), helper.make_node("Add", ["b1", "m1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["m2"]), helper.make_node("Add", ["m2", "b2"], ["a2"]),
             helper.make_node("Transpose", ["a2"], ["t2"], perm=[0, 3, 1, 2]),
             helper.make_node("Mul", ["ls", "t2"], ["s"]), helper.make_node("Add", ["s", "x"], ["y"])]
    inits = [init(rng, "dw", c, 1, 7, 7), init(rng, "g", c), init(rng, "b", c), init(rng, "w1", c, 3 * c),
             init(rng, "b1", 3 * c), init(rng, "w2", 3 * c, c), init(rng, "b2", c),
             init(rng, "ls", *(scale_shape or (c, 1, 1)))]
    if extra:
        nodes.append(extra)
    return nodes, inits


def test_channels_last_block_runs_without_transposes(rng, tmp_path):
    nodes, inits = _cl_block(rng)
    m = _check(_model(nodes, inits, [2, 12, 10, 9], [2, 12, 10, 9]),
               rng.standard_normal((2, 12, 10, 9)).astype(np.float32), tmp_path)
    assert _fused_ops(m) == {"Conv": 3, "cnn.ChannelNorm": 1}, _fused_ops(m)


def test_channels_last_left_alone(rng, tmp_path):
    """A layer scale along W (not channels) is not folded; an inner value
    that is also a graph output keeps the Transposes."""
    nodes, inits = _cl_block(rng, scale_shape=(9,))
    m = _check(_model(nodes, inits, [2, 12, 10, 9], [2, 12, 10, 9]),
               rng.standard_normal((2, 12, 10, 9)).astype(np.float32), tmp_path)
    assert _fused_ops(m)["Mul"] == 1
    nodes, inits = _cl_block(rng)
    g = _model(nodes, inits, [2, 12, 10, 9], [2, 12, 10, 9])
    g.graph.output.append(helper.make_tensor_value_info("ln", TensorProto.FLOAT, [2, 10, 9, 12]))
    path = tmp_path / "m2.onnx"
    path.write_bytes(g.SerializeToString())
    x = rng.standard_normal((2, 12, 10, 9)).astype(np.float32)
    m = ce.load(path)
    assert _fused_ops(m)["Transpose"] == 2
    np.testing.assert_allclose(m.run(x)["y"], ort_run(g, x), atol=2e-5)


def _written_norm(x, out, g, b, eps="eps", tag=""):
    """F.layer_norm over the last axis as exporters before opset 17 write it."""
    n = lambda op, ins, o, **kw: helper.make_node(op, ins, [o + tag], **kw)  # noqa: E731
    return [n("ReduceMean", [x], "mu", axes=[-1]), n("Sub", [x, "mu" + tag], "d"),
            n("Pow", ["d" + tag, "two"], "sq"), n("ReduceMean", ["sq" + tag], "var", axes=[-1]),
            n("Add", ["var" + tag, eps], "ve"), n("Sqrt", ["ve" + tag], "sd"),
            n("Div", ["d" + tag, "sd" + tag], "nd"), n("Mul", ["nd" + tag, g], "sc"),
            helper.make_node("Add", ["sc" + tag, b], [out])]


def test_written_out_last_axis_norm_in_a_channels_last_block(rng, tmp_path):
    """torchvision's ConvNeXt exported at opset 13: the LayerNorm written out
    over axis -1 between the Transposes still makes one blocked block."""
    nodes, inits = _cl_block(rng)
    at = [i for i, nd in enumerate(nodes) if nd.op_type == "LayerNormalization"][0]
    nodes[at:at + 1] = _written_norm("t1", "ln", "g", "b")
    inits += [_const("two", 2.0), _const("eps", 1e-6)]
    m = _check(_model(nodes, inits, [2, 12, 10, 9], [2, 12, 10, 9], opset=13),
               rng.standard_normal((2, 12, 10, 9)).astype(np.float32), tmp_path)
    assert _fused_ops(m) == {"Conv": 3, "cnn.ChannelNorm": 1}, _fused_ops(m)


def test_written_out_last_axis_norm_alone(rng, tmp_path):
    """On a (N, C) value (a ConvNeXt head): one LayerNormalization, in C."""
    nodes = _written_norm("x", "y", "g", "b")
    inits = [init(rng, "g", 37), init(rng, "b", 37), _const("two", 2.0), _const("eps", 1e-5)]
    x = rng.standard_normal((3, 37)).astype(np.float32)
    m = _check(_model(nodes, inits, [3, 37], [3, 37], opset=13), x, tmp_path)
    assert _fused_ops(m) == {"LayerNormalization": 1}, _fused_ops(m)
    assert [k for _, _, k in m.kernels(x)] == ["C"]
