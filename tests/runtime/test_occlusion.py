"""Occlusion: incremental (exact, on windows) equals naive (full re-inference)
on networks covering every spatial op kind, SE blocks, residuals and
concats, on bundled models, over image borders, for unit targets; the
approximate mode reports its error; cancel and progress; bad arguments."""
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce

from .onnx_builders import init, residual_net
from .test_regions import zoo_of_ops


def se_net(rng):
    """conv -> squeeze-excitation (GAP, 1x1, ReLU, 1x1, Sigmoid, Mul) -> 1x1 conv
    -> depthwise -> GAP -> Gemm: the SE gate fuses into the 1x1 conv after it."""
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["a"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2]),
        N("Relu", ["a"], ["a_r"], name="stem_relu"),
        N("GlobalAveragePool", ["a_r"], ["sq"], name="squeeze"),
        N("Conv", ["sq", "wr", "br"], ["r"], name="reduce"),
        N("Relu", ["r"], ["r_r"], name="reduce_relu"),
        N("Conv", ["r_r", "we", "be"], ["e"], name="expand"),
        N("Sigmoid", ["e"], ["g"], name="gate"),
        N("Mul", ["a_r", "g"], ["s"], name="excite"),
        N("Conv", ["s", "wp"], ["p"], name="project"),
        N("Conv", ["p", "wd"], ["d"], name="depthwise", group=16, pads=[1, 1, 1, 1]),
        N("Add", ["d", "p"], ["res"], name="residual"),
        N("GlobalAveragePool", ["res"], ["gp"], name="gap"),
        N("Flatten", ["gp"], ["f"], name="flatten"),
        N("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = [init(rng, "w1", 16, 3, 3, 3), init(rng, "b1", 16), init(rng, "wr", 4, 16, 1, 1),
             init(rng, "br", 4), init(rng, "we", 16, 4, 1, 1), init(rng, "be", 16),
             init(rng, "wp", 16, 16, 1, 1), init(rng, "wd", 16, 1, 3, 3), init(rng, "fw", 10, 16),
             init(rng, "fb", 10)]
    g = helper.make_graph(nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 23])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _both(model, x, **kw):
    naive = ce.occlusion(model, x, mode="naive", **kw)
    inc = ce.occlusion(model, x, mode="incremental", **kw)
    assert inc.heatmap.shape == naive.heatmap.shape and np.isfinite(inc.heatmap).all()
    assert inc.target == naive.target and inc.baseline_prob == pytest.approx(naive.baseline_prob, abs=1e-6)
    return naive, inc


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_incremental_equals_naive_on_every_op_kind(backend, rng):
    # zoo_of_ops: convs of odd geometry, BN, pools with ceil mode and padding,
    # LRN, residual Add, broadcast Mul, Concat, Pad, Resize, a global head;
    # patch 5 stride 3 on 17x13 puts patches on every border
    net = zoo_of_ops(rng, batch=1)
    x = rng.standard_normal((1, 5, 17, 13)).astype(np.float32)
    m = ce.load(net, backend=backend)
    naive, inc = _both(m, x, patch=5, stride=3)
    assert naive.heatmap.shape == (5, 3)
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5
    assert np.abs(naive.heatmap).max() > 1e-4        # the patch matters: the check can fail


@pytest.mark.parametrize("whole_above,batch,share", [(1.0, 7, 0.85), (0.0, 5, 0.0), (0.3, 3, 1.0), (1.0, 9, 1.0),
                                                     (1.0, 4, 0.0)])
def test_incremental_paths_equal_naive(whole_above, batch, share, rng, monkeypatch):
    """Each route a step can take: windows only (batched convs reading zeros
    past the map: patches on every border of a non-square image, a batch of
    7 straddling rows), the whole batched run with windows cut from it, and
    a mix; windows grown to one size per step (share 0), batched by their
    exact sizes (share 1) or between; on the op zoo and on the SE/residual
    network."""
    from cnnengine.occlusion import incremental
    monkeypatch.setattr(incremental, "WHOLE_ABOVE", whole_above)
    monkeypatch.setattr(incremental, "SHARE_WASTE", share)
    net = ce.load(zoo_of_ops(rng, batch=1))
    x = rng.standard_normal((1, 5, 17, 13)).astype(np.float32)
    naive, inc = _both(net, x, patch=4, stride=3, batch=batch)
    assert naive.heatmap.shape == (5, 4)
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5
    se = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    naive, inc = _both(se, x, patch=5, stride=2, batch=batch, fill="zero")
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5
    assert np.abs(naive.heatmap).max() > 1e-4


def test_common_sizes_group_windows_by_size(monkeypatch):
    """Windows grow only to a size at most 1/share of their area, inside the
    map, each containing its exact window; share 0: one size for all."""
    from cnnengine.occlusion import incremental
    from cnnengine.ops.base import Box
    shape = (1, 8, 14, 14)
    exact = {0: Box(0, 13, 0, 7), 1: Box(0, 13, 0, 10), 2: Box(0, 13, 2, 12), 3: Box(0, 13, 4, 14),
             4: Box(0, 13, 9, 14), 5: Box(1, 2, 13, 14)}
    for share, sizes in ((0.85, {(13, 10), (13, 7), (13, 5), (1, 1)}), (1.0, {(13, 10), (13, 7), (13, 5), (1, 1)}),
                         (0.5, {(13, 10), (1, 1)}), (0.0, {(13, 10)})):
        monkeypatch.setattr(incremental, "SHARE_WASTE", share)
        grown = incremental._common_sizes(exact, shape)
        assert {(g.rows, g.cols) for g in grown.values()} == sizes, share
        for b, g in grown.items():
            e = exact[b]
            assert g.y0 <= e.y0 and g.x0 <= e.x0 and g.y1 >= e.y1 and g.x1 >= e.x1
            assert 0 <= g.y0 and g.y1 <= 14 and 0 <= g.x0 and g.x1 <= 14
            assert e.rows * e.cols >= share * g.rows * g.cols


