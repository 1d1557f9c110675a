"""The Model API end to end on small ONNX graphs built in the test."""
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce

from ..conftest import assert_close
from .onnx_builders import init, ort_run, residual_net


@pytest.fixture
def net(rng):
    return residual_net(rng)


def test_matches_onnxruntime(net, rng):
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    m = ce.load(net)
    assert_close(m.run(x), ort_run(net, x), atol=1e-5)


def test_any_batch_size(net, rng):
    m = ce.load(net)
    for n in (1, 3, 5):
        x = rng.standard_normal((n, 3, 12, 12)).astype(np.float32)
        assert_close(m.run(x), ort_run(net, x), atol=1e-5)


def test_capture_returns_unfused_activations(net, rng):
    """conv1's activation is the conv before BN and ReLU, even though they are fused."""
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    m = ce.load(net)
    y, acts = m.run(x, capture=True)
    assert list(acts) == m.layers
    w = [i for i in net.graph.initializer]
    from onnx import numpy_helper
    ws = {t.name: numpy_helper.to_array(t) for t in w}
    ref = ce.functional.conv2d(x, ws["w1"], ws["b1"], padding=1)
    assert_close(acts["conv1"], ref, atol=1e-5)
    assert (acts["relu1"] >= 0).all()
    assert_close(acts["relu1"], np.maximum(acts["bn1"], 0), atol=1e-6)
    assert_close(acts["softmax"], y, atol=0)
    y2, some = m.run(x, capture=["relu2"])
    assert list(some) == ["relu2"]
    assert_close(some["relu2"], acts["relu2"], atol=1e-5)


def test_capture_unknown_layer(net, rng):
    m = ce.load(net)
    with pytest.raises(ce.InputError, match="nope"):
        m.run(np.zeros((1, 3, 12, 12), np.float32), capture=["nope"])


def test_bad_inputs(net):
    m = ce.load(net)
    with pytest.raises(ce.ShapeError, match="dimension 2"):
        m.run(np.zeros((1, 3, 11, 12), np.float32))
    with pytest.raises(ce.ShapeError, match="rank"):
        m.run(np.zeros((3, 12, 12), np.float32))
    with pytest.raises(ce.InputError, match="dtype"):
        m.run(np.zeros((1, 3, 12, 12), np.int32))
    with pytest.raises(ce.InputError, match="unknown input"):
        m.run({"bogus": np.zeros((1, 3, 12, 12), np.float32)})


def test_bad_inputs_after_a_good_run(net, rng):
    """A run at a validated signature skips _check_input; every other input
    is still checked: shapes, ranks, dtypes, layouts, captures."""
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    m = ce.load(net)
    want = ort_run(net, x)
    for _ in range(2):
        assert_close(m.run(x), want, atol=1e-5)
    with pytest.raises(ce.ShapeError, match="dimension 3"):
        m.run(np.zeros((1, 3, 12, 13), np.float32))
    with pytest.raises(ce.ShapeError, match="rank"):
        m.run(np.zeros((1, 1, 3, 12, 12), np.float32))
    with pytest.raises(ce.InputError, match="dtype"):
        m.run(x.astype(np.int64))
    with pytest.raises(ce.InputError, match="unknown input"):
        m.run({"bogus": x})
    # other dtypes and layouts of the same shape convert, as on a first run
    assert_close(m.run(x.astype(np.float64)), want, atol=1e-5)
    assert_close(m.run(np.asfortranarray(x)), want, atol=1e-5)
    assert_close(m.run(x.astype(">f4")), want, atol=1e-5)
    wide = np.zeros((1, 3, 12, 24), np.float32)
    wide[..., ::2] = x
    assert_close(m.run(wide[..., ::2]), want, atol=1e-5)
    y, acts = m.run(x, capture=["relu1"])
    assert_close(y, want, atol=1e-5)
    assert list(acts) == ["relu1"]
    # each run's output is its own array
    a, b = m.run(x), m.run(2 * x)
    assert not np.shares_memory(a, b)
    assert_close(a, want, atol=1e-5)


