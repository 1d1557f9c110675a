"""ONNX If: branches become IR subgraphs; outer values they read become inputs."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce

from ..conftest import assert_close
from ..runtime.onnx_builders import ort_run


def if_model(threshold):
    """y = relu(x) * w if sum(shape(x)) > threshold else x + 1 (the branch reads outer x and w)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="then_relu"),
         helper.make_node("Mul", ["r", "w"], ["t_out"], name="then_mul")],
        "then", [], [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["e_out"], name="else_add")],
        "else", [], [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("ReduceSum", ["s"], ["total"], name="sum", keepdims=0),
        helper.make_node("Greater", ["total", "thr"], ["cond"], name="greater"),
        helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
    ]
    inits = [numpy_helper.from_array(np.array([2.0, -1.0, 0.5], np.float32), "w"),
             numpy_helper.from_array(np.array(threshold, np.int64), "thr")]
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("batch", [1, 4])
def test_if_picks_branch_by_shape(batch):
    m = if_model(threshold=5)
    x = np.random.default_rng(0).standard_normal((batch, 3)).astype(np.float32)
    y = ce.load(m).run(x)
    expected = np.maximum(x, 0) * [2.0, -1.0, 0.5] if batch + 3 > 5 else x + 1
    assert_close(y, expected, atol=1e-6)
    assert_close(y, ort_run(m, x), atol=1e-6)


def test_if_unsupported_op_in_branch_is_named():
    m = if_model(threshold=5)
    then = next(a for a in m.graph.node[3].attribute if a.name == "then_branch")  # onnx may sort them
    then.g.node[0].op_type = "NonMaxSuppression"
    with pytest.raises(ce.UnsupportedOpError, match="then_branch"):
        ce.load(m)


def test_if_not_saved_natively(tmp_path):
    with pytest.raises(ce.UnsupportedOpError, match="control flow"):
        ce.load(if_model(5)).save(tmp_path / "m.cnn")
