"""Depthwise conv2d (groups == C == K): the AVX2 fast paths (fixed 3x3/5x5
stride 1/2 row-blocked kernels, the generic phased-row kernel, the scalar
large-stride row) against the scalar oracle cnn_conv2d_f32_ref, with
NaN-prefilled outputs so unwritten elements show; every epilogue with and
without residual; threads 1 vs 2; the oracle itself against float64 NumPy."""
import itertools

import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional._common import ACTIVATIONS
from tests.conftest import assert_close
from tests.kernels._conv_ref import conv2d_np

pytestmark = pytest.mark.usefixtures("avx2")

ACT_PARAMS = {"clip": (0.0, 6.0), "leaky_relu": (0.1, 0.0), "elu": (0.8, 0.0),
              "hardsigmoid": (0.2, 0.5)}
SIZES = [1, 2, 3, 5, 7, 8, 9, 14, 15, 17, 28, 56, 57]


def _dims(n, c, h, w, k, s, pads, d):
    oh = (h + pads[0] + pads[2] - d * (k - 1) - 1) // s + 1
    ow = (w + pads[1] + pads[3] - d * (k - 1) - 1) // s + 1
    return (n, c, h, w, c, k, k, s, s, d, d, *pads, c, oh, ow), (n, c, oh, ow)


def _check(rng, n, c, h, w, k, s, pads, d, act="none", residual=False, threads=(1, 2, 3),
           bias=True):
    dims, shape = _dims(n, c, h, w, k, s, pads, d)
    if shape[2] < 1 or shape[3] < 1:
        return False
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((c, 1, k, k)) / k).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32) if bias else None
    r = rng.standard_normal(shape).astype(np.float32) if residual else None
    code = ACTIVATIONS[act]
    alpha, beta = ACT_PARAMS.get(act, (0.0, 0.0))
    rr = None if r is None else r.ravel()
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref(x.ravel(), wt.ravel(), b, rr, oracle.ravel(), dims, code, alpha, beta, 1)
    what = f"n{n} c{c} {h}x{w} k{k} s{s} pads{pads} d{d} {act} res={residual}"
    ys = []
    for t in threads:
        y = np.full(shape, np.nan, np.float32)
        _k.conv2d(x.ravel(), wt.ravel(), b, rr, y.ravel(), dims, code, alpha, beta, t)
        assert not np.isnan(y).any(), f"{what} threads={t}: unwritten outputs"
        assert_close(y, oracle, rtol=2e-5 * k, atol=2e-5 * k, what=f"{what} t{t}")
        ys.append(y)
    for y in ys[1:]:
        np.testing.assert_array_equal(y, ys[0], err_msg=f"{what}: threads disagree")
    return True


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (5, 1), (5, 2), (1, 1), (7, 1), (3, 3), (7, 2)])
def test_sizes_same_padding(k, s, rng):
    """Every H/W in SIZES (square and mixed), 'same' padding, batch 2."""
    p = k // 2
    for h, w in list(zip(SIZES, SIZES)) + list(zip(SIZES, SIZES[::-1])):
        _check(rng, 2, 3, h, w, k, s, (p, p, p, p), 1, threads=(1, 2, 8))


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (3, 3)])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 0, 2, 3), (0, 2, 1, 0), (4, 3, 5, 6)])
def test_asymmetric_and_zero_padding(k, s, pads, rng):
    for h, w in [(1, 1), (5, 9), (8, 7), (15, 17), (17, 28), (57, 14)]:
        _check(rng, 1, 5, h, w, k, s, pads, 1)


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (5, 1), (5, 2)])
def test_dilation_2(k, s, rng):
    p = k - 1
    for h, w in [(3, 3), (9, 14), (17, 15), (28, 57)]:
        _check(rng, 1, 4, h, w, k, s, (p, p, p, p), 2)
        _check(rng, 2, 3, h, w, k, s, (1, 0, 2, 1), 2)


