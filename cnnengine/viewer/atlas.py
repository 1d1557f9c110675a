"""Pure-NumPy helpers for the app: feature-map atlases, filter grids, colour
mapping, channel statistics, receptive-field boxes and predictions.

Nothing here imports Qt, so all of it is unit-testable on its own. An atlas
packs C maps of H x W into one image of rows x cols tiles separated by `pad`
background pixels; `Layout` maps between atlas pixels and (channel, y, x).
"""
import math
from dataclasses import dataclass

import numpy as np

BACKGROUND = (24, 26, 30, 255)   # RGBA of the gaps between tiles


# ------------------------------------------------------------ activations
def as_maps(act):
    """Any activation -> (C, H, W) float32 maps of the first batch item.

    (N, C, H, W) -> (C, H, W); (N, K) / (K,) -> K maps of 1 x 1; (N, A, B) -> A maps of B x 1."""
    a = np.asarray(act, dtype=np.float32)
    if a.ndim >= 4:
        a = a[0]
        if a.ndim > 3:
            a = a.reshape(a.shape[0], a.shape[1], -1)
        return a
    if a.ndim == 3:
        return a[0].reshape(a.shape[1], -1, 1) if a.shape[0] == 1 else a.reshape(a.shape[0], -1, 1)
    if a.ndim == 2:
        return a[0].reshape(-1, 1, 1)
    return a.reshape(-1, 1, 1)


def channel_order(maps, sort="index"):
    """Display order of the channels: "index", "mean" or "max" (descending)."""
    c = maps.shape[0]
    if sort == "index" or c == 0:
        return np.arange(c)
    flat = maps.reshape(c, -1)
    key = flat.mean(axis=1) if sort == "mean" else flat.max(axis=1)
    return np.argsort(-key, kind="stable")


# ----------------------------------------------------------------- layout
@dataclass(frozen=True)
class Layout:
    count: int        # tiles in use
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    pad: int
    order: tuple      # order[k] = channel shown in tile k

    @property
    def shape(self):
        """(height, width) of the atlas in pixels."""
        return (self.rows * (self.tile_h + self.pad) + self.pad,
                self.cols * (self.tile_w + self.pad) + self.pad)

    def tile_origin(self, k):
        """(y, x) of the top-left pixel of tile k."""
        r, c = divmod(k, self.cols)
        return (self.pad + r * (self.tile_h + self.pad), self.pad + c * (self.tile_w + self.pad))

    def locate(self, y, x):
        """Atlas pixel (row y, column x) -> (channel, y, x) inside the map, or None on a gap."""
        y, x = int(math.floor(y)), int(math.floor(x))
        sh, sw = self.tile_h + self.pad, self.tile_w + self.pad
        if y < self.pad or x < self.pad:
            return None
        r, ty = divmod(y - self.pad, sh)
        c, tx = divmod(x - self.pad, sw)
        if ty >= self.tile_h or tx >= self.tile_w or r >= self.rows or c >= self.cols:
            return None
        k = r * self.cols + c
        if k >= self.count:
            return None
        return int(self.order[k]), int(ty), int(tx)

    def tile_of_channel(self, channel):
        hits = np.flatnonzero(np.asarray(self.order) == channel)
        return int(hits[0]) if hits.size else None


