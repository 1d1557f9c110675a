"""Approximate occlusion (occlusion/approximate.py): the backward pass
against PyTorch's autograd, exactness where the tail is linear, the map's
rank correlation to naive on small random networks, the error report
against an exact recomputation, fallbacks, progress and cancel, Krypton's cap."""
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from cnnengine.occlusion import _filler, _Scorer, approximate, vjp

from .onnx_builders import init, residual_net


def _pos(rng, name, n):
    return numpy_helper.from_array(rng.uniform(0.5, 1.5, n).astype(np.float32), name)


def tail_net(rng, size=(19, 17)):
    """Every op with a backward rule: conv (stride, padding, dilation, groups),
    BN, ReLU, max pool, Clip, residual Add, average pool, an SE gate
    (GAP, 1x1 convs, Sigmoid, Mul), Concat, LeakyRelu, GAP, Flatten, Gemm."""
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        N("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["n1"], name="bn1"),
        N("Relu", ["n1"], ["r1"], name="relu1"),
        N("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1),
        N("Conv", ["p1", "w2"], ["c2"], name="conv2", pads=[2, 2, 2, 2], dilations=[2, 2], group=2),
        N("Clip", ["c2", "lo", "hi"], ["k2"], name="clip2"),
        N("Conv", ["k2", "w3", "b3"], ["c3"], name="conv3", pads=[1, 1, 1, 1]),
        N("Add", ["c3", "k2"], ["s3"], name="add3"),
        N("Relu", ["s3"], ["r3"], name="relu3"),
        N("AveragePool", ["r3"], ["ap"], name="avg", kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
        N("GlobalAveragePool", ["ap"], ["sq"], name="squeeze"),
        N("Conv", ["sq", "wr"], ["rr"], name="reduce"),
        N("Relu", ["rr"], ["rr_r"], name="reduce_relu"),
        N("Conv", ["rr_r", "we"], ["ee"], name="expand"),
        N("Sigmoid", ["ee"], ["gate"], name="gate"),
        N("Mul", ["ap", "gate"], ["se"], name="excite"),
        N("Conv", ["se", "w4"], ["c4"], name="conv4"),
        N("Conv", ["se", "w5"], ["c5"], name="conv5", pads=[1, 1, 1, 1]),
        N("Concat", ["c4", "c5"], ["cat"], name="cat", axis=1),
        N("LeakyRelu", ["cat"], ["lr"], name="leaky", alpha=0.1),
        N("GlobalAveragePool", ["lr"], ["gp"], name="gap"),
        N("Flatten", ["gp"], ["f"], name="flatten"),
        N("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = [init(rng, "w1", 8, 3, 3, 3), init(rng, "b1", 8), _pos(rng, "g1", 8), init(rng, "be1", 8),
             init(rng, "m1", 8), _pos(rng, "v1", 8), init(rng, "w2", 8, 4, 3, 3),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(1.5, np.float32), "hi"), init(rng, "w3", 8, 8, 3, 3),
             init(rng, "b3", 8), init(rng, "wr", 4, 8, 1, 1), init(rng, "we", 8, 4, 1, 1),
             init(rng, "w4", 6, 8, 1, 1), init(rng, "w5", 6, 8, 3, 3), init(rng, "fw", 10, 12, scale=1.0),
             init(rng, "fb", 10)]
    g = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _torch_tail(torch, net, x, cut_name):
    """tail_net in PyTorch; returns (log p_top, the cut value as a leaf)."""
    F = torch.nn.functional
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()).double() for t in net.graph.initializer}
    h = {}
    leaf = None

    def mark(name, v):
        nonlocal leaf
        if name == cut_name:
            leaf = v.detach().requires_grad_(True)
            v = leaf
        h[name] = v
        return v
    v = mark("c1", F.conv2d(torch.from_numpy(x).double(), w["w1"], w["b1"], stride=2, padding=1))
    v = mark("n1", F.batch_norm(v, w["m1"], w["v1"], w["g1"], w["be1"], eps=1e-5))
    v = mark("r1", F.relu(v))
    v = mark("p1", F.max_pool2d(v, 3, 2, 1, ceil_mode=True))
    v = mark("c2", F.conv2d(v, w["w2"], None, padding=2, dilation=2, groups=2))
    k2 = mark("k2", torch.clamp(v, 0.0, 1.5))
    v = mark("c3", F.conv2d(k2, w["w3"], w["b3"], padding=1))
    v = mark("r3", F.relu(v + k2))
    ap = mark("ap", _avg_excl(torch, v))
    gate = torch.sigmoid(F.conv2d(F.relu(F.conv2d(ap.mean(dim=(2, 3), keepdim=True), w["wr"])), w["we"]))
    se = mark("se", ap * gate)
    cat = torch.cat([F.conv2d(se, w["w4"]), F.conv2d(se, w["w5"], padding=1)], dim=1)
    z = F.linear(F.leaky_relu(cat, 0.1).mean(dim=(2, 3)), w["fw"], w["fb"])
    t = int(z.argmax())
    return torch.log_softmax(z, dim=1)[0, t], leaf, t


