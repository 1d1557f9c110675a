"""Malformed and hostile model files give cnnengine.Error, never a crash."""
import json
import os
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


# ------------------------------------------------- generated hostile corpora
def _small_conv_onnx(wdtype=np.float32):
    """Conv (weights + bias) -> Relu -> GlobalAveragePool -> Flatten: a few hundred bytes."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(wdtype), "w"),
             numpy_helper.from_array(rng.standard_normal(3).astype(wdtype), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
             helper.make_node("Flatten", ["g"], ["y"], name="flat")]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


X = np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype(np.float32)


def _load_and_run(path):
    """Load and run one file: returns "ok" or "error"; anything else (a crash,
    a non-cnnengine exception) fails the test with the file named."""
    try:
        m = ce.load(path)
    except ce.Error as exc:
        assert str(exc), path
        return "error"
    try:
        feeds = {}
        for spec in m.inputs:
            shape = [d if isinstance(d, int) and 0 < d < 64 else 1 for d in spec.shape] or [1]
            feeds[spec.name] = np.ones(shape, np.float32 if spec.dtype.startswith("float") else spec.dtype)
        m.run(feeds)
    except ce.Error:
        return "error"
    return "ok"


def test_every_truncation_of_onnx_and_native(tmp_path):
    data = _small_conv_onnx().SerializeToString()
    ce.load(_small_conv_onnx()).save(tmp_path / "full.cnn")
    native_data = (tmp_path / "full.cnn").read_bytes()
    counts = {}
    for suffix, full in ((".onnx", data), (".cnn", native_data)):
        path = str(tmp_path / f"t{suffix}")
        for n in range(len(full)):
            with open(path, "wb") as f:
                f.write(full[:n])
            outcome = _load_and_run(path)
            counts[outcome] = counts.get(outcome, 0) + 1
            if suffix == ".cnn":
                assert outcome == "error", f"native file cut to {n} of {len(full)} bytes loaded"
    assert counts["error"] > len(data) // 2


@pytest.mark.parametrize("suffix", [".onnx", ".cnn"])
def test_random_bit_flips(tmp_path, suffix):
    if suffix == ".onnx":
        full = _small_conv_onnx().SerializeToString()
    else:
        ce.load(_small_conv_onnx()).save(tmp_path / "full.cnn")
        full = (tmp_path / "full.cnn").read_bytes()
    rng = np.random.default_rng(7)
    path = str(tmp_path / f"f{suffix}")
    for _ in range(300):
        data = bytearray(full)
        for pos in rng.integers(0, len(data), rng.integers(1, 4)):
            data[pos] ^= 1 << int(rng.integers(0, 8))
        with open(path, "wb") as f:
            f.write(bytes(data))
        _load_and_run(path)


@pytest.mark.parametrize("dims", [[1 << 62, 4], [1 << 31, 1 << 31, 1 << 31], [-1, 4], [-(1 << 62)], [2, 0, 3]])
def test_initializer_dims_overflow_or_negative(tmp_path, dims):
    m = _small_conv_onnx()
    m.graph.initializer[0].dims[:] = dims
    with pytest.raises(ce.ModelFormatError, match="'w'"):
        ce.load(write(tmp_path, "d.onnx", m.SerializeToString()))


@pytest.mark.parametrize("dims", [[1 << 40, 2, 5, 5], [1, 2, 1 << 31, 1 << 31]])
def test_input_dims_beyond_memory(tmp_path, dims):
    m = _small_conv_onnx()
    shape = m.graph.input[0].type.tensor_type.shape
    for d, v in zip(shape.dim, dims):
        d.Clear()
        d.dim_value = v
    with pytest.raises(ce.Error, match="'x'"):
        ce.load(write(tmp_path, "i.onnx", m.SerializeToString()))


def test_native_dims_overflow_and_negative(tmp_path):
    for shape in ([1 << 62, 1 << 62], [-4], [1 << 63]):
        header = {"__metadata__": _meta(), "w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 16]}}
        with pytest.raises(ce.ModelFormatError, match="'w'"):
            ce.load(write(tmp_path, "o.cnn", _native_bytes(header, b"\0" * 16)))


@pytest.mark.parametrize("count", [1, 53, 55, 1000])
def test_weight_size_disagrees_with_shape(tmp_path, count):
    m = _small_conv_onnx()
    t = m.graph.initializer[0]                  # dims (3, 2, 3, 3): 54 floats
    t.raw_data = b"\0" * (4 * count)
    with pytest.raises(ce.ModelFormatError, match="'w'"):
        ce.load(write(tmp_path, "s.onnx", m.SerializeToString()))
    t.ClearField("raw_data")
    t.float_data[:] = [0.0] * count
    with pytest.raises(ce.ModelFormatError, match="'w'"):
        ce.load(write(tmp_path, "s.onnx", m.SerializeToString()))


def test_self_loop_and_native_cycle(tmp_path):
    m = tiny_onnx()
    m.graph.node[0].input[0] = "y"             # Relu reads its own output
    with pytest.raises(ce.ModelFormatError, match="cycle|n0"):
        ce.load(write(tmp_path, "loop.onnx", m.SerializeToString()))
    nodes = [{"name": "a", "op": "Relu", "inputs": ["b_out"], "outputs": ["a_out"], "attrs": {}},
             {"name": "b", "op": "Relu", "inputs": ["a_out"], "outputs": ["b_out"], "attrs": {}},
             {"name": "r", "op": "Relu", "inputs": ["x"], "outputs": ["y"], "attrs": {}}]
    with pytest.raises(ce.ModelFormatError, match="cycle"):
        ce.load(write(tmp_path, "cyc.cnn", _native_bytes({"__metadata__": _meta(nodes=nodes)})))


def test_graph_10000_nodes_deep(tmp_path):
    """No RecursionError and no quadratic pass: loads, runs and round-trips."""
    n = 10000
    nodes = [helper.make_node("Neg" if i < n - 1 else "Relu", ["x" if i == 0 else f"v{i - 1}"],
                              [f"v{i}" if i < n - 1 else "y"], name=f"n{i}") for i in range(n)]
    g = helper.make_graph(nodes, "deep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])])
    path = write(tmp_path, "deep.onnx", helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
                 .SerializeToString())
    m = ce.load(path)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    want = np.maximum(-x, 0)                            # 9,999 negations, then Relu
    np.testing.assert_array_equal(m.run(x), want)
    m.save(tmp_path / "deep.cnn")
    np.testing.assert_array_equal(ce.load(tmp_path / "deep.cnn").run(x), want)
    assert len(m.summary()) == n


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int8"])
def test_weight_dtypes(tmp_path, dtype):
    """float16, bfloat16 and float64 weights are widened/narrowed to float32
    exactly; integer weights of a float op are read as their values."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dt = ml_dtypes.bfloat16
    else:
        dt = np.dtype(dtype)
    m = _small_conv_onnx(dt)
    ref = _small_conv_onnx(np.float32)
    for t, r in zip(m.graph.initializer, ref.graph.initializer):
        r.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), r.name))
    got = ce.load(write(tmp_path, "w.onnx", m.SerializeToString())).run(X)
    np.testing.assert_allclose(got, ce.load(ref).run(X), rtol=1e-6, atol=1e-6)


