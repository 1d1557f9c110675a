"""A NaN pixel through a whole model reaches the output as in ONNX Runtime
(ReLU and Clip keep NaN, fused into the convs or not, blocked layout or not)."""
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from tests.runtime.onnx_builders import init, ort_run


def _net(rng):
    inits = [init(rng, "w1", 8, 3, 3, 3), init(rng, "b1", 8), init(rng, "w2", 8, 8, 3, 3),
             init(rng, "w3", 16, 8, 1, 1), init(rng, "b3", 16), init(rng, "w4", 16, 1, 3, 3),
             numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(6.0), "hi")]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="pw"),
        helper.make_node("Clip", ["c3", "lo", "hi"], ["r3"], name="relu6"),
        helper.make_node("Conv", ["r3", "w4"], ["c4"], name="dw", group=16, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c4"], ["y"], name="relu4"),
    ]
    g = helper.make_graph(nodes, "nan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 19])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16, 16, 19])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("layout", ["auto", "nchw"])
def test_nan_pixel_reaches_the_output_as_in_onnxruntime(rng, layout, monkeypatch):
    net = _net(rng)
    x = rng.standard_normal((2, 3, 16, 19)).astype(np.float32)
    x[0, 1, 7, 9] = np.nan                   # one pixel of one channel of the first image
    if layout == "nchw":
        monkeypatch.setenv("CNNENGINE_LAYOUT", "nchw")
    m = ce.load(net)
    ref = ort_run(net, x)
    nan = np.isnan(ref)
    assert nan[0].any() and not nan[1].any(), "the case must carry a NaN to ORT's output"
    # a first run that walks the graph by reference (CNNENGINE_PLAN=reference)
    # evaluates the reference ops: ORT's NaN map exactly
    monkeypatch.setenv("CNNENGINE_PLAN", "reference")
    y = ce.load(net).run(x)
    assert (np.isnan(y) == nan).all(), f"NaN at {np.argwhere(np.isnan(y) != nan)[:5].tolist()}"
    np.testing.assert_allclose(y[~nan], ref[~nan], rtol=1e-4, atol=1e-5)
    monkeypatch.delenv("CNNENGINE_PLAN")
    # the planned runs (the first one too, its plan made from shapes): conv2's
    # 3x3 runs as Winograd F(4x4, 3x3), whose transforms spread a NaN over
    # each output tile it reaches, so the map may be wider than ORT's
    # (im2col) - but no NaN is lost, none reaches the clean image, and every
    # value outside it is ORT's
    for _ in range(2):
        y = m.run(x)
        assert np.isnan(y[nan]).all(), "a NaN of ORT's output became a number"
        assert not np.isnan(y[1]).any()
        fin = ~np.isnan(y)
        np.testing.assert_allclose(y[fin], ref[fin], rtol=1e-4, atol=1e-5)


def test_nan_pixel_through_the_bundled_lenet5_as_in_onnxruntime():
    """lenet5 from the zoo (its ONNX file, run by ORT too): a NaN pixel gives
    the NaN scores ORT gives (no silent zeros); a clean image stays finite."""
    import onnx
    import cnnengine.zoo
    onnx_path = Path(cnnengine.zoo.__file__).parent / "lenet5.onnx"
    net = onnx.load(str(onnx_path))
    m = ce.load(str(onnx_path))
    x = np.random.default_rng(5).standard_normal((2, 1, 32, 32)).astype(np.float32)
    assert np.isfinite(m.run(x)).all()
    x[0, 0, 16, 16] = np.nan
    ref = ort_run(net, x)
    assert np.isnan(ref[0]).any() and not np.isnan(ref[1]).any()
    for _ in range(2):
        y = m.run(x)
        assert (np.isnan(y) == np.isnan(ref)).all()
        np.testing.assert_allclose(y[1], ref[1], rtol=1e-4, atol=1e-5)
