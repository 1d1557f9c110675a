"""A blocked 1x1 conv that normalises its input as it reads it
(ConvNCHWc.run_affine: conv(act(x * scale + shift)), DenseNet's BN-ReLU
before each 1x1) against the scalar NCHW oracle on the normalised input
and against the two kernels it replaces run one after the other."""
import numpy as np
import pytest

from cnnengine import _kernels as _k
from cnnengine.errors import ShapeError, UnsupportedOpError
from cnnengine.functional._common import ACTIVATIONS
from tests.conftest import assert_close
from tests.kernels._conv_ref import conv_dims as _dims
from tests.kernels.test_nchwc import from_blocked, to_blocked

pytestmark = pytest.mark.usefixtures("avx2")


def _padded(v, c):
    out = np.zeros((c + 7) // 8 * 8, np.float32)
    out[:len(v)] = v
    return out


def _act_np(x, act):
    x = x.astype(np.float64)
    if act == "relu":
        return np.maximum(x, 0)
    if act == "silu":
        return x / (1 + np.exp(-x))
    if act == "clip":
        return np.clip(x, 0, 6)
    return x


@pytest.mark.parametrize("n,c,h,w,k", [
    (1, 256, 56, 56, 128),   # DenseNet block 1: pixel chunks the threads share
    (1, 544, 14, 14, 128),   # weights past L2: one chunk a row, passes at 2 threads
    (2, 97, 7, 7, 40),       # prime C, batch 2, a 7x7 plane smaller than K
    (3, 13, 1, 1, 5),        # one pixel, partial blocks, batch 3
    (1, 40, 9, 11, 24),      # odd plane: the chunk count rounded for the threads
])
@pytest.mark.parametrize("act", ["relu", "", "silu", "clip"])
def test_affine_1x1_matches_the_oracle_and_the_unfused_kernels(n, c, h, w, k, act, rng):
    """At 1, 2 and 3 threads, with a residual and a ReLU epilogue: the
    scalar oracle on act(x * scale + shift) (float64 normalisation), and
    nchwc_affine then the plain run, which read the same chunks."""
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    scale = rng.uniform(0.2, 2, c).astype(np.float32)
    shift = rng.standard_normal(c).astype(np.float32)
    wt = rng.standard_normal((k, c, 1, 1)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dims, shape = _dims(x, wt, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    res = rng.standard_normal(shape).astype(np.float32)
    pre = _act_np(x * scale.reshape(1, -1, 1, 1).astype(np.float64) + shift.reshape(1, -1, 1, 1), act)
    oracle = np.full(shape, np.nan, np.float32)
    _k.conv2d_ref(pre.astype(np.float32).ravel(), wt.ravel(), b, res.ravel(), oracle.ravel(), dims,
                  1, 0.0, 0.0, 2)
    code, alpha, beta = (ACTIVATIONS[act] if act else 0), 0.0, (6.0 if act == "clip" else 0.0)
    pk = _k.ConvNCHWc(wt.ravel(), b, dims, 1, 0.0, 0.0, False, False)
    xb, rb = to_blocked(x).ravel(), to_blocked(res).ravel()
    sp, tp = _padded(scale, c), _padded(shift, c)
    cb = (k + 7) // 8
    for threads in (1, 2, 3):
        y = np.full((n, cb, h, w, 8), np.nan, np.float32)
        pk.run_affine(xb, sp, tp, rb, y.ravel(), threads, code, alpha, beta)
        assert np.isfinite(y).all(), "padding lanes must stay finite"
        assert_close(from_blocked(y, k), oracle, rtol=2e-5 * np.sqrt(c), what=f"{threads} threads")
        normed = np.full_like(xb, np.nan)
        _k.nchwc_affine(xb, sp, tp, normed, n, c, h * w, threads, code, alpha, beta)
        two = np.full_like(y, np.nan)
        pk.run(normed, rb, two.ravel(), threads)
        assert_close(y, two, rtol=1e-6, what=f"unfused {threads} threads")


def test_affine_conv_refuses_what_it_cannot_normalise(rng):
    """A 3x3 (its zero padding would be normalised too) and a strided 1x1
    are refused; scale and shift must cover the blocked channels."""
    x = to_blocked(rng.standard_normal((1, 16, 8, 8)).astype(np.float32)).ravel()
    s = np.ones(16, np.float32)
    for ks, stride, pad in ((3, 1, 1), (1, 2, 0)):
        wt = rng.standard_normal((8, 16, ks, ks)).astype(np.float32)
        dims, shape = _dims(np.zeros((1, 16, 8, 8), np.float32), wt, (stride, stride), (pad,) * 4, (1, 1), 1)
        pk = _k.ConvNCHWc(wt.ravel(), None, dims)
        y = np.zeros(int(np.prod(shape)), np.float32)
        with pytest.raises(UnsupportedOpError):
            pk.run_affine(x, s, s, None, y, 1)
    wt = rng.standard_normal((8, 16, 1, 1)).astype(np.float32)
    dims, shape = _dims(np.zeros((1, 16, 8, 8), np.float32), wt, (1, 1), (0,) * 4, (1, 1), 1)
    pk = _k.ConvNCHWc(wt.ravel(), None, dims)
    with pytest.raises(ShapeError):
        pk.run_affine(x, s[:8], s, None, np.zeros(int(np.prod(shape)), np.float32), 1)
