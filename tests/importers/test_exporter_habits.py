"""What exporters other than PyTorch's eval-mode path write, and newer opsets.

Graphs are built with onnx.helper where the exporter itself is not installed
here (tf2onnx, Paddle2ONNX, Keras): the habits are copied from their output —
NHWC inputs behind a Transpose, auto_pad SAME_UPPER, batch declared as
dim_value -1 or 0 or left unnamed. Each loads and matches ONNX Runtime.
PyTorch exports cover weight standardisation (NF-ResNet's ScaledStdConv2d:
BatchNormalization with training_mode=1 over the weights) and a
global-context attention block (GCNet / timm's GlobalContext).
"""
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import cnnengine as ce  # noqa: E402
from cnnengine.importers import onnx_import  # noqa: E402

TOL = 1e-4


def _ort(proto, feeds):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _w(rng, name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def _tf_style(batch_dim, opset=13):
    """tf2onnx's shape of a Keras conv net: NHWC in, Transpose to NCHW, convs
    with auto_pad SAME_UPPER (one strided), a global pool, Reshape and a
    MatMul + Add head, Softmax."""
    rng = np.random.default_rng(0)
    inits = [_w(rng, "w1", 8, 3, 3, 3), _w(rng, "b1", 8), _w(rng, "w2", 6, 8, 3, 3), _w(rng, "fc", 6, 5),
             _w(rng, "fb", 5), numpy_helper.from_array(np.array([-1, 6], np.int64), "shape")]
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["t", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER", strides=[2, 2], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], auto_pad="SAME_UPPER", name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="pool"),
        helper.make_node("Reshape", ["g", "shape"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["mm"], name="dense"),
        helper.make_node("Add", ["mm", "fb"], ["logits"], name="bias"),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1, name="softmax"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 11, 13, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 5])
    g = helper.make_graph(nodes, "tf_style", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="tf2onnx")
    m.ir_version = 8
    return m


def _set_batch(proto, value):
    """The same model with the batch dim of every graph input/output set to value
    (an int -> dim_value, a str -> dim_param, None -> neither)."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    for vi in list(m.graph.input) + list(m.graph.output):
        d = vi.type.tensor_type.shape.dim[0]
        d.Clear()
        if isinstance(value, int):
            d.dim_value = value
        elif isinstance(value, str):
            d.dim_param = value
    return m


@pytest.mark.parametrize("batch", [-1, 0, "N", None], ids=["minus1", "zero", "dim_param", "unnamed"])
def test_dynamic_batch_forms(batch):
    base = _tf_style("N")
    m = ce.load(_set_batch(base, batch))
    assert m.inputs[0].shape[0] in (None, "N")
    x = np.random.default_rng(1).standard_normal((3, 11, 13, 3)).astype(np.float32)
    np.testing.assert_allclose(m.run(x), _ort(base, {"x": x})[0], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("opset", [11, 13, 21, onnx.defs.onnx_opset_version()])
def test_tf2onnx_style_at_opsets(opset):
    proto = _tf_style("N", opset)
    x = np.random.default_rng(2).standard_normal((2, 11, 13, 3)).astype(np.float32)
    np.testing.assert_allclose(ce.load(proto).run(x), _ort(proto, {"x": x})[0], rtol=TOL, atol=TOL)


def test_paddle_style_minus_one_everywhere():
    """Paddle2ONNX writes -1 for every unknown dim, intermediates included, and
    a Flatten + Gemm head."""
    rng = np.random.default_rng(3)
    inits = [_w(rng, "w", 4, 3, 3, 3), _w(rng, "fc", 5, 4 * 3 * 3), _w(rng, "fb", 5)]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "paddle", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 5])], inits,
                          value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, [-1, 4, -1, -1])])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], producer_name="PaddlePaddle")
    proto.ir_version = 7
    x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    ref = _set_batch(proto, "N")
    del ref.graph.value_info[:]
    np.testing.assert_allclose(ce.load(proto).run(x), _ort(ref, {"x": x})[0], rtol=TOL, atol=TOL)


def test_opset_range_is_the_installed_onnx():
    assert onnx_import.MIN_OPSET == 7
    assert onnx_import.MAX_OPSET == onnx.defs.onnx_opset_version()
    proto = _tf_style("N", onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(ce.UnsupportedOpError, match=r"opset %d is outside the supported range 7-%d"
                       % (onnx.defs.onnx_opset_version() + 1, onnx.defs.onnx_opset_version())):
        ce.load(proto)


def test_space_to_depth_crd_opset28():
    if onnx.defs.onnx_opset_version() < 28:
        pytest.skip("SpaceToDepth's mode attribute is opset 28")
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    for mode in ("DCR", "CRD"):
        n = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2, mode=mode)
        n2 = helper.make_node("DepthToSpace", ["y"], ["z"], blocksize=2, mode=mode)
        g = helper.make_graph([n, n2], "s2d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 6])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3, 4, 6])])
        g.output.insert(0, helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12, 2, 3]))
        proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 28)])
        got = ce.load(proto).run(x)
        np.testing.assert_array_equal(got["z"], x)            # each mode inverts its DepthToSpace
        if mode == "CRD":   # channel c*4 + by*2 + bx holds x[c, 2i+by, 2j+bx]
            want = x.reshape(2, 3, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 12, 2, 3)
            np.testing.assert_array_equal(got["y"], want)


# ------------------------------------------------------------ PyTorch exports
torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch")
    return torch


def _export(module, shape, **kw):
    f = io.BytesIO()
    t = _torch()
    t.onnx.export(module, (t.randn(*shape),), f, input_names=["x"], output_names=["y"], dynamo=False, **kw)
    return onnx.load_model_from_string(f.getvalue())


def _nf_net():
    t = _torch()
    nn, Fn = t.nn, t.nn.functional

    class ScaledStdConv2d(nn.Conv2d):
        """timm's: the weight standardised by F.batch_norm(training=True) on each forward."""

        def __init__(self, i, o, k, padding=0, eps=1e-6):
            super().__init__(i, o, k, padding=padding)
            self.gain = nn.Parameter(t.rand(o, 1, 1, 1) + 0.5)
            self.scale = self.weight[0].numel() ** -0.5
            self.eps = eps

        def forward(self, x):
            w = Fn.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              weight=(self.gain * self.scale).view(-1), training=True, momentum=0.,
                              eps=self.eps).reshape_as(self.weight)
            return Fn.conv2d(x, w, self.bias, self.stride, self.padding)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = ScaledStdConv2d(3, 8, 3, padding=1), ScaledStdConv2d(8, 4, 1)

        def forward(self, x):
            return self.b(t.relu(self.a(x)))

    t.manual_seed(0)
    return Net().eval()


