"""The CPU plan's compiled steps for LRN, Pad, Resize, ConvTranspose,
spatial ReduceMean/ReduceMax, Expand and last-axis LayerNormalization
(backend/cpu/kernels_misc.py):
each one-op model runs its step in a C kernel (Model.kernels) and matches
ONNX Runtime, at odd shapes, on the planned (second and later) runs."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce

ort = pytest.importorskip("onnxruntime")


def _model(node, x_shape, inits=(), opset=13, extra_inputs=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([node], "one_op", [x], [y], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _check(proto, x_shape, rng, tol=1e-5, reference=None):
    """reference: x -> expected output (default: ONNX Runtime's)."""
    x = rng.standard_normal(x_shape).astype(np.float32)
    if reference is None:
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {"x": x})[0]
    else:
        ref = reference(x)
    m = ce.load(proto, threads=2)
    kinds = [k for _, _, k in m.kernels(x)]
    assert kinds and all(k in ("C", "shape") for k in kinds), m.kernels(x)
    assert "C" in kinds
    for _ in range(2):                   # the plan-making run, then the compiled one
        y = m.run(x)
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * max(1.0, float(np.max(np.abs(ref)))))


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _floats(name, values):
    return numpy_helper.from_array(np.array(values, np.float32), name)


def _lrn_numpy(x, size, alpha, beta, bias):
    """ONNX's definition: the window [c - (size-1)//2, c + size//2], clipped."""
    x = x.astype(np.float64)
    sq = np.zeros_like(x)
    c = x.shape[1]
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c - 1, ch + size // 2)
        sq[:, ch] = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


@pytest.mark.parametrize("size", [1, 3, 4, 5])
def test_lrn(size, rng):
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=1e-3, beta=0.7, bias=1.5)
    model = _model(node, (2, 11, 5, 7))
    _check(model, (2, 11, 5, 7), rng, reference=lambda x: _lrn_numpy(x, size, 1e-3, 0.7, 1.5))
    if size % 2:                         # ONNX Runtime takes odd sizes only
        _check(model, (2, 11, 5, 7), rng)


@pytest.mark.parametrize("mode,value", [("constant", 0.0), ("constant", 1.5), ("reflect", None),
                                        ("edge", None)])
def test_pad(mode, value, rng):
    inputs = ["x", "pads"] + (["value"] if value is not None else [])
    inits = [_ints("pads", [0, 0, 1, 2, 0, 0, 0, 3])] + ([_floats("value", value)] if value is not None else [])
    node = helper.make_node("Pad", inputs, ["y"], mode=mode)
    _check(_model(node, (1, 3, 5, 6), inits), (1, 3, 5, 6), rng)


def test_pad_opset9_attributes(rng):
    node = helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, 2, 1, 0, 0, 1, 2], value=-0.5)
    _check(_model(node, (2, 5, 4, 3), opset=9), (2, 5, 4, 3), rng)


@pytest.mark.parametrize("mode,coord,nearest,scales,sizes", [
    ("nearest", "asymmetric", "floor", [1, 1, 2, 2], None),
    ("nearest", "half_pixel", "round_prefer_floor", None, [2, 3, 11, 5]),
    ("linear", "half_pixel", None, None, [2, 3, 11, 13]),
    ("linear", "pytorch_half_pixel", None, [1, 1, 0.5, 1.5], None),
    ("linear", "align_corners", None, [1, 1, 2, 3], None),
])
def test_resize(mode, coord, nearest, scales, sizes, rng):
    inits = [_floats("roi", [])]
    inputs = ["x", "roi"]
    if scales is not None:
        inits.append(_floats("scales", scales))
        inputs.append("scales")
    else:
        inits.append(_ints("sizes", sizes))
        inputs += ["", "sizes"]
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    if nearest:
        attrs["nearest_mode"] = nearest
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    _check(_model(node, (2, 3, 6, 7), inits), (2, 3, 6, 7), rng)


