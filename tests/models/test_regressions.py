"""Engine bugs found by the end-to-end model tests, pinned on tiny graphs.

No torch needed: the graphs are written with onnx.helper."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import cnnengine as ce  # noqa: E402


def _scalar_gather_graph():
    """What torch exports for ``x.view(n, c, 1, 1)`` with a dynamic batch: a 0-d
    Constant index gathers the batch size from Shape, and the 0-d result is
    unsqueezed twice (once per view) and concatenated with 1-D constants."""
    const = helper.make_node("Constant", [], ["idx"], name="idx",
                             value=numpy_helper.from_array(np.array(0, np.int64)))
    nodes = [
        const,
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "idx"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="unsq1"),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n2"], name="unsq2"),
        helper.make_node("Concat", ["n1", "minus1"], ["s1"], name="cat1", axis=0),
        helper.make_node("Reshape", ["x", "s1"], ["flat"], name="flat"),
        helper.make_node("Concat", ["n2", "rest"], ["s2"], name="cat2", axis=0),
        helper.make_node("Reshape", ["flat", "s2"], ["y"], name="back"),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(np.array([3, 4, 5], np.int64), "rest")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_scalar_constant_stays_scalar():
    """np.ascontiguousarray turned 0-d constants into shape (1,), so Gather gave a
    1-D result and the second Unsqueeze a 2-D one: Concat failed on every
    dynamic-batch SE / ShuffleNet export (fixed in the importer and passes)."""
    proto = _scalar_gather_graph()
    m = ce.load(proto)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(m.run(x), x)
    _, acts = m.run(x, capture=["gather", "unsq2"])
    assert acts["gather"].shape == () and acts["unsq2"].shape == (1,)


def test_scalar_constant_survives_native_round_trip(tmp_path):
    m = ce.load(_scalar_gather_graph())
    m.save(tmp_path / "g.cnn")
    m2 = ce.load(str(tmp_path / "g.cnn"))
    x = np.random.default_rng(1).standard_normal((3, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(m2.run(x), x)