def test_weight_standardisation_training_mode_batchnorm():
    net = _nf_net()
    proto = _export(net, (1, 3, 8, 8), opset_version=17, dynamic_axes={"x": {0: "N"}})
    bns = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    assert bns and all(a.i == 1 for n in bns for a in n.attribute if a.name == "training_mode")
    x = np.random.default_rng(4).standard_normal((2, 3, 8, 8)).astype(np.float32)
    want = net(torch.from_numpy(x)).detach().numpy()
    got = ce.load(proto).run(x)
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got, _ort(proto, {"x": x})[0], rtol=TOL, atol=TOL)


def test_training_mode_batchnorm_on_activations():
    """Not foldable: batch statistics of the run-time input, plus the running
    statistics outputs, as the ONNX spec (BatchNormalization-15) gives them."""
    rng = np.random.default_rng(5)
    c = 4
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in
             dict(s=rng.random(c) + 0.5, b=rng.standard_normal(c), m=rng.standard_normal(c),
                  v=rng.random(c) + 0.5).items()]
    n = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"],
                         training_mode=1, momentum=0.8, epsilon=1e-3, name="bn_train")
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, 5, 6]),
            helper.make_tensor_value_info("rm", TensorProto.FLOAT, [c]),
            helper.make_tensor_value_info("rv", TensorProto.FLOAT, [c])]
    g = helper.make_graph([n], "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 5, 6])],
                          outs, inits)
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    x = rng.standard_normal((3, c, 5, 6)).astype(np.float32) * 2 + 1
    got = ce.load(proto).run(x)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    p = {t.name: numpy_helper.to_array(t) for t in inits}
    y = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * p["s"][:, None, None] + \
        p["b"][:, None, None]
    np.testing.assert_allclose(got["y"], y, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got["rm"], p["m"] * 0.8 + mean * 0.2, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got["rv"], p["v"] * 0.8 + var * 0.2, rtol=TOL, atol=TOL)
    # opset 9-13: the extra outputs say training without saying how: refused, named
    proto.opset_import[0].version = 13
    del proto.graph.node[0].attribute[:]
    with pytest.raises(ce.UnsupportedOpError, match="bn_train.*opset 13"):
        ce.load(proto)


