"""Top activating patches (Yosinski et al.'s Deep Visualization Toolbox),
free of Qt so the worker thread and the tests call it directly.

A folder of images is run through the model once, every layer captured in
the same pass (one forward pass costs the same whether one layer or all are
kept, and a channel's maximum is a cheap reduction), so any layer can be
looked at afterwards without running again; a model too large to capture
whole (session.CAPTURE_ALL_LIMIT) keeps only the layers asked for. For each
channel of each layer a streaming top-k keeps the k images whose maximum
activation of that channel is largest, with where the maximum is.

The crop shown for an entry is the receptive field of that single output
unit, found by walking the ops' region rules (cnnengine.ops, OpDef.region)
from the unit's box back to the graph input, clipped to the image. Results
are cached on disk per model file hash, folder, file mtimes/sizes and
preprocessing, so reopening a folder is a file read.
"""
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..errors import InputError
from ..ir.weights import shape_of
from ..ops.base import FULL, Box
from . import atlas, session

TOP_K = 9
FORMAT = 1                 # bump when the cache file layout changes
WHOLE = "whole"            # a value read whole (ops' FULL is None, which also means "not needed")


# ------------------------------------------------------------- top-k
class TopK:
    """Per channel, the k images with the largest channel maximum, streamed.

    Entries are (value, image, y, x), best first; ties keep the earlier
    image. NaN counts as -inf. Empty slots have image -1 and value -inf."""

    def __init__(self, channels, k=TOP_K):
        self.k = k
        self.values = np.full((channels, k), -np.inf, np.float32)
        self.images = np.full((channels, k), -1, np.int32)
        self.ys = np.zeros((channels, k), np.int32)
        self.xs = np.zeros((channels, k), np.int32)

    def update(self, image, maps):
        """maps: (C, H, W) activation of image number `image` (numbers must increase)."""
        c, h, w = maps.shape
        flat = np.asarray(maps, np.float32).reshape(c, -1)
        if np.isnan(flat).any():        # a copy only when needed: argmax would pick the NaN
            flat = np.where(np.isnan(flat), -np.inf, flat)
        pos = np.argmax(flat, axis=1)
        val = flat[np.arange(c), pos]
        worst = self.values[:, -1]
        better = (val > worst) | ((self.images[:, -1] < 0) & (val >= worst))
        if not better.any():
            return
        rows = np.nonzero(better)[0]
        vals = np.concatenate([self.values[rows], val[rows, None]], axis=1)
        empty = np.concatenate([self.images[rows] < 0, np.zeros((len(rows), 1), bool)], axis=1)
        order = np.lexsort((empty, -vals), axis=1)[:, :self.k]     # stable: ties keep the earlier image
        pick = lambda a, new: np.take_along_axis(np.concatenate([a[rows], new[rows, None]], axis=1),  # noqa: E731
                                                 order, axis=1)
        self.values[rows] = np.take_along_axis(vals, order, axis=1)
        self.images[rows] = pick(self.images, np.full(c, image, np.int32))
        self.ys[rows] = pick(self.ys, (pos // w).astype(np.int32))
        self.xs[rows] = pick(self.xs, (pos % w).astype(np.int32))

    def entries(self, channel):
        """[(value, image, y, x)] of one channel, best first, empty slots left out."""
        return [(float(v), int(i), int(y), int(x)) for v, i, y, x in
                zip(self.values[channel], self.images[channel], self.ys[channel], self.xs[channel]) if i >= 0]

    @property
    def channels(self):
        return self.values.shape[0]


# --------------------------------------------------- receptive field
def value_shapes(graph, input_shape):
    """Shape of every value of `graph` (batch 1) from the ops' shape rules."""
    shapes = {name: shape_of(graph.weights, name) for name in graph.weights}
    for v in graph.inputs:
        shapes[v.name] = tuple(input_shape)
    for node in graph.nodes:
        ins = [shapes.get(i) if i else None for i in node.inputs]
        consts = {k: graph.weights[i] for k, i in enumerate(node.inputs) if i in graph.weights}
        for o, s in zip(node.outputs, ops.infer(node, ins, consts)):
            if o:
                shapes[o] = tuple(s)
    return shapes


class ReceptiveField:
    """The input box one output unit depends on, by the ops' region rules.

    box(value, y, x) walks the graph backwards from Box(y, y+1, x, x+1) of
    `value`: each node maps the union of what is needed of its outputs to
    what it reads of its inputs (op.region; FULL, an op without a rule, or a
    value that is not a 4-D map means the whole of it). The answer is
    (top, left, bottom, right) on the input, half-open, clipped to it."""

    def __init__(self, graph, input_shape):
        self.graph = graph
        self.nodes = list(graph.nodes)
        self.shapes = value_shapes(graph, input_shape)
        self.producer = {o: k for k, n in enumerate(self.nodes) for o in n.outputs if o}
        self.input = graph.inputs[0].name
        self.input_shape = tuple(input_shape)
        self._memo = {}

    def whole(self):
        return (0, 0, int(self.input_shape[2]), int(self.input_shape[3]))

    def box(self, value, y, x):
        key = (value, int(y), int(x))
        if key not in self._memo:
            self._memo[key] = self._walk(value, int(y), int(x))
        return self._memo[key]

    def _walk(self, value, y, x):
        if value == self.input:
            return (y, x, y + 1, x + 1)
        if value not in self.producer or len(self.shapes.get(value, ())) != 4:
            return self.whole()
        need = {value: Box(y, y + 1, x, x + 1)}
        weights = self.graph.weights
        for k in range(self.producer[value], -1, -1):
            node = self.nodes[k]
            wanted = [need[o] for o in node.outputs if o in need]
            if not wanted:
                continue
            out = _union(wanted)
            in_shapes = [self.shapes.get(i) if i else None for i in node.inputs]
            out_shape = self.shapes.get(node.outputs[0], ())
            op = ops.REGISTRY.get(node.op)
            if out is WHOLE or op is None or len(out_shape) != 4:
                boxes = [WHOLE] * len(node.inputs)
            else:
                consts = {j: weights[i] for j, i in enumerate(node.inputs) if i in weights}
                boxes = [WHOLE if b is FULL else b
                         for b in op.region(ops.params_of(node), in_shapes, out_shape, out, consts)]
            for i, b, s in zip(node.inputs, boxes, in_shapes):
                if not i or i in weights:
                    continue
                b = WHOLE if s is None or len(s) != 4 else b
                need[i] = _union([need[i], b]) if i in need else b
        b = need.get(self.input)
        if b is None or b is WHOLE:
            return self.whole()
        b = b.clip(self.input_shape)
        return (b.y0, b.x0, b.y1, b.x1)


def _union(boxes):
    if any(b is WHOLE for b in boxes):
        return WHOLE
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return out


def layer_value(model, layer):
    """The value of model.graph (the unfused graph) that holds `layer`'s output."""
    aliases = getattr(model, "_aliases", {})
    node = next((n for n in model.graph.nodes if n.name == layer), None)
    if node is not None:
        return node.outputs[0]
    for n in getattr(model, "_original", model.graph).nodes:   # removed by the engine (Identity)
        if n.name == layer:
            return aliases.get(n.outputs[0], n.outputs[0])
    raise InputError(f"no layer named {layer!r}")


# ------------------------------------------------------------ folders
def folder_images(folder):
    """The image files directly in `folder`, sorted by name."""
    folder = str(folder)
    if not os.path.isdir(folder):
        raise InputError(f"patches: {folder!r} is not a folder")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if session.is_image_path(f) and os.path.isfile(os.path.join(folder, f)))
    if not files:
        raise InputError(f"patches: no images ({', '.join(session.IMAGE_EXTS)}) in {folder!r}")
    return files


@dataclass
class PatchSet:
    """What a folder did to a model: per layer a TopK over the images."""
    files: list                      # paths of the images that were read, in image-number order
    displays: np.ndarray             # (N, h, w, 3) uint8: each model input, viewable
    layers: dict                     # layer -> TopK
    skipped: list = field(default_factory=list)   # (path, reason) of files that could not be read
    from_cache: bool = False

    def crop(self, rf, value, entry):
        """The image crop of one (value, image, y, x) entry: its unit's receptive field."""
        _, img, y, x = entry
        t, l, b, r = rf.box(value, y, x)
        return self.displays[img, t:b, l:r], (t, l, b, r)


class Cancelled(Exception):
    """The collection was cancelled (nothing is cached)."""


def collect(model, files, pre, layers, *, k=TOP_K, progress=None, cancel=None):
    """Run every file through `model`, keeping a TopK per layer of `layers`.

    progress(done, total) after each image; cancel: a threading.Event checked
    between images (raises Cancelled)."""
    tops, displays, kept, skipped = {}, [], [], []
    for n, path in enumerate(files):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"cancelled after {n} of {len(files)} images")
        try:
            img = session.open_image(path, pre)
        except Exception as exc:   # an unreadable file is skipped and reported, not fatal
            skipped.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        _, acts = model.run(img.x, capture=list(layers))
        for name in layers:
            maps = atlas.as_maps(acts[name])
            if name not in tops:
                tops[name] = TopK(maps.shape[0], k)
            tops[name].update(len(kept), maps)
        kept.append(path)
        displays.append(img.display)
        if progress is not None:
            progress(n + 1, len(files))
    if not kept:
        raise InputError(f"patches: none of the {len(files)} images could be read ({skipped[0][1]})")
    return PatchSet(kept, np.stack(displays), tops, skipped)