def _avg_excl(torch, v):
    """AveragePool k2 s1, pads top/left 1, padding left out of the count (ONNX's default)."""
    F = torch.nn.functional
    num = F.avg_pool2d(F.pad(v, (1, 0, 1, 0)), 2, 1, divisor_override=1)
    ones = F.pad(torch.ones_like(v[:, :1]), (1, 0, 1, 0))
    return num / F.avg_pool2d(ones, 2, 1, divisor_override=1)


@pytest.mark.parametrize("cut", ["r1", "p1", "k2", "r3", "se"])
def test_backward_equals_autograd(cut, rng):
    torch = pytest.importorskip("torch")
    net = tail_net(rng)
    m = ce.load(net)
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    plan = m._exec_unfused.plan_for({"x": x})
    values = m._exec_unfused.run({"x": x}, keep=[o for st in plan.steps for o in st.node.outputs])
    values["x"] = x
    logp, leaf, t = _torch_tail(torch, net, x, cut)
    logp.backward()
    p = np.exp(values["y"] - values["y"].max())
    p /= p.sum()
    seed = -p.astype(np.float64)
    seed[0, t] += 1.0
    assert cut in vjp.cuts(plan, "x", "y")
    got = vjp.backward(plan, values, "y", seed, cut)
    want = leaf.grad.numpy()
    assert got.shape == want.shape and np.abs(want).max() > 1e-4
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_cuts_are_the_values_every_path_passes():
    net = residual_net(np.random.default_rng(0), batch=1)
    m = ce.load(net)
    plan = m._exec_unfused.plan_for({"x": np.zeros((1, 3, 12, 12), np.float32)})
    cuts = vjp.cuts(plan, "x", "y")
    # inside the residual block only r1 (before the split) and the sum after it
    assert "r1" in cuts and "s" in cuts and "c2" not in cuts and "n2" not in cuts and cuts[-1] == "y"