@pytest.mark.parametrize("c", [1, 3, 8, 13, 32])
def test_channel_counts_and_threads(c, rng):
    for (k, s), hw in itertools.product([(3, 1), (3, 2), (5, 1), (5, 2)], [7, 14, 15]):
        _check(rng, 1, c, hw, hw, k, s, (k // 2,) * 4, 1)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("residual", [False, True])
def test_epilogues(act, residual, rng):
    for (k, s), (h, w) in [((3, 1), (14, 17)), ((3, 2), (15, 9)), ((5, 1), (7, 7)),
                           ((5, 2), (28, 28)), ((7, 1), (9, 5)), ((3, 3), (8, 8))]:
        _check(rng, 2, 3, h, w, k, s, (k // 2,) * 4, 1, act=act, residual=residual)


def test_no_bias_and_large_strides(rng):
    _check(rng, 1, 3, 14, 15, 3, 1, (1, 1, 1, 1), 1, bias=False)
    _check(rng, 1, 3, 14, 15, 5, 2, (2, 2, 2, 2), 1, bias=False, residual=True)
    for s in (4, 8, 9, 13):  # 9, 13: the scalar row (stride > 8)
        _check(rng, 2, 3, 29, 31, 3, s, (1, 2, 0, 1), 1, act="silu", residual=True)
        _check(rng, 1, 2, 17, 40, 5, s, (0, 0, 0, 0), 1, act="clip")


def test_residual_in_place(rng):
    """y aliasing the residual (y = act(conv(x) + y)) gives the same result."""
    dims, shape = _dims(1, 6, 14, 14, 3, 1, (1, 1, 1, 1), 1)
    x = rng.standard_normal((1, 6, 14, 14)).astype(np.float32)
    wt = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    r = rng.standard_normal(shape).astype(np.float32)
    ref = np.empty(shape, np.float32)
    _k.conv2d_ref(x.ravel(), wt.ravel(), None, r.ravel(), ref.ravel(), dims, 2, 0.0, 6.0, 1)
    y = r.copy()
    _k.conv2d(x.ravel(), wt.ravel(), None, y.ravel(), y.ravel(), dims, 2, 0.0, 6.0, 2)
    assert_close(y, ref, what="in-place residual")


@pytest.mark.parametrize("k,s,pads,d", [(3, 1, (1, 1, 1, 1), 1), (5, 2, (2, 1, 2, 3), 1),
                                        (3, 2, (2, 2, 2, 2), 2)])
def test_oracle_matches_numpy(k, s, pads, d, rng):
    x = rng.standard_normal((2, 4, 15, 17)).astype(np.float32)
    wt = rng.standard_normal((4, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    dims, shape = _dims(2, 4, 15, 17, k, s, pads, d)
    y = np.full(shape, np.nan, np.float32)
    _k.conv2d(x.ravel(), wt.ravel(), b, None, y.ravel(), dims, 0, 0.0, 0.0, 2)
    assert_close(y, conv2d_np(x, wt, b, (s, s), pads, (d, d), 4), what="fast vs numpy")


@pytest.mark.parametrize("act", ["silu", "sigmoid"])
def test_logistic_in_store_and_row_pass(act, rng):
    """SiLU/sigmoid: applied in dw_store where ow < 16 (fixed kernels and the
    generic dilated path alike), by the row pass over each pass's contiguous
    rows elsewhere; never twice, never skipped."""
    for (h, w, k, s, d) in [(7, 7, 3, 1, 1), (14, 14, 5, 1, 1), (13, 15, 3, 1, 2),
                            (9, 31, 3, 2, 1), (6, 33, 5, 1, 1), (11, 40, 3, 1, 2),
                            (5, 16, 3, 1, 1)]:
        p = d * (k // 2)
        assert _check(rng, 1, 7, h, w, k, s, (p,) * 4, d, act=act, residual=True)


@pytest.mark.parametrize("c", [1, 7, 8, 9, 17])
def test_channel_blocked_small_planes(c, rng):
    """The channel-blocked path (output planes <= 784 pixels, padded input
    <= 4096 pixels, 3x3/5x5, stride 1/2): 7x7, 14x14, 28x28 planes, channel
    tails, batch 2, odd padding; 29x29 just past it (row kernels)."""
    for (k, s), hw in itertools.product([(3, 1), (3, 2), (5, 1), (5, 2)], [7, 14, 28]):
        assert _check(rng, 2, c, hw, hw, k, s, (k // 2,) * 4, 1)
    for k, s, pads, (h, w) in [(3, 1, (0, 0, 0, 0), (9, 16)), (5, 2, (2, 1, 0, 3), (13, 11)),
                               (3, 2, (4, 3, 5, 6), (6, 5)), (5, 1, (2, 2, 2, 2), (1, 1)),
                               (3, 1, (1, 1, 1, 1), (1, 40)), (5, 2, (0, 0, 0, 0), (27, 27)),
                               (3, 2, (1, 1, 1, 1), (56, 56)), (5, 2, (2, 2, 2, 2), (57, 55)),
                               (3, 1, (1, 1, 1, 1), (28, 28)), (3, 1, (1, 1, 1, 1), (29, 29))]:
        assert _check(rng, 2, c, h, w, k, s, pads, 1, residual=True)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("residual", [False, True])
def test_channel_blocked_epilogues(act, residual, rng):
    for (k, s), hw, c in [((3, 1), 7, 9), ((3, 2), 14, 17), ((5, 1), 14, 7), ((5, 2), 28, 8)]:
        assert _check(rng, 2, c, hw, hw, k, s, (k // 2,) * 4, 1, act=act, residual=residual)
