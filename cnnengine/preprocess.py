"""Turn an image into a model input, following the model's preprocess metadata.

The preprocess metadata is a plain JSON-able dict (stored with zoo models and
in the native file's metadata):

=========  ==========================================================================
key        meaning
=========  ==========================================================================
resize     int or null: resize so that the *shorter* side is this many pixels,
           keeping the aspect ratio (bilinear, antialiased, as torchvision's
           ``Resize(int)`` on PIL images). null: no resize.
crop       int, [h, w] or null: centre crop to this size (zero padding if the
           image is smaller, as torchvision's ``CenterCrop``). null: no crop.
channels   "RGB", "BGR" or "L" (grayscale); the image is converted to this mode
           and the output has 3, 3 or 1 channels in that order.
scale      float, default 1/255: pixel values (0..255) are multiplied by this
           first, so the default maps them to [0, 1].
mean, std  per-channel lists (length = number of channels, or 1 to broadcast):
           after scaling, ``x = (x - mean) / std``.
=========  ==========================================================================

Example (torchvision ImageNet models)::

    {"resize": 256, "crop": 224, "channels": "RGB", "scale": 1/255,
     "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

:func:`load_image` returns a float32 array of shape (1, C, H, W).
"""
from __future__ import annotations

import os
import struct

import numpy as np

from .errors import InputError

__all__ = ["load_image", "IMAGENET", "validate"]

IMAGENET = {
    "resize": 256,
    "crop": 224,
    "channels": "RGB",
    "scale": 1.0 / 255.0,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}

_CHANNELS = {"RGB": 3, "BGR": 3, "L": 1}


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a hard dependency
        raise InputError("reading images needs Pillow (pip install Pillow)") from None
    return Image


def _size_pair(value, key):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        pair = (int(value[0]), int(value[1]))
    else:
        raise InputError(f"preprocess[{key!r}] must be an int or [h, w], got {value!r}")
    if min(pair) < 1 or max(pair) > 16384:
        raise InputError(f"preprocess[{key!r}] = {value!r} is out of range 1..16384")
    return pair


def validate(preprocess):
    """Check a preprocess dict; return a normalised copy (fills defaults)."""
    if not isinstance(preprocess, dict):
        raise InputError(f"preprocess must be a dict, got {type(preprocess).__name__}")
    p = dict(preprocess)
    channels = p.get("channels", "RGB")
    if channels not in _CHANNELS:
        raise InputError(f"preprocess['channels'] must be one of {sorted(_CHANNELS)}, got {channels!r}")
    p["channels"] = channels
    n = _CHANNELS[channels]
    resize = p["resize"] = p.get("resize")
    if resize is not None:
        if isinstance(resize, bool) or not isinstance(resize, (int, np.integer)) or not 1 <= resize <= 16384:
            raise InputError(f"preprocess['resize'] must be a positive int or null, got {resize!r}")
        p["resize"] = int(resize)
    crop = p.get("crop")
    p["crop"] = None if crop is None else _size_pair(crop, "crop")
    scale = p.get("scale", 1.0 / 255.0)
    try:
        p["scale"] = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"preprocess['scale'] must be a number, got {scale!r}") from None
    if not np.isfinite(p["scale"]) or p["scale"] <= 0:
        raise InputError(f"preprocess['scale'] must be a finite number > 0, got {scale!r}")
    for key, default in (("mean", 0.0), ("std", 1.0)):
        v = p.get(key, [default] * n)
        v = [v] if isinstance(v, (int, float)) else v
        try:
            arr = np.asarray(v, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(f"preprocess[{key!r}] must be a list of numbers, got {v!r}") from None
        if arr.size == 1:
            arr = np.repeat(arr, n)
        if arr.size != n:
            raise InputError(f"preprocess[{key!r}] has {arr.size} values for {n} channel(s) ({channels})")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"preprocess[{key!r}] must be finite numbers, got {arr.tolist()}")
        if key == "std" and np.any(arr <= 0):
            raise InputError(f"preprocess['std'] must be > 0, got {arr.tolist()}")
        p[key] = arr.tolist()
    return p


def _open(src):
    """A PIL image from a path, a PIL image or an HxW(xC) uint8 array."""
    Image = _pil()
    if isinstance(src, Image.Image):
        return src, "<PIL image>"
    if isinstance(src, np.ndarray):
        arr = src
        if arr.dtype != np.uint8:
            raise InputError(f"image arrays must be uint8 HxWxC, got dtype {arr.dtype}")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
            raise InputError(f"image arrays must be HxW or HxWxC with C in 1, 3, 4; got shape {arr.shape}")
        return Image.fromarray(np.ascontiguousarray(arr)), "<array>"
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        try:
            im = Image.open(path)
            im.load()  # decode now so truncation is reported here
        except FileNotFoundError:
            raise InputError(f"{path}: no such image file") from None
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory, not an image") from None
        except Image.UnidentifiedImageError:
            raise InputError(f"{path}: not an image Pillow can read") from None
        except Image.DecompressionBombError as exc:
            raise InputError(f"{path}: image too large ({exc})") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{path}: damaged or truncated image ({exc})") from None
        return im, path
    raise InputError(f"an image must be a path, a PIL image or a uint8 array, got {type(src).__name__}")


