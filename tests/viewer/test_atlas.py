"""The app's pure-NumPy helpers: atlas layout and packing, normalisation,
filters, receptive-field boxes, predictions."""
import numpy as np
import pytest

from cnnengine.viewer import atlas


@pytest.mark.parametrize("shape", [(1, 5, 7), (3, 1, 1), (8, 4, 4), (13, 3, 5), (1000, 1, 1), (1280, 7, 7)])
@pytest.mark.parametrize("aspect", [0.5, 1.6, 3.0])
def test_layout_covers_every_channel_once(shape, aspect):
    rng = np.random.default_rng(0)
    maps = rng.standard_normal(shape).astype(np.float32)
    order = atlas.channel_order(maps, "mean")
    lay = atlas.make_layout(shape, order, aspect=aspect)
    assert lay.rows * lay.cols >= shape[0] > (lay.rows - 1) * lay.cols
    img = atlas.build_atlas(maps, lay, "channel")
    assert img.shape == lay.shape
    norm = atlas.normalise(maps, "channel")
    seen = set()
    for k in range(lay.count):
        y0, x0 = lay.tile_origin(k)
        ch = lay.order[k]
        seen.add(ch)
        np.testing.assert_array_equal(img[y0:y0 + shape[1], x0:x0 + shape[2]], norm[ch])
        # every pixel of the tile maps back to (channel, y, x)
        for y, x in [(0, 0), (shape[1] - 1, shape[2] - 1)]:
            assert lay.locate(y0 + y + 0.5, x0 + x + 0.5) == (ch, y, x)
    assert seen == set(range(shape[0]))
    # gaps are NaN and locate to None
    if lay.pad:
        assert np.isnan(img[0]).all() and lay.locate(0, 0) is None
    assert np.isnan(img).sum() == img.size - maps.size


def test_normalise_modes_and_constant_channels():
    maps = np.stack([np.zeros((2, 2)), np.arange(4.0).reshape(2, 2), np.full((2, 2), 7.0)]).astype(np.float32)
    per = atlas.normalise(maps, "channel")
    assert np.all(per[0] == 0.0) and np.all(per[2] == 1.0)     # dead channel dark, saturated bright
    np.testing.assert_allclose(per[1], [[0, 1 / 3], [2 / 3, 1]], rtol=1e-6)
    shared = atlas.normalise(maps, "shared")
    np.testing.assert_allclose(shared, maps / 7.0, rtol=1e-6)


def test_channel_order_sorts_descending():
    maps = np.stack([np.full((2, 2), v, np.float32) for v in (1, 5, 3)])
    maps[0, 0, 0] = 100
    assert list(atlas.channel_order(maps, "mean")) == [0, 1, 2]    # 26 > 5 > 3
    assert list(atlas.channel_order(maps, "max")) == [0, 1, 2]
    maps[0, 0, 0] = 1
    assert list(atlas.channel_order(maps, "mean")) == [1, 2, 0]
    assert list(atlas.channel_order(maps, "index")) == [0, 1, 2]


def test_as_maps_shapes():
    assert atlas.as_maps(np.zeros((1, 4, 3, 2))).shape == (4, 3, 2)
    assert atlas.as_maps(np.zeros((2, 10))).shape == (10, 1, 1)
    assert atlas.as_maps(np.zeros(6)).shape == (6, 1, 1)


def test_colorize_uses_lut_and_background():
    lut = atlas.lut_from([(0, 0, 0), (255, 255, 255)])
    img = np.array([[0.0, 1.0, np.nan]], np.float32)
    rgba = atlas.colorize(img, lut)
    assert tuple(rgba[0, 0]) == (0, 0, 0, 255) and tuple(rgba[0, 1]) == (255, 255, 255, 255)
    assert tuple(rgba[0, 2]) == atlas.BACKGROUND


def test_filter_atlas_kinds():
    rng = np.random.default_rng(1)
    img, lay, info = atlas.filter_atlas(rng.standard_normal((16, 3, 5, 5)))
    assert info["kind"] == "rgb" and img.shape == lay.shape + (3,) and lay.count == 16
    assert np.nanmin(img) >= 0 and np.nanmax(img) <= 1
    img, lay, info = atlas.filter_atlas(rng.standard_normal((4, 6, 3, 3)))
    assert info["kind"] == "kernels" and (lay.rows, lay.cols) == (4, 6)
    img, lay, info = atlas.filter_atlas(rng.standard_normal((5, 7, 1, 1)))
    assert info["kind"] == "matrix" and img.shape == (5, 7)
    img, lay, info = atlas.filter_atlas(rng.standard_normal((240, 1, 3, 3)))
    assert info["kind"] == "depthwise" and lay.count == 240 and lay.cols > 1
    img, lay, info = atlas.filter_atlas(rng.standard_normal((512, 512, 3, 3)), max_tiles=4096)
    assert lay.count <= 4096 and info["inputs"] == 8


def test_receptive_box_follows_summary_convention():
    rf = {"size": [7, 5], "jump": [2, 4], "start": [1.0, 0.5]}
    # unit (3, 2): centre at (1 + 3*2, 0.5 + 2*4) = (7, 8.5); +-3 rows, +-2 cols
    assert atlas.receptive_box(rf, 3, 2) == (4.0, 6.5, 11.0, 11.5)
    assert atlas.receptive_box(rf, 0, 0, (10, 10)) == (0.0, 0.0, 5.0, 3.5)
    assert atlas.receptive_box(rf, 9, 9, (10, 10))[2:] == (10.0, 10.0)


def test_probabilities_and_top_k():
    p = atlas.probabilities(np.array([[1.0, 3.0, 2.0]]))
    np.testing.assert_allclose(p.sum(), 1.0)
    assert [i for i, _, _ in atlas.top_k(p, ["a", "b", "c"], k=2)] == [1, 2]
    assert atlas.top_k(p, None, k=1)[0][1] == "class 1"
    already = np.array([0.2, 0.8])
    np.testing.assert_array_equal(atlas.probabilities(already), already)


def test_channel_stats_and_strongest():
    m = np.array([[0, 0], [3, -1]], np.float32)
    s = atlas.channel_stats(m)
    assert s["zeros"] == 0.5 and s["max"] == 3 and s["min"] == -1
    assert atlas.strongest_unit(m) == (1, 0)


def test_strongest_unit_on_a_plateau_and_liveliest_channel():
    m = np.zeros((5, 5), np.float32)
    m[1:4, 1:4] = 6.0          # a saturated ReLU6 plateau: pick its middle, not its corner
    assert atlas.strongest_unit(m) == (2, 2)
    maps = np.stack([np.full((3, 3), 6.0), np.arange(9.0).reshape(3, 3), np.zeros((3, 3))]).astype(np.float32)
    assert atlas.liveliest_channel(maps) == 1