def linear_tail_net(rng):
    """conv -> relu -> [cut] -> strided conv -> BN -> average pool -> conv:
    a channel's summed activation is linear in the cut value."""
    N = helper.make_node
    nodes = [N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             N("Relu", ["c1"], ["r1"], name="relu1"),
             N("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", strides=[2, 2], pads=[1, 0, 1, 1]),
             N("BatchNormalization", ["c2", "g", "be", "m", "v"], ["n2"], name="bn"),
             N("AveragePool", ["n2"], ["ap"], name="avg", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               count_include_pad=1),
             N("Conv", ["ap", "w3"], ["out"], name="last", pads=[1, 1, 1, 1])]
    inits = [init(rng, "w1", 6, 3, 3, 3), init(rng, "b1", 6), init(rng, "w2", 8, 6, 3, 3), init(rng, "b2", 8),
             _pos(rng, "g", 8), init(rng, "be", 8), init(rng, "m", 8), _pos(rng, "v", 8), init(rng, "w3", 5, 8, 3, 3)]
    g = helper.make_graph(nodes, "lin", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 21, 18])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, 6, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _linearised(m, x, cut, patch, stride, head_cap=approximate.HEAD_CAP, **kw):
    """The approximate map at a given cut (approximate.Linearised), and naive's."""
    scorer = _Scorer(m, x, kw.get("target"), kw.get("reduce", "sum"))
    baseline = scorer.baseline()
    fill_at = _filler(x, "mean", patch)
    h, w = x.shape[2:]
    from cnnengine.ops.base import Box
    boxes = [Box(y, y + patch, c, c + patch) for y in range(0, h - patch + 1, stride)
             for c in range(0, w - patch + 1, stride)]
    run = approximate.Linearised(scorer, boxes, cut=cut, head_cap=head_cap)
    assert run.cut == cut and run.info["scheme"] == "linearised tail"
    approx = baseline - run(boxes, fill_at)
    naive = ce.occlusion(m, x, patch=patch, stride=stride, mode="naive", **kw).heatmap.ravel()
    return approx, naive


def test_exact_where_the_tail_is_linear(rng):
    m = ce.load(linear_tail_net(rng))
    x = rng.standard_normal((1, 3, 21, 18)).astype(np.float32)
    approx, naive = _linearised(m, x, "r1", 5, 3, head_cap=None, target=("last", 2))
    assert np.abs(naive).max() > 1e-2
    assert np.abs(approx - naive).max() <= 1e-4 * np.abs(naive).max()


def _spearman(a, b):
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rank_correlation_to_naive_on_random_networks(seed):
    """A cut after the residual block on random tail_nets, patch 5 stride 2
    on 19x17 (48 positions): measured 0.974-0.996 over seeds 1-9 (0.79-0.99
    cutting before the block, at k2: the longer the linearised tail, the
    worse). 0.9 sits below every measured seed yet far above what a wrong
    gradient, sign or window gives (near 0 or negative)."""
    rng = np.random.default_rng(seed)
    m = ce.load(tail_net(rng))
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    approx, naive = _linearised(m, x, "r3", 5, 2)
    assert _spearman(approx, naive) >= 0.9


def test_error_report_matches_an_exact_recomputation(rng):
    m = ce.load(tail_net(rng))
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    r = ce.occlusion(m, x, patch=5, stride=2, mode="approximate", budget=0.6, checks=12)
    assert r.timings["approximate"]["scheme"] == "linearised tail" and np.isfinite(r.heatmap).all()
    err = r.error
    assert err["sampled_positions"] == 12 == len(set(err["positions"]))
    naive = ce.occlusion(m, x, patch=5, stride=2, mode="naive").heatmap.ravel()
    got = r.heatmap.ravel()[err["positions"]]
    want = naive[err["positions"]]
    assert err["max_abs_error"] == pytest.approx(np.abs(got - want).max(), abs=1e-6)
    assert err["mean_abs_error"] == pytest.approx(np.abs(got - want).mean(), abs=1e-6)
    assert err["rank_corr"] == pytest.approx(_spearman(got, want), abs=1e-9)
    assert ce.occlusion(m, x, patch=5, stride=2, mode="approximate", checks=0).error is None


