"""pad (constant / reflect / edge) against np.pad and torch.nn.functional.pad."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import pad

NP_MODE = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


@pytest.mark.parametrize("shape,pads", [((1, 1, 1, 1), (0, 0, 0, 0)), ((2, 3, 5, 7), (1, 2, 3, 4)),
                                        ((1, 13, 4, 9), (3, 0, 0, 8)), ((3, 6, 11), (2, 5, 1, 3))])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_matches_numpy(rng, shape, pads, mode):
    pt, pl, pb, pr = pads
    h, w = shape[-2:]
    if mode == "reflect" and (max(pt, pb) >= h or max(pl, pr) >= w):
        pytest.skip("reflect needs pad < dim")
    x = rng.standard_normal(shape).astype(np.float32)
    width = [(0, 0)] * (x.ndim - 2) + [(pt, pb), (pl, pr)]
    kw = {"constant_values": 2.5} if mode == "constant" else {}
    want = np.pad(x, width, mode=NP_MODE[mode], **kw)
    for threads in (1, 2, 3, 8):
        np.testing.assert_array_equal(pad(x, pads, mode, 2.5, threads=threads), want)


def test_pad_edge_of_single_pixel(rng):
    x = np.full((1, 2, 1, 1), 3.0, np.float32)
    np.testing.assert_array_equal(pad(x, (2, 3, 1, 0), "edge"), np.full((1, 2, 4, 4), 3.0))
    np.testing.assert_array_equal(pad(np.zeros((1, 1, 0, 2), np.float32), 1, value=1.0),
                                  np.ones((1, 1, 2, 4)))


def test_pad_writes_every_output(rng):
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    for mode in (0, 1, 2):
        y = np.full(2 * 7 * 9, np.nan, np.float32)
        _k.pad(x.reshape(-1), y, 2, 4, 5, (1, 2, 2, 2), mode, 0.0, 2)
        assert not np.isnan(y).any()


@pytest.mark.parametrize("mode,tmode", [("constant", "constant"), ("reflect", "reflect"),
                                        ("edge", "replicate")])
def test_pad_vs_torch(rng, mode, tmode):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    want = torch.nn.functional.pad(torch.from_numpy(x), (2, 3, 1, 4), mode=tmode).numpy()
    np.testing.assert_array_equal(pad(x, (1, 2, 4, 3), mode), want)
    np.testing.assert_array_equal(pad(x, (1, 2, 4, 3), tmode if tmode == "replicate" else mode),
                                  want)


def test_pad_errors():
    x = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ce.ShapeError, match="reflect padding must be smaller"):
        pad(x, (3, 0, 0, 0), "reflect")
    with pytest.raises(ce.ShapeError, match="unknown mode"):
        pad(x, 1, "wrap")
    with pytest.raises(ce.ShapeError, match=">= 0"):
        pad(x, (-1, 0, 0, 0))
    with pytest.raises(ce.ShapeError, match="3-D or 4-D"):
        pad(np.zeros((3, 3), np.float32), 1)
    y = np.zeros(64, np.float32)   # the C layer checks reflect itself
    with pytest.raises(ce.ShapeError):
        _k.pad(x.reshape(-1), y, 1, 3, 3, (0, 0, 3, 0), 1, 0.0, 1)
