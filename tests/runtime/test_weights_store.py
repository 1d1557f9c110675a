"""Weights left in their file (ir/weights.py, importers/onnx_stream.py): the
plan runs on its packed copy only, and every reader of the originals still
gets the file's exact values."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from cnnengine.importers import onnx_stream
from cnnengine.ir.weights import FileTensor, Weights, copy_weights, is_unread, raw, release_pages, subset


def _net(rng, batch="N", wdtype=np.float32):
    """conv (16->32, 3x3: 4608 floats) + relu + conv 1x1 (32->40) + global pool + gemm (40->40) + a
    small bias: big initializers go to the file, small ones stay in the protobuf."""
    def w(name, *shape, dtype=np.float32):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(dtype), name)
    inits = [w("w1", 32, 16, 3, 3, dtype=wdtype), w("b1", 32), w("w2", 40, 32, 1, 1),
             w("fw", 40, 40), w("fb", 40)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 40])
    g = helper.make_graph(nodes, "net", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture
def saved(tmp_path):
    model = _net(np.random.default_rng(3))
    path = tmp_path / "net.onnx"
    onnx.save(model, str(path))
    return model, str(path)


def _expected(model):
    return {t.name: numpy_helper.to_array(t).astype(np.float32) for t in model.graph.initializer}


def test_strip_locates_every_large_initializer(saved):
    model, path = saved
    body, found = onnx_stream.strip(path)
    assert len(found) == len(model.graph.initializer)
    with open(path, "rb") as f:
        data = f.read()
    for t, where in zip(model.graph.initializer, found):
        raw_bytes = t.raw_data
        if len(raw_bytes) >= onnx_stream.MIN_BYTES:
            off, length, code = where
            assert data[off:off + length] == raw_bytes and code == t.data_type
        else:
            assert where is None
    stripped = onnx.load_model_from_string(body)
    assert [n.name for n in stripped.graph.node] == [n.name for n in model.graph.node]
    kept = {t.name: t.HasField("raw_data") for t in stripped.graph.initializer}
    assert kept == {"w1": False, "b1": True, "w2": False, "fw": False, "fb": True}


def test_large_weights_load_lazily_and_exactly(saved):
    model, path = saved
    m = ce.load(path)
    w = m._original.weights
    assert isinstance(w, Weights)
    assert is_unread(w, "w1") and is_unread(w, "w2") and is_unread(w, "fw")
    assert not is_unread(w, "b1")
    for name, want in _expected(model).items():
        got = w[name]
        assert got.dtype == np.float32 and np.array_equal(got, want), name
        assert not got.flags.writeable
    # a held array is shared, not read again
    a = w["w1"]
    assert w["w1"] is a


def test_plan_keeps_no_copy_of_packed_weights_and_accessors_stay_exact(saved):
    model, path = saved
    x = np.random.default_rng(0).standard_normal((1, 16, 9, 7)).astype(np.float32)
    m = ce.load(path)
    held = {k: raw(m._original.weights, k).held is not None for k in ("w1", "w2", "fw")}
    assert held == {"w1": True, "w2": True, "fw": True}          # read at load, as before
    y = m.run(x)
    held = {k: raw(m._original.weights, k).held is not None for k in ("w1", "w2", "fw")}
    assert held == {"w1": False, "w2": False, "fw": True}        # packed ones dropped
    want_y = ce.load(model).run(x)                  # the whole-protobuf path
    assert np.array_equal(y, want_y)
    np.testing.assert_allclose(y, ce.load(model, backend="reference").run(x), rtol=1e-4, atol=1e-5)
    plan = next(iter(m._exec._plans.values()))
    packed = [st for st in plan.steps if getattr(st.runner, "packed", ())]
    assert packed, "no step ran on packed weights"
    for st in packed:
        assert plan.run_static[st.node.inputs[1]] is None       # the plan runs on its pack alone
    assert plan.run_static["fw"] is not None                    # the Gemm reads its weights directly
    assert m._fused.weights["fw"] is plan.run_static["fw"]      # and that array is the only copy
    expected = _expected(model)
    # every accessor of the originals, after the drop: exact values
    for graph in (m._original, m.graph, m._fused):
        for name in ("w1", "w2", "fw"):
            if name in graph.weights:
                assert np.array_equal(graph.weights[name], expected[name])
    assert np.array_equal(plan.static["w1"], expected["w1"])   # what occlusion's windows read
    assert np.array_equal(dict(m._original.weights)["w2"], expected["w2"])
    assert m.summary()[0].params == 32 * 16 * 9 + 32
    # the app's Filters tab reads model.graph.weights.get(conv input 1)
    assert np.array_equal(m.graph.weights.get("w1"), expected["w1"])


def test_new_shapes_and_batches_replan_from_the_file(saved):
    model, path = saved
    rng = np.random.default_rng(1)
    m = ce.load(path)
    ref = ce.load(model)
    for shape in [(1, 16, 8, 8), (3, 16, 8, 8), (2, 16, 13, 5), (1, 16, 8, 8)]:
        x = rng.standard_normal(shape).astype(np.float32)
        assert np.array_equal(m.run(x), ref.run(x)), shape
    assert len(m._exec._plans) == 3


def test_captures_deconvnet_and_occlusion_after_the_drop(saved):
    model, path = saved
    x = np.random.default_rng(2).standard_normal((1, 16, 10, 10)).astype(np.float32)
    m, ref = ce.load(path), ce.load(model)
    m.run(x)
    ref.run(x)
    out, cap = m.run(x, capture=["conv1", "conv2"])
    rout, rcap = ref.run(x, capture=["conv1", "conv2"])
    assert np.array_equal(out, rout)
    for k in cap:
        assert np.array_equal(cap[k], rcap[k])
    np.testing.assert_array_equal(ce.deconvnet(m, x, "conv2", 3), ce.deconvnet(ref, x, "conv2", 3))
    a = ce.occlusion(m, x, patch=4, stride=3, target=2)
    b = ce.occlusion(ref, x, patch=4, stride=3, target=2)
    np.testing.assert_array_equal(a.heatmap, b.heatmap)
    assert np.isfinite(a.heatmap).all()


def test_float16_initializers_read_as_float32(tmp_path):
    model = _net(np.random.default_rng(4), wdtype=np.float16)
    path = str(tmp_path / "half.onnx")
    onnx.save(model, path)
    m = ce.load(path)
    assert is_unread(m._original.weights, "w1")
    want = numpy_helper.to_array(model.graph.initializer[0]).astype(np.float32)
    assert np.array_equal(m._original.weights["w1"], want)
    x = np.ones((1, 16, 6, 6), np.float32)
    assert np.array_equal(m.run(x), ce.load(model).run(x))


def test_truncated_file_is_a_model_format_error(saved, tmp_path):
    _, path = saved
    with open(path, "rb") as f:
        data = f.read()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[:len(data) - 3000])
    with pytest.raises(ce.ModelFormatError):
        ce.load(str(bad)).run(np.ones((1, 16, 6, 6), np.float32))


def test_native_file_pages_released_after_packing_keep_their_values(saved, tmp_path):
    model, path = saved
    native = str(tmp_path / "net.cnn")
    ce.load(path).save(native)
    m = ce.load(native)
    expected = _expected(model)
    x = np.random.default_rng(5).standard_normal((1, 16, 7, 7)).astype(np.float32)
    assert np.array_equal(m.run(x), ce.load(model).run(x))
    w = m._original.weights["w1"]
    release_pages(w)                    # drops resident pages; a read faults them back in
    assert np.array_equal(w, expected["w1"])
    assert np.array_equal(m.graph.weights["fw"], expected["fw"])


def test_weights_mapping_semantics(tmp_path):
    data = np.arange(2048, dtype=np.float32)
    f = tmp_path / "w.bin"
    f.write_bytes(b"xyz" + data.tobytes())
    from cnnengine.ir.weights import open_source
    w = Weights()
    dict.__setitem__(w, "a", FileTensor(open_source(str(f)), 3, (32, 64), np.float32))
    w["b"] = np.ones(3, np.float32)
    assert raw(w, "a").shape == (32, 64) and isinstance(raw(w, "a"), FileTensor)
    c = copy_weights(w)
    assert type(c) is Weights and isinstance(raw(c, "a"), FileTensor)
    s = subset(w, ["a"])
    assert list(s) == ["a"] and isinstance(raw(s, "a"), FileTensor)
    assert np.array_equal(w["a"].reshape(-1), data)
    plain = dict(w)
    assert type(plain) is dict and np.array_equal(plain["a"].reshape(-1), data)
    assert np.array_equal(dict(w.items())["a"].reshape(-1), data)
    assert w.get("missing") is None and w.get("b") is w["b"]
    w.caching = True
    got = w["a"]
    assert raw(w, "a") is got                   # a caching mapping keeps what it read
    os.unlink(f)
    assert np.array_equal(raw(c, "a").load().reshape(-1), data)   # the open file outlives its name


def test_plans_pack_on_the_thread_team(saved, monkeypatch):
    """At 2 threads the packing steps compile on two threads at once (GIL
    released in the packer); the plan is the same as one made on one thread."""
    import threading
    from cnnengine.backend.cpu import CpuBackend
    model, path = saved
    seen = set()
    orig = CpuBackend.compile
    both = threading.Barrier(2, timeout=10)     # broken unless two packs run at once

    def compile(self, node, *a):
        if self.packs(node):
            seen.add(threading.get_ident())
            if both is not None:
                both.wait()
        return orig(self, node, *a)
    monkeypatch.setattr(CpuBackend, "compile", compile)
    x = np.random.default_rng(6).standard_normal((2, 16, 11, 9)).astype(np.float32)
    two = ce.load(path, threads=2)
    y2 = two.run(x)
    assert len(seen) == 2
    seen.clear()
    both = None
    y1 = ce.load(path, threads=1).run(x)
    assert len(seen) == 1
    np.testing.assert_allclose(y2, y1, rtol=1e-6, atol=1e-6)


def test_a_file_rewritten_after_load_is_refused_not_misread(saved):
    model, path = saved
    m = ce.load(path)
    m.run(np.ones((1, 16, 6, 6), np.float32))      # packs and drops what it packed
    other = _net(np.random.default_rng(9))
    with open(path, "r+b") as f:            # in place, as onnx.save over the same path does
        f.write(other.SerializeToString())
    os.utime(path, ns=(0, 1))
    with pytest.raises(ce.ModelFormatError, match="changed after the model was loaded"):
        m.run(np.ones((1, 16, 7, 7), np.float32))  # a new shape: packs again, from the file


def _bn_net(rng):
    """conv (16->32, 3x3) -> BatchNormalization -> relu: the fold of the BN into
    the conv is computed from the conv's weights, which stay in the file."""
    def w(name, *shape, lo=None):
        v = rng.uniform(0.5, 1.5, shape) if lo else rng.standard_normal(shape) * 0.2
        return numpy_helper.from_array(v.astype(np.float32), name)
    inits = [w("w", 32, 16, 3, 3), w("g", 32, lo=1), w("be", 32), w("mu", 32), w("var", 32, lo=1)]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 9, 9])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 9, 9])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_folded_batchnorm_is_derived_on_demand_and_exact(tmp_path):
    from cnnengine.ir.weights import DerivedTensor
    model = _bn_net(np.random.default_rng(7))
    path = str(tmp_path / "bn.onnx")
    onnx.save(model, path)
    m, eager = ce.load(path), ce.load(model)
    derived = [k for k in m._fused.weights if isinstance(raw(m._fused.weights, k), DerivedTensor)]
    assert derived == ["conv__w_bn"]
    assert np.array_equal(m._fused.weights["conv__w_bn"], eager._fused.weights["conv__w_bn"])
    x = np.random.default_rng(8).standard_normal((1, 16, 9, 9)).astype(np.float32)
    assert np.array_equal(m.run(x), eager.run(x))
    plan = next(iter(m._exec._plans.values()))
    assert plan.run_static["conv__w_bn"] is None
    assert np.array_equal(m.graph.weights["w"], numpy_helper.to_array(model.graph.initializer[0]))
    # the original conv layer and the BN layer are still there to capture
    _, cap = m.run(x, capture=["conv", "bn"])
    _, want = eager.run(x, capture=["conv", "bn"])
    assert all(np.array_equal(cap[k], want[k]) for k in cap)