def grid_shape(count, tile_h, tile_w, aspect=1.6, pad=1):
    """(rows, cols) so that the atlas is roughly `aspect` (width / height)."""
    if count <= 0:
        return 0, 0
    th, tw = tile_h + pad, tile_w + pad
    cols = int(round(math.sqrt(count * aspect * th / tw)))
    cols = max(1, min(count, cols))
    rows = -(-count // cols)
    # Prefer the fewest empty tiles among nearby column counts.
    best = (rows * cols - count, abs(math.log((cols * tw) / (rows * th) / aspect)), rows, cols)
    for c in range(max(1, cols - 2), min(count, cols + 2) + 1):
        r = -(-count // c)
        cand = (r * c - count, abs(math.log((c * tw) / (r * th) / aspect)), r, c)
        if cand[1] < best[1] + 0.15 and cand[0] < best[0]:
            best = cand
    return best[2], best[3]


def make_layout(maps_shape, order=None, aspect=1.6, pad=None):
    c, h, w = maps_shape
    if pad is None:
        pad = 0 if h * w == 1 else 1
    order = np.arange(c) if order is None else np.asarray(order)
    rows, cols = grid_shape(c, h, w, aspect, pad)
    return Layout(c, rows, cols, h, w, pad, tuple(int(i) for i in order))


# ----------------------------------------------------------- normalising
def normalise(maps, mode="channel"):
    """Scale maps to [0, 1]: per channel ("channel") or over the layer ("shared");
    "none" keeps values the caller already scaled. A constant channel maps to 0
    when <= 0 and to 1 when positive."""
    maps = np.asarray(maps, dtype=np.float32)
    if mode == "none":
        return maps
    if maps.size == 0:
        return maps.copy()
    if mode == "shared" or maps.shape[1] * maps.shape[2] == 1:
        lo, hi = float(np.nanmin(maps)), float(np.nanmax(maps))
        lo = np.full((maps.shape[0], 1, 1), lo, np.float32)
        hi = np.full((maps.shape[0], 1, 1), hi, np.float32)
    else:
        lo = maps.min(axis=(1, 2), keepdims=True)
        hi = maps.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    # A constant channel has nothing to scale: dark when it is <= 0 (a dead
    # ReLU), bright when positive (a saturated ReLU6).
    flat = np.where(lo > 0, 1.0, 0.0).astype(np.float32)
    out = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), flat)
    return np.clip(out, 0, 1).astype(np.float32)


def build_atlas(maps, layout, mode="channel"):
    """(C, H, W) maps -> float atlas in [0, 1] with NaN in the gaps."""
    norm = normalise(maps, mode)
    out = np.full(layout.shape, np.nan, np.float32)
    if layout.count == 0:
        return out
    h, w, p = layout.tile_h, layout.tile_w, layout.pad
    ordered = norm[np.asarray(layout.order)]
    full = layout.rows * layout.cols
    if full > layout.count:
        ordered = np.concatenate([ordered, np.full((full - layout.count, h, w), np.nan, np.float32)])
    tiles = ordered.reshape(layout.rows, layout.cols, h, w)
    if p == 0:
        return np.ascontiguousarray(tiles.transpose(0, 2, 1, 3).reshape(layout.rows * h, layout.cols * w))
    view = out[p:, p:].reshape(layout.rows, h + p, layout.cols, w + p)
    view[:, :h, :, :w] = tiles.transpose(0, 2, 1, 3)
    return out


def lut_from(colors, n=256):
    """An (n, 4) uint8 RGBA lookup table from (k, 3|4) colour stops."""
    c = np.asarray(colors, dtype=np.float64)
    if c.shape[1] == 3:
        c = np.concatenate([c, np.full((len(c), 1), 255.0)], axis=1)
    xs = np.linspace(0, 1, len(c))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, xs, c[:, i]) for i in range(4)], axis=1).round().astype(np.uint8)


def colorize(atlas, lut, background=BACKGROUND):
    """Float atlas in [0, 1] (NaN = gap) -> (H, W, 4) uint8 through `lut`."""
    lut = np.asarray(lut, dtype=np.uint8)
    if lut.shape[1] == 3:
        lut = np.concatenate([lut, np.full((len(lut), 1), 255, np.uint8)], axis=1)
    gaps = np.isnan(atlas)
    idx = np.clip(np.nan_to_num(atlas, nan=0.0) * (len(lut) - 1) + 0.5, 0, len(lut) - 1).astype(np.intp)
    rgba = lut[idx]
    rgba[gaps] = background
    return rgba


