"""Incremental occlusion's sparse dense layers (occlusion/dense.py): a Gemm or
MatMul after a Flatten computed as the clean output plus the product of the
changed input columns only, against naive re-inference, on small VGG-like networks of odd
shapes: Gemm with and without a (fused) ReLU, bias, transB both ways, alpha
and beta, a MatMul head, a Reshape instead of a Flatten; and the fallback."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce
from cnnengine.occlusion import dense

from .onnx_builders import init

H, W = 29, 37            # -> 7 x 9 cells of 6 channels after two 2x2 pools: 378 features
FEATURES = 6 * 7 * 9


def vgg_like(rng, head="gemm", relu=True, trans_b=True, alpha=1.0, beta=1.0, bias=True, flatten="Flatten"):
    """conv-relu-pool x2, flatten, a dense layer of 20 (the one under test), relu, a dense layer of 10.
    head "matmul" multiplies by w3 as MatMul does (give trans_b=False: w3 is (features, 20))."""
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        N("Relu", ["c1"], ["r1"], name="relu1"),
        N("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        N("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        N("Relu", ["c2"], ["r2"], name="relu2"),
        N("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits = [init(rng, "w1", 8, 3, 3, 3), init(rng, "b1", 8), init(rng, "w2", 6, 8, 3, 3), init(rng, "b2", 6),
             init(rng, "w4", 10, 20), init(rng, "b4", 10)]
    if flatten == "Flatten":
        nodes.append(N("Flatten", ["p2"], ["f"], name="flatten", axis=1))
    else:
        inits.append(numpy_helper.from_array(np.array([-1, FEATURES], np.int64), "shape"))
        nodes.append(N("Reshape", ["p2", "shape"], ["f"], name="flatten"))
    w3 = (rng.standard_normal((20, FEATURES) if trans_b else (FEATURES, 20)) * 0.02).astype(np.float32)
    inits.append(numpy_helper.from_array(w3, "w3"))
    if head == "gemm":
        ins = ["f", "w3"] + (["b3"] if bias else [])
        nodes.append(N("Gemm", ins, ["d"], name="fc1", transB=int(trans_b), alpha=alpha, beta=beta))
    else:
        nodes.append(N("MatMul", ["f", "w3"], ["d"], name="fc1"))
        if bias:
            nodes.append(N("Add", ["d", "b3"], ["d_b"], name="fc1_bias"))
    if bias:
        inits.append(init(rng, "b3", 20))
    last = "d_b" if head != "gemm" and bias else "d"
    if relu:
        nodes.append(N("Relu", [last], ["d_r"], name="fc1_relu"))
        last = "d_r"
    nodes.append(N("Gemm", [last, "w4", "b4"], ["y"], name="fc2", transB=1))
    g = helper.make_graph(nodes, "vgg_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, H, W])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture
def sparse_runs(monkeypatch):
    """Counts the sparse dense products and their positions, so a test knows the route ran."""
    seen = []
    orig = dense.SparseDense.run

    def run(self, y_clean, cols, d, threads=None):
        if self.node.name == "fc1":        # the layer under test (fc2 may take the route too)
            seen.append((d.shape[0], len(cols)))
        return orig(self, y_clean, cols, d, threads)
    monkeypatch.setattr(dense.SparseDense, "run", run)
    return seen


def _check(model, x, sparse_runs, **kw):
    naive = ce.occlusion(model, x, mode="naive", **kw)
    inc = ce.occlusion(model, x, mode="incremental", **kw)
    assert inc.target == naive.target and np.isfinite(inc.heatmap).all()
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5
    assert np.abs(naive.heatmap).max() > 1e-3        # the patch matters: the check can fail
    return naive, inc


@pytest.mark.parametrize("backend,kw", [
    ("cpu", {}), ("cpu", {"relu": False}), ("cpu", {"trans_b": False}),
    ("cpu", {"trans_b": False, "relu": False, "bias": False}), ("cpu", {"alpha": 0.5, "beta": 2.0}),
    ("cpu", {"head": "matmul", "trans_b": False}),
    ("cpu", {"head": "matmul", "trans_b": False, "bias": False, "relu": False}),
    ("cpu", {"flatten": "Reshape", "trans_b": False}),
    ("reference", {"head": "matmul", "trans_b": False})])
def test_sparse_dense_equals_naive(kw, backend, rng, sparse_runs, monkeypatch):
    monkeypatch.setattr(dense, "SPARSE_BELOW", 1.0)       # the sparse route for every batch
    m = ce.load(vgg_like(rng, **kw), backend=backend)
    x = rng.standard_normal((1, 3, H, W)).astype(np.float32)
    _check(m, x, sparse_runs, patch=5, stride=4, fill="zero")    # 7 x 9 positions, on every border
    assert sparse_runs and sum(n for n, _ in sparse_runs) == 63
    # the route multiplied fewer columns than the whole input
    assert sum(c for _, c in sparse_runs) < len(sparse_runs) * FEATURES


def test_sparse_dense_batches_and_fallback(rng, sparse_runs, monkeypatch):
    """Batches straddling rows, the default threshold, and no sparse route at all, all equal naive."""
    m = ce.load(vgg_like(rng))
    x = rng.standard_normal((1, 3, H, W)).astype(np.float32)
    naive, inc = _check(m, x, sparse_runs, patch=6, stride=4, batch=5)
    default_runs = len(sparse_runs)
    monkeypatch.setattr(dense, "SPARSE_BELOW", 0.0)
    sparse_runs.clear()
    off = ce.occlusion(m, x, patch=6, stride=4, batch=5)
    assert not sparse_runs and np.abs(off.heatmap - naive.heatmap).max() <= 1e-5
    monkeypatch.setattr(dense, "SPARSE_BELOW", 1.0)
    on = ce.occlusion(m, x, patch=6, stride=4, batch=5)
    assert len(sparse_runs) >= default_runs > 0 and np.abs(on.heatmap - naive.heatmap).max() <= 1e-5


def test_sparse_dense_logits(rng, monkeypatch):
    """The dense outputs themselves (logits, not only probabilities) equal a full run's."""
    from cnnengine.occlusion.incremental import Incremental
    from cnnengine.ops.base import Box
    monkeypatch.setattr(dense, "SPARSE_BELOW", 1.0)
    m = ce.load(vgg_like(rng, trans_b=False))
    x = rng.standard_normal((1, 3, H, W)).astype(np.float32)
    eng = Incremental(m._exec, {"x": x}, ["y"])
    boxes = [Box(0, 7, 0, 7), Box(22, 29, 30, 37), Box(10, 15, 3, 20)]
    windows = [(b, np.full((1, 3, b.rows, b.cols), 0.7, np.float32)) for b in boxes]
    state = eng.run("x", windows)
    for j, b in enumerate(boxes):
        xo = x.copy()
        xo[b.slices()] = 0.7
        ref = m.run(xo)
        got = eng.gather(state, "y", j, None)
        assert np.abs(got - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max()))
        assert np.abs(ref - m.run(x)).max() > 1e-3


def test_flatten_map_and_cells(rng):
    m = ce.load(vgg_like(rng))
    x = rng.standard_normal((1, 3, H, W)).astype(np.float32)
    plan = m._exec.plan_for({"x": x})
    (flat,) = [st.node for st in plan.steps if st.node.op == "Flatten"]
    assert dense.flatten_map(plan, flat) == (6, 7, 9)
    from cnnengine.ops.base import Box
    assert dense.box_cells(Box(1, 3, 7, 9), (6, 7, 9)) == [16, 17, 25, 26]
