"""The Winograd filter transform (csrc/ops/winograd_filter.h): the AVX2 and
AVX-512 panel transforms against the scalar oracle (filter_tile per lane,
bit for bit: both sum in double in the same order, no FMA contraction) and
against a float64 NumPy G g G^T written from the definition, in both packed
layouts (csrc/ops/winograd.h), on odd shapes: channels not a multiple of 8
or 16, one input channel, one output channel, primes, a partial last panel.
"""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k

G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
# (K, C)
SHAPES = [(1, 1), (7, 1), (1, 13), (13, 5), (16, 16), (17, 3), (24, 8), (31, 29), (40, 24),
          (5, 37), (61, 2)]
ISAS = [i for i in ("scalar", "avx2", "avx512")
        if ("scalar", "avx2", "avx512").index(i) <= ("scalar", "avx2", "avx512").index(ce.detected_isa())]


def _dims(c, k):
    return (1, c, 6, 6, k, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6)


def _u(wt):
    return np.einsum("ia,kcab,jb->ijkc", G, wt.astype(np.float64), G).reshape(36, *wt.shape[:2])


def _nchwc_expect(wt):
    """packed[xi*kp*cp + p0*cp + c*pw + k-p0]: panels of 16 outputs (8 last), zero padded."""
    k, c = wt.shape[:2]
    kp, cp = -(-k // 8) * 8, -(-c // 8) * 8
    full = np.zeros((36, kp, cp))
    full[:, :k, :c] = _u(wt)
    out = np.zeros((36, kp * cp))
    for p0 in range(0, kp, 16):
        pw = min(16, kp - p0)
        out[:, p0 * cp:(p0 + pw) * cp] = full[:, p0:p0 + pw, :].transpose(0, 2, 1).reshape(36, -1)
    return out.ravel()


def _flat_expect(wt):
    k, c = wt.shape[:2]
    kp = -(-k // 6) * 6
    full = np.zeros((36, kp, c))
    full[:, :k] = _u(wt)
    return full.reshape(36, kp // 6, 6, c).transpose(0, 1, 3, 2).ravel()


def _packs(wt, isa):
    dims = _dims(wt.shape[1], wt.shape[0])
    before = ce.active_isa()
    try:
        ce.set_isa(isa)
        return _k.winograd_pack_nchwc(wt.ravel(), dims), _k.winograd_pack(wt.ravel(), dims)
    finally:
        ce.set_isa(before)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"K{s[0]}C{s[1]}")
def test_matches_numpy_and_oracle(shape, isa, rng):
    wt = rng.standard_normal((*shape, 3, 3)).astype(np.float32)
    nchwc, flat = _packs(wt, isa)
    np.testing.assert_allclose(nchwc, _nchwc_expect(wt), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(flat, _flat_expect(wt), rtol=1e-6, atol=1e-7)
    if isa != "scalar":
        ref_nchwc, ref_flat = _packs(wt, "scalar")
        np.testing.assert_array_equal(nchwc, ref_nchwc)
        np.testing.assert_array_equal(flat, ref_flat)


def test_padding_is_zero_not_garbage(rng):
    """The buffer is not zeroed before packing: every padded lane and channel row must be written."""
    for _ in range(3):  # fresh allocations may reuse dirty memory
        wt = (rng.standard_normal((11, 5, 3, 3)) + 100).astype(np.float32)
        nchwc, flat = _packs(wt, ce.detected_isa())
        assert np.isfinite(nchwc).all() and np.isfinite(flat).all()
        full = nchwc.reshape(36, 8, 16)  # kp=16, cp=8: one panel of 16, [c][lane]
        assert not full[:, 5:, :].any() and not full[:, :, 11:].any()
        assert not flat.reshape(36, 2, 5, 6)[:, 1, :, 5:].any()  # kp=12: lane 11 past K
