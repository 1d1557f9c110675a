"""The blocked-layout (NCHW8c) plan: same results as the NCHW plan and as
ONNX Runtime, blocked where it should be, reorders only at the edges,
captures of blocked values come back NCHW."""
import collections

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from tests.conftest import assert_close
from tests.runtime.onnx_builders import init, ort_run

pytestmark = pytest.mark.skipif(ce.detected_isa() == "scalar",
                                reason="the blocked layout needs AVX2")


def mobile_net(rng, c1=13, c2=21, hw=(17, 15)):
    """Stem (RGB) -> depthwise -> pointwise -> squeeze-excitation -> residual
    pointwise + Add -> 5x5 depthwise stride 2 -> global pool -> classifier,
    with channel counts that are not multiples of 8."""
    inits = [init(rng, "w0", c1, 3, 3, 3), init(rng, "b0", c1),
             init(rng, "wd", c1, 1, 3, 3), init(rng, "bd", c1),
             init(rng, "wp", c2, c1, 1, 1), init(rng, "bp", c2),
             init(rng, "ws1", 5, c2, 1, 1), init(rng, "bs1", 5),
             init(rng, "ws2", c2, 5, 1, 1), init(rng, "bs2", c2),
             init(rng, "wr", c2, c2, 1, 1),
             init(rng, "wd5", c2, 1, 5, 5), init(rng, "bd5", c2),
             init(rng, "fw", 7, c2), init(rng, "fb", 7),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Clip", ["c0", "lo", "hi"], ["a0"], name="relu6"),
        helper.make_node("Conv", ["a0", "wd", "bd"], ["cd"], name="dw", pads=[1, 1, 1, 1],
                         group=c1),
        helper.make_node("Sigmoid", ["cd"], ["sd"], name="sig"),
        helper.make_node("Mul", ["cd", "sd"], ["ad"], name="silu"),
        helper.make_node("Conv", ["ad", "wp", "bp"], ["cp"], name="pw"),
        helper.make_node("GlobalAveragePool", ["cp"], ["g"], name="se_pool"),
        helper.make_node("Conv", ["g", "ws1", "bs1"], ["s1"], name="se_fc1"),
        helper.make_node("Relu", ["s1"], ["r1"], name="se_relu"),
        helper.make_node("Conv", ["r1", "ws2", "bs2"], ["s2"], name="se_fc2"),
        helper.make_node("Sigmoid", ["s2"], ["e"], name="se_gate"),
        helper.make_node("Mul", ["cp", "e"], ["scaled"], name="se_scale"),
        helper.make_node("Conv", ["scaled", "wr"], ["cr"], name="pw2"),
        helper.make_node("Add", ["cr", "scaled"], ["sum"], name="residual"),
        helper.make_node("Conv", ["sum", "wd5", "bd5"], ["c5"], name="dw5", pads=[2, 2, 2, 2],
                         strides=[2, 2], group=c2),
        helper.make_node("Relu", ["c5"], ["a5"], name="relu5"),
        helper.make_node("GlobalAveragePool", ["a5"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])
    g = helper.make_graph(nodes, "mobile", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _ops(model, x):
    plan = model._exec.plan_for({model.graph.inputs[0].name: x})
    return collections.Counter(s.node.op for s in plan.steps)


@pytest.fixture
def plain(monkeypatch):
    def load(net):
        monkeypatch.setenv("CNNENGINE_LAYOUT", "nchw")
        m = ce.load(net)
        monkeypatch.delenv("CNNENGINE_LAYOUT")
        return m
    return load


@pytest.mark.parametrize("batch,hw", [(1, (17, 15)), (3, (8, 9)), (2, (1, 1))])
def test_blocked_plan_matches_nchw_plan_and_onnxruntime(batch, hw, rng, plain, monkeypatch):
    net = mobile_net(rng, hw=hw)
    x = rng.standard_normal((batch, 3, *hw)).astype(np.float32)
    m = ce.load(net)
    y = m.run(x)
    ops = _ops(m, x)
    assert ops["cnn.ConvNCHWc"] == 7, ops          # every conv, the stem straight from NCHW
    # per-channel scaling (on a 1x1 image: a same-shape blocked Mul)
    # the SE squeeze pools a 1x1 conv's output; the final pool is taken by
    # the depthwise dw5 as it writes its output (its second output)
    assert ops["cnn.ScaleNCHWc"] == (hw != (1, 1)) and ops["cnn.GlobalPoolNCHWc"] == 1, ops
    plan = m._exec.plan_for({"x": x})
    assert [s.node.name for s in plan.steps if len(s.node.outputs) == 2] == ["dw5"]
    assert ops["cnn.ToNCHWc"] == 0 and ops["cnn.ToNCHW"] == 1, ops   # one exit, before Flatten
    monkeypatch.setenv("CNNENGINE_LAYOUT", "nchw")
    ref_plan = plain(net)
    assert "cnn.ConvNCHWc" not in _ops(ref_plan, x)
    assert_close(y, ref_plan.run(x), rtol=1e-5)
    assert_close(y, ort_run(net, x), rtol=1e-4)


def test_capture_of_blocked_values_is_nchw(rng, plain):
    net = mobile_net(rng)
    x = rng.standard_normal((2, 3, 17, 15)).astype(np.float32)
    y, acts = ce.load(net).run(x, capture=["pw", "se_scale", "dw5"])
    y_ref, acts_ref = plain(net).run(x, capture=["pw", "se_scale", "dw5"])
    assert_close(y, y_ref, rtol=1e-5)
    for k in acts_ref:
        assert acts[k].shape == acts_ref[k].shape
        assert_close(acts[k], acts_ref[k], rtol=1e-5, what=k)


def test_values_leaving_the_layout_are_reordered_once(rng, plain):
    """LRN has no blocked kernel: the stem's output leaves the layout
    once (read by the LRN and by a Sub), the LRN's output comes back."""
    inits = [init(rng, "w0", 11, 3, 3, 3), init(rng, "w1", 11, 11, 1, 1)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("LRN", ["c0"], ["p"], name="lrn", size=3),
             helper.make_node("Sub", ["c0", "p"], ["d"], name="sub"),
             helper.make_node("Conv", ["p", "w1"], ["c1"], name="pw"),
             helper.make_node("Add", ["c1", "d"], ["y"], name="add")]
    g = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, 9, 10])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 11, 9, 10])], inits)
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    m = ce.load(net)
    y = m.run(x)
    ops = _ops(m, x)
    # c0 -> NCHW for the LRN (the Sub reuses it); p -> blocked for pw; the
    # Sub's output d -> blocked for the Add; y -> NCHW at the graph's end
    assert ops["cnn.ConvNCHWc"] == 2 and ops["cnn.ToNCHW"] == 2 and ops["cnn.ToNCHWc"] == 2, ops
    assert_close(y, plain(net).run(x), rtol=1e-5)
    assert_close(y, ort_run(net, x), rtol=1e-4)


