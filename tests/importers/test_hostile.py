"""Malformed and hostile model files give cnnengine.Error, never a crash."""
import json
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from cnnengine.importers import native


def tiny_onnx(op="Relu", extra_nodes=(), opset=13):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])
    nodes = [helper.make_node(op, ["x"], ["y"], name="n0")] + list(extra_nodes)
    graph = helper.make_graph(nodes, "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_truncated_onnx(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    m = tiny_onnx()
    m.graph.initializer.append(w)
    data = m.SerializeToString()
    with pytest.raises(ce.ModelFormatError):
        ce.load(write(tmp_path, "t.onnx", data[: len(data) // 2]))


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    data = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ce.Error):
        ce.load(write(tmp_path, "r.onnx", data))
    with pytest.raises(ce.Error):
        ce.load(write(tmp_path, "r.cnn", data))


def test_empty_file(tmp_path):
    with pytest.raises(ce.Error):
        ce.load(write(tmp_path, "e.onnx", b""))


def test_missing_file():
    with pytest.raises(ce.Error, match="no such file"):
        ce.load("/nonexistent/model.onnx")


def test_unsupported_op_names_op_node_and_opset(tmp_path):
    m = tiny_onnx(op="NonMaxSuppression")
    with pytest.raises(ce.UnsupportedOpError, match=r"NonMaxSuppression.*opset 13|n0.*NonMaxSuppression"):
        ce.load(write(tmp_path, "u.onnx", m.SerializeToString()))


def test_custom_domain_refused(tmp_path):
    m = tiny_onnx()
    m.graph.node[0].domain = "com.example"
    with pytest.raises(ce.UnsupportedOpError, match="com.example"):
        ce.load(write(tmp_path, "d.onnx", m.SerializeToString()))


def test_missing_tensor(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])
    node = helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")
    m = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ce.ModelFormatError, match="ghost"):
        ce.load(write(tmp_path, "m.onnx", m.SerializeToString()))


def test_cycle(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])
    a = helper.make_node("Add", ["x", "b"], ["a"], name="A")
    b = helper.make_node("Relu", ["a"], ["b"], name="B")
    c = helper.make_node("Relu", ["a"], ["y"], name="C")
    m = helper.make_model(helper.make_graph([a, b, c], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ce.ModelFormatError, match="cycle"):
        ce.load(write(tmp_path, "c.onnx", m.SerializeToString()))


def test_absurd_dims(tmp_path):
    m = tiny_onnx()
    t = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    m.graph.initializer.append(t)
    with pytest.raises(ce.ModelFormatError, match="huge"):
        ce.load(write(tmp_path, "h.onnx", m.SerializeToString()))


def test_initializer_data_shorter_than_dims(tmp_path):
    m = tiny_onnx()
    t = TensorProto(name="short", data_type=TensorProto.FLOAT, dims=[100], raw_data=b"\0" * 8)
    m.graph.initializer.append(t)
    with pytest.raises(ce.ModelFormatError, match="short"):
        ce.load(write(tmp_path, "s.onnx", m.SerializeToString()))


def test_opset_out_of_range(tmp_path):
    with pytest.raises(ce.UnsupportedOpError, match="opset 5"):
        ce.load(write(tmp_path, "o.onnx", tiny_onnx(opset=5).SerializeToString()))


def test_external_data_outside_folder(tmp_path):
    m = tiny_onnx()
    t = TensorProto(name="ext", data_type=TensorProto.FLOAT, dims=[4])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../etc/passwd"
    m.graph.initializer.append(t)
    with pytest.raises(ce.ModelFormatError, match="outside"):
        ce.load(write(tmp_path, "x.onnx", m.SerializeToString()))


def _native_bytes(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def _meta(**over):
    meta = {"format": "cnnengine", "version": 1, "opset": 13,
            "inputs": [{"name": "x", "shape": [1, 2], "dtype": "float32"}],
            "outputs": [{"name": "y", "shape": [1, 2], "dtype": "float32"}],
            "nodes": [{"name": "r", "op": "Relu", "inputs": ["x"], "outputs": ["y"], "attrs": {}}]}
    meta.update(over)
    return {"cnnengine": json.dumps(meta)}


def test_native_tensor_larger_than_file(tmp_path):
    header = {"__metadata__": _meta(), "w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
    with pytest.raises(ce.ModelFormatError, match="past the end"):
        ce.load(write(tmp_path, "big.cnn", _native_bytes(header, b"\0" * 16)))


def test_native_offsets_inconsistent(tmp_path):
    header = {"__metadata__": _meta(), "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}
    with pytest.raises(ce.ModelFormatError, match="claims"):
        ce.load(write(tmp_path, "bad.cnn", _native_bytes(header, b"\0" * 16)))


def test_native_header_length_lies(tmp_path):
    data = struct.pack("<Q", 1 << 40) + b"{}"
    with pytest.raises(ce.ModelFormatError):
        native.load(write(tmp_path, "lie.cnn", data))


def test_native_newer_version(tmp_path):
    header = {"__metadata__": _meta(version=99)}
    with pytest.raises(ce.ModelFormatError, match="newer"):
        ce.load(write(tmp_path, "new.cnn", _native_bytes(header)))


def test_native_missing_node_input(tmp_path):
    nodes = [{"name": "r", "op": "Relu", "inputs": ["nothing"], "outputs": ["y"], "attrs": {}}]
    header = {"__metadata__": _meta(nodes=nodes)}
    with pytest.raises(ce.ModelFormatError, match="nothing"):
        ce.load(write(tmp_path, "miss.cnn", _native_bytes(header)))


def test_native_garbage_graph(tmp_path):
    header = {"__metadata__": _meta(nodes=[{"bogus": 1}])}
    with pytest.raises(ce.ModelFormatError):
        ce.load(write(tmp_path, "garbage.cnn", _native_bytes(header)))


def test_expand_to_absurd_size_is_an_error(tmp_path):
    """A graph that asks for a huge tensor at run time fails with a cnnengine.Error."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20, 1 << 10], np.int64), "shape")
    node = helper.make_node("Expand", ["x", "shape"], ["y"], name="boom")
    m = helper.make_model(helper.make_graph([node], "g", [x], [y], [shape]),
                          opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ce.Error, match="boom"):
        ce.load(m).run(np.ones((1, 1), np.float32))