@pytest.mark.parametrize("target", [None, ("conv5", 1), ("conv3", 2)])
def test_every_position_within_the_reported_error(target, rng):
    """With every position checked the reported largest error is the map's:
    naive agrees with the approximate map within it everywhere, and the
    exact reference (the head's engine run on to the target, or naive for a
    unit the fused plan folds away) is naive's value to float rounding."""
    m = ce.load(tail_net(rng))
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    r = ce.occlusion(m, x, patch=5, stride=3, mode="approximate", budget=0.6, checks=1000, target=target)
    naive = ce.occlusion(m, x, patch=5, stride=3, mode="naive", target=target)
    err = r.error
    assert r.timings["approximate"]["scheme"] == "linearised tail"
    assert err["sampled_positions"] == r.heatmap.size and err["reference"] in ("incremental", "naive")
    assert str(err["sampled_positions"]) in err["estimated"] and err["reference"] in err["estimated"]
    diff = np.abs(r.heatmap - naive.heatmap)
    scale = float(np.abs(naive.heatmap).max())
    assert scale > 1e-3 and diff.max() > 1e-7 * scale          # approximate: not exact here
    # float rounding apart: the baseline comes from the plain run, naive's from the fused one
    assert err["max_abs_error"] == pytest.approx(diff.max(), abs=1e-5 * scale)
    assert err["mean_abs_error"] == pytest.approx(diff.mean(), abs=1e-5 * scale)


def test_head_cap_bounds_the_windows(rng):
    """The head's windows (Krypton's projective-field threshold, per map) are
    at most max(cells, share x map) around the patch; a cap as wide as every
    map changes nothing; the capped head costs less and stays close."""
    m = ce.load(tail_net(rng, size=(41, 37)))
    x = rng.standard_normal((1, 3, 41, 37)).astype(np.float32)
    from cnnengine.ops.base import Box
    boxes = [Box(y, y + 5, c, c + 5) for y in range(0, 37, 4) for c in range(0, 33, 4)]
    fill_at = _filler(x, "mean", 5)
    runs = {}
    for cap in (None, (1.0, 1), (0.6, 3)):
        scorer = _Scorer(m, x, None, "sum")
        baseline = scorer.baseline()
        run = approximate.Linearised(scorer, boxes, cut="r3", head_cap=cap)
        runs[cap] = (run, baseline - run(boxes, fill_at))
    (loose, a), (_, b), (tight, c) = runs[None], runs[(1.0, 1)], runs[(0.6, 3)]
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max() and tight.share < loose.share
    state = tight.engine.run(tight.input, [(box, fill_at(box)) for box in boxes])
    shape = tight.engine.plan.shapes[tight.value]
    sides = [(cbox.rows, cbox.cols) for cbox, _ in state[tight.value].values()]
    assert max(r for r, _ in sides) == max(3, int(np.ceil(0.6 * shape[2])))
    assert max(c for _, c in sides) <= max(3, int(np.ceil(0.6 * shape[3])))
    # measured 0.89-0.93 to naive over seeds 0-2 (uncapped 0.96-0.99; a 0.3 cap 0.35-0.47 on maps this small)
    assert _spearman(c, a) >= 0.75


def test_no_cut_within_the_budget_is_exact(rng):
    m = ce.load(tail_net(rng))
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    r = ce.occlusion(m, x, patch=5, stride=3, mode="approximate", budget=1e-6, checks=4)
    assert r.timings["approximate"]["scheme"].startswith("exact")
    naive = ce.occlusion(m, x, patch=5, stride=3, mode="naive")
    assert np.abs(r.heatmap - naive.heatmap).max() <= 1e-5 and r.error["max_abs_error"] <= 1e-5


