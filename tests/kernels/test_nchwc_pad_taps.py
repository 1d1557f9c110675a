"""Blocked convs on small padded maps, whose taps wholly in the padding the
driver skips (tile lists on planes up to 35 pixels wide, kernel rows in
the row kernels): against the scalar NCHW oracle and NumPy (oracle_case),
and whole ONNX graphs against ONNX Runtime."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce
from cnnengine import _kernels as _k
from tests.conftest import assert_close
from tests.kernels.test_nchwc import from_blocked, oracle_case, to_blocked
from tests.runtime.onnx_builders import init, ort_run

pytestmark = pytest.mark.usefixtures("avx2")

# (N, C, H, W, K, kh, kw, stride, pads (t, l, b, r), dilation, groups)
CASES = [
    (2, 19, 1, 1, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # 1x1 map: one tap inside
    (1, 16, 2, 2, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # 2x2: every pixel a corner
    (1, 11, 3, 3, 24, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # 3x3: one interior pixel
    (2, 37, 7, 7, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # ResNet 7x7, quads, batch 2
    (1, 29, 14, 14, 56, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),   # stride 2 14 -> 7, quad + pair
    (1, 13, 17, 17, 40, 1, 7, (1, 1), (0, 3, 0, 3), (1, 1), 1),   # Inception 1x7
    (1, 13, 17, 17, 40, 7, 1, (1, 1), (3, 0, 3, 0), (1, 1), 1),   # ... 7x1
    (1, 23, 8, 8, 48, 3, 3, (1, 1), (2, 0, 1, 3), (1, 1), 1),     # pad > 1, asymmetric
    (1, 17, 9, 9, 32, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 1),     # dilation 2
    (1, 11, 10, 10, 24, 2, 2, (3, 3), (1, 1, 1, 1), (1, 1), 1),   # stride > kernel
    (1, 7, 35, 35, 16, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),    # 5x5 at the widest tiled plane
    (1, 9, 13, 36, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),    # 36 wide: rows, kernel rows skipped
    (1, 3, 6, 6, 8, 7, 7, (1, 1), (4, 4, 4, 4), (1, 1), 1),       # kernel over the map: rows of no taps
    (1, 32, 9, 9, 48, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 2),     # groups of whole blocks
]
ACTS = [(0, 0.0, 0.0), (2, 0.0, 6.0), (7, 0.0, 0.0)]   # none, clip (in the tile), silu (a pass)


@pytest.mark.parametrize("act", ACTS, ids=["none", "clip", "silu"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_padded_small_maps_match_the_oracle(case, act, rng):
    n, c, h, wd, k, kh, kw, stride, pads, dil, groups = case
    x, w, b, res, dims, shape, oracle = oracle_case(rng, n, c, h, wd, k, kh, kw, stride, pads, dil,
                                                    groups, act)
    tol = 1e-5 * np.sqrt(c // groups * kh * kw)
    pk = _k.ConvNCHWc(w.ravel(), b, dims, *act, False, False)
    for threads in (1, 2, 3):
        y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
        pk.run(to_blocked(x).ravel(), to_blocked(res).ravel(), y.ravel(), threads)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        assert_close(from_blocked(y, k), oracle, rtol=tol, what=f"{case} {act} {threads}")


def _inception_like(rng, c=13, k=19):
    """1x7, 7x1, 3x3 s2, a dilated 3x3 with pad 2 and a 5x5, ReLU and a residual add."""
    inits = [init(rng, "w1", k, c, 1, 7), init(rng, "b1", k), init(rng, "w2", k, k, 7, 1),
             init(rng, "w3", k, k, 3, 3), init(rng, "b3", k), init(rng, "w4", k, k, 3, 3),
             init(rng, "w5", 23, k, 5, 5), init(rng, "b5", 23)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[0, 3, 0, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[3, 0, 3, 0]),
        helper.make_node("Add", ["c2", "r1"], ["s2"]),
        helper.make_node("Relu", ["s2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Conv", ["r3", "w4"], ["c4"], pads=[2, 2, 2, 2], dilations=[2, 2]),
        helper.make_node("Conv", ["c4", "w5", "b5"], ["y"], pads=[2, 2, 2, 2]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 17, 17])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 23, 9, 9])
    g = helper.make_graph(nodes, "inception_like", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_inception_like_graph_equals_onnxruntime(threads, rng):
    if ce.active_isa() == "scalar":
        pytest.skip("no blocked kernels at this level")
    net = _inception_like(rng)
    x = rng.standard_normal((2, 13, 17, 17)).astype(np.float32)
    got = ce.load(net, threads=threads).run(x)
    assert_close(got, ort_run(net, x), rtol=1e-4, atol=1e-4, what="vs onnxruntime")
