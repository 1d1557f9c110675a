"""Blocked channel gather (csrc/ops/channel_gather.c): against a NumPy
reference written from the definition, on both ISAs."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as K

from tests.conftest import ISAS


@pytest.fixture(params=ISAS)
def isa(request):
    K.set_isa(request.param)
    yield request.param
    K.set_isa(ce.detected_isa())


def blocked(x):
    n, c, h, w = x.shape
    cb = (c + 7) // 8
    xp = np.zeros((n, cb * 8, h, w), np.float32)
    xp[:, :c] = x
    return np.ascontiguousarray(xp.reshape(n, cb, 8, h * w).transpose(0, 1, 3, 2))


def gather(xs, src, threads=2):
    """src: [(input index, channel)] per output channel."""
    n, _, h, w = xs[0].shape
    y = np.full(n * ((len(src) + 7) // 8) * h * w * 8, np.nan, np.float32)
    K.nchwc_gather([blocked(x).reshape(-1) for x in xs], np.array([x.shape[1] for x in xs], np.int64),
                   np.array([i for i, _ in src], np.int32), np.array([c for _, c in src], np.int64),
                   y, n, h * w, threads)
    return y.reshape(n, -1, h * w, 8)


def reference(xs, src):
    return blocked(np.stack([xs[i][:, c] for i, c in src], axis=1))


@pytest.mark.parametrize("n,hw", [(1, (1, 1)), (2, (5, 3)), (3, (23, 29))])
def test_shuffle_of_a_partial_block_concat(isa, n, hw, rng):
    """ShuffleNet: out channel j = (j % 2) * 29 + j // 2 of Concat(a, b)."""
    a, b = (rng.standard_normal((n, 29, *hw)).astype(np.float32) for _ in range(2))
    src = [(j % 2, j // 2) for j in range(58)]
    y = gather([a, b], src)
    assert np.array_equal(y, reference([a, b], src))
    assert not np.isnan(y).any()          # padding lanes written (zero)


@pytest.mark.parametrize("start,stop", [(0, 16), (8, 23), (3, 11), (5, 6), (0, 23)])
def test_slices(isa, start, stop, rng):
    """Block-aligned slices (a copy of block planes) and unaligned ones."""
    x = rng.standard_normal((2, 23, 7, 4)).astype(np.float32)
    src = [(0, c) for c in range(start, stop)]
    assert np.array_equal(gather([x], src), reference([x], src))


def test_arbitrary_sources_with_repeats(isa, rng):
    """Channels of three inputs in random order, some taken twice."""
    xs = [rng.standard_normal((2, c, 6, 5)).astype(np.float32) for c in (3, 17, 8)]
    src = [(int(i), int(rng.integers(xs[i].shape[1]))) for i in rng.integers(3, size=37)]
    for threads in (1, 2, 3, 8):
        assert np.array_equal(gather(xs, src, threads=threads), reference(xs, src)), threads


def test_bad_sources_are_rejected(isa, rng):
    x = rng.standard_normal((1, 5, 2, 2)).astype(np.float32)
    for src in ([(0, 5)], [(1, 0)], [(0, -1)]):
        with pytest.raises(ce.Error):
            gather([x], src)
    with pytest.raises(ce.Error):   # y too small for the channels asked
        K.nchwc_gather([blocked(x).reshape(-1)], np.array([5], np.int64), np.zeros(9, np.int32),
                       np.zeros(9, np.int64), np.zeros(32, np.float32), 1, 4, 1)