def _upright(im):
    """The image as it should be seen: EXIF orientation applied (phone photos
    are stored sideways with a tag saying so), as ImageOps.exif_transpose."""
    from PIL import ImageOps
    try:
        return ImageOps.exif_transpose(im)
    except (SyntaxError, ValueError, KeyError, TypeError, ZeroDivisionError, struct.error):
        return im      # a damaged EXIF block: the pixels are still good


def _to_8bit(im):
    """16-bit and 32-bit integer grayscale (PNG/TIFF: modes I;16*, I) and float
    images (F) as 8-bit L, scaled from the range of their type (0..65535 for
    16-bit data, 0..1 for floats that stay inside it) rather than clipped at
    255, which makes a 16-bit photo all white."""
    Image = _pil()
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode == "F":
            hi = 1.0 if a.size and np.nanmin(a) >= 0 and np.nanmax(a) <= 1 else 255.0
        else:
            top = float(a.max()) if a.size else 0.0
            hi = 65535.0 if top <= 65535 else top
        a = np.clip(np.nan_to_num(a, nan=0.0) * (255.0 / hi), 0, 255)
        return Image.fromarray(np.round(a).astype(np.uint8), "L")
    return im


def _resize_shorter(im, size):
    """torchvision Resize(int): shorter side -> size, longer side truncated."""
    Image = _pil()
    w, h = im.size
    if min(w, h) == size:
        return im
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    return im.resize((max(new_w, 1), max(new_h, 1)), Image.BILINEAR)


def _center_crop(arr, crop):
    """torchvision CenterCrop on an HxWxC array, zero padding where too small."""
    ch, cw = crop
    h, w = arr.shape[:2]
    if h < ch or w < cw:
        pt, pl = (ch - h) // 2 if h < ch else 0, (cw - w) // 2 if w < cw else 0
        pb, pr = (ch - h + 1) // 2 if h < ch else 0, (cw - w + 1) // 2 if w < cw else 0
        arr = np.pad(arr, ((pt, pb), (pl, pr), (0, 0)))
        h, w = arr.shape[:2]
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return arr[top:top + ch, left:left + cw]


def load_image(src, preprocess):
    """Read and preprocess an image: float32 array (1, C, H, W).

    ``src``: a file path, a PIL image, or an HxW / HxWxC uint8 array (RGB or
    RGBA). ``preprocess``: the dict described in this module's docstring.
    Failures (missing file, not an image, truncated data, bad metadata) raise
    :class:`cnnengine.errors.InputError` naming the file.
    """
    p = validate(preprocess)
    im, name = _open(src)
    mode = "L" if p["channels"] == "L" else "RGB"
    try:
        im = _upright(im)
        im = _to_8bit(im)
        if im.mode != mode:
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # composite transparent images on white rather than black
                im = im.convert("RGBA")
                bg = _pil().new("RGBA", im.size, (255, 255, 255, 255))
                bg.alpha_composite(im)
                im = bg
            im = im.convert(mode)
        if p["resize"] is not None:
            im = _resize_shorter(im, p["resize"])
        arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"{name}: cannot convert image ({exc})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if p["crop"] is not None:
        arr = _center_crop(arr, p["crop"])
    if p["channels"] == "BGR":
        arr = arr[:, :, ::-1]
    x = arr.astype(np.float32) * np.float32(p["scale"])
    mean = np.asarray(p["mean"], dtype=np.float32)
    std = np.asarray(p["std"], dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def guess_preprocess(model):
    """ImageNet conventions sized to the model's input, for files without metadata."""
    from .errors import InputError
    shape = model.inputs[0].shape
    if len(shape) != 4:
        raise InputError(f"input {model.inputs[0].name!r} has shape {shape}, not an image (N,C,H,W)")
    c = shape[1] if isinstance(shape[1], int) else 3
    size = shape[2] if isinstance(shape[2], int) else 224
    if c == 1:
        return {"resize": size, "crop": size, "mean": [0.5], "std": [0.5], "channels": "L", "scale": 1 / 255}
    return {"resize": int(round(size / 0.875)), "crop": size, "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225], "channels": "RGB", "scale": 1 / 255}
