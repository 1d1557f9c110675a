"""Layer norm across channels per pixel (cnn_channel_norm_f32), plain NCHW
and blocked NCHW8c, every ISA, against a float64 NumPy reference written
from the definition; PyTorch's LayerNorm over the channels-last axis."""
import numpy as np
import pytest

import cnnengine as ce
import cnnengine.functional as F
from cnnengine import _kernels as K
from cnnengine.backend.cpu.blocked_ops import block, unblock
from tests.conftest import assert_close, torch_or_skip


def _ref(x, gamma, beta, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


SHAPES = [(1, 1, 1, 1), (1, 3, 5, 7), (2, 8, 4, 4), (1, 9, 3, 11), (2, 24, 7, 9), (1, 96, 17, 17),
          (1, 13, 1, 1), (3, 40, 2, 13)]


def _data(rng, shape):
    c = shape[1]
    # an offset mean and unequal scales: a one-pass variance would lose digits
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 3, (1, c, 1, 1)) + 5).astype(np.float32)
    return x, rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_plain(isa, rng, shape):
    x, g, b = _data(rng, shape)
    assert_close(F.channel_norm(x, g, b, 1e-6), _ref(x, g, b, 1e-6), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_blocked(isa, rng, shape):
    n, c, h, w = shape
    x, g, b = _data(rng, shape)
    xb = block(x)
    cp = xb.shape[1] * 8
    xb[..., :][:, -1, :, :, c % 8 or 8:] = 7.0     # finite junk in padding lanes: ignored
    gp, bp = np.zeros(cp, np.float32), np.zeros(cp, np.float32)
    gp[:c], bp[:c] = g, b
    yb = np.full_like(xb, np.nan)
    K.channel_norm(xb.reshape(-1), gp, bp, yb.reshape(-1), n, c, h * w, True, 1e-5, 2)
    assert_close(unblock(yb, c), _ref(x, g, b, 1e-5), rtol=2e-5, atol=2e-5)
    assert (yb.reshape(n, -1, 8)[:, :, c % 8 or 8:][:, -h * w:] == 0).all()   # padding lanes become 0


def test_threads_agree(rng):
    x, g, b = _data(rng, (2, 40, 33, 35))
    y1 = F.channel_norm(x, g, b, threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(F.channel_norm(x, g, b, threads=threads), y1)


def test_torch_layer_norm_channels_last(rng):
    torch = torch_or_skip()
    x, g, b = _data(rng, (2, 24, 6, 5))
    ln = torch.nn.functional.layer_norm(torch.from_numpy(x).permute(0, 2, 3, 1), (24,),
                                        torch.from_numpy(g), torch.from_numpy(b), 1e-6)
    assert_close(F.channel_norm(x, g, b, 1e-6), ln.permute(0, 3, 1, 2).numpy(), rtol=2e-5, atol=2e-5)


def test_errors(rng):
    x, g, b = _data(rng, (1, 4, 3, 3))
    with pytest.raises(ce.ShapeError, match="gamma"):
        F.channel_norm(x, g[:3], b)
    with pytest.raises(ce.ShapeError):
        F.channel_norm(np.zeros(3, np.float32), g, b)
    with pytest.raises(ce.Error):
        K.channel_norm(x.reshape(-1), g, b, np.empty(36, np.float32), 1, 4, 9, False, -1.0, 1)
