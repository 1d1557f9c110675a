"""cnnengine.preprocess.load_image: geometry, normalisation, inputs, errors."""
import os

import numpy as np
import pytest
from PIL import Image

from cnnengine.errors import InputError
from cnnengine.preprocess import IMAGENET, load_image

CAT = os.path.join(os.path.dirname(__file__), "..", "..", "cnnengine", "data", "cat.jpg")


def _reference(im, resize, crop, mean, std):
    """torchvision's Resize(int) + CenterCrop + ToTensor + Normalize, written out."""
    w, h = im.size
    if w <= h:
        size = (resize, int(resize * h / w))
    else:
        size = (int(resize * w / h), resize)
    im = im.resize(size, Image.BILINEAR)
    w, h = im.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    a = np.asarray(im.crop((left, top, left + crop, top + crop)), dtype=np.float32) / 255.0
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    return a.transpose(2, 0, 1)[None]


def test_imagenet_pipeline_matches_reference():
    x = load_image(CAT, IMAGENET)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    ref = _reference(Image.open(CAT).convert("RGB"), 256, 224, IMAGENET["mean"], IMAGENET["std"])
    np.testing.assert_allclose(x, ref, atol=1e-6)


def test_sources_agree():
    pil = Image.open(CAT)
    arr = np.asarray(pil.convert("RGB"))
    a = load_image(CAT, IMAGENET)
    np.testing.assert_array_equal(a, load_image(pil, IMAGENET))
    np.testing.assert_array_equal(a, load_image(arr, IMAGENET))


def test_portrait_and_small_images():
    rng = np.random.default_rng(1)
    tall = rng.integers(0, 256, (300, 100, 3), dtype=np.uint8)
    assert load_image(tall, IMAGENET).shape == (1, 3, 224, 224)
    # no resize, crop larger than the image: zero padded as torchvision does
    x = load_image(np.full((10, 20, 3), 255, np.uint8),
                   {"resize": None, "crop": 16, "mean": [0, 0, 0], "std": [1, 1, 1]})
    assert x.shape == (1, 3, 16, 16)
    assert x[0, 0, 0, 0] == 0.0 and x[0, 0, 3, 0] == 1.0 and x[0, 0, 13, 0] == 0.0


def test_grayscale_and_bgr():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 255
    gray = load_image(rgb, {"resize": 32, "crop": 32, "channels": "L", "mean": [0.0], "std": [1.0]})
    assert gray.shape == (1, 1, 32, 32)
    np.testing.assert_allclose(gray, 76 / 255.0, atol=1e-6)   # ITU-R 601 luma of pure red
    bgr = load_image(rgb, {"resize": 32, "crop": 32, "channels": "BGR", "mean": [0, 0, 0], "std": [1, 1, 1]})
    assert bgr[0, 2].min() == 1.0 and bgr[0, 0].max() == 0.0
    u8 = load_image(np.full((8, 8), 128, np.uint8), {"resize": 32, "crop": 32, "channels": "L",
                                                      "scale": 1.0, "mean": [128], "std": [2]})
    np.testing.assert_array_equal(u8, 0.0)


def test_rgba_composited_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent
    x = load_image(rgba, {"resize": None, "crop": None, "mean": [0, 0, 0], "std": [1, 1, 1]})
    np.testing.assert_array_equal(x, 1.0)


def test_missing_file():
    with pytest.raises(InputError, match="nope.jpg: no such image file"):
        load_image("/nonexistent/dir/nope.jpg", IMAGENET)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture")
    with pytest.raises(InputError, match="notes.jpg: not an image"):
        load_image(path, IMAGENET)


def test_truncated_image(tmp_path):
    raw = open(CAT, "rb").read()
    path = tmp_path / "half.jpg"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="half.jpg"):
        load_image(str(path), IMAGENET)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path, IMAGENET)


@pytest.mark.parametrize("bad", [
    np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8), 42])
def test_bad_sources(bad):
    with pytest.raises(InputError):
        load_image(bad, IMAGENET)


@pytest.mark.parametrize("pre", [
    {"channels": "CMYK"}, {"resize": 0}, {"crop": [1, 2, 3]}, {"mean": [0.5, 0.5]},
    {"std": [0, 1, 1]}, {"scale": "x"}, "RGB"])
def test_bad_preprocess(pre):
    with pytest.raises(InputError):
        load_image(np.zeros((4, 4, 3), np.uint8), pre)
