"""Blocked Winograd F(2x2, 3x3) (csrc/ops/winograd2.c): the AVX2 and AVX-512
runs against the scalar F(2x2) oracle (cnn_winograd2_nchwc_run_ref), the
scalar direct NCHW oracle and a float64 NumPy reference, on odd shapes; the
packer's choice between direct, F(4x4) and F(2x2); a model against ONNX
Runtime."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce
from cnnengine import _kernels as _k
from tests.conftest import assert_close
from tests.kernels._conv_ref import act_np, conv2d_np, conv_dims as _dims
from tests.kernels.test_nchwc import ACTS, from_blocked, to_blocked, wino_case
from tests.runtime.onnx_builders import init, ort_run

pytestmark = pytest.mark.usefixtures("avx2")

ACT_NAMES = {0: "none", 1: "relu", 2: "clip", 4: "elu", 7: "silu"}

# 3x3 stride-1 convs: (N, C, H, W, K, pads (t, l, b, r))
CASES = [
    (1, 8, 6, 6, 8, (1, 1, 1, 1)),          # whole blocks
    (2, 3, 7, 9, 5, (1, 1, 1, 1)),          # partial blocks, batch, odd width: half edge tiles
    (3, 13, 11, 5, 17, (0, 2, 1, 0)),       # asymmetric padding, prime channels
    (1, 24, 1, 1, 40, (1, 1, 1, 1)),        # 1x1 map: one tile, one output
    (2, 29, 2, 2, 31, (1, 1, 1, 1)),        # 2x2 map, prime channels, batch
    (1, 37, 5, 5, 23, (1, 1, 1, 1)),        # 5x5 map
    (1, 61, 7, 7, 53, (1, 1, 1, 1)),        # 7x7 map (ResNet layer4's plane)
    (2, 20, 7, 7, 24, (2, 1, 0, 2)),        # pad > 1, odd last block of 8 (panel 16 + 8)
    (1, 16, 3, 30, 24, (2, 1, 0, 2)),       # wide and short
    (2, 64, 28, 28, 72, (1, 1, 1, 1)),      # several superblocks and channel ranges
    (2, 40, 9, 14, 8, (1, 1, 1, 1)),        # one output block: 2 threads split the tiles
]


ALL_ACTS = [(1, 0.0, 0.0)] + ACTS     # each case one of them, in turn


@pytest.mark.parametrize("i", range(len(CASES)), ids=lambda i: "x".join(map(str, CASES[i][:5])))
def test_f2x3_matches_oracles(i, rng):
    """Forced F(2x2, 3x3) with bias, residual and activation against the
    scalar F(2x2) run, the scalar direct conv and float64 NumPy. Bound: max
    error / sqrt(9C) (the outputs' scale) under 1e-5; F(4x4, 3x3) is held
    to 1e-4 (its transforms scale by up to 8 and 5, F(2x2)'s by 2)."""
    case, act = CASES[i], ALL_ACTS[i % len(ALL_ACTS)]
    n, c, h, wd, k, pads = case
    x, w, b, res, dims, shape, direct = wino_case(case, act, rng)
    exact = act_np(conv2d_np(x, w, b, (1, 1), pads, (1, 1), 1) + res, ACT_NAMES[act[0]],
                   act[1], act[2])
    kp = (k + 7) // 8 * 8
    bp = np.zeros(kp, np.float32)
    bp[:k] = b
    oracle = np.full((n, kp // 8, shape[2], shape[3], 8), np.nan, np.float32)
    _k.winograd2_nchwc_ref(to_blocked(x).ravel(), _k.winograd2_pack_nchwc(w.ravel(), dims), bp,
                           to_blocked(res).ravel(), oracle.ravel(), dims, *act, 2)
    pk = _k.ConvNCHWc(w.ravel(), b, dims, *act, False, "f2x3")
    assert pk.algo == "winograd_f2x3"
    scale = np.sqrt(c * 9)
    assert np.max(np.abs(from_blocked(oracle, k) - exact)) / scale < 1e-5
    assert np.max(np.abs(direct - exact)) / scale < 1e-5
    for threads in (1, 2, 3, 8):
        y = np.full_like(oracle, np.nan)
        pk.run(to_blocked(x).ravel(), to_blocked(res).ravel(), y.ravel(), threads)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        # the padding lanes (outputs past K) as the oracle computes them
        np.testing.assert_allclose(y, oracle, rtol=0, atol=1e-5 * scale)
        err = np.max(np.abs(from_blocked(y, k) - exact)) / scale
        assert err < 1e-5, (case, act, threads, err)


def test_f2x3_is_more_accurate_than_f4x3(rng):
    """On a 512-channel 7x7 conv F(2x2)'s error stays well below F(4x4)'s."""
    x = rng.standard_normal((1, 512, 7, 7)).astype(np.float32)
    w = rng.standard_normal((64, 512, 3, 3)).astype(np.float32)
    dims, shape = _dims(x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    exact = conv2d_np(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    errs = {}
    for m in (True, "f2x3"):
        pk = _k.ConvNCHWc(w.ravel(), None, dims, 0, 0.0, 0.0, False, m)
        y = np.full((1, 8, 7, 7, 8), np.nan, np.float32)
        pk.run(to_blocked(x).ravel(), None, y.ravel(), 1)
        errs[pk.algo] = np.max(np.abs(from_blocked(y, 64) - exact))
    assert errs["winograd_f2x3"] < 0.5 * errs["winograd_f4x3"], errs


def test_the_packer_chooses_f2x3_for_small_maps_with_many_channels():
    def algo(c, k, h, n=1, winograd=None):
        w = np.zeros(k * c * 9, np.float32)
        dims = (n, c, h, h, k, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, h, h)
        return _k.ConvNCHWc(w, None, dims, 0, 0.0, 0.0, False, winograd).algo
    assert algo(512, 512, 7) == "winograd_f2x3"       # ResNet layer4
    assert algo(1024, 1024, 7) == "winograd_f2x3"     # Wide-ResNet-50-2 layer4
    assert algo(448, 384, 8) == "winograd_f2x3"       # Inception-v3
    assert algo(256, 256, 7) == "winograd_f2x3"
    assert algo(512, 512, 14) == "winograd_f2x3"      # as fast cold, 4/9 the memory
    assert algo(512, 512, 28) == "winograd_f4x3"      # enough 4x4 tiles
    assert algo(512, 512, 7, n=4) == "winograd_f4x3"
    assert algo(512, 512, 5) == "direct"              # too few outputs per tile
    assert algo(128, 32, 7) == "direct"               # DenseNet: 4 tiles, U arrives cold
    assert algo(128, 128, 7) == "direct"              # 4 tiles: F(4x4)'s U arrives cold
    assert algo(512, 512, 7, winograd=False) == "direct"
    assert algo(512, 512, 7, winograd=True) == "winograd_f4x3"
    w = np.zeros(8 * 8 * 9, np.float32)               # strided: never Winograd
    dims = (1, 8, 9, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 5, 5)
    assert _k.ConvNCHWc(w, None, dims, 0, 0.0, 0.0, False, "f2x3").algo == "direct"


def test_resnet_layer4_block_matches_onnxruntime(rng):
    """A bottleneck's 3x3 (256 -> 256 @7x7, the packer's F(2x2) choice)
    between blocked 1x1s, residual Add and Relu fused, against ONNX
    Runtime."""
    c, hw = 256, 7
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="pw1"),
             helper.make_node("Relu", ["a"], ["r"], name="r1"),
             helper.make_node("Conv", ["r", "w", "b"], ["c"], name="c3", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "r"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="r2")]
    g = helper.make_graph(nodes, "w2", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        [1, 64, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, hw, hw])],
                          [init(rng, "w", c, c, 3, 3, scale=0.02), init(rng, "b", c),
                           init(rng, "w1", c, 64, 1, 1, scale=0.1)])
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    dims = (1, c, hw, hw, c, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, hw, hw)
    assert _k.ConvNCHWc(np.zeros(c * c * 9, np.float32), None, dims, 1).algo == "winograd_f2x3"
    x = rng.standard_normal((1, 64, hw, hw)).astype(np.float32)
    assert_close(ce.load(net).run(x), ort_run(net, x), rtol=1e-4)