def test_channels_last_matmuls_and_layer_scale_are_derived_on_demand(tmp_path):
    from cnnengine.ir.weights import DerivedTensor
    from .test_fusions_modern import _cl_block, _model
    rng = np.random.default_rng(11)
    nodes, inits = _cl_block(rng, c=32)
    model = _model(nodes, inits, [1, 32, 10, 9], [1, 32, 10, 9])
    path = str(tmp_path / "cl.onnx")
    onnx.save(model, path)
    m, eager = ce.load(path), ce.load(model)
    kinds = {k: type(raw(m._fused.weights, k)).__name__ for k in m._fused.weights}
    assert sum(v == "DerivedTensor" for v in kinds.values()) >= 2, kinds
    for k, v in kinds.items():
        if v == "DerivedTensor":
            assert isinstance(raw(m._fused.weights, k), DerivedTensor)
            assert np.array_equal(m._fused.weights[k], eager._fused.weights[k]), k
    x = rng.standard_normal((1, 32, 10, 9)).astype(np.float32)
    assert np.array_equal(m.run(x), eager.run(x))


def test_large_transient_arrays_have_their_own_mapping_and_keep_their_values():
    from cnnengine.ir.weights import _Anon, empty
    a = empty((512, 1024), np.float32)
    b = a
    while isinstance(b, np.ndarray):
        b = b.base
    b = b.obj if isinstance(b, memoryview) else b
    assert isinstance(b, _Anon) and a.ctypes.data % 4096 == 0
    a[...] = 3.0
    release_pages(a)                # anonymous memory is not the file's: left alone
    assert float(a.min()) == 3.0 == float(a.max())
    assert a.reshape(-1).base is a         # views keep the array itself alive (FileTensor's weak reference)
    assert empty((3, 4)).base is None


