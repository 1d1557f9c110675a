"""Opset 7-11 forms of ops (the ONNX Model Zoo's classic CNNs) against ONNX Runtime.

Each case is one node (or a short chain) built with onnx.helper at the old
opset, run by ce.load(proto).run and by onnxruntime on the same input.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import cnnengine as ce  # noqa: E402

X_SHAPE = (2, 3, 6, 5)


def build(nodes, opset, out_shape=None, inits=(), extra_inputs=(), x_shape=X_SHAPE, outputs=("y",)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, out_shape) for o in outputs]
    g = helper.make_graph(nodes, "g", [x, *extra_inputs], outs,
                          initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 7 if opset <= 12 else 8)
    return m


def check(proto, feeds=None, tol=1e-5):
    rng = np.random.default_rng(0)
    feeds = feeds or {"x": rng.standard_normal(X_SHAPE).astype(np.float32)}
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    got = ce.load(proto).run(feeds)
    got = [got] if len(want) == 1 else [got[o.name] for o in proto.graph.output]
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


# -------------------------------------------------------------------- Clip
@pytest.mark.parametrize("opset", [7, 9, 10])
@pytest.mark.parametrize("bounds", [dict(min=-0.5, max=0.7), dict(max=0.2), dict(min=0.0), {}])
def test_clip_attrs(opset, bounds):
    check(build([helper.make_node("Clip", ["x"], ["y"], **bounds)], opset))


def test_clip_inputs_opset11_relu6():
    inits = [("lo", np.float32(0.0)), ("hi", np.float32(6.0))]
    check(build([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], 11, inits=inits))


# --------------------------------------------------------------------- Pad
@pytest.mark.parametrize("opset", [7, 9, 10])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_attrs(opset, mode):
    kw = {"value": 1.5} if mode == "constant" else {}
    node = helper.make_node("Pad", ["x"], ["y"], mode=mode, pads=[0, 0, 1, 2, 0, 0, 2, 1], **kw)
    check(build([node], opset))


def test_pad_attrs_negative_crop():
    node = helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, -1, 1, 0, 0, 1, -2])
    check(build([node], 9))


# ------------------------------------------------------ BatchNormalization
def _bn_inits(shape=(3,)):
    rng = np.random.default_rng(1)
    return [("s", rng.uniform(0.5, 1.5, shape).astype(np.float32)),
            ("b", rng.standard_normal(shape).astype(np.float32)),
            ("m", rng.standard_normal(shape).astype(np.float32)),
            ("v", rng.uniform(0.5, 2.0, shape).astype(np.float32))]


@pytest.mark.parametrize("opset", [7, 8, 9, 14, 15])
def test_batchnorm(opset):
    kw = {"spatial": 1} if opset < 9 else {}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3,
                            momentum=0.9, **kw)
    check(build([node], opset, inits=_bn_inits()))


def test_batchnorm_conv_fold_opset7():
    """Conv -> BN at opset 7 (the zoo's ResNet form); the BN folds into the conv."""
    rng = np.random.default_rng(2)
    inits = [("w", rng.standard_normal((3, 3, 3, 3)).astype(np.float32))] + _bn_inits()
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], spatial=1)]
    check(build(nodes, 7, inits=inits), tol=1e-4)


def test_batchnorm_consumed_inputs_ignored():
    """Opset-1..5 files carry consumed_inputs; an opset-7 file that keeps it still loads."""
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-5)
    ref = build([node], 7, inits=_bn_inits())
    odd = build([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-5,
                                  consumed_inputs=[0, 0, 0, 1, 1])], 7, inits=_bn_inits())
    x = np.random.default_rng(3).standard_normal(X_SHAPE).astype(np.float32)
    want = ort.InferenceSession(ref.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(ce.load(odd).run(x), want, rtol=1e-5, atol=1e-5)


def test_batchnorm_training_outputs_refused_before_opset14():
    """Opset 9-13 give the running-statistics outputs with no attribute saying
    which mode is meant: refused, named. (From opset 14, training_mode=1 is
    computed: tests/importers/test_exporter_habits.py.)"""
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"])
    with pytest.raises(ce.UnsupportedOpError, match="training"):
        ce.load(build([node], 9, inits=_bn_inits()))


# ----------------------------------------------------------------- Dropout
@pytest.mark.parametrize("opset", [7, 10])
def test_dropout_ratio_attr(opset):
    nodes = [helper.make_node("Dropout", ["x"], ["d"], ratio=0.3), helper.make_node("Relu", ["d"], ["y"])]
    check(build(nodes, opset))


def test_dropout_ratio_input_opset12():
    nodes = [helper.make_node("Dropout", ["x", "r"], ["d"]), helper.make_node("Relu", ["d"], ["y"])]
    check(build(nodes, 12, inits=[("r", np.float32(0.4))]))


# ---------------------------------------------------------------- Upsample
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_opset7_scales_attr(mode):
    node = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0])
    check(build([node], 7))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_opset9_scales_input(mode):
    node = helper.make_node("Upsample", ["x", "sc"], ["y"], mode=mode)
    check(build([node], 9, inits=[("sc", np.array([1, 1, 2, 2], np.float32))]))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset10(mode):
    node = helper.make_node("Resize", ["x", "sc"], ["y"], mode=mode)
    check(build([node], 10, inits=[("sc", np.array([1, 1, 2, 1.5], np.float32))]))