def test_winograd_convolutions_stay_blocked_between_blocked_ones(rng):
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="pw1"),
             helper.make_node("Relu", ["a"], ["r"], name="r"),
             helper.make_node("Conv", ["r", "w"], ["c"], name="c3", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c", "w2"], ["y"], name="pw2")]
    g = helper.make_graph(nodes, "wino", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [1, 32, 56, 56])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 56, 56])],
                          [init(rng, "w", 64, 64, 3, 3, scale=0.05),
                           init(rng, "w1", 64, 32, 1, 1, scale=0.2),
                           init(rng, "w2", 24, 64, 1, 1, scale=0.2)])
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((1, 32, 56, 56)).astype(np.float32)
    m = ce.load(net)
    plan = m._exec.plan_for({"x": x})
    ops = [(s.node.op, s.node.name) for s in plan.steps]
    # the 3x3 runs blocked Winograd: no reorder on either side of it
    assert [n for o, n in ops if o == "cnn.ConvNCHWc"] == ["pw1", "c3", "pw2"], ops
    assert sum(o.startswith("cnn.ToNCHW") for o, _ in ops) == 2, ops   # the graph's edges
    assert_close(m.run(x), ort_run(net, x), rtol=1e-4)


def test_scalar_isa_plans_stay_nchw(rng):
    net = mobile_net(rng)
    x = rng.standard_normal((1, 3, 17, 15)).astype(np.float32)
    m = ce.load(net)
    y = m.run(x)
    before = ce.active_isa()
    ce.set_isa("scalar")
    try:
        assert "cnn.ConvNCHWc" not in _ops(m, x)   # a new plan for the scalar ISA
        assert_close(m.run(x), y, rtol=1e-5)
    finally:
        ce.set_isa(before)