# ---------------------------------------------------------------- filters
def filter_atlas(w, rgb=None, max_tiles=4096, aspect=1.6):
    """Conv weights (O, I, kh, kw) -> (rgba-or-float atlas, layout, info).

    rgb (default: I == 3): one colour tile per output filter, each scaled
    symmetrically around grey by its own largest |weight|. Otherwise a float
    atlas in [0, 1] (0.5 = zero weight, symmetric per output filter) of one tile per
    (output, input) kernel, rows = outputs, capped at `max_tiles`; 1 x 1 kernels
    become one O x I matrix, depthwise kernels (I == 1) one tile per filter.
    info = {"kind": "rgb"|"kernels"|"matrix"|"depthwise", "inputs": n shown}."""
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 4:
        w = w.reshape(w.shape[0], -1, 1, 1)
    o, i, kh, kw = w.shape
    scale = np.abs(w).reshape(o, -1).max(axis=1).reshape(o, 1, 1, 1)
    sym = 0.5 + 0.5 * w / np.where(scale > 0, scale, 1)
    if rgb is None:
        rgb = i == 3
    if rgb and i == 3:
        lay = make_layout((o, kh, kw), aspect=aspect, pad=1)
        chans = [build_atlas(sym[:, c], lay, mode="none") for c in range(3)]
        return np.stack(chans, axis=-1), lay, {"kind": "rgb", "inputs": 3}
    if i == 1 and kh * kw > 1:        # depthwise: one tile per filter, packed in a grid
        lay = make_layout((o, kh, kw), aspect=aspect, pad=1)
        return build_atlas(sym[:, 0], lay, mode="none"), lay, {"kind": "depthwise", "inputs": 1}
    if kh * kw == 1:
        mat = sym[:, :, 0, 0]
        lay = Layout(1, 1, 1, o, i, 0, (0,))
        return mat.astype(np.float32), lay, {"kind": "matrix", "inputs": i}
    n_in = max(1, min(i, max_tiles // max(o, 1)))
    tiles = sym[:, :n_in].reshape(o * n_in, kh, kw)
    p = 1
    lay = Layout(o * n_in, o, n_in, kh, kw, p, tuple(range(o * n_in)))
    return build_atlas(tiles, lay, mode="none"), lay, {"kind": "kernels", "inputs": n_in}


# ------------------------------------------------------------------ stats
def channel_stats(m):
    """min, max, mean, std and the fraction of exact zeros of one map."""
    m = np.asarray(m, dtype=np.float32)
    if m.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "std": 0.0, "zeros": 0.0}
    return {"min": float(m.min()), "max": float(m.max()), "mean": float(m.mean()),
            "std": float(m.std()), "zeros": float(np.count_nonzero(m == 0) / m.size)}


def strongest_unit(m):
    """(y, x) of the largest value of a 2-D map. On ties (a saturated ReLU6
    plateau) the tied unit nearest the plateau's centroid."""
    m = np.asarray(m)
    top = m.max()
    ys, xs = np.nonzero(m == top)
    if ys.size <= 1:
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape))
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return int(ys[k]), int(xs[k])


def liveliest_channel(maps):
    """The channel with the largest spread (std) of values: an informative default."""
    maps = np.asarray(maps)
    if maps.shape[0] == 0:
        return 0
    return int(np.argmax(maps.reshape(maps.shape[0], -1).std(axis=1)))


# -------------------------------------------------------- receptive field
def receptive_box(rf, y, x, input_hw=None):
    """Input pixels seen by output unit (y, x): (top, left, bottom, right) in
    image coordinates where pixel k spans [k, k+1), clipped to the input.

    rf = LayerInfo.receptive_field: unit i is centred on input pixel
    start + i * jump and covers +- (size - 1) / 2 pixels around it."""
    (sh, sw), (jh, jw), (th, tw) = rf["size"], rf["jump"], rf["start"]
    cy, cx = th + y * jh, tw + x * jw
    top, left = cy - (sh - 1) / 2, cx - (sw - 1) / 2
    bottom, right = cy + (sh - 1) / 2 + 1, cx + (sw - 1) / 2 + 1
    if input_hw is not None:
        H, W = input_hw
        top, left = max(0.0, top), max(0.0, left)
        bottom, right = min(float(H), bottom), min(float(W), right)
    return float(top), float(left), float(bottom), float(right)


def receptive_centre(rf, y, x):
    """Centre of unit (y, x)'s field, in image coordinates (pixel centres at k + 0.5)."""
    return (rf["start"][0] + y * rf["jump"][0] + 0.5, rf["start"][1] + x * rf["jump"][1] + 0.5)


# ------------------------------------------------------------ predictions
def probabilities(logits):
    """Softmax of logits (float64); returned as is when it already sums to one."""
    v = np.asarray(logits, dtype=np.float64).reshape(-1)
    if v.size and v.min() >= 0 and abs(v.sum() - 1.0) < 1e-3:
        return v
    e = np.exp(v - v.max())
    return e / e.sum()


def top_k(probs, labels=None, k=5):
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), labels[i] if labels is not None and i < len(labels) else f"class {int(i)}",
             float(probs[i])) for i in order]