def test_int4_weights_refused_by_name(tmp_path):
    m = _small_conv_onnx()
    t = m.graph.initializer[1]
    t.CopyFrom(helper.make_tensor("b", TensorProto.INT4, [3], [1, 2, 3]))
    with pytest.raises(ce.UnsupportedOpError, match="'b'.*int4"):
        ce.load(write(tmp_path, "i4.onnx", m.SerializeToString()))


def _external(m, location, tmp_path):
    t = m.graph.initializer[1]
    t.ClearField("float_data")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in (("location", location), ("offset", "0"), ("length", "12")):
        e = t.external_data.add()
        e.key, e.value = k, v
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    return write(folder, "m.onnx", m.SerializeToString())


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../outside.bin",
                                      "link_out.bin", "link_dir/passwd"])
def test_external_data_leaving_the_folder(tmp_path, location):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 64)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sub").mkdir()
    os.symlink(outside, folder / "link_out.bin")
    os.symlink("/etc", folder / "link_dir")
    with pytest.raises(ce.ModelFormatError, match="outside the model folder"):
        ce.load(_external(_small_conv_onnx(), location, tmp_path))


def test_external_data_inside_the_folder_loads(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "b.bin").write_bytes(np.arange(3, dtype=np.float32).tobytes())
    m = ce.load(_external(_small_conv_onnx(), "b.bin", tmp_path))
    assert m.run(X).shape == (1, 3)


class _System:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cnnengine_pwned_hostile",))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch /tmp/cnnengine_pwned_hostile')",))


@pytest.mark.parametrize("payload", [_System, _Eval])
@pytest.mark.parametrize("fmt", ["pickle", "torch_zip"])
def test_state_dict_pickle_importing_os_system(tmp_path, payload, fmt):
    import pickle
    path = tmp_path / "evil.pth"
    obj = {"conv1.weight": payload()}
    if fmt == "pickle":
        path.write_bytes(pickle.dumps(obj))
    else:
        torch = pytest.importorskip("torch")
        torch.save(obj, path)
    with pytest.raises(ce.ModelFormatError, match="evil.pth"):
        ce.load(str(path))
    assert not os.path.exists("/tmp/cnnengine_pwned_hostile")


