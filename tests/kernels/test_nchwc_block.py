"""Streamed inverted-residual blocks (cnn.BlockNCHWc, csrc/ops/nchwc_block.c):
the fused kernel against the three unfused blocked convs, its scalar
oracle and a float64 NumPy reference on odd shapes; whole models with the
fusion on and off against each other and ONNX Runtime; captures, region
runs and the switch."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce
from cnnengine import _kernels as K
from cnnengine.errors import Error, ShapeError, UnsupportedOpError
from cnnengine.functional._common import ACTIVATIONS
from cnnengine.ops.base import FULL, Box
from tests.conftest import assert_close
from tests.kernels._conv_ref import conv2d_np
from tests.runtime.onnx_builders import init, ort_run


def to_blocked(x):
    n, c, h, w = x.shape
    cb = (c + 7) // 8
    y = np.zeros((n, cb * 8, h, w), np.float32)
    y[:, :c] = x
    return np.ascontiguousarray(y.reshape(n, cb, 8, h, w).transpose(0, 1, 3, 4, 2))


def from_blocked(y, c):
    n, cb, h, w, _ = y.shape
    return y.transpose(0, 1, 4, 2, 3).reshape(n, cb * 8, h, w)[:, :c]


ACT = {"clip": (0.0, 6.0), "hardswish": (0.0, 0.0), "silu": (0.0, 0.0), "relu": (0.0, 0.0), "": (0.0, 0.0)}


def _pack(w, b, dims, act):
    a, bt = ACT[act]
    return K.ConvNCHWc(w.reshape(-1), b, dims, ACTIVATIONS[act] if act else 0, a, bt, False)


class Block:
    """Random weights of a block: expand (ratio > 1), k x k depthwise of stride s, project."""

    def __init__(self, rng, n, c, ratio, k, s, h, w, out, act="clip", project=True):
        self.n, self.c, self.h, self.w, self.k, self.s, self.act = n, c, h, w, k, s, act
        self.e = c * ratio
        self.pad = k // 2
        self.oh = (h + 2 * self.pad - k) // s + 1
        self.ow = (w + 2 * self.pad - k) // s + 1
        e, p = self.e, self.pad
        self.we = (rng.standard_normal((e, c, 1, 1)) * 0.4).astype(np.float32) if ratio > 1 else None
        self.be = rng.standard_normal(e).astype(np.float32)
        self.wd = (rng.standard_normal((e, 1, k, k)) * 0.4).astype(np.float32)
        self.bd = rng.standard_normal(e).astype(np.float32)
        self.out = out if project else None
        if project:
            self.wp = (rng.standard_normal((out, e, 1, 1)) * 0.3).astype(np.float32)
            self.bp = rng.standard_normal(out).astype(np.float32)
        self.pe = None if self.we is None else _pack(
            self.we, self.be, (n, c, h, w, e, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, h, w), act)
        self.pd = _pack(self.wd, self.bd, (n, e, h, w, e, k, k, s, s, 1, 1, p, p, p, p, e, self.oh, self.ow), act)
        self.pp = None if not project else _pack(
            self.wp, self.bp, (n, e, self.oh, self.ow, out, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, self.oh, self.ow), "")

    def numpy(self, x, res):
        """float64 from the definition: (y, dw output)."""
        t = x
        if self.we is not None:
            t = conv2d_np(t, self.we, self.be, act=self.act or None, alpha=ACT[self.act][0], beta=ACT[self.act][1])
        p = self.pad
        d = conv2d_np(t, self.wd, self.bd, (self.s, self.s), (p, p, p, p), groups=self.e,
                      act=self.act or None, alpha=ACT[self.act][0], beta=ACT[self.act][1])
        if self.out is None:
            return d, d
        return conv2d_np(d, self.wp, self.bp, residual=res), d

    def unfused(self, xb, rb, threads):
        n = xb.shape[0]
        eb = (self.e + 7) // 8
        t = xb
        if self.pe is not None:
            t = np.zeros((n, eb, self.h, self.w, 8), np.float32)
            self.pe.run(xb, None, t, threads)
        d = np.zeros((n, eb, self.oh, self.ow, 8), np.float32)
        self.pd.run(t, None, d, threads)
        if self.pp is None:
            return d
        y = np.zeros((n, (self.out + 7) // 8, self.oh, self.ow, 8), np.float32)
        self.pp.run(d, rb, y, threads)
        return y

    def fused(self, xb, rb, threads, ref=False, tile_rows=0, pooled=False):
        n = xb.shape[0]
        k = self.out if self.out is not None else self.e
        y = np.full((n, (k + 7) // 8, self.oh, self.ow, 8), np.nan, np.float32)
        pool = np.full((n, (self.e + 7) // 8, 1, 1, 8), np.nan, np.float32) if pooled else None
        K.nchwc_block(self.pe, self.pd, self.pp, xb, rb, y, pool, threads, ref, tile_rows)
        return y, pool


# (N, C, ratio, k, stride, H, W, out, residual, act)
CASES = [
    (1, 7, 3, 3, 1, 9, 11, 7, True, "clip"),        # prime channels, residual
    (2, 13, 6, 3, 2, 15, 13, 17, False, "clip"),    # batch 2, stride 2, odd map
    (1, 5, 6, 5, 1, 10, 7, 5, True, "hardswish"),   # 5x5
    (1, 11, 3, 5, 2, 11, 9, 19, False, "silu"),     # exp-based activation: a pass per row
    (1, 3, 6, 7, 1, 8, 13, 3, True, "relu"),        # 7x7
    (1, 16, 1, 3, 1, 12, 10, 8, False, "clip"),     # ratio 1: no expand (dw -> project)
    (1, 29, 1, 3, 2, 9, 9, 13, False, "clip"),      # ratio 1, stride 2
    (1, 9, 3, 3, 1, 1, 1, 9, True, "clip"),         # 1x1 map: every tap but the centre padding
    (2, 6, 6, 3, 2, 2, 2, 10, False, "clip"),       # 2x2 map, stride 2
    (1, 8, 6, 5, 2, 2, 3, 8, False, "hardswish"),   # map smaller than the kernel
]


@pytest.mark.parametrize("case", CASES, ids=[f"c{c[1]}r{c[2]}k{c[3]}s{c[4]}_{c[5]}x{c[6]}" for c in CASES])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_block_equals_the_three_convs(case, threads, avx2, rng):
    n, c, ratio, k, s, h, w, out, res, act = case
    b = Block(rng, n, c, ratio, k, s, h, w, out, act)
    x = rng.standard_normal((n, c if ratio > 1 else b.e, h, w)).astype(np.float32)
    r = rng.standard_normal((n, out, b.oh, b.ow)).astype(np.float32) if res else None
    xb, rb = to_blocked(x), None if r is None else to_blocked(r)
    want, _ = b.numpy(x, r)
    unf = b.unfused(xb, rb, threads)
    for tile_rows in (0, 1, 2):      # 1 and 2: the window slides over many tiles
        got, _ = b.fused(xb, rb, threads, tile_rows=tile_rows)
        # the same row kernels on the same rows: what the unfused steps store
        np.testing.assert_array_equal(got, unf)
    oracle, _ = b.fused(xb, rb, threads, ref=True)
    assert_close(from_blocked(oracle, out), want, rtol=2e-5, atol=2e-5, what="scalar oracle")
    assert_close(from_blocked(unf, out), want, rtol=2e-5, atol=2e-5, what="fused")
    assert_close(unf, oracle, rtol=2e-5, atol=2e-5, what="SIMD vs scalar")


@pytest.mark.parametrize("ratio,k,s,h,w", [(6, 3, 2, 13, 11), (3, 5, 1, 9, 14), (6, 3, 1, 1, 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_pooled_block_ends_at_the_depthwise_with_its_plane_means(ratio, k, s, h, w, threads, avx2, rng):
    n, c = 2, 11
    b = Block(rng, n, c, ratio, k, s, h, w, None, "hardswish", project=False)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    xb = to_blocked(x)
    want, _ = b.numpy(x, None)
    for tile_rows in (0, 1, 3):
        y, pool = b.fused(xb, None, threads, tile_rows=tile_rows, pooled=True)
        np.testing.assert_array_equal(y, b.unfused(xb, None, threads))
        assert_close(from_blocked(pool, b.e)[:, :, 0, 0], want.mean(axis=(2, 3)), rtol=1e-5, atol=1e-5,
                     what="pooled")
    y, pool = b.fused(xb, None, threads, ref=True, pooled=True)
    assert_close(from_blocked(y, b.e), want, rtol=2e-5, atol=2e-5, what="oracle")
    assert_close(from_blocked(pool, b.e)[:, :, 0, 0], want.mean(axis=(2, 3)), rtol=1e-5, atol=1e-5)


def test_packs_of_a_higher_level_run_on_a_lower_one(rng):
    if ce.detected_isa() != "avx512":
        pytest.skip("needs AVX-512 packs (block pairs)")
    before = ce.active_isa()
    ce.set_isa("avx512")
    try:
        b = Block(rng, 2, 13, 6, 3, 2, 9, 10, 11)
        x = rng.standard_normal((2, 13, 9, 10)).astype(np.float32)
        want, _ = b.numpy(x, None)
        ce.set_isa("avx2")        # pair packs on a level without them: the scalar run
        got, _ = b.fused(to_blocked(x), None, 2)
        assert_close(from_blocked(got, 11), want, rtol=2e-5, atol=2e-5)
    finally:
        ce.set_isa(before)


def test_bad_blocks_raise_errors_naming_the_problem(avx2, rng):
    b = Block(rng, 1, 8, 3, 3, 1, 6, 6, 8)
    other = Block(rng, 1, 8, 2, 3, 1, 6, 6, 8)      # 16 expanded channels, not 24
    xb = to_blocked(rng.standard_normal((1, 8, 6, 6)).astype(np.float32))
    y = np.zeros((1, 1, 6, 6, 8), np.float32)
    with pytest.raises(ShapeError):
        K.nchwc_block(b.pe, other.pd, b.pp, xb, None, y, None, 1)
    with pytest.raises(UnsupportedOpError):       # a 3x3 is no expand
        K.nchwc_block(b.pd, b.pd, b.pp, to_blocked(np.zeros((1, 24, 6, 6), np.float32)), None, y, None, 1)
    big = np.zeros((1, 3, 6, 6, 8), np.float32)
    with pytest.raises(Error):                    # a residual needs the projection
        K.nchwc_block(b.pe, b.pd, None, xb, big, big.copy(), None, 1)
    with pytest.raises(ShapeError):
        K.nchwc_block(b.pe, b.pd, b.pp, np.ascontiguousarray(xb[:, :, :5]), None, y, None, 1)


# ------------------------------------------------------------------ models

def _conv(nodes, inits, rng, name, x, cin, cout, k=1, s=1, group=1, act="clip"):
    inits += [init(rng, f"{name}.w", cout, cin // group, k, k), init(rng, f"{name}.b", cout)]
    p = k // 2
    nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.c"], name=name,
                                  kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], group=group))
    y = f"{name}.c"
    if act == "clip":
        nodes.append(helper.make_node("Clip", [y, "zero", "six"], [f"{name}.a"], name=f"{name}.relu6"))
        return f"{name}.a"
    if act == "hardswish":
        nodes.append(helper.make_node("HardSwish", [y], [f"{name}.a"], name=f"{name}.hswish"))
        return f"{name}.a"
    return y


def mobilenet_like(rng, h=33, w=29):
    """Stem, a block without expand, stride-1/2 blocks with residuals, an SE block, head."""
    nodes, inits = [], [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
                        helper.make_tensor("six", TensorProto.FLOAT, [], [6.0])]
    t = _conv(nodes, inits, rng, "stem", "x", 3, 16, 3, 2)
    d = _conv(nodes, inits, rng, "b0.dw", t, 16, 16, 3, 1, 16)            # ratio 1
    t = _conv(nodes, inits, rng, "b0.pj", d, 16, 11, act="")
    e = _conv(nodes, inits, rng, "b1.ex", t, 11, 66)                      # ratio 6, prime in/out
    d = _conv(nodes, inits, rng, "b1.dw", e, 66, 66, 3, 1, 66)
    p = _conv(nodes, inits, rng, "b1.pj", d, 66, 11, act="")
    nodes.append(helper.make_node("Add", [p, t], ["b1.out"], name="b1.add"))
    e = _conv(nodes, inits, rng, "b2.ex", "b1.out", 11, 33)               # ratio 3, 5x5 stride 2
    d = _conv(nodes, inits, rng, "b2.dw", e, 33, 33, 5, 2, 33)
    t = _conv(nodes, inits, rng, "b2.pj", d, 33, 13, act="")
    e = _conv(nodes, inits, rng, "b3.ex", t, 13, 39, act="hardswish")      # squeeze-excitation
    d = _conv(nodes, inits, rng, "b3.dw", e, 39, 39, 3, 1, 39, act="hardswish")
    nodes.append(helper.make_node("GlobalAveragePool", [d], ["b3.sq"], name="b3.pool"))
    s1 = _conv(nodes, inits, rng, "b3.fc1", "b3.sq", 39, 8, act="")
    nodes.append(helper.make_node("Relu", [s1], ["b3.r"], name="b3.relu"))
    s2 = _conv(nodes, inits, rng, "b3.fc2", "b3.r", 8, 39, act="")
    nodes.append(helper.make_node("HardSigmoid", [s2], ["b3.g"], name="b3.hsig", alpha=1 / 6, beta=0.5))
    nodes.append(helper.make_node("Mul", [d, "b3.g"], ["b3.se"], name="b3.scale"))
    p = _conv(nodes, inits, rng, "b3.pj", "b3.se", 39, 13, act="")
    nodes.append(helper.make_node("Add", [p, t], ["b3.out"], name="b3.add"))
    nodes.append(helper.make_node("GlobalAveragePool", ["b3.out"], ["gp"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gp"], ["y"], name="flatten"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, h, w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 13])
    g = helper.make_graph(nodes, "mobilenet_like", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])


def _fused_ops(m, x):
    plan = m._exec.plan_for({m.inputs[0].name: x})
    return [st.node for st in plan.steps if st.node.op == "cnn.BlockNCHWc"]


@pytest.fixture
def every_block(monkeypatch):
    """Fuse blocks of any size (the default fuses where the expanded value overflows L2)."""
    monkeypatch.setenv("CNNENGINE_FUSE_BLOCKS", "all")


@pytest.mark.parametrize("threads", [1, 2])
def test_models_equal_with_the_fusion_on_and_off(every_block, monkeypatch, threads, rng):
    if ce.active_isa() == "scalar":
        pytest.skip("no blocked kernels at this level")
    net = mobilenet_like(rng)
    x = rng.standard_normal((2, 3, 33, 29)).astype(np.float32)
    on = ce.load(net, threads=threads)
    blocks = _fused_ops(on, x)
    # b0 dw -> project, b1 and b2 whole blocks, b3 expand -> dw with the squeeze
    assert [(n.params.expand is not None, n.params.project is not None, n.params.dw.pooled) for n in blocks] == \
        [(False, True, False), (True, True, False), (True, True, False), (True, False, True)]
    got = on.run(x)
    monkeypatch.setenv("CNNENGINE_FUSE_BLOCKS", "0")
    off = ce.load(net, threads=threads)
    assert not _fused_ops(off, x)
    # the same kernels but for the squeeze's sums (added in another order)
    assert_close(got, off.run(x), rtol=1e-6, atol=1e-6, what="fused vs unfused")
    assert_close(got, ort_run(net, x), rtol=1e-4, atol=1e-4, what="vs onnxruntime")


def test_default_fuses_only_where_the_expanded_value_overflows_l2(rng):
    net = mobilenet_like(rng)
    x = rng.standard_normal((1, 3, 33, 29)).astype(np.float32)
    assert not _fused_ops(ce.load(net), x)       # these maps are KiBs


def test_captures_of_fused_values_run_the_unfused_plan(every_block, rng):
    net = mobilenet_like(rng)
    x = rng.standard_normal((1, 3, 33, 29)).astype(np.float32)
    m = ce.load(net)
    assert _fused_ops(m, x)
    y, acts = m.run(x, capture=["b1.ex", "b1.dw", "b2.pj", "b3.dw"])
    yr, ref = ce.load(net, backend="reference").run(x, capture=["b1.ex", "b1.dw", "b2.pj", "b3.dw"])
    assert_close(y, yr, rtol=1e-4, atol=1e-4)
    for k in ref:
        assert_close(acts[k], ref[k], rtol=1e-4, atol=1e-4, what=k)


def test_fused_steps_run_on_windows(every_block, rng):
    net = mobilenet_like(rng)
    x = rng.standard_normal((1, 3, 33, 29)).astype(np.float32)
    m = ce.load(net)
    feeds = {"x": x}
    plan = m._exec.plan_for(feeds)
    env = m._exec.run(feeds, keep=[o for st in plan.steps for o in st.node.outputs if o])
    runner = m._exec.regions(feeds)
    checked = 0
    for k, st in enumerate(plan.steps):
        if st.node.op != "cnn.BlockNCHWc" or st.node.params.dw.pooled:
            continue
        out = st.node.outputs[0]
        ins = [None if (not i or i in plan.static) else (env[i], FULL) for i in st.node.inputs]
        oh, ow = plan.shapes[out][2:4]
        got = np.full(env[out].shape, np.nan, np.float32)
        for y0, y1, x0, x1 in [(0, 3, 0, ow), (3, oh, 0, 5), (3, oh, 5, ow)]:
            box = Box(y0, y1, x0, x1)
            got[box.slices()] = runner.run_step(k, ins, box)
        assert_close(got, env[out], atol=1e-5, what=st.node.name)
        assert runner.stats[st.node.name, "whole"] == 0, f"{st.node.name} ran whole"
        checked += 1
    assert checked == 3


def test_occlusion_over_fused_blocks_equals_naive(every_block, rng):
    m = ce.load(mobilenet_like(rng, 21, 19))
    x = rng.standard_normal((1, 3, 21, 19)).astype(np.float32)
    assert _fused_ops(m, x)
    naive = ce.occlusion(m, x, patch=5, stride=4, mode="naive")
    inc = ce.occlusion(m, x, patch=5, stride=4, mode="incremental")
    assert inc.target == naive.target
    assert np.abs(inc.heatmap - naive.heatmap).max() <= 1e-5
    full = ce.occlusion(m, x, patch=5, stride=4, mode="approximate", cap=1.0)
    assert np.abs(full.heatmap - naive.heatmap).max() <= 1e-4
