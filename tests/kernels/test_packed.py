"""Packed weights share huge-page regions (csrc/core/packed.c): packs of
every kind, made and freed in any order, keep their own weights, and a
region's packs are all accounted for when they go."""
import gc

import numpy as np
import pytest

from cnnengine import _kernels as _k
from tests.conftest import assert_close
from tests.kernels._conv_ref import conv2d_np, conv_dims
from tests.kernels.test_nchwc import from_blocked, to_blocked

pytestmark = pytest.mark.usefixtures("avx2")

# (c, k, kh, stride, groups, h): direct 1x1 and 3x3, Winograd F(4x4) and
# F(2x2), grouped, depthwise, a stem, prime channel counts, and one pack
# over 16 MiB (2048 -> 2064 1x1: a block of its own, not a region's)
SHAPES = [(16, 24, 1, 1, 1, 7), (13, 29, 3, 1, 1, 9), (64, 64, 3, 1, 1, 28),
          (256, 256, 3, 1, 1, 14), (64, 64, 3, 1, 4, 9), (40, 40, 5, 2, 40, 11),
          (3, 32, 3, 2, 1, 17), (2048, 2064, 1, 1, 1, 1), (96, 576, 1, 1, 1, 7),
          (8, 8, 3, 2, 1, 5)]


def _case(rng, c, k, kh, stride, groups, h):
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, kh, kh)).astype(np.float32)
    pads = (kh // 2,) * 4
    dims, shape = conv_dims(x, w, (stride, stride), pads, (1, 1), groups)
    pk = _k.ConvNCHWc(w.ravel(), None, dims, 0, 0.0, 0.0, False)
    return pk, x, shape, conv2d_np(x, w, None, (stride, stride), pads, (1, 1), groups)


def _run(pk, x, shape):
    y = np.full((1, (shape[1] + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
    pk.run(to_blocked(x).ravel(), None, y.ravel(), 2)
    return from_blocked(y, shape[1])


def test_packs_in_shared_regions_keep_their_weights(rng):
    gc.collect()
    gc.disable()      # no pack of another test freed while this one counts
    try:
        live0 = _k.packed_stats()[0]
        kept = []
        for i, spec in enumerate(SHAPES * 2):
            pk, x, shape, ref = _case(rng, *spec)
            y = _run(pk, x, shape)
            c, kh = spec[0] // spec[4], spec[2]
            assert_close(y, ref, rtol=1e-5 * np.sqrt(c * kh * kh), what=str(spec))
            kept.append((pk, x, shape, y, spec))
            if i % 3 == 2:
                del kept[-2]        # holes between the packs still alive
        live, carved, regions = _k.packed_stats()
        big = sum(spec[0] * spec[1] * 4 > 16 << 20 for *_, spec in kept)
        assert big == 1 and live - live0 == len(kept) - big   # a block of its own, not a region's
        assert regions >= 1 and carved > 0
        for pk, x, shape, y, _ in kept:
            assert np.array_equal(_run(pk, x, shape), y)
        del kept, pk
        assert _k.packed_stats()[0] == live0
    finally:
        gc.enable()