@pytest.mark.parametrize("kernel,stride,pads,outpad,dil,group", [
    (3, 2, [1, 1, 1, 1], [1, 1], 1, 1),
    (4, 2, [1, 1, 1, 1], [0, 0], 1, 2),
    (2, 2, [0, 0, 0, 0], [0, 0], 1, 1),
    (3, 1, [0, 1, 2, 0], [0, 0], 2, 1),
])
def test_conv_transpose(kernel, stride, pads, outpad, dil, group, rng):
    c, k = 6, 10
    w = numpy_helper.from_array((rng.standard_normal((c, k // group, kernel, kernel)) * 0.3)
                                .astype(np.float32), "w")
    b = _floats("b", rng.standard_normal(k))
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[kernel, kernel],
                            strides=[stride, stride], pads=pads, output_padding=outpad,
                            dilations=[dil, dil], group=group)
    _check(_model(node, (2, c, 5, 7), [w, b]), (2, c, 5, 7), rng, tol=1e-4)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
@pytest.mark.parametrize("keep", [0, 1])
def test_spatial_reduce_on_nchw(op, keep, rng):
    node = helper.make_node(op, ["x"], ["y"], axes=[2, 3], keepdims=keep)
    _check(_model(node, (2, 5, 7, 3)), (2, 5, 7, 3), rng)


@pytest.mark.parametrize("x_shape,shape", [((2, 5, 1, 1), [2, 5, 4, 3]), ((1, 5, 1, 3), [2, 1, 6, 3]),
                                           ((3, 1), [2, 4, 3, 7])])
def test_expand(x_shape, shape, rng):
    node = helper.make_node("Expand", ["x", "shape"], ["y"])
    _check(_model(node, x_shape, [_ints("shape", shape)]), x_shape, rng)


def test_expand_keeps_nan_and_signed_zero():
    node = helper.make_node("Expand", ["x", "shape"], ["y"])
    m = ce.load(_model(node, (1, 3, 1, 1), [_ints("shape", [1, 3, 2, 2])]))
    x = np.array([np.nan, -0.0, np.inf], np.float32).reshape(1, 3, 1, 1)
    for _ in range(2):
        y = m.run(x)
    assert np.isnan(y[0, 0]).all() and np.signbit(y[0, 1]).all() and np.isposinf(y[0, 2]).all()


def _layer_norm_numpy(x, gamma, beta, eps):
    """Normalise over the last axis (float64), then scale and shift."""
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * gamma
    return (y if beta is None else y + beta).astype(np.float32)


@pytest.mark.parametrize("x_shape", [(1, 768), (3, 7), (2, 5, 13), (2, 3, 4, 17), (1, 1)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_norm_last_axis(x_shape, with_bias, rng):
    """LayerNormalization over the last axis alone (a ConvNeXt head's norm):
    the channel-norm kernel with one pixel per row."""
    c = x_shape[-1]
    gamma = rng.standard_normal(c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32) if with_bias else None
    inputs = ["x", "g"] + (["b"] if with_bias else [])
    inits = [_floats("g", gamma)] + ([_floats("b", beta)] if with_bias else [])
    node = helper.make_node("LayerNormalization", inputs, ["y"], axis=-1, epsilon=1e-5)
    proto = _model(node, x_shape, inits, opset=17)
    _check(proto, x_shape, rng, tol=1e-5, reference=lambda x: _layer_norm_numpy(x, gamma, beta, 1e-5))


def test_layer_norm_over_several_axes_keeps_its_reference(rng):
    """Normalising over more than the last axis is not one row per pixel: no
    compiled step, and still the definition's answer."""
    x_shape, c = (2, 3, 4, 5), (4, 5)
    gamma = rng.standard_normal(c).astype(np.float32)
    node = helper.make_node("LayerNormalization", ["x", "g"], ["y"], axis=2, epsilon=1e-5)
    proto = _model(node, x_shape, [_floats("g", gamma)], opset=17)
    x = rng.standard_normal(x_shape).astype(np.float32)
    m = ce.load(proto)
    assert [k for _, op, k in m.kernels(x) if op == "LayerNormalization"] == ["numpy"]
    xd = x.astype(np.float64)
    mean = xd.mean(axis=(2, 3), keepdims=True)
    ref = (xd - mean) / np.sqrt(((xd - mean) ** 2).mean(axis=(2, 3), keepdims=True) + 1e-5) * gamma
    np.testing.assert_allclose(m.run(x), ref.astype(np.float32), rtol=1e-5, atol=1e-5)