def test_pooling_batchnorm_and_concat_stay_blocked(rng, plain):
    """GoogLeNet/DenseNet-style ops: max and average pooling (padding, ceil
    mode, both divisors), a BatchNormalization after a Concat, and a
    Concat of whole blocks stay blocked, a Concat of partial blocks is a
    blocked gather."""
    c = 16
    inits = [init(rng, "w0", c, 3, 3, 3), init(rng, "w1", 8, c, 1, 1), init(rng, "w2", 5, c, 1, 1),
             init(rng, "g", c + 8), init(rng, "b", c + 8), init(rng, "m", c + 8),
             init(rng, "w3", 4, c + 8, 1, 1)]
    var = rng.uniform(0.5, 1.5, c + 8).astype(np.float32)
    inits.append(numpy_helper.from_array(var, "v"))
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c0"], ["mp"], name="mp", kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
             helper.make_node("AveragePool", ["mp"], ["ap"], name="ap", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["mp"], ["ap2"], name="ap2", kernel_shape=[2, 3],
                              pads=[0, 1, 1, 1], count_include_pad=1),
             helper.make_node("Add", ["ap", "ap2"], ["s"], name="add"),
             helper.make_node("Conv", ["s", "w1"], ["c1"], name="pw1"),
             helper.make_node("Concat", ["s", "c1"], ["cat"], name="cat", axis=1),
             helper.make_node("BatchNormalization", ["cat", "g", "b", "m", "v"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w3"], ["c3"], name="pw3"),
             helper.make_node("Conv", ["s", "w2"], ["c2"], name="pw2"),
             helper.make_node("Concat", ["c3", "c2"], ["y"], name="cat_partial", axis=1)]
    g = helper.make_graph(nodes, "pools", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, 13, 12])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 9, 7, 6])], inits)
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((2, 3, 13, 12)).astype(np.float32)
    m = ce.load(net)
    y = m.run(x)
    ops = _ops(m, x)
    # the BN (its ReLU with it) normalises pw3's input as pw3 reads it
    assert ops["cnn.PoolNCHWc"] == 3 and ops["cnn.AffineNCHWc"] == 0, ops
    plan = m._exec.plan_for({"x": x})
    assert [(s.node.name, s.node.params.pre.act) for s in plan.steps
            if s.node.op == "cnn.ConvNCHWc" and s.node.params.pre is not None] == [("bn", "relu")]
    assert ops["Concat"] == 1 and ops["cnn.GatherNCHWc"] == 1 and ops["cnn.ToNCHWc"] == 0, ops
    assert ops["cnn.ToNCHW"] == 1, ops              # y, the graph's output
    assert "Relu" not in ops, ops                    # fused into the BatchNormalization
    assert_close(y, plain(net).run(x), rtol=1e-5)
    assert_close(y, ort_run(net, x), rtol=1e-4)
    # the BN's own output (before the fused ReLU) can still be captured
    y2, got = m.run(x, capture=["bn", "relu"])
    assert_close(y2, y, rtol=1e-6)
    assert got["bn"].min() < 0 and got["relu"].min() >= 0
    assert_close(got["relu"], np.maximum(got["bn"], 0), rtol=1e-6)