def test_incremental_equals_naive_with_se_blocks_and_residuals(rng):
    m = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    for fill in ("mean", "zero", 0.5, "blur"):
        naive, inc = _both(m, x, patch=6, stride=4, fill=fill)
        assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5, fill
    naive, inc = _both(ce.load(residual_net(rng)), rng.standard_normal((1, 3, 12, 12)).astype(np.float32),
                       patch=3, stride=2, target=7)
    assert inc.target == 7 and np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5


@pytest.mark.parametrize("layer,reduce", [("project", "sum"), ("depthwise", "max"), ("stem", "sum")])
def test_unit_targets(layer, reduce, rng):
    """A unit target: one channel's summed or maximum activation, as the
    source graph defines the layer (the stem conv before its fused ReLU)."""
    m = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    naive, inc = _both(m, x, patch=4, stride=5, target=(layer, 11), reduce=reduce)
    assert inc.target == (layer, 11)
    _, acts = m.run(x, capture=[layer])
    ref = acts[layer][0, 11]
    assert naive.baseline_prob == pytest.approx(float(ref.sum() if reduce == "sum" else ref.max()), rel=1e-5)
    scale = max(1.0, float(np.abs(naive.heatmap).max()))
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5 * scale


def test_bundled_models(rng):
    lenet = ce.load("lenet5")
    x = rng.standard_normal(tuple(d if isinstance(d, int) else 1 for d in lenet.inputs[0].shape)).astype(np.float32)
    naive, inc = _both(lenet, x, patch=6, stride=4)
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5
    eff = ce.load("efficientnet_lite0")
    from cnnengine.preprocess import load_image
    img = load_image(ce.sample_image(), eff.preprocess)
    naive, inc = _both(eff, img, patch=48, stride=88)       # 3 x 3 positions
    assert naive.heatmap.shape == (3, 3)
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5


def test_approximate_reports_its_error(rng):
    m = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    naive = ce.occlusion(m, x, patch=4, stride=2, mode="naive")
    approx = ce.occlusion(m, x, patch=4, stride=2, mode="approximate", cap=0.3)
    err = approx.error
    assert err["sampled_positions"] > 0
    exact_on_sample = np.abs(approx.heatmap - naive.heatmap).ravel()
    assert err["max_abs_error"] <= exact_on_sample.max() + 1e-6
    full = ce.occlusion(m, x, patch=4, stride=2, mode="approximate", cap=1.0)
    assert np.abs(full.heatmap - naive.heatmap).max() <= 1e-5      # no cap: exact


def test_progress_and_cancel(rng):
    m = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    seen = []
    r = ce.occlusion(m, x, patch=4, stride=2, batch=5, progress=lambda done, total, heat: seen.append(done) or
                     done < 10)
    assert r.cancelled and seen == [5, 10] and np.isfinite(r.heatmap).sum() == 10
    stop = threading.Event()
    stop.set()
    r = ce.occlusion(m, x, patch=4, stride=2, batch=3, mode="naive", cancel=stop)
    assert r.cancelled and np.isfinite(r.heatmap).sum() == 3
    full = ce.occlusion(m, x, patch=4, stride=2, batch=7, progress=lambda d, t, h: None)
    assert not full.cancelled and np.isfinite(full.heatmap).all()


def test_batches_in_parallel_equal_one_at_a_time(rng):
    # threads=3: up to three batches (one per core) run at once, one kernel
    # thread each (occlusion._in_order); the heatmap is the same as one batch at a time,
    # progress still comes in order, and a cancel keeps exactly the batches
    # reported (those already running are waited for, then dropped)
    m = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    one = ce.occlusion(m, x, patch=4, stride=2, batch=4, threads=1)
    seen = []
    par = ce.occlusion(m, x, patch=4, stride=2, batch=4, threads=3,
                       progress=lambda done, total, heat: seen.append((done, int(np.isfinite(heat).sum()))))
    assert one.timings["workers"] == 1 and par.timings["workers"] == min(3, ce.num_cores())
    assert np.array_equal(one.heatmap, par.heatmap)
    total = one.heatmap.size
    assert seen == [(min(d, total), min(d, total)) for d in range(4, total + 4, 4)]
    r = ce.occlusion(m, x, patch=4, stride=2, batch=4, threads=3, progress=lambda done, total, heat: done < 8)
    assert r.cancelled and np.isfinite(r.heatmap).sum() == 8
    assert np.array_equal(r.heatmap.ravel()[:8], one.heatmap.ravel()[:8])


@pytest.mark.parametrize("kw,match", [
    ({"patch": 0}, "patch"), ({"patch": 30}, "larger than the image"), ({"stride": -1}, "stride"),
    ({"mode": "fast"}, "unknown mode"), ({"fill": "purple"}, "fill"), ({"fill": float("nan")}, "fill"),
    ({"target": 99}, "out of range"), ({"target": ("nope", 0)}, "no layer named"),
    ({"target": ("stem", 999)}, "channel 999"), ({"reduce": "mean"}, "reduce"), ({"batch": 0}, "batch")])
def test_bad_arguments_are_clean_errors(kw, match, rng):
    m = ce.load(se_net(rng))
    x = rng.standard_normal((1, 3, 20, 23)).astype(np.float32)
    with pytest.raises(ce.Error, match=match):
        ce.occlusion(m, x, **kw)
    with pytest.raises(ce.ShapeError):
        ce.occlusion(m, x[0])
