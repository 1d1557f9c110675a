"""Blocked layout NCHW8c: reorders round-trip, blocked convolutions (groups
1, depthwise, NCHW-input stems) against the scalar NCHW oracle
(cnn_conv2d_f32_ref) and a float64 NumPy reference, global pooling."""
import math

import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from tests.conftest import assert_close
from tests.kernels._conv_ref import conv2d_np, conv_dims as _dims

pytestmark = pytest.mark.usefixtures("avx2")


def to_blocked(x):
    n, c, h, w = x.shape
    cb = (c + 7) // 8
    y = np.full((n, cb, h, w, 8), np.nan, np.float32)
    _k.nchw_to_nchwc(np.ascontiguousarray(x).ravel(), y.ravel(), n, c, h * w, 2)
    return y


def from_blocked(y, c):
    n, cb, h, w, _ = y.shape
    x = np.full((n, c, h, w), np.nan, np.float32)
    _k.nchwc_to_nchw(y.ravel(), x.ravel(), n, c, h * w, 2)
    return x


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 8, 4, 4), (2, 13, 9, 11),
                                   (1, 16, 3, 17), (3, 29, 1, 8)])
def test_reorder_round_trip_and_zero_padding(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    y = to_blocked(x)
    n, c, h, w = shape
    ref = np.zeros((n, y.shape[1] * 8, h, w), np.float32)
    ref[:, :c] = x
    np.testing.assert_array_equal(y, ref.reshape(n, -1, 8, h, w).transpose(0, 1, 3, 4, 2))
    np.testing.assert_array_equal(from_blocked(y, c), x)
    # the portable reorders agree bit for bit
    ce.set_isa("scalar")
    np.testing.assert_array_equal(to_blocked(x), y)
    np.testing.assert_array_equal(from_blocked(y, c), x)



@pytest.mark.parametrize("n,c", [(1, 1280), (2, 13), (3, 37), (2, 8)])
def test_reorders_of_one_pixel_maps(n, c, rng):
    """A 1x1 map (after a global pool) is a copy each way: the padding lanes
    zeroed, batch > 1, prime channel counts, at 1, 2 and 3 threads."""
    x = rng.standard_normal((n, c, 1, 1)).astype(np.float32)
    cb = (c + 7) // 8
    want = np.zeros((n, cb * 8), np.float32)
    want[:, :c] = x.reshape(n, c)
    for threads in (1, 2, 3):
        y = np.full((n, cb, 1, 1, 8), np.nan, np.float32)
        _k.nchw_to_nchwc(x.ravel(), y.ravel(), n, c, 1, threads)
        np.testing.assert_array_equal(y.reshape(n, -1), want)
        back = np.full((n, c, 1, 1), np.nan, np.float32)
        _k.nchwc_to_nchw(y.ravel(), back.ravel(), n, c, 1, threads)
        np.testing.assert_array_equal(back, x)

# (N, C, H, W, K, kh, kw, stride, pads (t, l, b, r), dilation, groups)
CASES = [
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),       # 1x1 image
    (2, 13, 9, 11, 7, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # pointwise, flattened rows
    (1, 16, 7, 7, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # whole blocks
    (1, 7, 10, 9, 17, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),     # 1x1 strided
    (1, 5, 12, 13, 19, 2, 2, (3, 3), (0, 0, 0, 0), (1, 1), 1),    # stride > kernel
    (2, 3, 15, 17, 13, 3, 3, (1, 2), (2, 0, 1, 3), (2, 1), 1),    # asymmetric pad, dilation
    (1, 4, 8, 8, 6, 3, 3, (1, 1), (4, 4, 4, 4), (1, 1), 1),       # pad > kernel half
    (1, 37, 14, 15, 23, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),   # prime channels
    (1, 3, 31, 29, 32, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),    # stem shape
    (1, 3, 19, 23, 16, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),    # ResNet-like stem
    # 3x3 s2 stems (taps and stride fixed at compile time): 1x1 and odd
    # maps, 1-2 output channels, C = 1, 2, 4, batch 2, asymmetric padding
    (1, 1, 1, 1, 2, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),       # 1x1 image, C = 1
    (2, 2, 7, 9, 1, 3, 3, (2, 2), (0, 1, 1, 0), (1, 1), 1),       # one output channel
    (1, 4, 13, 12, 24, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),    # 3 output blocks
    (2, 3, 2, 3, 40, 3, 3, (2, 2), (1, 2, 1, 0), (1, 1), 1),      # a quad and a block
    (1, 300, 5, 5, 4, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # long reduction
    (1, 64, 3, 50, 40, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # several pixel chunks
    (2, 7, 13, 19, 7, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 7),     # depthwise s1
    (1, 5, 20, 37, 5, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 5),     # depthwise s2
    (1, 19, 23, 41, 19, 5, 5, (1, 1), (2, 2, 2, 2), (2, 2), 19),  # depthwise dilated 5x5
    (1, 3, 17, 40, 3, 3, 3, (3, 3), (0, 1, 2, 0), (1, 1), 3),     # depthwise s3, asymmetric
    (1, 16, 9, 26, 16, 7, 7, (1, 2), (3, 0, 3, 0), (1, 1), 16),   # depthwise 7x7
    (2, 13, 17, 30, 13, 7, 7, (1, 1), (3, 3, 3, 3), (1, 1), 13),  # depthwise 7x7 s1 (ConvNeXt), padded copy
    (1, 20, 40, 41, 20, 7, 7, (1, 1), (3, 2, 3, 4), (1, 1), 20),  # ... wide plane, asymmetric padding
    (1, 9, 15, 16, 9, 11, 11, (1, 1), (5, 5, 5, 5), (1, 1), 9),   # depthwise 11x11
    (1, 9, 1, 1, 9, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 9),       # depthwise 1x1 image
    (1, 2, 5, 90, 2, 3, 3, (1, 1), (2, 9, 2, 9), (1, 3), 2),      # depthwise wide padding
    (2, 24, 7, 7, 24, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 24),    # depthwise 5x5, padded copy
    (1, 11, 9, 12, 11, 5, 5, (1, 1), (2, 1, 2, 3), (1, 1), 11),   # ... asymmetric padding
    (2, 13, 7, 7, 13, 3, 3, (1, 1), (1, 0, 2, 1), (1, 1), 13),    # depthwise 3x3, padded copy
    (1, 16, 9, 9, 16, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 16),    # ... dilated
    (2, 40, 14, 14, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 40),  # depthwise block pairs: 14-pixel tiles
    (1, 17, 30, 28, 17, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 17),  # ... 2 tiles a row, a short last chunk
    (2, 21, 13, 14, 21, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 21),  # ... stride 2, odd rows, a half pair
    (1, 40, 9, 27, 40, 5, 5, (2, 2), (2, 1, 2, 3), (1, 1), 40),   # ... 5x5 s2, asymmetric pads, 14 wide
    (1, 8, 6, 29, 8, 3, 3, (2, 2), (0, 0, 1, 1), (1, 1), 8),      # ... s2, no left pad
    (2, 12, 1, 1, 12, 5, 5, (2, 2), (2, 2, 2, 2), (1, 1), 12),    # ... 1x1 map: taps in padding
    (1, 24, 10, 30, 24, 5, 5, (1, 1), (0, 2, 3, 1), (1, 1), 24),  # ... 5x5 s1, 29 wide: 4 tiles
    (1, 19, 11, 3, 19, 3, 3, (1, 1), (3, 0, 0, 2), (1, 1), 19),   # ... rows of padding only
    (1, 13, 9, 30, 13, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 13),  # ... row pairs, a lone last row
    (2, 13, 7, 9, 11, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 3x3 on a small plane: tiles span rows
    (1, 19, 11, 10, 21, 3, 3, (2, 2), (1, 0, 0, 1), (1, 1), 1),   # ... stride 2, asymmetric padding
    (1, 16, 9, 9, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 2),     # groups of whole blocks
    (2, 24, 7, 8, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 3),     # one output block per group
    (1, 32, 10, 9, 48, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 2),    # 3 output blocks per group
    # an odd block count per group: AVX-512 pairs each group's last block with a zero one
    (2, 72, 14, 13, 72, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 3),   # RegNet's groups of 24, s1
    (1, 168, 9, 9, 168, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 7),   # ... s2, odd map
    (1, 112, 7, 7, 112, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 2),   # groups of 56: 7 blocks
    (1, 40, 6, 11, 40, 3, 3, (1, 1), (0, 2, 1, 0), (1, 1), 5),    # 1 block a group, asymmetric pads
    # four or more output blocks: AVX-512's two-pair tiles, a lone pair or
    # block after them
    (1, 37, 14, 15, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),   # 3x3 s1, two quads
    (2, 19, 13, 17, 56, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),   # 3x3 s2, quad + pair
    (1, 24, 9, 11, 40, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),    # 1x1 s2, quad + block
    (1, 45, 5, 50, 96, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 1x1 s1, several chunks
    (1, 16, 7, 7, 72, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # span tiles s1
    (2, 16, 9, 9, 32, 3, 3, (2, 2), (0, 0, 0, 0), (1, 1), 1),     # span tiles s2
    (1, 21, 10, 12, 48, 5, 5, (1, 1), (2, 2, 2, 2), (2, 2), 1),   # general kernel
    (1, 13, 8, 9, 40, 2, 3, (1, 3), (0, 0, 0, 0), (1, 1), 1),     # ... unpadded, stride > kernel
    (2, 64, 6, 6, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 2),     # a quad per group
    (1, 48, 7, 7, 96, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 3),     # 1x1 groups of 4 blocks
    (1, 24, 3, 5, 120, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 1x1 on few pixels, weights over input
    (1, 16, 57, 60, 40, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),   # wide s2 rows: borders clipped
    (1, 8, 56, 64, 32, 5, 5, (2, 2), (2, 1, 2, 3), (1, 1), 1),    # ... 5x5, asymmetric padding
    # 1x1s over more than 24 input blocks: AVX-512 sums them in passes,
    # partial sums in the output
    (2, 211, 9, 23, 40, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),   # 2 passes, quad + block
    (1, 264, 20, 20, 72, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),  # 3 passes, subsampled
    (1, 520, 16, 17, 32, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 5 passes, 2 chunks
    # AVX-512 1x1 tiles of 1 and 3 output blocks (the odd block on ymm)
    (2, 97, 7, 7, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 3 blocks @7x7, prime C
    (1, 13, 1, 1, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),      # 1 block on a 1x1 map
    (2, 31, 5, 9, 5, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),      # 1 partial block, prime K
    (1, 203, 14, 14, 88, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 196 pixels: passes at 2 threads only, quads + 3 blocks
    (1, 203, 15, 14, 88, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 210 pixels: passes
    (2, 401, 7, 7, 40, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 7x7, 51 input blocks: passes at 2 threads only
    (2, 40, 13, 15, 23, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),   # stride 2, 3 partial blocks
    (1, 24, 11, 11, 41, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),   # quad + 1 partial block
    # 2 threads: the pixel split (1024+ pixels a thread) and the chunk x set units below it
    (1, 20, 48, 45, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),   # 2160 pixels, 3 blocks
    (2, 36, 14, 14, 144, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 196 pixels, many sets
]

# none, clip(0, 6) (in the tile), silu and elu(0.7) (over each stored row)
ACTS = [(0, 0.0, 0.0), (2, 0.0, 6.0), (7, 0.0, 0.0), (4, 0.7, 0.0)]


def oracle_case(rng, n, c, h, wd, k, kh, kw, stride, pads, dil, groups, act):
    """Random x, w, b and residual, the conv's dims and output shape, and the
    scalar NCHW oracle's output (checked against NumPy where act is none)."""
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = _dims(x, w, stride, pads, dil, groups)
    res = rng.standard_normal(shape).astype(np.float32)
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref(x.ravel(), w.ravel(), b, res.ravel(), oracle.ravel(), dims, *act, 2)
    if act == ACTS[0]:
        assert_close(oracle, conv2d_np(x, w, b, stride, pads, dil, groups) + res, what="oracle")
    return x, w, b, res, dims, shape, oracle


@pytest.mark.parametrize("act", ACTS, ids=["none", "clip", "silu", "elu"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_blocked_conv_matches_oracle(case, act, rng):
    n, c, h, wd, k, kh, kw, stride, pads, dil, groups = case
    x, w, b, res, dims, shape, oracle = oracle_case(rng, n, c, h, wd, k, kh, kw, stride, pads, dil,
                                                    groups, act)
    tol = 1e-5 * np.sqrt(c // groups * kh * kw)
    stems = [False, True] if groups == 1 else [False]
    for in_nchw in stems:
        pk = _k.ConvNCHWc(w.ravel(), b, dims, *act, in_nchw)
        xin = x if in_nchw else to_blocked(x)
        for threads in (1, 2):
            y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
            pk.run(xin.ravel(), to_blocked(res).ravel(), y.ravel(), threads)
            assert np.isfinite(y).all(), "padding lanes must stay finite"
            assert_close(from_blocked(y, k), oracle, rtol=tol, what=f"{case} {act} {in_nchw} {threads}")
    # no bias, no residual
    pk = _k.ConvNCHWc(w.ravel(), None, dims, 0, 0.0, 0.0, False)
    y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
    pk.run(to_blocked(x).ravel(), None, y.ravel(), 2)
    assert_close(from_blocked(y, k), conv2d_np(x, w, None, stride, pads, dil, groups), rtol=tol)
    # the executor's entry: arrays of any shape, no flattening
    y2 = np.full_like(y, np.nan)
    pk.run(to_blocked(x), None, y2, 2)
    assert np.array_equal(y2, y)


# 3x3 stride-1 convs for blocked Winograd: (N, C, H, W, K, pads (t, l, b, r))
WINO = [
    (1, 8, 6, 6, 8, (1, 1, 1, 1)),          # one tile, whole blocks
    (2, 3, 7, 9, 5, (1, 1, 1, 1)),          # partial blocks, batch, edge tiles
    (3, 13, 11, 5, 17, (0, 2, 1, 0)),       # asymmetric padding, prime channels
    (1, 24, 1, 1, 40, (1, 1, 1, 1)),        # 1x1 image
    (1, 16, 3, 30, 24, (2, 1, 0, 2)),       # wide and short, pad > 1
    (1, 37, 26, 23, 41, (1, 1, 1, 1)),      # several tile chunks, odd output block
    (2, 64, 28, 28, 72, (1, 1, 1, 1)),      # several superblocks and channel ranges
    (2, 20, 10, 10, 96, (1, 0, 1, 2)),      # one tile chunk, 2 threads split K: private V
    (2, 40, 9, 14, 8, (1, 1, 1, 1)),        # one output block: 2 threads split the tiles
]


def wino_case(case, act, rng):
    """A stride-1 3x3 case (n, c, h, w, k, pads): x, w, b, residual, the
    kernel dims, the output shape and the scalar direct oracle's output."""
    n, c, h, wd, k, pads = case
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = _dims(x, w, (1, 1), pads, (1, 1), 1)
    res = rng.standard_normal(shape).astype(np.float32)
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref(x.ravel(), w.ravel(), b, res.ravel(), oracle.ravel(), dims, *act, 2)
    return x, w, b, res, dims, shape, oracle


@pytest.mark.parametrize("act", ACTS, ids=["none", "clip", "silu", "elu"])
@pytest.mark.parametrize("case", WINO, ids=lambda c: "x".join(map(str, c[:5])))
def test_blocked_winograd_matches_oracle(case, act, rng):
    """Forced Winograd on blocked input against the scalar oracle, with
    bias, residual and activation; F(4x4, 3x3) stays within 1e-4."""
    n, c, h, wd, k, pads = case
    x, w, b, res, dims, shape, oracle = wino_case(case, act, rng)
    pk = _k.ConvNCHWc(w.ravel(), b, dims, *act, False, True)
    assert pk.algo == "winograd_f4x3"
    scale = np.sqrt(c * 9)          # the outputs' magnitude: sums of c*9 unit products
    for threads in (1, 2):
        y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
        pk.run(to_blocked(x).ravel(), to_blocked(res).ravel(), y.ravel(), threads)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        err = np.max(np.abs(from_blocked(y, k) - oracle)) / scale
        assert err < 1e-4, (case, act, threads, err)


def test_blocked_winograd_is_chosen_where_it_pays(rng):
    def algo(c, k, h, winograd=None):
        w = np.zeros(k * c * 9, np.float32)
        dims = (1, c, h, h, k, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, h, h)
        return _k.ConvNCHWc(w, None, dims, 0, 0.0, 0.0, False, winograd).algo
    assert algo(64, 64, 56) == "winograd_f4x3"
    assert algo(128, 32, 14) == "winograd_f4x3"     # few outputs, 16 tiles
    assert algo(128, 32, 5) == "direct"             # a 4x4 tile under half used
    assert algo(64, 64, 56, False) == "direct"
    w = np.zeros(8 * 8 * 9, np.float32)              # strided: never Winograd
    dims = (1, 8, 9, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 5, 5)
    assert _k.ConvNCHWc(w, None, dims, 0, 0.0, 0.0, False, True).algo == "direct"


def test_padding_lanes_of_outputs_are_zero_without_bias_or_activation(rng):
    x = rng.standard_normal((1, 5, 6, 6)).astype(np.float32)
    w = rng.standard_normal((11, 5, 3, 3)).astype(np.float32)
    dims, shape = _dims(x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    y = np.full((1, 2, 6, 6, 8), np.nan, np.float32)
    _k.ConvNCHWc(w.ravel(), None, dims).run(to_blocked(x).ravel(), None, y.ravel(), 1)
    assert np.all(y[:, 1, :, :, 3:] == 0)


@pytest.mark.parametrize("k,stride,ks,in_nchw", [(40, 1, 1, False), (16, 2, 1, False),
                                                (24, 1, 1, False), (40, 2, 3, False),
                                                (24, 2, 3, True)])
def test_blocked_conv_packed_for_avx512_runs_after_the_level_drops(k, stride, ks, in_nchw,
                                                                   rng, avx2):
    """A conv packed under AVX-512 interleaves its output block pairs for
    the zmm tiles; lowered to AVX2 after packing, the run (plain and gated)
    still matches the reference, and a pack made under AVX2 runs under
    AVX-512. Odd block counts leave the last pair half zero."""
    if "avx512" not in ce.detected_isa():
        pytest.skip("no AVX-512 on this CPU")
    c = 3 if in_nchw else 200
    pads = (ks // 2,) * 4
    x = rng.standard_normal((2, c, 9, 10)).astype(np.float32)
    w = rng.standard_normal((k, c, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    s = rng.uniform(0, 1, (2, c, 1, 1)).astype(np.float32)
    dims, shape = _dims(x, w, (stride, stride), pads, (1, 1), 1)
    want = conv2d_np(x, w, b, (stride, stride), pads, (1, 1), 1)
    want_s = conv2d_np(x * s, w, b, (stride, stride), pads, (1, 1), 1)
    other = "avx2" if avx2 == "avx512" else "avx512"
    pk = _k.ConvNCHWc(w.ravel(), b, dims, 1, 0.0, 0.0, in_nchw, False)
    xin = x if in_nchw else to_blocked(x)
    tol = 1e-5 * np.sqrt(c * ks * ks)
    for level in (avx2, other):
        ce.set_isa(level)
        for threads in (1, 2):
            y = np.full((2, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
            pk.run(xin, None, y, threads)
            assert_close(from_blocked(y, k), np.maximum(want, 0), rtol=tol, what=f"{level} {threads}")
            if not in_nchw:
                pk.run_scaled(xin.ravel(), to_blocked(s).ravel(), None, y.ravel(), threads)
                assert_close(from_blocked(y, k), np.maximum(want_s, 0), rtol=tol, what=f"gated {level}")
    ce.set_isa(avx2)


@pytest.mark.parametrize("n,c,h,w,k", [
    (1, 331, 14, 14, 104),  # 13 blocks (odd pair), passes, weights scaled by 2 threads
    (1, 211, 13, 15, 112),  # 7 pairs (4:3: stays split by sets), passes, 195 pixels
    (1, 240, 28, 28, 40),   # 5 blocks, passes in 4 chunks
    (2, 97, 14, 14, 40),    # 5 blocks, prime C, batch 2
    (1, 48, 10, 10, 88),    # 11 blocks on 100 pixels
    (1, 17, 9, 11, 9),      # 2 partial blocks, below the pixel split
])
def test_gated_1x1_with_odd_block_counts_matches_oracle(n, c, h, w, k, rng):
    """The squeeze-excitation-gated 1x1 (weights scaled per image) where
    the output blocks or pairs are odd, so 2 threads split the pixels or
    the scaling runs mid-slab, at 1 and 2 threads against the scalar
    oracle on the scaled input, with a residual."""
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    s = rng.uniform(0, 1, (n, c, 1, 1)).astype(np.float32)
    wt = rng.standard_normal((k, c, 1, 1)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = _dims(x, wt, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    res = rng.standard_normal(shape).astype(np.float32)
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref((x * s).ravel(), wt.ravel(), b, res.ravel(), oracle.ravel(), dims, 0, 0.0, 0.0, 2)
    pk = _k.ConvNCHWc(wt.ravel(), b, dims)
    for threads in (1, 2):
        y = np.full((n, (k + 7) // 8, h, w, 8), np.nan, np.float32)
        pk.run_scaled(to_blocked(x).ravel(), to_blocked(s).ravel(), to_blocked(res).ravel(), y.ravel(),
                      threads)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        assert_close(from_blocked(y, k), oracle, rtol=1e-5 * np.sqrt(c), what=f"gated {threads}")


def _scaled_case(n, c, h, w, k, ks, stride, pad, gated, rng):
    """A conv with ReLU and a residual on x * s (s per image and channel,
    ones unless gated): (x, s, residual, output shape, the scalar oracle's
    output, the packed conv)."""
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    s = rng.uniform(0, 1, (n, c, 1, 1)).astype(np.float32) if gated else np.ones((n, c, 1, 1), np.float32)
    wt = rng.standard_normal((k, c, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = _dims(x, wt, (stride, stride), (pad,) * 4, (1, 1), 1)
    res = rng.standard_normal(shape).astype(np.float32)
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref((x * s).ravel(), wt.ravel(), b, res.ravel(), oracle.ravel(), dims, 1, 0.0, 0.0, 2)
    return x, s, res, shape, oracle, _k.ConvNCHWc(wt.ravel(), b, dims, 1, 0.0, 0.0, False, False)


@pytest.mark.parametrize("n,c,h,w,k,ks,stride,pad", [
    (1, 576, 7, 7, 96, 1, 1, 0),     # plane < K: input chunks scaled, passes at 2 threads
    (2, 61, 3, 5, 40, 1, 1, 0),      # input scaled, batch 2, prime C, partial block
    (3, 19, 1, 1, 13, 1, 1, 0),      # one pixel, batch 3, odd blocks
    (2, 37, 9, 7, 21, 1, 1, 0),      # plane >= K: weights scaled per group, batch 2
    (1, 40, 11, 9, 24, 3, 1, 1),     # 3x3 padded (a padded copy): weights scaled
    (2, 24, 9, 9, 40, 1, 2, 0),      # strided 1x1: its subsampled copy's chunks scaled
])
def test_gated_conv_threads_scale_own_copies_match_oracle(n, c, h, w, k, ks, stride, pad, rng):
    """Each thread scales what its units read (input chunks, or its groups'
    weights) once per image: at 1, 2 and 3 threads, batch > 1, equal to
    the scalar oracle on the scaled input."""
    x, s, res, shape, oracle, pk = _scaled_case(n, c, h, w, k, ks, stride, pad, True, rng)
    for threads in (1, 2, 3):
        y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
        pk.run_scaled(to_blocked(x).ravel(), to_blocked(s).ravel(), to_blocked(res).ravel(), y.ravel(),
                      threads)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        assert_close(from_blocked(y, k), oracle, rtol=1e-5 * np.sqrt(c * ks * ks), what=f"gated {threads}")



@pytest.mark.parametrize("n,c,h,w,k,stride,gated", [
    (1, 160, 14, 14, 400, 2, False),  # 13 sets @7x7 (7:6), subsampled: cut inside a set
    (1, 401, 7, 7, 400, 1, False),    # 51 input blocks @7x7: no passes, cut
    (1, 37, 14, 14, 200, 1, False),   # prime C, 25 blocks @14x14: finer chunks, cut
    (2, 96, 7, 7, 576, 1, False),     # 9 sets of 8 blocks, batch 2
    (1, 672, 14, 14, 112, 1, True),   # gated (weights scaled), 7 pairs 4:3 -> cut in 3 chunks
    (2, 53, 7, 7, 44, 1, True),       # gated, plane >= K, batch 2, partial block
])
def test_1x1_units_cut_between_threads_match_oracle(n, c, h, w, k, stride, gated, rng):
    """Wide 1x1s whose sets the static split shares unevenly run as runs of
    equal work (a set split between threads, finer pixel chunks): at 1, 2
    and 3 threads, with a residual and ReLU, equal to the scalar oracle."""
    x, s, res, shape, oracle, pk = _scaled_case(n, c, h, w, k, 1, stride, 0, gated, rng)
    for threads in (1, 2, 3):
        y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
        if gated:
            pk.run_scaled(to_blocked(x).ravel(), to_blocked(s).ravel(), to_blocked(res).ravel(), y.ravel(),
                          threads)
        else:
            pk.run(to_blocked(x).ravel(), to_blocked(res).ravel(), y.ravel(), threads)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        assert_close(from_blocked(y, k), oracle, rtol=1e-5 * np.sqrt(c), what=f"{threads} threads")

def test_partial_block_groups_are_refused_and_bad_sizes_raise(rng):
    w = np.ones((8, 2, 3, 3), np.float32)
    dims = (1, 4, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 5, 5)
    with pytest.raises(ce.UnsupportedOpError):
        _k.ConvNCHWc(w.ravel(), None, dims)
    w = np.ones((8, 4, 3, 3), np.float32)
    dims = (1, 4, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5)
    pk = _k.ConvNCHWc(w.ravel(), None, dims)
    with pytest.raises(ce.ShapeError):
        pk.run(np.ones(7, np.float32), None, np.ones(200, np.float32), 1)
    with pytest.raises(ce.ShapeError):
        pk.run(np.ones(200, np.float32), None, np.ones(10, np.float32), 1)
    with pytest.raises(ce.ShapeError):       # a short residual
        pk.run(np.ones(200, np.float32), np.ones(10, np.float32), np.ones(200, np.float32), 1)
    with pytest.raises(ce.ShapeError):
        pk.run(np.ones(200, np.float32), None, None, 1)
    x, y = np.ones((1, 1, 5, 5, 8), np.float32), np.ones((1, 1, 5, 5, 8), np.float32)
    pk.run(x, x, y, 1)
    for bad in (x.astype(np.float64), x[..., ::2], [1.0] * 200, None):
        with pytest.raises(ce.ShapeError):
            pk.run(bad, None, y, 1)
    for bad in (y[:, :, :4], y.transpose(0, 1, 3, 2, 4), None):
        with pytest.raises(ce.ShapeError):
            pk.run(x, None, bad, 1)
    with pytest.raises(ce.ShapeError):       # a short residual
        pk.run(x, np.ones(10, np.float32), y, 1)
    ce.set_isa("scalar")
    with pytest.raises(ce.UnsupportedOpError):
        _k.ConvNCHWc(w.ravel(), None, dims)


@pytest.mark.parametrize("shape", [(1, 5, 1, 1), (2, 19, 7, 7), (1, 32, 112, 3)])
def test_global_pool_blocked(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    n, c, h, w = shape
    for is_max in (False, True):
        y = np.full((n, (c + 7) // 8, 1, 1, 8), np.nan, np.float32)
        _k.global_pool_nchwc(to_blocked(x).ravel(), y.ravel(), n, c, h * w, is_max, 2)
        ref = x.max(axis=(2, 3)) if is_max else x.astype(np.float64).mean(axis=(2, 3))
        assert_close(from_blocked(y, c).reshape(n, c), ref, rtol=1e-5)


# (N, C, H, W, kernel, stride, dilation, pads (t, l, b, r), out (OH, OW) or None)
POOLS = [
    (1, 5, 9, 11, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), None),
    (2, 19, 7, 8, (2, 3), (1, 2), (1, 1), (0, 1, 1, 1), None),
    (1, 8, 10, 10, (3, 3), (2, 2), (2, 2), (1, 0, 2, 1), None),
    (1, 3, 5, 5, (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), (3, 3)),    # ceil-mode extra window
    (1, 9, 1, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), None),
    # rows wide enough for interior runs of 4 pixels and a remainder
    (1, 16, 6, 31, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), None),
    (2, 11, 9, 37, (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), (4, 18)),  # ceil mode, SqueezeNet's
    (1, 8, 7, 29, (2, 3), (1, 2), (2, 3), (1, 2, 0, 1), None),      # dilated, asymmetric
]


@pytest.mark.parametrize("case", POOLS, ids=lambda c: "x".join(map(str, c[:4])))
def test_blocked_pooling_matches_oracle(case, rng):
    n, c, h, w, k, s, d, pads, out = case
    if out is None:
        out = tuple((size + pads[i] + pads[i + 2] - d[i] * (k[i] - 1) - 1) // s[i] + 1
                    for i, size in enumerate((h, w)))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    for is_max in (True, False):
        for cip in ((False,) if is_max else (False, True)):
            if not is_max and d != (1, 1):
                continue
            ref = np.full((n, c, *out), np.nan, np.float32)
            ce.set_isa("scalar")
            if is_max:
                _k.max_pool2d(x.ravel(), ref.ravel(), (n, c, h, w), k, s, d, pads, out, 1)
            else:
                _k.avg_pool2d(x.ravel(), ref.ravel(), (n, c, h, w), k, s, d, pads, out, cip, 1)
            ce.set_isa("avx2")
            y = np.full((n, (c + 7) // 8, *out, 8), np.nan, np.float32)
            _k.pool2d_nchwc(to_blocked(x).ravel(), y.ravel(), (n, c, h, w), k, s, d, pads, out,
                            is_max, cip, 2)
            np.testing.assert_allclose(from_blocked(y, c), ref, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{case} max={is_max} cip={cip}")


def test_blocked_affine(rng):
    x = rng.standard_normal((2, 11, 5, 3)).astype(np.float32)
    scale = np.zeros(16, np.float32)
    shift = np.zeros(16, np.float32)
    scale[:11] = rng.standard_normal(11)
    shift[:11] = rng.standard_normal(11)
    y = np.full((2, 2, 5, 3, 8), np.nan, np.float32)
    _k.nchwc_affine(to_blocked(x).ravel(), scale, shift, y.ravel(), 2, 11, 15, 2)
    ref = x * scale[:11, None, None] + shift[:11, None, None]
    assert_close(from_blocked(y, 11), ref, rtol=1e-6)
    # fused activations: ReLU in the loop, SiLU over the plane after it
    _k.nchwc_affine(to_blocked(x).ravel(), scale, shift, y.ravel(), 2, 11, 15, 1, 1)
    assert_close(from_blocked(y, 11), np.maximum(ref, 0), rtol=1e-6)
    _k.nchwc_affine(to_blocked(x).ravel(), scale, shift, y.ravel(), 2, 11, 15, 2, 7)
    assert_close(from_blocked(y, 11), ref / (1 + np.exp(-ref)), rtol=1e-5)
    with pytest.raises(ce.ShapeError):
        _k.nchwc_affine(to_blocked(x).ravel(), scale[:8], shift, y.ravel(), 2, 11, 15, 2)


@pytest.mark.parametrize("c,h,w,k,stride,act", [(13, 9, 7, 3, 1, ACTS[2]), (24, 30, 31, 5, 2, ACTS[0]),
                                               (40, 7, 7, 3, 1, ACTS[1]), (8, 1, 1, 3, 1, ACTS[0]),
                                               (21, 13, 14, 3, 2, ACTS[2]), (40, 9, 27, 5, 2, ACTS[1])])
def test_depthwise_pooled_output_is_the_plane_mean(c, h, w, k, stride, act, rng):
    """run_pooled: the same output as run, and the mean of every channel
    over the plane (squeeze-excitation's squeeze) as a second output."""
    p = k // 2
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    dims, shape = _dims(x, wt, (stride, stride), (p, p, p, p), (1, 1), c)
    pk = _k.ConvNCHWc(wt.ravel(), b, dims, *act, False)
    cb = (c + 7) // 8
    for threads in (1, 2):
        y = np.full((2, cb, shape[2], shape[3], 8), np.nan, np.float32)
        y2, pool = np.full_like(y, np.nan), np.full((2, cb, 1, 1, 8), np.nan, np.float32)
        pk.run(to_blocked(x), None, y, threads)
        pk.run_pooled(to_blocked(x), None, y2, pool, threads)
        assert np.array_equal(y, y2)
        assert_close(pool, y.astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=1e-5)


def test_pooled_output_needs_a_depthwise_conv_and_room(rng):
    w = rng.standard_normal((16, 8, 1, 1)).astype(np.float32)
    pk = _k.ConvNCHWc(w.ravel(), None, (1, 8, 3, 3, 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 3, 3))
    x, y = np.ones((1, 1, 3, 3, 8), np.float32), np.ones((1, 2, 3, 3, 8), np.float32)
    with pytest.raises(ce.UnsupportedOpError):
        pk.run_pooled(x, None, y, np.ones(16, np.float32), 1)
    dw = _k.ConvNCHWc(np.ones(72, np.float32), None, (1, 8, 3, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8, 3, 3))
    with pytest.raises(ce.ShapeError):
        dw.run_pooled(x, None, np.ones((1, 1, 3, 3, 8), np.float32), np.ones(4, np.float32), 1)


@pytest.mark.parametrize("c,h,w,k,stride", [
    (13, 14, 14, 3, 1),   # block pairs (zmm rows), 13 channels: a half pair
    (24, 11, 9, 5, 1),    # block pairs, rows of 9 pixels: zmm tails of 8 lanes
    (21, 13, 13, 3, 2),   # block pairs, stride 2, a half pair
    (17, 30, 29, 3, 1),   # block pairs, odd width, row pairs and a lone last row
    (24, 31, 23, 5, 2),   # block pairs, stride 2, odd sizes
    (11, 12, 13, 7, 1),   # 7x7: the AVX2 rows on both levels
    (9, 1, 1, 3, 1),      # 1x1 map
])
# SiLU, sigmoid, GELU (erf, tanh), erf; hard-swish and ReLU (AVX-512: in the tile)
@pytest.mark.parametrize("act", [7, 5, 10, 11, 12, 8, 1])
def test_depthwise_long_epilogue_same_bits_on_both_levels(c, h, w, k, stride, act, rng):
    """The AVX-512 depthwise entry runs the long activations over its rows
    on zmm (activation_avx512.c), the AVX2 one on ymm: erf and GELU by the
    same formulas, so the same bits; the logistic ones (SiLU, sigmoid,
    GELU-tanh) by AVX-512's own exp, so the same bits at any thread count
    and pooled or not within a level. All match the definition in float64."""
    p = k // 2
    x = (rng.standard_normal((2, c, h, w)) * 3).astype(np.float32)
    wt = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    dims, shape = _dims(x, wt, (stride, stride), (p, p, p, p), (1, 1), c)
    pk = _k.ConvNCHWc(wt.ravel(), b, dims, act, 0.0, 0.0, False)
    cb = (c + 7) // 8
    z = conv2d_np(x, wt, b, (stride, stride), (p, p, p, p), (1, 1), c).astype(np.float64)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    want = {7: lambda: z / (1 + np.exp(-z)), 5: lambda: 1 / (1 + np.exp(-z)),
            10: lambda: 0.5 * z * (1 + erf(z / math.sqrt(2))),
            11: lambda: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3))),
            12: lambda: erf(z), 8: lambda: z * np.clip(z + 3, 0, 6) / 6,
            1: lambda: np.maximum(z, 0)}[act]()
    levels = ["avx2", "avx512"] if "avx512" in ce.detected_isa() else ["avx2"]
    got, before = {}, ce.active_isa()
    try:
        for level in levels:
            ce.set_isa(level)
            for threads in (1, 2):
                y = np.full((2, cb, shape[2], shape[3], 8), np.nan, np.float32)
                y2, pool = np.full_like(y, np.nan), np.full((2, cb, 1, 1, 8), np.nan, np.float32)
                pk.run(to_blocked(x), None, y, threads)
                pk.run_pooled(to_blocked(x), None, y2, pool, threads)
                assert np.array_equal(y, y2)
                key = level if act in (5, 7, 11) else "y"     # logistic: same bits per level
                np.testing.assert_array_equal(y, got.setdefault(key, y), err_msg=f"{level} {threads}")
                assert_close(from_blocked(y, c), want, rtol=2e-5, atol=2e-6, what=f"{level} {threads}")
    finally:
        ce.set_isa(before)      # the tests after this one run on the detected level