def _bn_relu_net(rng, c=21, k=11, hw=(9, 7), shared=False, exposed=False, act="Relu"):
    """Concat -> BatchNormalization -> act -> 1x1 conv (DenseNet's layer),
    the normalised value also read by a 3x3 conv (shared) or a graph
    output (exposed)."""
    inits = [init(rng, "w0", 8, 3, 3, 3), init(rng, "w1", c - 8, 3, 1, 1), init(rng, "g", c),
             init(rng, "b", c), init(rng, "m", c), init(rng, "w2", k, c, 1, 1), init(rng, "b2", k),
             init(rng, "w3", k, c, 3, 3),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "v")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w1"], ["c1"], name="side"),
             helper.make_node("Concat", ["c0", "c1"], ["cat"], name="cat", axis=1),
             helper.make_node("BatchNormalization", ["cat", "g", "b", "m", "v"], ["bn"], name="bn"),
             helper.make_node(act, ["bn"], ["r"], name="act"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv1")]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", k, *hw])]
    if shared:
        nodes.append(helper.make_node("Conv", ["r", "w3"], ["y3"], name="conv3", pads=[1, 1, 1, 1]))
        outs.append(helper.make_tensor_value_info("y3", TensorProto.FLOAT, ["N", k, *hw]))
    if exposed:
        outs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", c, *hw]))
    g = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *hw])],
                          outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("batch,hw,act", [(1, (9, 7), "Relu"), (3, (1, 1), "Relu"), (2, (56, 56), "Relu"),
                                          (2, (9, 7), "Sigmoid")])
def test_batchnorm_before_a_1x1_is_its_input_normalisation(batch, hw, act, rng, plain, monkeypatch):
    """DenseNet's norm -> relu -> 1x1: one step (the 1x1 normalises what it
    reads), the same output as the NCHW plan, the two-step plan
    (CNNENGINE_FUSE_AFFINE=0) and ONNX Runtime, at 1 and 2 threads."""
    net = _bn_relu_net(rng, hw=hw, act=act)
    x = rng.standard_normal((batch, 3, *hw)).astype(np.float32)
    m = ce.load(net)
    ops = _ops(m, x)
    assert ops["cnn.AffineNCHWc"] == 0 and ops["cnn.ConvNCHWc"] == 3, ops
    monkeypatch.setenv("CNNENGINE_FUSE_AFFINE", "0")
    two = ce.load(net)
    assert _ops(two, x)["cnn.AffineNCHWc"] == 1
    want = ort_run(net, x)
    for threads in (1, 2):
        y = ce.load(net, threads=threads).run(x) if threads > 1 else m.run(x)
        assert_close(y, two.run(x), rtol=1e-6, what=f"two steps, {threads} threads")
        assert_close(y, want, rtol=1e-4, what=f"ONNX Runtime, {threads} threads")
    assert_close(m.run(x), plain(net).run(x), rtol=1e-5)
    # the normalised value is gone from the fast plan: a capture runs the plain one
    y, got = m.run(x, capture=["bn", "act"])
    assert_close(y, want, rtol=1e-4)
    assert got["act"].shape == (batch, 21, *hw)


@pytest.mark.parametrize("shared,exposed", [(True, False), (False, True)])
def test_batchnorm_read_elsewhere_stays_a_step(shared, exposed, rng):
    """A normalised value a 3x3 conv also reads, or that the graph outputs,
    is still made by its own step."""
    net = _bn_relu_net(rng, shared=shared, exposed=exposed)
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    m = ce.load(net)
    assert _ops(m, x)["cnn.AffineNCHWc"] == 1
    got = m.run(x)
    assert isinstance(got, dict) and set(got) == {"y", "y3" if shared else "r"}
    assert_close(got["y"], ort_run(net, x), rtol=1e-4)