def patch_layers(bundle, layer):
    """The layers one pass keeps: all of them when the model's activations fit
    session.CAPTURE_ALL_LIMIT (the same pass, and any layer is ready later), else `layer`."""
    return [l.name for l in bundle.summary] if bundle.capture_all else [layer]


# -------------------------------------------------------------- cache
def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cnnengine", "patches")


_digests = {}
_digest_lock = threading.Lock()


def model_digest(source):
    """sha256 of the model file (remembered per path, size and mtime); a zoo
    name hashes as its name and the package version."""
    source = str(source)
    if not os.path.isfile(source):
        from .. import __version__
        return hashlib.sha256(f"zoo:{source}:{__version__}".encode()).hexdigest()
    st = os.stat(source)
    key = (os.path.abspath(source), st.st_size, st.st_mtime_ns)
    with _digest_lock:
        if key in _digests:
            return _digests[key]
    h = hashlib.sha256()
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    with _digest_lock:
        _digests[key] = h.hexdigest()
    return _digests[key]


def cache_key(source, folder, files, pre, k=TOP_K):
    """Model file hash + folder path + each file's name, mtime and size + preprocessing + k."""
    stats = []
    for f in files:
        st = os.stat(f)
        stats.append([os.path.basename(f), st.st_mtime_ns, st.st_size])
    blob = json.dumps([FORMAT, model_digest(source), os.path.abspath(str(folder)), stats,
                       json.loads(json.dumps(pre, sort_keys=True, default=str)), k], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cache_path(key):
    return os.path.join(cache_dir(), f"{key}.npz")


def load_cached(key):
    """The PatchSet stored under key, or None (absent or unreadable)."""
    path = cache_path(key)
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(s) for s in z["layers"]]
            layers = {}
            for i, name in enumerate(names):
                t = TopK(z[f"v{i}"].shape[0], z[f"v{i}"].shape[1])
                t.values, t.images, t.ys, t.xs = z[f"v{i}"], z[f"n{i}"], z[f"y{i}"], z[f"x{i}"]
                layers[name] = t
            skipped = [tuple(s) for s in z["skipped"].reshape(-1, 2).tolist()]
            return PatchSet([str(s) for s in z["files"]], z["displays"], layers, skipped, from_cache=True)
    except (OSError, KeyError, ValueError):
        return None


