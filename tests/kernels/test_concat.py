"""concat against np.concatenate."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import concat


@pytest.mark.parametrize("shapes,axis", [
    ([(1, 3, 5, 5), (1, 7, 5, 5), (1, 1, 5, 5)], 1),
    ([(2, 3, 4, 5), (2, 3, 4, 2)], -1),
    ([(2, 3), (5, 3), (1, 3)], 0),
    ([(7,), (13,)], 0),
    ([(2, 0, 3), (2, 4, 3), (2, 1, 3)], 1),      # an empty input
    ([(3, 2, 1, 1, 2)], 2),
])
def test_concat_matches_numpy(rng, shapes, axis):
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    want = np.concatenate(xs, axis=axis)
    for threads in (1, 2, 3, 8):
        np.testing.assert_array_equal(concat(xs, axis, threads=threads), want)


def test_concat_converts_inputs(rng):
    a = rng.standard_normal((2, 6, 3)).astype(np.float32)[:, ::2]     # non-contiguous
    b = rng.standard_normal((2, 1, 3))                                 # float64
    np.testing.assert_array_equal(concat([a, b]), np.concatenate([a, b.astype(np.float32)], 1))


def test_concat_writes_every_output(rng):
    xs = [rng.standard_normal((3, k, 5)).astype(np.float32) for k in (2, 1, 4)]
    y = np.full(3 * 7 * 5, np.nan, np.float32)
    _k.concat([x.reshape(-1) for x in xs], [2, 1, 4], y, 3, 5, 2)
    np.testing.assert_array_equal(y.reshape(3, 7, 5), np.concatenate(xs, 1))


def test_concat_errors():
    a = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(ce.ShapeError, match="dim 2"):
        concat([a, np.zeros((1, 2, 4, 3), np.float32)])
    with pytest.raises(ce.ShapeError, match="3-D"):
        concat([a, np.zeros((1, 2, 3), np.float32)])
    with pytest.raises(ce.ShapeError, match="axis"):
        concat([a, a], axis=4)
    with pytest.raises(ce.ShapeError, match="non-empty"):
        concat([])