def test_single_input_concat_stays_blocked(rng):
    """torchvision's DenseNet concatenates a one-element list at the start of
    every dense block: a copy, which must not send the block through NCHW."""
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="c0", pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["a"], ["cat"], name="cat", axis=1),
             helper.make_node("Conv", ["cat", "w1"], ["y"], name="c1")]
    g = helper.make_graph(nodes, "cat1", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 9, 9])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 8, 9, 9])],
        [init(rng, "w0", 16, 3, 3, 3), init(rng, "w1", 8, 16, 1, 1)])
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    m = ce.load(net)
    ops = _ops(m, x)
    assert ops["Concat"] == 1 and ops["cnn.ToNCHWc"] == 0 and ops["cnn.ToNCHW"] == 1, ops
    assert_close(m.run(x), ort_run(net, x), rtol=1e-4)


@pytest.mark.parametrize("c,g,stride", [(32, 8, 1), (24, 12, 2), (16, 4, 1), (48, 6, 2)])
def test_small_groups_run_blocked_with_block_diagonal_weights(c, g, stride, rng):
    """Groups of 8, 4 or 2 channels each way (RegNetY's 8, ResNeXt 32x4d's
    first stage: 128 channels in 32 groups) run blocked, no reorders:
    interleaved in vector lanes on AVX-512, else one group per block with
    block-diagonal weights; against ORT."""
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="pw"),
             helper.make_node("Conv", ["a", "w", "b"], ["c"], name="grouped", group=g,
                              pads=[1, 1, 1, 1], strides=[stride, stride]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    oh = (11 + 2 - 3) // stride + 1
    gr = helper.make_graph(nodes, "small_groups", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3, 11, 11])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, c, oh, oh])],
        [init(rng, "w0", c, 3, 1, 1), init(rng, "w", c, c // g, 3, 3), init(rng, "b", c)])
    net = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((2, 3, 11, 11)).astype(np.float32)
    m = ce.load(net)
    ops = _ops(m, x)
    assert ops["cnn.ConvNCHWc"] == 2 and ops["cnn.ToNCHWc"] == 0, ops
    assert_close(m.run(x), ort_run(net, x), rtol=1e-4)


@pytest.mark.parametrize("op,keep,opset", [("ReduceMean", 0, 13), ("ReduceMean", 1, 18),
                                           ("ReduceMax", 0, 18), ("ReduceMean", 1, 13)])
def test_spatial_reduce_is_the_blocked_global_pool(op, keep, opset, rng):
    """MNASNet's `x.mean([2, 3])`: ReduceMean/ReduceMax over H, W of a
    blocked value runs as the blocked global pool (axes as an attribute
    before opset 18, as an input from 18; with and without keepdims)."""
    inits = [init(rng, "w", 13, 3, 3, 3)]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([-1, 2], np.int64), "axes"))
        red = helper.make_node(op, ["c", "axes"], ["y"], name="red", keepdims=keep)
    else:
        red = helper.make_node(op, ["c"], ["y"], name="red", axes=[2, -1], keepdims=keep)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), red]
    g = helper.make_graph(nodes, "reduce", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3, 9, 7])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, 13, 1, 1] if keep else [2, 13])], inits)
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    m = ce.load(net)
    ops = _ops(m, x)
    assert ops["cnn.GlobalPoolNCHWc"] == 1 and op not in ops, ops
    y = m.run(x)
    assert y.shape == ((2, 13, 1, 1) if keep else (2, 13))
    assert_close(y, ort_run(net, x), rtol=1e-5)


