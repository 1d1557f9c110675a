"""Blocked grouped convolutions with small groups (2, 4, 8 or 16 channels
each way, csrc/ops/nchwc_grouped.c): AVX-512 interleaves them in vector lanes,
against the scalar NCHW oracle and the float64 NumPy reference, and the
portable run the pack falls back to when the level drops after packing."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from tests.conftest import ISAS, assert_close
from tests.kernels._conv_ref import conv2d_np, conv_dims as _dims
from tests.kernels.test_nchwc import ACTS, from_blocked, oracle_case, to_blocked

# (N, C, H, W, groups, kh, kw, stride, pads (t, l, b, r), dilation): C == K
CASES = [
    (1, 16, 9, 9, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),       # groups of 8: one ymm each
    (2, 104, 14, 14, 13, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),   # RegNetY-like, odd block count, batch
    (1, 56, 7, 7, 7, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),       # 7x7 plane: two-row tiles
    (1, 24, 30, 29, 3, 3, 2, (1, 2), (0, 2, 1, 1), (1, 2)),     # wide rows, dilation, asymmetric
    (1, 128, 12, 11, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),   # groups of 4 (ResNeXt 32x4d)
    (1, 40, 11, 13, 10, 3, 3, (2, 2), (1, 0, 2, 1), (1, 1)),    # groups of 4, a half set
    (2, 64, 13, 27, 16, 5, 3, (3, 2), (2, 0, 1, 3), (1, 1)),    # stride 3 x 2, 5x3 kernel
    (1, 40, 11, 13, 20, 3, 3, (1, 1), (2, 1, 0, 1), (2, 1)),    # groups of 2, dilated
    (1, 16, 9, 9, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),       # groups of 2, 1x1
    (1, 32, 1, 1, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),       # 1x1 image
    (1, 8, 5, 40, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),       # one block, 40 wide: several chunks a row
    (2, 48, 7, 9, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),       # groups of 16, one zmm each
    (1, 32, 9, 8, 2, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),       # ... strided: the wide tiles
]


@pytest.mark.parametrize("act", ACTS, ids=["none", "clip", "silu", "elu"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])))
def test_small_group_conv_matches_oracle(case, act, rng, avx2):
    n, c, h, wd, groups, kh, kw, stride, pads, dil = case
    x, w, b, res, dims, shape, oracle = oracle_case(rng, n, c, h, wd, c, kh, kw, stride, pads, dil,
                                                    groups, act)
    if c // groups < 8 and avx2 == "avx2":
        # without AVX-512 the engine expands such groups to blocks (backend/cpu/layout.py)
        with pytest.raises(ce.UnsupportedOpError):
            _k.ConvNCHWc(w.ravel(), b, dims, *act, False)
        return
    pk = _k.ConvNCHWc(w.ravel(), b, dims, *act, False)
    tol = 1e-5 * np.sqrt(c // groups * kh * kw)
    # AVX-512's pack also runs after the level drops, on the portable run
    for level in [avx2] + (["avx2"] if avx2 == "avx512" else []):
        ce.set_isa(level)
        ys = {}
        for threads in (1, 2, 3, 8):
            y = ys[threads] = np.full((n, (c + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
            pk.run(to_blocked(x), to_blocked(res), y, threads)
            assert np.isfinite(y).all(), "padding lanes must stay finite"
            assert_close(from_blocked(y, c), oracle, rtol=tol, what=f"{case} {act} {level} {threads}")
        for threads in (2, 3, 8):   # each output computed once, the same way on any thread
            np.testing.assert_array_equal(ys[threads], ys[1], err_msg=f"{level} threads={threads}")
    ce.set_isa(avx2)
    y = np.full((n, (c + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
    _k.ConvNCHWc(w.ravel(), None, dims, 0, 0.0, 0.0, False).run(to_blocked(x), None, y, 2)
    assert_close(from_blocked(y, c), conv2d_np(x, w, None, stride, pads, dil, groups), rtol=tol)


@pytest.mark.skipif("avx512" not in ISAS, reason="no AVX-512 on this CPU")
@pytest.mark.parametrize("groups", [8, 2], ids=["g4", "g16wino"])
def test_small_group_window_runs_reuse_the_pack(rng, groups):
    """An occlusion window (another input size and padding, the same packed
    weights) of an interleaved pack, and of a Winograd one (groups of 16)."""
    ce.set_isa("avx512")
    c = 32
    w = rng.standard_normal((c, c // groups, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, c, 12, 12)).astype(np.float32)
    dims, _ = _dims(x, w, (1, 1), (1, 1, 1, 1), (1, 1), groups)
    pk = _k.ConvNCHWc(w.ravel(), None, dims, 1, 0.0, 0.0, False)
    xw = x[:, :, 2:9, 3:8]
    wdims, shape = _dims(xw, w, (1, 1), (1, 0, 0, 1), (1, 1), groups)
    y = np.full((1, c // 8, shape[2], shape[3], 8), np.nan, np.float32)
    pk.run_window(to_blocked(xw), None, y, wdims, 2)
    want = np.maximum(conv2d_np(xw, w, None, (1, 1), (1, 0, 0, 1), (1, 1), groups), 0)
    assert_close(from_blocked(y, c), want, rtol=1e-4)


def test_groups_of_other_widths_are_refused(avx2):
    """Groups of 3 channels, or fewer inputs than outputs per group, are
    neither whole blocks nor small interleaved groups."""
    for c, k, groups in ((24, 24, 8), (8, 16, 4)):
        w = np.ones((k, c // groups, 3, 3), np.float32)
        dims = (1, c, 5, 5, k, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, groups, 5, 5)
        with pytest.raises(ce.UnsupportedOpError):
            _k.ConvNCHWc(w.ravel(), None, dims)


@pytest.mark.parametrize("case", [(2, 104, 14, 14, 13, (2, 2)), (1, 40, 11, 13, 10, (1, 1)),
                                  (1, 56, 7, 7, 7, (1, 1)), (2, 48, 9, 8, 3, (1, 1)),
                                  (2, 72, 9, 8, 3, (1, 1))],
                         ids=["g8s2", "g4half", "g8x7", "g16", "g24"])
def test_small_group_pooled_output_is_the_plane_mean(case, rng, avx2, monkeypatch):
    """run_pooled (a squeeze-excitation's squeeze taken by the conv): the
    plane means of the activated output, the same whatever the thread
    count (unstrided 3x3s: on the Winograd run); packs without interleaved
    groups (AVX2) refuse it."""
    n, c, h, wd, groups, stride = case
    monkeypatch.setenv("CNNENGINE_GROUPED_WINO", "1")     # the unstrided ones on Winograd
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((c, c // groups, 3, 3)).astype(np.float32)
    dims, shape = _dims(x, w, stride, (1, 1, 1, 1), (1, 1), groups)
    cb = (c + 7) // 8
    y = np.full((n, cb, shape[2], shape[3], 8), np.nan, np.float32)
    pool = np.full((n, cb, 1, 1, 8), np.nan, np.float32)
    if avx2 == "avx2":
        if c // groups == 8:
            pk = _k.ConvNCHWc(w.ravel(), None, dims, 1, 0.0, 0.0, False)
            with pytest.raises(ce.UnsupportedOpError):
                pk.run_pooled(to_blocked(x), None, y, pool, 1)
        return
    pk = _k.ConvNCHWc(w.ravel(), None, dims, 1, 0.0, 0.0, False)
    want = np.maximum(conv2d_np(x, w, None, stride, (1, 1, 1, 1), (1, 1), groups), 0)
    got = {}
    for level in ("avx512", "avx2"):      # the SIMD run, then the portable one
        ce.set_isa(level)
        for threads in (1, 2, 3, 8):
            pk.run_pooled(to_blocked(x), None, y, pool, threads)
            assert_close(from_blocked(y, c), want, rtol=1e-4)
            assert_close(from_blocked(pool, c).reshape(n, c), want.mean(axis=(2, 3)), rtol=1e-5)
            got[level, threads] = pool.copy()
    ce.set_isa(avx2)
    for threads in (2, 3, 8):   # tile sums added in tile order: the same bits
        assert np.array_equal(got["avx512", 1], got["avx512", threads]), threads


def test_interleaved_packs_can_be_turned_off(rng, monkeypatch):
    """CNNENGINE_GROUPED=0 (A/B timing): groups of 8 on the pair tiles,
    groups of 4 refused (the engine then expands them to blocks)."""
    monkeypatch.setenv("CNNENGINE_GROUPED", "0")
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    for groups in (2, 4):
        w = rng.standard_normal((16, 16 // groups, 3, 3)).astype(np.float32)
        dims, shape = _dims(x, w, (1, 1), (1, 1, 1, 1), (1, 1), groups)
        if groups == 4:
            with pytest.raises(ce.UnsupportedOpError):
                _k.ConvNCHWc(w.ravel(), None, dims)
            continue
        y = np.full((1, 2, 6, 6, 8), np.nan, np.float32)
        _k.ConvNCHWc(w.ravel(), None, dims).run(to_blocked(x), None, y, 2)
        assert_close(from_blocked(y, 16), conv2d_np(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), groups))


# Groups of 4, 8, 16 or 24-64 (whole blocks), 3x3, unstrided: AVX-512 runs them by Winograd F(2x2, 3x3)
# (csrc/x86/nchwc_grouped_wino_avx512.c). (N, C, H, W, groups, pads (t, l, b, r))
WINO_CASES = [
    (1, 256, 10, 10, 32, (1, 1, 1, 1)),    # groups of 8 (ResNeXt's second stage), 2 chunks
    (2, 24, 7, 6, 3, (0, 2, 1, 0)),        # groups of 8, batch 2, asymmetric pads
    (1, 40, 1, 2, 5, (1, 1, 1, 1)),        # groups of 8 on a 1x2 map
    (1, 128, 14, 13, 32, (1, 1, 1, 1)),    # groups of 4, 4 to a zmm (ResNeXt's first stage)
    (2, 40, 9, 7, 10, (2, 0, 1, 1)),       # groups of 4: odd block count (a half set), batch 2
    (1, 400, 7, 7, 25, (1, 1, 1, 1)),      # RegNetX-400MF's last stage: odd plane, 2 chunks
    (2, 48, 9, 8, 3, (1, 1, 1, 1)),        # batch 2, odd rows, even columns
    (1, 32, 13, 11, 2, (0, 2, 1, 0)),      # asymmetric pads, odd output both ways
    (1, 80, 1, 1, 5, (1, 1, 1, 1)),        # 1x1 map: every tap but the centre in the padding
    (1, 16, 6, 29, 1, (2, 2, 2, 2)),       # one group, pads of 2 (whole tiles of zeros), 5 chunks
    (1, 32, 5, 5, 2, (0, 0, 0, 0)),        # no padding: a 3x3 output, the last tile half out
    (1, 72, 14, 13, 3, (1, 1, 1, 1)),      # groups of 24 (RegNetX-1.6GF): a zmm and a ymm column
    (2, 96, 9, 7, 2, (2, 0, 1, 1)),        # groups of 48, batch 2, asymmetric pads
    (1, 112, 15, 15, 2, (1, 1, 1, 1)),     # groups of 56 (RegNetY-8GF), 64 tiles in 6 chunks
    (1, 64, 1, 1, 1, (1, 1, 1, 1)),        # one group of 64 on a 1x1 map
    (1, 120, 6, 5, 3, (0, 1, 2, 0)),       # groups of 40, odd output width
]


@pytest.mark.parametrize("act", [ACTS[0], (1, 0.0, 0.0), ACTS[1]], ids=["none", "relu", "clip"])
@pytest.mark.parametrize("case", WINO_CASES, ids=lambda c: "x".join(map(str, c[:5])))
def test_small_groups_winograd_matches_oracle(case, act, rng, avx2, monkeypatch):
    """Against the scalar oracle and the direct tiles of the same conv
    (CNNENGINE_GROUPED_WINO=0), with and without the residual, at 1-3
    threads; clip (not taken by the Winograd run) on the direct tiles."""
    n, c, h, wd, groups, pads = case
    x, w, b, res, dims, shape, oracle = oracle_case(rng, n, c, h, wd, c, 3, 3, (1, 1), pads, (1, 1),
                                                    groups, act)
    tol = 1e-5 * np.sqrt(c // groups * 9) * 4  # F(2x2) rounds a little more than the direct sum
    if c // groups < 8 and avx2 == "avx2":   # expanded to blocks by the engine (layout.py)
        with pytest.raises(ce.UnsupportedOpError):
            _k.ConvNCHWc(w.ravel(), b, dims, *act, False)
        return
    monkeypatch.setenv("CNNENGINE_GROUPED_WINO", "1")     # small maps too (auto: 36 tiles and up)
    pk = _k.ConvNCHWc(w.ravel(), b, dims, *act, False)
    monkeypatch.setenv("CNNENGINE_GROUPED_WINO", "0")
    direct = _k.ConvNCHWc(w.ravel(), b, dims, *act, False)
    monkeypatch.delenv("CNNENGINE_GROUPED_WINO")
    blocked_res = to_blocked(res)
    ys = {}
    for threads in (1, 2, 3, 8):
        y = ys[threads] = np.full((n, c // 8, shape[2], shape[3], 8), np.nan, np.float32)
        pk.run(to_blocked(x), blocked_res, y, threads)
        assert_close(from_blocked(y, c), oracle, rtol=tol, what=f"{case} {act} {threads}")
        yd = np.full_like(y, np.nan)
        direct.run(to_blocked(x), blocked_res, yd, threads)
        assert_close(y, yd, rtol=tol, what=f"{case} {act} {threads} vs direct")
    for threads in (2, 3, 8):   # each unit its own tiles: the same bits on any thread
        np.testing.assert_array_equal(ys[threads], ys[1], err_msg=f"threads={threads}")
    if avx2 == "avx512":        # the portable run, where the level drops after packing
        ce.set_isa("avx2")
        y = np.full_like(ys[1], np.nan)
        pk.run(to_blocked(x), blocked_res, y, 2)
        ce.set_isa(avx2)
        assert_close(from_blocked(y, c), oracle, rtol=tol, what=f"{case} {act} portable")
    y = np.full((n, c // 8, shape[2], shape[3], 8), np.nan, np.float32)
    pk.run(to_blocked(x), None, y, 2)
    want = conv2d_np(x, w, b, (1, 1), pads, (1, 1), groups)
    if act[0] == 1:
        want = np.maximum(want, 0)
    if act[0] != 2:
        assert_close(from_blocked(y, c), want, rtol=tol, what=f"{case} {act} no residual")