# ---------------------------------------------------------- run-time inputs
@pytest.fixture(scope="module")
def conv_model():
    return ce.load(_small_conv_onnx())


@pytest.mark.parametrize("x,err,words", [
    (np.ones((2, 5, 5), np.float32), ce.ShapeError, ["rank"]),
    (np.ones((1, 3, 5, 5), np.float32), ce.ShapeError, ["dimension 1"]),
    (np.ones((1, 2, 5, 5), np.complex64), ce.InputError, ["complex64"]),
    (np.array([["a"]]), ce.InputError, ["dtype"]),
    (np.ones((0, 2, 5, 5), np.float32), ce.ShapeError, ["empty"]),
    ("not an array", ce.InputError, ["'x'"]),
])
def test_wrong_inputs_at_run_time(conv_model, x, err, words):
    with pytest.raises(err) as info:
        conv_model.run(x)
    for w in words:
        assert w in str(info.value)


def test_non_contiguous_and_negative_strides_work(conv_model):
    base = np.random.default_rng(3).standard_normal((2, 5, 5, 4)).astype(np.float32)
    for x in (base.transpose(0, 3, 1, 2)[:, :2], base[:, :, ::-1, :].transpose(0, 3, 1, 2)[:, 1:3],
              np.asfortranarray(base[..., :2].transpose(0, 3, 1, 2)), base.transpose(0, 3, 1, 2)[::-1, ::2]):
        assert not x.flags.c_contiguous
        np.testing.assert_allclose(conv_model.run(x), conv_model.run(np.ascontiguousarray(x)), rtol=1e-5, atol=1e-6)
    x64 = base.transpose(0, 3, 1, 2)[:, :2].astype(np.float64)      # float64 is converted
    np.testing.assert_allclose(conv_model.run(x64), conv_model.run(x64.astype(np.float32)))


def test_nan_and_inf_propagate(conv_model):
    """NaN and Inf flow through Conv, pooling and Flatten; the other images
    of the batch stay finite. (The Relu kernels map NaN to 0, as max(x, 0)
    with the zero as second operand does: ONNX Runtime's gives NaN.)"""
    x = np.ones((3, 2, 5, 5), np.float32)
    x[0, 0, 2, 2] = np.nan
    x[1, 1, 0, 0] = np.inf
    y, acts = conv_model.run(x, capture=["conv"])
    assert np.isnan(acts["conv"][0]).any() and np.isinf(acts["conv"][1]).any()
    assert np.isfinite(acts["conv"][2]).all() and np.isfinite(y[2]).all()
    assert np.isinf(y[1]).any()
    no_relu = _small_conv_onnx()
    no_relu.graph.node[1].op_type = "Identity"
    y = ce.load(no_relu).run(x)
    assert np.isnan(y[0]).all() and np.isfinite(y[2]).all()


def test_batchnorm_parameters_of_the_wrong_shape_are_a_clean_error(tmp_path):
    """Found by fuzz/fuzz_loaders.py native: a BatchNormalization whose variance
    is a 4-D tensor after a conv; folding it into the conv raised a raw ValueError."""
    import numpy as np
    from onnx import numpy_helper
    from tests.runtime.onnx_builders import residual_net
    net = residual_net(np.random.default_rng(0))
    w1 = next(t for t in net.graph.initializer if t.name == "w1")
    v1 = next(t for t in net.graph.initializer if t.name == "v1")
    v1.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w1), "v1"))
    with pytest.raises(ce.Error, match="bn1"):
        m = ce.load(net)
        m.run(np.zeros((1, 3, 12, 12), np.float32))


def test_fuzzer_findings_are_clean_errors(tmp_path):
    """Found by fuzz/fuzz_loaders.py: a native file whose Conv lost its weights
    input (the residual fusion indexed it), and a MaxPool whose kernel_shape
    is empty (the constant folder called the pool on it)."""
    from cnnengine.importers.onnx_import import load_onnx
    from tests.runtime.onnx_builders import residual_net
    graph = load_onnx(residual_net(np.random.default_rng(0)))
    conv = next(n for n in graph.nodes if n.op == "Conv")
    conv.inputs = conv.inputs[:1]
    path = tmp_path / "lost_weights.cnn"
    native.save(graph, str(path))
    with pytest.raises(ce.ModelFormatError, match="1 inputs, the op takes 2-3"):
        ce.load(path)
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[0, 2])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ce.Error, match="kernel_shape"):
        ce.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])).run(
            np.zeros((1, 1, 4, 4), np.float32))