def se_net(rng, c=24, k=16, hw=(9, 7), residual=False):
    """conv -> squeeze-excitation (GlobalAveragePool, 1x1 + ReLU, 1x1 +
    Sigmoid, Mul) -> projection 1x1 (+ residual): EfficientNet's block end."""
    inits = [init(rng, "w0", c, 3, 3, 3), init(rng, "w1", 6, c, 1, 1), init(rng, "b1", 6),
             init(rng, "w2", c, 6, 1, 1), init(rng, "b2", c), init(rng, "wp", k, c, 1, 1),
             init(rng, "bp", k)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["a"], ["m"], name="gap"),
             helper.make_node("Conv", ["m", "w1", "b1"], ["f1"], name="fc1"),
             helper.make_node("Relu", ["f1"], ["r1"], name="relu"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["f2"], name="fc2"),
             helper.make_node("Sigmoid", ["f2"], ["g"], name="gate"),
             helper.make_node("Mul", ["a", "g"], ["s"], name="scale"),
             helper.make_node("Conv", ["s", "wp", "bp"], ["p"], name="proj")]
    out = "p"
    if residual:
        inits.append(init(rng, "wr", k, 3, 1, 1))
        nodes += [helper.make_node("Conv", ["x", "wr"], ["q"], name="side"),
                  helper.make_node("Add", ["p", "q"], ["y"], name="add")]
        out = "y"
    g = helper.make_graph(nodes, "se", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, *hw])], [helper.make_tensor_value_info(
            out, TensorProto.FLOAT, ["N", k, *hw])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("k,hw,residual", [(16, (9, 7), False), (40, (3, 5), True),
                                           (8, (11, 13), True)])
def test_squeeze_excitation_gate_folds_into_the_projection(k, hw, residual, rng, plain):
    """The SE Mul disappears: the projection conv takes the gate (scaled
    weights per image when H*W >= K, scaled activations otherwise), against
    ORT, the plain layout, batch 2; the Mul's output can still be captured."""
    net = se_net(rng, k=k, hw=hw, residual=residual)
    x = rng.standard_normal((2, 3, *hw)).astype(np.float32)
    m = ce.load(net)
    assert [n.op for n in m._fused.nodes].count("Mul") == 0
    ops = _ops(m, x)
    assert "Mul" not in ops and "cnn.ScaleNCHWc" not in ops and ops["cnn.ToNCHWc"] == 0, ops
    y = m.run(x)
    assert_close(y, ort_run(net, x), rtol=1e-4)
    assert_close(y, plain(net).run(x), rtol=1e-5)
    y2, got = m.run(x, capture=["scale"])
    assert_close(y2, y, rtol=1e-6)
    assert got["scale"].shape == (2, 24, *hw)


def test_gated_blocked_conv_matches_scaling_first(rng):
    """Kernel level: run_scaled(x, s) == run(x * s) for whole and partial
    channel blocks, batch 3, with a residual."""
    for c, k in [(16, 24), (13, 7)]:
        x = rng.standard_normal((3, c, 5, 6)).astype(np.float32)
        s = rng.uniform(0, 1, (3, c, 1, 1)).astype(np.float32)
        w = rng.standard_normal((k, c, 1, 1)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        res = rng.standard_normal((3, k, 5, 6)).astype(np.float32)
        dims = (3, c, 5, 6, k, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 5, 6)
        pk = ce._kernels.ConvNCHWc(w.ravel(), b, dims)
        blk = lambda a: _blocked(a)
        y1 = np.empty(3 * ((k + 7) // 8) * 30 * 8, np.float32)
        y2 = np.empty_like(y1)
        pk.run_scaled(blk(x), blk(s), blk(res), y1, 2)
        pk.run(blk(x * s), blk(res), y2, 2)
        np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
        with pytest.raises(ce.ShapeError):
            pk.run_scaled(blk(x), blk(s)[:8], None, y1, 1)


def _blocked(a):
    n, c, h, w = a.shape
    y = np.zeros(n * ((c + 7) // 8) * h * w * 8, np.float32)
    ce._kernels.nchw_to_nchwc(np.ascontiguousarray(a).ravel(), y, n, c, h * w, 1)
    return y


def shuffle_net(rng, c=26, hw=(9, 7), opset=13, split=False):
    """Two ShuffleNetV2 units: Concat of two branches of c/2 channels (not
    whole blocks), the channel shuffle (Reshape -> Transpose -> Reshape),
    its halves taken by Slice (opset >= 10: bounds as inputs) or Split, the
    second half through a branch, concatenated and shuffled again."""
    h = c // 2
    inits = [init(rng, "w0", c, 3, 3, 3), init(rng, "wa", h, c, 1, 1), init(rng, "wb", h, c, 1, 1),
             init(rng, "wd", h, 1, 3, 3), init(rng, "wc", h, h, 1, 1), init(rng, "wy", 5, c, 1, 1),
             numpy_helper.from_array(np.array([0, 2, h, *hw], np.int64), "s5"),
             numpy_helper.from_array(np.array([0, c, *hw], np.int64), "s4"),
             numpy_helper.from_array(np.array([0], np.int64), "z"),
             numpy_helper.from_array(np.array([h], np.int64), "hh"),
             numpy_helper.from_array(np.array([2**62], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "ax")]

    def shuffle(x, tag):
        return [helper.make_node("Reshape", [x, "s5"], [f"{tag}_r"], name=f"{tag}_r"),
                helper.make_node("Transpose", [f"{tag}_r"], [f"{tag}_t"], name=f"{tag}_t",
                                 perm=[0, 2, 1, 3, 4]),
                helper.make_node("Reshape", [f"{tag}_t", "s4"], [f"{tag}_s"], name=f"{tag}_s")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c0", "wa"], ["a"], name="branch1"),
             helper.make_node("Conv", ["c0", "wb"], ["b"], name="branch2"),
             helper.make_node("Concat", ["a", "b"], ["cat1"], name="cat1", axis=1),
             *shuffle("cat1", "sh1")]
    if split:
        nodes.append(helper.make_node("Split", ["sh1_s"], ["x1", "x2"], name="split", axis=1))
    else:
        nodes += [helper.make_node("Slice", ["sh1_s", "z", "hh", "ax"], ["x1"], name="x1"),
                  helper.make_node("Slice", ["sh1_s", "hh", "end", "ax"], ["x2"], name="x2")]
    nodes += [helper.make_node("Conv", ["x2", "wd"], ["d"], name="dw", group=h, pads=[1, 1, 1, 1]),
              helper.make_node("Conv", ["d", "wc"], ["e"], name="pw"),
              helper.make_node("Relu", ["e"], ["er"], name="relu"),
              helper.make_node("Concat", ["x1", "er"], ["cat2"], name="cat2", axis=1),
              *shuffle("cat2", "sh2"),
              helper.make_node("Conv", ["sh2_s", "wy"], ["y"], name="head")]
    g = helper.make_graph(nodes, "shuffle", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, *hw])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 5, *hw])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("c,split", [(26, False), (26, True), (116, False), (16, False)])
def test_channel_shuffle_concat_and_slices_are_blocked_gathers(c, split, rng, plain):
    """ShuffleNet's Concat -> shuffle -> Slice/Split chain runs as blocked
    channel gathers traced to the branch outputs: no reorders, only the
    gathers a conv reads are made; against the NCHW plan and ORT."""
    net = shuffle_net(rng, c=c, split=split)
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    m = ce.load(net)
    y = m.run(x)
    ops = _ops(m, x)
    assert ops["cnn.ToNCHWc"] == 0 and ops["cnn.ToNCHW"] == 1, ops
    assert not {"Reshape", "Transpose", "Slice", "Split"} & set(ops), ops
    # made: x2 (read by dw) and sh2_s (read by head); cat1, sh1_s, x1, cat2
    # are links traced through
    assert ops["cnn.GatherNCHWc"] == 2, ops
    assert_close(y, plain(net).run(x), rtol=1e-5)
    assert_close(y, ort_run(net, x), rtol=1e-4)


def test_capture_inside_a_gather_chain_uses_the_plain_plan(rng, plain):
    """Values the blocked plan never makes (the shuffle's 5-D transpose, a
    traced Concat) can still be captured."""
    net = shuffle_net(rng)
    x = rng.standard_normal((1, 3, 9, 7)).astype(np.float32)
    names = ["sh1_t", "cat2", "x1"]
    y, got = ce.load(net).run(x, capture=names)
    y_ref, ref = plain(net).run(x, capture=names)
    assert_close(y, y_ref, rtol=1e-5)
    for k in names:
        assert got[k].shape == ref[k].shape
        assert_close(got[k], ref[k], rtol=1e-6, what=k)


@pytest.mark.parametrize("width", [1, 8, 4])
@pytest.mark.parametrize("squeeze", ["gap", "mean_keep", "mean_flat"])
def test_squeeze_is_taken_by_the_depthwise_conv(squeeze, width, rng, plain, avx2):
    """A squeeze-excitation block whose squeeze (GlobalAveragePool, or
    ReduceMean with or without keepdims) reads a depthwise conv's output,
    or a grouped one's with groups of 8 or 4 channels (RegNetY): the conv
    makes the mean as it writes (two outputs), no pooling step (without
    AVX-512 a grouped conv pools in a pass of its own step)."""
    c = 20 if width == 1 else 24
    inits = [init(rng, "w0", c, 3, 3, 3), init(rng, "wd", c, width, 3, 3), init(rng, "bd", c),
             init(rng, "w1", 6, c, 1, 1), init(rng, "w2", c, 6, 1, 1), init(rng, "wp", 12, c, 1, 1),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
             numpy_helper.from_array(np.array([0, c, 1, 1], np.int64), "shape4")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c0", "wd", "bd"], ["d"], name="dw", group=c // width,
                              pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["d"], ["ds"], name="sig"),
             helper.make_node("Mul", ["d", "ds"], ["a"], name="silu")]
    if squeeze == "gap":
        nodes.append(helper.make_node("GlobalAveragePool", ["a"], ["s"], name="squeeze"))
    elif squeeze == "mean_keep":
        nodes.append(helper.make_node("ReduceMean", ["a", "axes"], ["s"], name="squeeze", keepdims=1))
    else:
        nodes += [helper.make_node("ReduceMean", ["a", "axes"], ["s2"], name="squeeze", keepdims=0),
                  helper.make_node("Reshape", ["s2", "shape4"], ["s"], name="unflat")]
    nodes += [helper.make_node("Conv", ["s", "w1"], ["e1"], name="fc1"),
              helper.make_node("Relu", ["e1"], ["r1"], name="relu"),
              helper.make_node("Conv", ["r1", "w2"], ["e2"], name="fc2"),
              helper.make_node("Sigmoid", ["e2"], ["g"], name="gate"),
              helper.make_node("Mul", ["a", "g"], ["sc"], name="excite"),
              helper.make_node("Conv", ["sc", "wp"], ["y"], name="project")]
    g = helper.make_graph(nodes, "se", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, 11, 9])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 12, 11, 9])], inits)
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    m = ce.load(net)
    y = m.run(x)
    ops = _ops(m, x)
    assert "cnn.GlobalPoolNCHWc" not in ops and "ReduceMean" not in ops, ops
    plan = m._exec.plan_for({"x": x})
    assert [s.node.name for s in plan.steps if len(s.node.outputs) == 2] == ["dw"]
    assert_close(y, plain(net).run(x), rtol=1e-5)
    assert_close(y, ort_run(net, x), rtol=1e-4)
    y2, got = m.run(x, capture=["squeeze", "silu"])
    assert_close(got["squeeze"].reshape(2, c), got["silu"].mean(axis=(2, 3)), rtol=1e-5)
