"""Runs over output regions: every step of a plan, run tile by tile over a
random tiling of its output, assembles to the whole run's value -- on the
reference backend, the CPU backend in the plain layout, and the CPU backend
in the blocked layout (fused steps included)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from cnnengine.ops.base import FULL, Box

from ..conftest import assert_close
from .onnx_builders import init, residual_net


def zoo_of_ops(rng, c=5, batch=2):
    """One graph with every spatial op kind: convs of odd geometry (prime
    channels, stride > kernel, asymmetric pads, dilation, groups, depthwise,
    1x1), BN + activations, pools (ceil mode, count_include_pad), LRN,
    broadcast elementwise, Concat, Pad, Resize, then the global head."""
    pos = lambda n, *s: numpy_helper.from_array(rng.uniform(0.5, 1.5, s).astype(np.float32), n)  # noqa: E731
    inits = [
        init(rng, "w1", 7, c, 3, 3), init(rng, "b1", 7),
        init(rng, "w2", 7, 7, 2, 2),                    # stride 3 > kernel 2
        init(rng, "w3", 7, 1, 3, 3),                    # depthwise, dilation 2
        init(rng, "w4", 14, 7, 1, 1),                   # 1x1
        init(rng, "w5", 14, 2, 3, 3),                   # groups 7
        pos("g", 14), init(rng, "be", 14), init(rng, "m", 14), pos("v", 14),
        init(rng, "sc", 1, 14, 1, 1),
        init(rng, "w6", 6, 28, 3, 3),
        numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        init(rng, "fw", 4, 6), init(rng, "fb", 4),
    ]
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["a"], name="conv_asym", pads=[0, 1, 2, 1]),
        N("Relu", ["a"], ["a_r"], name="relu"),
        N("Conv", ["a_r", "w2"], ["b"], name="conv_s3k2", strides=[3, 3], pads=[1, 1, 1, 1]),
        N("Conv", ["a_r", "w3"], ["d"], name="dw_dil", group=7, dilations=[2, 2], pads=[2, 2, 2, 2]),
        N("Sigmoid", ["d"], ["d_s"], name="sigmoid"),
        N("Mul", ["d", "d_s"], ["d_m"], name="silu_mul"),
        N("Conv", ["d_m", "w4"], ["e"], name="pw"),
        N("Conv", ["e", "w5"], ["f"], name="grouped", group=7, pads=[1, 1, 1, 1]),
        N("BatchNormalization", ["f", "g", "be", "m", "v"], ["f_bn"], name="bn"),
        N("Clip", ["f_bn"], ["f_c"], name="relu6", min=0.0, max=6.0) if False else
        N("LeakyRelu", ["f_bn"], ["f_c"], name="leaky", alpha=0.1),
        N("Add", ["f_c", "e"], ["s"], name="residual"),
        N("Mul", ["s", "sc"], ["s2"], name="bcast_mul"),
        N("LRN", ["s2"], ["l"], name="lrn", size=3),
        N("MaxPool", ["l"], ["p1"], name="maxpool_ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        N("AveragePool", ["l"], ["p2"], name="avgpool_pad", kernel_shape=[3, 3], strides=[2, 2],
          pads=[0, 0, 1, 1], count_include_pad=1),
        N("Concat", ["p1", "p2"], ["cat"], name="concat", axis=1),
        N("Pad", ["cat", "pads"], ["pd"], name="pad"),
        N("Resize", ["pd", "", "scales"], ["up"], name="resize", mode="nearest"),
        N("Conv", ["up", "w6"], ["h"], name="conv_last", pads=[1, 1, 1, 1]),
        N("GlobalAveragePool", ["h"], ["gp"], name="gap"),
        N("Flatten", ["gp"], ["fl"], name="flatten"),
        N("Gemm", ["fl", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, 17, 13])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    g = helper.make_graph(nodes, "zoo", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _tiling(rng, h, w):
    """A random tiling of an h x w map into boxes."""
    ys = sorted({0, h, *rng.integers(1, max(h, 2), size=2).tolist()})
    xs = sorted({0, w, *rng.integers(1, max(w, 2), size=2).tolist()})
    return [Box(y0, y1, x0, x1) for y0, y1 in zip(ys, ys[1:]) for x0, x1 in zip(xs, xs[1:])
            if y1 > y0 and x1 > x0]


def _check_every_step(model, x, rng, blocked_too=True):
    feeds = {model.inputs[0].name: x}
    ex = model._exec
    plan = ex.plan_for(feeds)
    env = ex.run(feeds, keep=[o for st in plan.steps for o in st.node.outputs if o])
    env.update(feeds)
    runner = ex.regions(feeds)
    checked = 0
    for k, step in enumerate(plan.steps):
        out = step.node.outputs[0]
        shape = plan.shapes[out]
        if len(shape) < 4 or out not in env:
            continue
        ins = [None if (not i or i in plan.static) else (env[i], FULL) for i in step.node.inputs]
        if any(i and i not in plan.static and i not in env for i in step.node.inputs):
            continue
        got = np.full(env[out].shape, np.nan, np.float32)
        for box in _tiling(rng, shape[2], shape[3]):
            got[box.slices()] = runner.run_step(k, ins, box)
        assert_close(got, env[out], atol=1e-5, what=f"{step.node.name} ({step.node.op})")
        if step.node.op in WINDOWED:
            assert runner.stats[step.node.name, "whole"] == 0, f"{step.node.name} ran whole"
        checked += 1
    return checked


# ops that must run on windows, not whole-and-cut, in this graph (Resize has a region rule
# but runs whole: a window of it would need an output offset ONNX params cannot state; Pad
# runs whole for a tile wholly inside its padding)
WINDOWED = {"Conv", "cnn.ConvNCHWc", "MaxPool", "AveragePool", "cnn.PoolNCHWc", "Relu", "LeakyRelu",
            "Sigmoid", "Add", "Mul", "LRN", "Concat", "BatchNormalization",
            "cnn.AffineNCHWc", "cnn.ToNCHWc", "cnn.ToNCHW", "cnn.Silu"}


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_every_step_over_a_random_tiling_equals_the_whole_run(backend, rng):
    net = zoo_of_ops(rng)
    x = rng.standard_normal((2, 5, 17, 13)).astype(np.float32)
    m = ce.load(net, backend=backend)
    assert _check_every_step(m, x, rng) >= 15


def test_steps_really_run_on_windows(rng):
    """A conv's region run reads only its window: NaN outside the input
    window it needs does not reach the output box."""
    net = residual_net(rng)
    m = ce.load(net, backend="reference")
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    feeds = {"x": x}
    runner = m._exec.regions(feeds)
    plan = runner.plan
    k = next(i for i, st in enumerate(plan.steps) if st.node.name == "conv1")
    box = Box(2, 5, 3, 7)
    (need,) = [b for b in runner.input_boxes(k, box) if b is not FULL]
    assert need == Box(1, 6, 2, 8)           # 3x3, pad 1, stride 1
    poisoned = np.full_like(x, np.nan)
    poisoned[need.clip(x.shape).slices()] = x[need.clip(x.shape).slices()]
    win = runner.run_step(k, [(poisoned, FULL), None, None], box)
    whole = m._exec.run(feeds, keep=["c1"])["c1"]
    assert np.isfinite(win).all()
    assert_close(win, whole[box.slices()], atol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_chain_over_a_region(backend, rng):
    """A chain of steps run for one output box equals the whole run there,
    each step computing only the window its consumers need."""
    net = zoo_of_ops(rng)
    x = rng.standard_normal((2, 5, 17, 13)).astype(np.float32)
    m = ce.load(net, backend=backend)
    feeds = {"x": x}
    plan = m._exec.plan_for(feeds)
    keep = [o for st in plan.steps for o in st.node.outputs if o]
    env = m._exec.run(feeds, keep=keep)
    runner = m._exec.regions(feeds)
    spatial = [k for k, st in enumerate(plan.steps) if len(plan.shapes[st.node.outputs[0]]) >= 4
               and st.node.outputs[0] in env]
    ks = spatial[:6]
    last = plan.steps[ks[-1]].node.outputs[0]
    box = Box(1, 3, 2, 4)
    windows = runner.run_chain(ks, {"x": x}, box)
    win, got_box = windows[last]
    assert got_box == box.clip(plan.shapes[last])
    assert_close(win, env[last][got_box.slices()], atol=1e-5)
    # the first step computed a window, not the whole map
    first = plan.steps[ks[0]].node.outputs[0]
    assert windows[first][0].shape[2] * windows[first][0].shape[3] < \
        plan.shapes[first][2] * plan.shapes[first][3]


def test_cpu_windows_reuse_the_plan_packed_weights(rng):
    """Blocked convs run their windows with the weights the plan packed
    (one pack per layer, whatever the window's size, padding or batch)."""
    net = zoo_of_ops(rng)
    x = rng.standard_normal((2, 5, 17, 13)).astype(np.float32)
    m = ce.load(net)
    plan = m._exec.plan_for({"x": x})
    if not any(st.node.op == "cnn.ConvNCHWc" for st in plan.steps):
        pytest.skip("no blocked layout at this ISA level")
    _check_every_step(m, x, rng)
    runner = m._exec.regions({"x": x})
    shared = {key[0] for key in runner._runners if len(key) == 2}
    convs = {k for k, st in enumerate(plan.steps) if st.node.op == "cnn.ConvNCHWc"}
    assert convs and convs <= shared