def save_cached(key, ps):
    """Write ps under key (atomically: a reader never sees half a file)."""
    os.makedirs(cache_dir(), exist_ok=True)
    arrays = {"files": np.array(ps.files, dtype=str), "displays": ps.displays,
              "layers": np.array(list(ps.layers), dtype=str),
              "skipped": np.array([list(s) for s in ps.skipped], dtype=str).reshape(-1, 2)}
    for i, t in enumerate(ps.layers.values()):
        arrays.update({f"v{i}": t.values, f"n{i}": t.images, f"y{i}": t.ys, f"x{i}": t.xs})
    path = cache_path(key)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def merge(old, new):
    """new's layers added to old's (the same images), for a cache file that grows by layer."""
    if old is None or old.files != new.files:
        return new
    layers = dict(old.layers)
    layers.update(new.layers)
    return PatchSet(new.files, new.displays, layers, new.skipped)


def find_or_collect(model, source, folder, pre, layers, *, k=TOP_K, progress=None, cancel=None):
    """The cached PatchSet when it holds every layer asked for, else collect and cache."""
    files = folder_images(folder)
    key = cache_key(source, folder, files, pre, k)
    cached = load_cached(key)
    if cached is not None and all(l in cached.layers for l in layers):
        return cached
    missing = [l for l in layers if cached is None or l not in cached.layers]
    ps = merge(cached, collect(model, files, pre, missing, k=k, progress=progress, cancel=cancel))
    save_cached(key, ps)
    return ps
