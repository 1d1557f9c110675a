"""An occlusion heatmap drawn over its image, with a colour bar (Pillow only)."""
import numpy as np

# a perceptually ordered ramp (dark blue -> teal -> yellow), 5 stops interpolated
_STOPS = np.array([[48, 18, 59], [40, 120, 200], [32, 190, 150], [180, 220, 60], [250, 240, 30]], np.float64)


def colormap(v):
    """Values in [0, 1] (any shape) -> uint8 RGB."""
    t = np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0) * (len(_STOPS) - 1)
    i = np.minimum(t.astype(int), len(_STOPS) - 2)
    f = (t - i)[..., None]
    return (_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(np.uint8)


def pixel_map(heatmap, patch, stride, h, w):
    """Each pixel: the mean of the values of the patch positions covering it (NaN where none does)."""
    acc = np.zeros((h, w), np.float64)
    cnt = np.zeros((h, w), np.float64)
    for i, row in enumerate(heatmap):
        for j, v in enumerate(row):
            if np.isfinite(v):
                acc[i * stride:i * stride + patch, j * stride:j * stride + patch] += v
                cnt[i * stride:i * stride + patch, j * stride:j * stride + patch] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)


def display_image(x, preprocess):
    """The preprocessed input (1, C, H, W) back as an HxWx3 uint8 picture."""
    p = preprocess or {}
    img = x[0].transpose(1, 2, 0).astype(np.float64)
    c = img.shape[2]
    std = np.asarray(p.get("std", [1.0] * c), np.float64)
    mean = np.asarray(p.get("mean", [0.0] * c), np.float64)
    scale = float(p.get("scale", 1.0 / 255.0)) or 1.0 / 255.0
    img = np.clip((img * std + mean) / scale, 0, 255).astype(np.uint8)
    if p.get("channels") == "BGR":
        img = img[:, :, ::-1]
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def overlay_png(path, x, preprocess, result, opacity=0.55, min_size=320):
    """Write the heatmap over the image, with a colour bar and its range, as a PNG."""
    from PIL import Image, ImageDraw
    img = display_image(x, preprocess)
    h, w = img.shape[:2]
    pm = pixel_map(result.heatmap, result.patch, result.stride, h, w)
    finite = pm[np.isfinite(pm)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    norm = (pm - lo) / (hi - lo) if hi > lo else np.zeros_like(pm)
    alpha = np.where(np.isfinite(pm), opacity, 0.0)[..., None]
    blend = (img * (1 - alpha) + colormap(norm) * alpha).astype(np.uint8)
    zoom = max(1, int(np.ceil(min_size / max(h, w))))
    pic = Image.fromarray(blend).resize((w * zoom, h * zoom), Image.NEAREST)
    bar_w, pad = 18, 8
    canvas = Image.new("RGB", (pic.width + bar_w + 90, max(pic.height, 120)), (255, 255, 255))
    canvas.paste(pic, (0, 0))
    ramp = colormap(np.linspace(1, 0, pic.height)[:, None].repeat(bar_w, axis=1))
    canvas.paste(Image.fromarray(ramp), (pic.width + pad, 0))
    draw = ImageDraw.Draw(canvas)
    tx = pic.width + pad + bar_w + 4
    draw.text((tx, 0), f"{hi:.3g}", fill=(0, 0, 0))
    draw.text((tx, pic.height - 12), f"{lo:.3g}", fill=(0, 0, 0))
    draw.text((tx, pic.height // 2 - 6), "drop", fill=(0, 0, 0))
    canvas.save(path)
    return path
