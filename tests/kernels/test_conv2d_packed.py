"""Prepacked conv2d (cnn_conv2d_pack_f32 / run_packed): PackedConv2d against
the scalar oracle cnn_conv2d_f32_ref and the float64 NumPy definition."""
import threading

import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as K
from cnnengine.functional._common import ACTIVATIONS

from ..conftest import assert_close
from ._conv_ref import conv2d_np


def dims_of(n, c, h, w, k, kh, kw, stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0), groups=1):
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    return (n, c, h, w, k, kh, kw, stride[0], stride[1], dil[0], dil[1], *pads, groups, oh, ow)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def oracle(x, w, b, res, dims, act, alpha, beta):
    n, k, oh, ow = dims[0], dims[4], dims[16], dims[17]
    y = np.full(n * k * oh * ow, np.nan, np.float32)
    K.conv2d_ref(x, w, b, res, y, dims, act, alpha, beta, 1)
    return y


# (c, h, w, k, kh, kw, stride, dil, pads, groups): 1x1 direct, 1x1 with N tails
# (49 = 3*16 + 1, 196), odd sizes and prime channels, stride > kernel, dilation,
# padding wider than the kernel's half, groups, depthwise (s1/s2), K > KC (256).
SHAPES = [
    (13, 7, 7, 37, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1),
    (16, 14, 14, 20, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1),
    (7, 9, 11, 13, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),
    (3, 17, 19, 8, 7, 7, (2, 2), (1, 1), (3, 3, 3, 3), 1),
    (5, 10, 9, 7, 2, 3, (3, 4), (1, 1), (0, 1, 2, 0), 1),
    (6, 12, 12, 9, 3, 3, (1, 2), (2, 2), (3, 2, 4, 1), 1),
    (12, 8, 10, 18, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 3),
    (11, 9, 13, 11, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 11),
    (9, 15, 16, 9, 5, 5, (2, 2), (1, 1), (2, 2, 2, 2), 9),
    (40, 7, 7, 14, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),
    (300, 3, 3, 7, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_packed_matches_oracle(isa, rng, shape):
    c, h, w, k, kh, kw, stride, dil, pads, groups = shape
    for n, act, alpha, beta, with_b, with_res in [(1, "none", 0, 0, False, False),
                                                  (3, "relu", 0, 0, True, True),
                                                  (2, "clip", -0.5, 0.7, True, False),
                                                  (2, "silu", 0, 0, False, True)]:
        dims = dims_of(n, c, h, w, k, kh, kw, stride, dil, pads, groups)
        oh, ow = dims[16], dims[17]
        x = rand(rng, n * c * h * w)
        wt = rand(rng, k * (c // groups) * kh * kw)
        b = rand(rng, k) if with_b else None
        res = rand(rng, n * k * oh * ow) if with_res else None
        code = ACTIVATIONS[act]
        pk = K.PackedConv2d(wt, dims, code, alpha, beta)
        if isa == "scalar":
            assert pk.algo == "reference"
        elif groups == c and k == c:
            assert pk.algo == "direct_depthwise"
        else:
            assert pk.algo in ("gemm", "winograd_f4x3")
        want = oracle(x, wt, b, res, dims, code, alpha, beta)
        for t in (1, 2):
            y = np.full(n * k * oh * ow, np.nan, np.float32)
            pk.run(x, b, res, y, t)
            assert_close(y, want, rtol=1e-4, atol=1e-4, what=f"{shape} n={n} {act} t={t}")


def test_packed_matches_numpy_definition(rng):
    """One awkward case against the float64 definition (not our code)."""
    n, c, h, w, k, g = 2, 6, 11, 10, 9, 3
    dims = dims_of(n, c, h, w, k, 3, 3, (2, 1), (1, 2), (2, 1, 1, 3), g)
    x = rand(rng, n, c, h, w)
    wt = rand(rng, k, c // g, 3, 3)
    b = rand(rng, k)
    res = rand(rng, n, k, dims[16], dims[17])
    want = conv2d_np(x, wt, b, stride=(2, 1), pads=(2, 1, 1, 3), dilation=(1, 2), groups=g,
                     residual=res, act="leaky_relu", alpha=0.1)
    pk = K.PackedConv2d(wt.ravel(), dims, ACTIVATIONS["leaky_relu"], 0.1, 0.0)
    y = np.full(want.size, np.nan, np.float32)
    pk.run(x.ravel(), b, res.ravel(), y, 2)
    assert_close(y.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def test_pack_under_one_isa_run_under_other(rng):
    """The algorithm is fixed at pack time; switching ISA later still runs it."""
    if ce.detected_isa() == "scalar":
        pytest.skip("needs AVX2")
    dims = dims_of(1, 8, 9, 9, 10, 3, 3, pads=(1, 1, 1, 1))
    x, wt = rand(rng, 8 * 81), rand(rng, 10 * 8 * 9)
    before = ce.active_isa()
    try:
        ce.set_isa("avx2")
        pk = K.PackedConv2d(wt, dims)
        ce.set_isa("scalar")
        y = np.full(10 * 81, np.nan, np.float32)
        pk.run(x, None, None, y, 1)
    finally:
        ce.set_isa(before)
    assert_close(y, oracle(x, wt, None, None, dims, 0, 0, 0))


def test_mismatch_and_bad_calls(isa, rng):
    dims = dims_of(1, 4, 6, 6, 5, 3, 3, pads=(1, 1, 1, 1))
    wt = rand(rng, 5 * 4 * 9)
    pk = K.PackedConv2d(wt, dims, ACTIVATIONS["relu"])
    x = rand(rng, 4 * 36)
    y = np.empty(5 * 36, np.float32)
    with pytest.raises(ce.Error):          # x not a multiple of c*h*w
        pk.run(x[:-1], None, None, y)
    with pytest.raises(ce.Error):          # y too small
        pk.run(x, None, None, y[:-1])
    with pytest.raises(ce.Error):          # bias too small
        pk.run(x, rand(rng, 4), None, y)
    with pytest.raises(ce.Error):          # residual too small for batch 2
        pk.run(np.concatenate([x, x]), None, rand(rng, 5 * 36), np.empty(2 * 5 * 36, np.float32))
    with pytest.raises(ce.Error):          # weights too short
        K.PackedConv2d(wt[:-1], dims)
    with pytest.raises(ce.Error):          # oh inconsistent
        K.PackedConv2d(wt, dims[:16] + (5, 6))
    with pytest.raises(ce.Error):          # groups do not divide c
        K.PackedConv2d(wt, dims[:15] + (3,) + dims[16:])
    with pytest.raises(ce.Error):          # unknown activation
        K.PackedConv2d(wt, dims, 99)


def test_run_params_must_match_pack(isa, rng):
    """cnn_conv2d_run_packed_f32 refuses params that differ from the packed
    ones in anything but n (run(dims=...) passes them through)."""
    dims = dims_of(1, 3, 5, 5, 2, 2, 2)
    wt = rand(rng, 2 * 3 * 4)
    pk = K.PackedConv2d(wt, dims)
    x = rand(rng, 3 * 3 * 25)
    y = np.full(3 * 2 * 16, np.nan, np.float32)
    pk.run(x, None, None, y, 1, dims=(3,) + dims[1:])  # another batch: fine
    assert_close(y, oracle(x, wt, None, None, (3,) + dims[1:], 0, 0, 0))
    other = dims_of(1, 3, 5, 5, 2, 2, 2, stride=(2, 2))   # 2x2 outputs
    with pytest.raises(ce.Error):
        pk.run(x, None, None, y, 1, dims=(3,) + other[1:])
    pads = dims_of(1, 3, 5, 5, 2, 2, 2, pads=(1, 0, 0, 1))
    with pytest.raises(ce.Error):
        pk.run(x, None, None, y, 1, dims=(3,) + pads[1:])


def test_concurrent_runs_and_free(rng):
    """One PackedConv2d run from two Python threads at once, then dropped."""
    dims = dims_of(2, 16, 14, 14, 24, 3, 3, pads=(1, 1, 1, 1))
    wt, x, b = rand(rng, 24 * 16 * 9), rand(rng, 2 * 16 * 196), rand(rng, 24)
    pk = K.PackedConv2d(wt, dims, ACTIVATIONS["relu"])
    want = oracle(x, wt, b, None, dims, ACTIVATIONS["relu"], 0, 0)
    errors = []

    def work(run):
        try:
            for _ in range(20):
                y = np.full(2 * 24 * 196, np.nan, np.float32)
                run(x, b, None, y, 1)
                assert_close(y, want)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(pk.run,)) for _ in range(2)]
    for t in ts:
        t.start()
    del pk  # the threads' bound method keeps the object alive
    for t in ts:
        t.join()
    assert not errors, errors
