"""Images as Pillow users expect them: 16-bit, palette, CMYK, RGBA and EXIF-rotated."""
import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import cnnengine as ce  # noqa: E402
from cnnengine.preprocess import load_image  # noqa: E402

GRAY = {"channels": "L", "scale": 1 / 255, "mean": [0.0], "std": [1.0]}
RGB = {"channels": "RGB", "scale": 1 / 255, "mean": [0.0] * 3, "std": [1.0] * 3}


def _photo(h=24, w=32):
    """An asymmetric RGB test picture (a gradient and a corner block)."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], axis=-1).astype(np.uint8)
    a[:6, :4] = (255, 0, 0)
    return a


@pytest.mark.parametrize("pre", [GRAY, RGB], ids=["L", "RGB"])
def test_16bit_grayscale_png_matches_8bit(tmp_path, pre):
    g8 = _photo()[:, :, 1]
    g16 = g8.astype(np.uint16) * 257                    # the same photo at 16 bits
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    x8, x16 = load_image(str(tmp_path / "g8.png"), pre), load_image(str(tmp_path / "g16.png"), pre)
    assert x16.max() < 1.0 + 1e-6 and x16.std() > 0.1         # not all white
    np.testing.assert_allclose(x16, x8, atol=1 / 255 + 1e-6)


def test_float_tiff_in_unit_range(tmp_path):
    g = _photo()[:, :, 0].astype(np.float32) / 255
    Image.fromarray(g, "F").save(tmp_path / "f.tiff")
    np.testing.assert_allclose(load_image(str(tmp_path / "f.tiff"), GRAY)[0, 0], g, atol=1 / 255 + 1e-6)


def test_exif_orientation_applied(tmp_path):
    a = _photo()
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6                                    # "rotate 90 CW to view"
    im.save(tmp_path / "phone.png", exif=exif)
    x = load_image(str(tmp_path / "phone.png"), RGB)
    want = np.asarray(Image.fromarray(a).transpose(Image.Transpose.ROTATE_270), np.float32) / 255
    assert x.shape == (1, 3, 32, 24)                    # upright: the sides swapped
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), want, atol=1e-6)


def test_palette_cmyk_rgba(tmp_path):
    a = _photo()
    im = Image.fromarray(a)
    pal = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.save(tmp_path / "p.png")
    x = load_image(str(tmp_path / "p.png"), RGB)
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), np.asarray(pal.convert("RGB"), np.float32) / 255, atol=1e-6)

    cmyk = im.convert("CMYK")
    cmyk.save(tmp_path / "c.tiff")
    x = load_image(str(tmp_path / "c.tiff"), RGB)
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), np.asarray(cmyk.convert("RGB"), np.float32) / 255,
                               atol=1e-6)

    rgba = np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])
    rgba[:, :8, 3] = 0                                   # transparent strip: composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = load_image(str(tmp_path / "a.png"), RGB)
    np.testing.assert_allclose(x[0, :, :, :8], 1.0)
    np.testing.assert_allclose(x[0, :, :, 8:].transpose(1, 2, 0), a[:, 8:] / 255, atol=1e-6)


@pytest.mark.parametrize("key,value", [("scale", float("nan")), ("scale", -1.0), ("mean", [float("inf")] * 3),
                                       ("std", [1.0, -1.0, 1.0]), ("std", [float("nan")] * 3)])
def test_preprocess_non_finite_refused(key, value):
    with pytest.raises(ce.InputError, match=key):
        load_image(_photo(), dict(RGB, **{key: value}))