def test_float64_input_is_converted(net, rng):
    x = rng.standard_normal((1, 3, 12, 12))
    m = ce.load(net)
    assert_close(m.run(x), m.run(x.astype(np.float32)), atol=0)


def test_fixed_batch_model_runs_any_batch(rng):
    net = residual_net(rng, batch=1)
    m = ce.load(net)
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    ref = np.concatenate([ort_run(net, x[i:i + 1]) for i in range(3)])
    assert_close(m.run(x), ref, atol=1e-5)


def test_threads_share_one_model(net, rng):
    m = ce.load(net)
    xs = [rng.standard_normal((2, 3, 12, 12)).astype(np.float32) for _ in range(4)]
    expected = [m.run(x) for x in xs]
    errors = []

    def worker(i):
        try:
            for _ in range(5):
                assert_close(m.run(xs[i]), expected[i], atol=0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_per_model_threads(net, rng):
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    a = ce.load(net, threads=1).run(x)
    b = ce.load(net, threads=2).run(x)
    assert_close(a, b, atol=1e-6)


def test_native_round_trip_identical(net, rng, tmp_path):
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    m = ce.load(net)
    path = tmp_path / "net.cnn"
    m.save(path)
    m2 = ce.load(str(path))
    assert m2.layers == m.layers
    np.testing.assert_array_equal(m2.run(x), m.run(x))


def test_summary_seed_arithmetic():
    """32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10 with 760 parameters."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[2, 2, 2, 2])
    g = helper.make_graph([node], "g", [x], [y], [init(rng, "w", 10, 3, 5, 5), init(rng, "b", 10)])
    m = ce.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    (layer,) = m.summary()
    assert layer.output_shape == (1, 10, 32, 32)
    assert layer.params == 760
    assert layer.macs == 32 * 32 * 10 * 75
    assert layer.receptive_field == {"size": [5, 5], "jump": [1, 1], "start": [0, 0]}


def test_receptive_field_chain(net):
    m = ce.load(net)
    rf = {l.name: l.receptive_field for l in m.summary()}
    assert rf["conv1"]["size"] == [3, 3]
    assert rf["conv2"]["size"] == [5, 5]
    assert rf["pool"] == {"size": [6, 6], "jump": [2, 2], "start": [0.5, 0.5]}
    params = {l.name: l.params for l in m.summary()}
    assert params["conv1"] == 8 * 27 + 8 and params["bn1"] == 16 and params["fc"] == 90
    assert "conv1" in str(m)


@pytest.mark.parametrize("alpha,fused", [(1.0 / 6.0, True), (0.2, False)])
def test_hardswish_pattern_fuses_into_the_conv(alpha, fused, rng):
    """x * HardSigmoid(x; 1/6, 1/2) is HardSwish (PyTorch's export of
    nn.Hardswish before opset 14) and fuses into the conv's epilogue; other
    HardSigmoid parameters are left alone. Results and captures unchanged."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("HardSigmoid", ["c"], ["h"], name="hsig", alpha=alpha, beta=0.5),
             helper.make_node("Mul", ["c", "h"], ["y"], name="hswish")]
    g = helper.make_graph(nodes, "hs", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        ["N", 5, 9, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 11, 9, 7])],
                          [init(rng, "w", 11, 5, 3, 3, scale=1.0)])
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = (rng.standard_normal((2, 5, 9, 7)) * 3).astype(np.float32)
    m = ce.load(net)
    assert [n.op for n in m._fused.nodes] == (["Conv"] if fused else ["Conv", "HardSigmoid", "Mul"])
    if fused:
        assert m._fused.nodes[0].params.act == "hardswish"
    y, acts = m.run(x, capture=["conv", "hsig"])
    assert_close(y, ort_run(net, x), atol=1e-5)
    assert_close(acts["hsig"], np.clip(alpha * acts["conv"] + 0.5, 0, 1), atol=1e-6)