def test_two_folded_batchnorms_recomputed_after_the_drop_keep_their_own_factors(tmp_path):
    """Each fold recomputed after its pack dropped it uses its own BN's factors
    (a late-bound loop variable gave every fold the last BN's)."""
    rng = np.random.default_rng(12)

    def w(name, *shape, pos=False):
        v = rng.uniform(0.5, 1.5, shape) if pos else rng.standard_normal(shape) * 0.2
        return numpy_helper.from_array(v.astype(np.float32), name)
    inits = [w("wa", 32, 16, 3, 3), w("ga", 32, pos=True), w("ba", 32), w("ma", 32), w("va", 32, pos=True),
             w("wb", 24, 32, 3, 3), w("gb", 24, pos=True), w("bb", 24), w("mb", 24), w("vb", 24, pos=True)]
    nodes = [helper.make_node("Conv", ["x", "wa"], ["c1"], name="ca", pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c1", "ga", "ba", "ma", "va"], ["n1"], name="bna"),
             helper.make_node("Conv", ["n1", "wb"], ["c2"], name="cb", pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c2", "gb", "bb", "mb", "vb"], ["y"], name="bnb")]
    g = helper.make_graph(nodes, "bn2", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, "H", "W"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 24, "H", "W"])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = str(tmp_path / "bn2.onnx")
    onnx.save(model, path)
    m, eager = ce.load(path), ce.load(model)
    for shape in [(1, 16, 8, 8), (2, 16, 11, 7)]:      # the second plan recomputes both folds
        x = rng.standard_normal(shape).astype(np.float32)
        assert np.array_equal(m.run(x), eager.run(x)), shape