# --------------------------------------------------------------------- Sum
@pytest.mark.parametrize("opset", [7, 8, 13])
def test_sum_three_inputs(opset):
    rng = np.random.default_rng(4)
    inits = [("a", rng.standard_normal(X_SHAPE).astype(np.float32)),
             ("b", rng.standard_normal((1, 3, 1, 1) if opset >= 8 else X_SHAPE).astype(np.float32))]
    check(build([helper.make_node("Sum", ["x", "a", "b"], ["y"])], opset, inits=inits))


@pytest.mark.parametrize("op", ["Max", "Min", "Mean"])
def test_variadic_three_inputs_opset8(op):
    rng = np.random.default_rng(5)
    inits = [("a", rng.standard_normal((3, 1, 5)).astype(np.float32)), ("b", np.float32(0.1))]
    check(build([helper.make_node(op, ["x", "a", "b"], ["y"])], 8, inits=inits))


# ----------------------------------------------------------------- Softmax
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(7, None), (9, 1), (11, 2), (11, -1), (11, 0), (13, 1), (13, None)])
def test_softmax_axis_semantics(op, opset, axis):
    kw = {} if axis is None else {"axis": axis}
    check(build([helper.make_node(op, ["x"], ["y"], **kw)], opset), tol=1e-5)


# ---------------------------------------------- other attribute-era forms
def test_slice_attrs_opset9():
    node = helper.make_node("Slice", ["x"], ["y"], starts=[1, -4], ends=[100, -1], axes=[2, 3])
    check(build([node], 9))


def test_squeeze_unsqueeze_attrs_opset11():
    nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, 5]),
             helper.make_node("Squeeze", ["u"], ["y"], axes=[0])]
    check(build(nodes, 11))


def test_split_attr_opset11():
    node = helper.make_node("Split", ["x"], ["y", "z"], axis=2, split=[2, 4])
    check(build([node], 11, outputs=("y", "z")))


def test_reduce_mean_axes_attr_opset11():
    check(build([helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)], 11))


def test_gemm_opset7_flatten_chain():
    rng = np.random.default_rng(6)
    inits = [("w", rng.standard_normal((4, 90)).astype(np.float32)), ("c", rng.standard_normal(4).astype(np.float32))]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)]
    check(build(nodes, 7, inits=inits), tol=1e-4)


@pytest.mark.parametrize("opset", [7, 10])
def test_pools_old_opsets(opset):
    kw = {"ceil_mode": 1} if opset >= 10 else {}
    nodes = [helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1], **kw),
             helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 0, 0],
                              count_include_pad=1)]
    check(build(nodes, opset))


def test_batchnorm_spatial0_opset7():
    """spatial=0: statistics per activation, shaped (C, H, W)."""
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0, epsilon=1e-4)
    check(build([node], 7, inits=_bn_inits(X_SHAPE[1:])))


@pytest.mark.parametrize("kw", [dict(auto_pad="SAME_UPPER", strides=[2, 2]), dict(auto_pad="SAME_LOWER", strides=[2, 3]),
                                dict(output_shape=[13, 12], strides=[2, 2]), dict(output_shape=[12, 11], strides=[2, 2]),
                                dict(pads=[1, 0, 0, 1], output_padding=[1, 0], strides=[2, 2])])
def test_conv_transpose_padding_forms(kw):
    w = np.random.default_rng(7).standard_normal((3, 2, 3, 3)).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **kw)
    check(build([node], 11, inits=[("w", w), ("b", np.array([0.5, -1.0], np.float32))]), tol=1e-4)
