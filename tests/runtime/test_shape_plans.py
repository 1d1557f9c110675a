"""First runs whose plan comes from inferred shapes (runtime/shape_walk.py):
no reference evaluation of the float ops, the same outputs as the
reference walk and as ONNX Runtime on the first run and after, a fallback
to the reference walk for graphs with integer values, and steps run by
reference that return views of a buffer the plan would otherwise reuse."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce
from cnnengine import ops
from tests.conftest import assert_close
from tests.runtime.onnx_builders import init, ort_run, residual_net
from tests.runtime.test_layout import mobile_net


def test_first_run_evaluates_no_reference_conv(rng, monkeypatch):
    net = residual_net(rng)
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    ref = ort_run(net, x)
    m = ce.load(net)

    def refuse(self, p, ins):
        raise AssertionError("the reference Conv ran")
    monkeypatch.setattr(type(ops.get("Conv")), "reference", refuse)
    for _ in range(2):
        assert_close(m.run(x), ref)


@pytest.mark.parametrize("batch,hw", [(1, (17, 15)), (3, (8, 9))])
def test_first_run_matches_the_reference_walk(batch, hw, rng, monkeypatch):
    net = mobile_net(rng, hw=hw)
    x = rng.standard_normal((batch, 3) + hw).astype(np.float32)
    fast = ce.load(net).run(x)
    monkeypatch.setenv("CNNENGINE_PLAN", "reference")
    slow = ce.load(net).run(x)
    assert_close(fast, slow)
    assert_close(fast, ort_run(net, x))


def test_integer_values_walk_by_reference(rng):
    net = residual_net(rng)
    g = net.graph
    g.node.append(helper.make_node("ArgMax", ["y"], ["best"], name="argmax", axis=1, keepdims=0))
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("best", TensorProto.INT64, None)])
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    m = ce.load(net)
    first, second = m.run(x), m.run(x)
    assert first.dtype == np.int64 and (first == ort_run(net, x)).all() and (second == first).all()


def _split_net(rng):
    """conv -> Split into views -> part B through three convs, part A kept to
    the end: part A is a view of the start of conv1's buffer, which must
    outlive it (else the next conv's output takes that buffer)."""
    inits = [init(rng, "w1", 16, 3, 3, 3), init(rng, "w2", 8, 8, 3, 3), init(rng, "w3", 8, 8, 1, 1),
             init(rng, "w4", 8, 8, 3, 3)]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Split", ["c1"], ["a", "b"], name="split", axis=1),
        helper.make_node("Conv", ["b", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], name="conv3"),
        helper.make_node("Conv", ["c3", "w4"], ["c4"], name="conv4", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c4", "a"], ["y"], name="add"),
    ]
    g = helper.make_graph(nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 11])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])


@pytest.mark.parametrize("layout", ["nchw", "auto"])
def test_views_made_by_reference_steps_keep_their_buffer(layout, rng, monkeypatch):
    if layout == "nchw":
        monkeypatch.setenv("CNNENGINE_LAYOUT", "nchw")
    net = _split_net(rng)
    x = rng.standard_normal((1, 3, 9, 11)).astype(np.float32)
    ref = ort_run(net, x)
    m = ce.load(net)
    for _ in range(3):
        assert_close(m.run(x), ref)