def lrn_net(rng):
    """conv -> relu -> LRN (no backward rule here) -> conv -> relu -> GAP -> Gemm."""
    N = helper.make_node
    nodes = [N("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]), N("Relu", ["c1"], ["r1"], name="relu1"),
             N("LRN", ["r1"], ["n1"], name="lrn", size=3),
             N("Conv", ["n1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]), N("Relu", ["c2"], ["r2"], name="relu2"),
             N("GlobalAveragePool", ["r2"], ["gp"], name="gap"), N("Flatten", ["gp"], ["f"], name="flatten"),
             N("Gemm", ["f", "fw"], ["y"], name="fc", transB=1)]
    inits = [init(rng, "w1", 6, 3, 3, 3), init(rng, "w2", 6, 6, 3, 3), init(rng, "fw", 10, 6, scale=1.0)]
    g = helper.make_graph(nodes, "lrn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 14, 14])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_a_step_without_a_backward_rule_moves_the_cut(rng):
    """Cuts before the LRN cannot be linearised from: the latest cut within the
    budget after it, else the exact path."""
    m = ce.load(lrn_net(rng))
    x = rng.standard_normal((1, 3, 14, 14)).astype(np.float32)
    naive = ce.occlusion(m, x, patch=4, stride=2, mode="naive")
    r = ce.occlusion(m, x, patch=4, stride=2, mode="approximate", budget=1.0, checks=4)
    info = r.timings["approximate"]
    assert info["scheme"] == "linearised tail" and info["cut"] in ("n1", "c2", "r2", "gp")
    assert _spearman(r.heatmap.ravel(), naive.heatmap.ravel()) >= 0.85
    assert 0 < info["exact_share"] <= 1
    plan = m._exec_unfused.plan_for({"x": x})
    small = ce.occlusion(m, x, patch=4, stride=2, mode="approximate", budget=0.02, checks=4)
    assert small.timings["approximate"]["scheme"].startswith("exact")
    assert np.abs(small.heatmap - naive.heatmap).max() <= 1e-5
    values = m._exec_unfused.run({"x": x}, keep=[o for st in plan.steps for o in st.node.outputs])
    with pytest.raises(vjp.NotLinearisable, match="LRN"):
        vjp.backward(plan, values, "y", np.ones((1, 10)), "r1")


def test_progress_cancel_and_unit_targets(rng):
    m = ce.load(tail_net(rng))
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    seen = []
    r = ce.occlusion(m, x, patch=5, stride=2, batch=6, mode="approximate", budget=0.6,
                     progress=lambda done, total, heat: seen.append(done) or done < 12)
    assert r.cancelled and seen == [6, 12] and np.isfinite(r.heatmap).sum() == 12 and r.error is None
    stop = threading.Event()
    stop.set()
    r = ce.occlusion(m, x, patch=5, stride=2, batch=5, mode="approximate", budget=0.6, cancel=stop)
    assert r.cancelled and np.isfinite(r.heatmap).sum() == 5
    r = ce.occlusion(m, x, patch=5, stride=2, mode="approximate", budget=0.6, target=("conv5", 1), checks=6)
    naive = ce.occlusion(m, x, patch=5, stride=2, mode="naive", target=("conv5", 1))
    assert r.target == ("conv5", 1) and r.baseline_prob == pytest.approx(naive.baseline_prob, rel=1e-5)
    assert _spearman(r.heatmap.ravel(), naive.heatmap.ravel()) >= 0.85


def test_krypton_cap(rng):
    m = ce.load(tail_net(rng))
    x = rng.standard_normal((1, 3, 19, 17)).astype(np.float32)
    naive = ce.occlusion(m, x, patch=4, stride=3, mode="naive")
    capped = ce.occlusion(m, x, patch=4, stride=3, mode="approximate", cap=0.3, checks=30)
    assert capped.timings["approximate"] == {"scheme": "cap", "cap": 0.3}
    assert capped.error["max_abs_error"] == pytest.approx(np.abs(capped.heatmap - naive.heatmap).max(), abs=1e-6)
    full = ce.occlusion(m, x, patch=4, stride=3, mode="approximate", cap=1.0)
    assert np.abs(full.heatmap - naive.heatmap).max() <= 1e-5


@pytest.mark.parametrize("kw,match", [({"budget": 0}, "budget"), ({"budget": 2.0}, "budget"),
                                      ({"checks": -1}, "checks"), ({"cap": 0}, "cap")])
def test_bad_approximate_arguments(kw, match, rng):
    m = ce.load(tail_net(rng))
    with pytest.raises(ce.Error, match=match):
        ce.occlusion(m, np.zeros((1, 3, 19, 17), np.float32), mode="approximate", **kw)
