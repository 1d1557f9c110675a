"""How the blocked Winograd driver (csrc/x86/winograd_nchwc_avx2.c) splits
a conv between threads: each thread takes a share of a superblock's tiles
(transforming the ones it multiplies), or on few tiles a share of its
output channels. Every split computes each output with the same sums in
the same order, so any thread count gives the same bits, and the result
matches the scalar oracles (direct NCHW for F(4x4, 3x3), the blocked
scalar run for F(2x2, 3x3)). Run on AVX2 and AVX-512; thread counts past
the cores are capped by cnn_threads_begin (2 on a 2-core machine)."""
import numpy as np
import pytest

from cnnengine import _kernels as _k
from tests.kernels.test_nchwc import from_blocked, to_blocked, wino_case

pytestmark = pytest.mark.usefixtures("avx2")

# (N, C, H, W, K, pads); tile counts for F(4x4) / F(2x2) per image
CASES = [
    (1, 24, 28, 28, 40, (1, 1, 1, 1)),     # 49 / 196 tiles: 24 + 25 at 2 threads
    (1, 19, 20, 20, 72, (1, 1, 1, 1)),     # 25 / 100, prime channels, odd last block of 8
    (2, 16, 14, 14, 64, (1, 1, 1, 1)),     # batch 2: 32 / 98 tiles over two images
    (1, 64, 14, 14, 96, (1, 1, 1, 1)),     # 16 / 49: few tiles, output channels split
    (1, 40, 13, 11, 8, (1, 1, 1, 1)),      # one output block: tiles split even when few
    (1, 13, 5, 7, 24, (0, 2, 1, 0)),       # 4 / 12 tiles, asymmetric pads, more threads than tiles
    (1, 256, 34, 60, 40, (1, 1, 1, 1)),    # F(4x4): a superblock of 8 tile rows, then 1 of 15 tiles
]
ACT = (1, 0.0, 0.0)     # ReLU with bias and residual
THREADS = (2, 3, 4)
_ORACLES = {}


def _oracle(i, algo):
    """The scalar oracle's blocked output of case i, once per case."""
    key = (i, algo)
    if key not in _ORACLES:
        n, c, h, wd, k, pads = CASES[i]
        x, w, b, res, dims, shape, direct = wino_case(CASES[i], ACT, np.random.default_rng(i))
        kp = (k + 7) // 8 * 8
        if algo == "f2x3":
            bp = np.zeros(kp, np.float32)
            bp[:k] = b
            ref = np.full((n, kp // 8, shape[2], shape[3], 8), np.nan, np.float32)
            _k.winograd2_nchwc_ref(to_blocked(x).ravel(), _k.winograd2_pack_nchwc(w.ravel(), dims),
                                   bp, to_blocked(res).ravel(), ref.ravel(), dims, *ACT, 1)
            ref = from_blocked(ref, k)
        else:
            ref = direct
        _ORACLES[key] = (x, w, b, res, dims, shape, ref)
    return _ORACLES[key]


@pytest.mark.parametrize("algo", [True, "f2x3"], ids=["f4x3", "f2x3"])
@pytest.mark.parametrize("i", range(len(CASES)), ids=lambda i: "x".join(map(str, CASES[i][:5])))
def test_every_thread_count_gives_the_same_bits(i, algo):
    n, c, h, wd, k, pads = CASES[i]
    x, w, b, res, dims, shape, ref = _oracle(i, algo)
    pk = _k.ConvNCHWc(w.ravel(), b, dims, *ACT, False, algo)
    assert pk.algo == ("winograd_f2x3" if algo == "f2x3" else "winograd_f4x3")
    xb, rb = to_blocked(x).ravel(), to_blocked(res).ravel()
    ys = {}
    for threads in (1,) + THREADS:
        y = np.full((n, (k + 7) // 8, shape[2], shape[3], 8), np.nan, np.float32)
        pk.run(xb, rb, y.ravel(), threads)
        assert np.isfinite(y).all(), threads
        ys[threads] = y
    scale = np.sqrt(c * 9)          # the outputs' magnitude: sums of c*9 unit products
    err = np.max(np.abs(from_blocked(ys[1], k) - ref)) / scale
    assert err < (1e-5 if algo == "f2x3" else 1e-4), err
    for threads in THREADS:
        assert np.array_equal(ys[threads], ys[1]), threads