def _gc_net():
    t = _torch()
    nn, Fn = t.nn, t.nn.functional

    class LayerNorm2d(nn.LayerNorm):
        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            return Fn.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)

    class GlobalContext(nn.Module):
        """timm's GlobalContext (fuse_scale): attention-pooled context -> ConvMlp(LayerNorm2d) -> sigmoid gate."""

        def __init__(self, c, rd):
            super().__init__()
            self.conv_attn = nn.Conv2d(c, 1, 1)
            self.fc1, self.norm, self.fc2 = nn.Conv2d(c, rd, 1), LayerNorm2d(rd), nn.Conv2d(rd, c, 1)

        def forward(self, x):
            b, c, h, w = x.shape
            attn = Fn.softmax(self.conv_attn(x).reshape(b, 1, h * w), dim=-1).unsqueeze(3)
            context = (x.reshape(b, c, h * w).unsqueeze(1) @ attn).view(b, c, 1, 1)
            return x * t.sigmoid(self.fc2(t.relu(self.norm(self.fc1(context)))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.gc = nn.Conv2d(3, 32, 3, padding=1), GlobalContext(32, 8)

        def forward(self, x):
            return self.gc(t.relu(self.stem(x)))

    t.manual_seed(1)
    return Net().eval()


@pytest.mark.parametrize("dynamic", [False, True])
def test_global_context_block(dynamic):
    proto = _export(_gc_net(), (1, 3, 14, 14), opset_version=17,
                    dynamic_axes={"x": {0: "N"}, "y": {0: "N"}} if dynamic else None)
    x = np.random.default_rng(6).standard_normal((2 if dynamic else 1, 3, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(ce.load(proto).run(x), _ort(proto, {"x": x})[0], rtol=TOL, atol=TOL)


def test_c_kernel_error_names_node_op_and_shapes():
    """A status from a C kernel (which knows no names) reaches the user with
    the node, its op and the shapes it was given."""
    from cnnengine import _kernels

    proto = _tf_style("N")
    m = ce.load(proto)
    x = np.zeros((1, 11, 13, 3), np.float32)
    m.run(x)
    plan = m._exec.plan_for({"x": x})
    step = next(s for s in plan.steps if s.runner is not None)

    def bad_runner(ins, out, threads):   # the real kernel, given a negative size
        _kernels.softmax(np.ones(8, np.float32), np.empty(8, np.float32), -1, 8, 1, 1)

    good = step.runner
    step.runner = bad_runner
    try:
        with pytest.raises(ce.ShapeError) as info:
            m.run(x)
    finally:
        step.runner = good
    msg = str(info.value)
    assert f"node {step.node.name!r} ({step.node.op})" in msg and "C kernel" in msg
    assert "input shapes [(" in msg, msg
