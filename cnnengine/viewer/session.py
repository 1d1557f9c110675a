"""The app's model-side work, free of Qt so the worker thread and the tests
can call it directly: open a model, prepare an image, run with capture,
per-layer timing and the branch/merge structure of the graph.

Only cnnengine's public API is used (ce.load, Model.run / summary / layers /
labels / preprocess / profile / graph, cnnengine.preprocess)."""
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import atlas

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MODEL_EXTS = (".onnx", ".cnn", ".safetensors", ".pth", ".pt")
DEFAULT_MODEL = "efficientnet_lite0"
CAPTURE_ALL_LIMIT = 1 << 30     # bytes: above this, capture layer by layer
MERGE_OPS = ("Add", "Sum", "Concat", "Mul", "Sub", "Div", "Max", "Min", "Mean")


def data_dir():
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def sample_images():
    d = data_dir()
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTS))


DIGIT_SAMPLE = "digit4.png"      # drawn by tools/make_digit_sample.py for digit classifiers (LeNet-5)


def is_digit_model(labels, pre):
    """Ten labels "0".."9" on a one-channel input: a digit classifier."""
    return labels is not None and [str(l) for l in labels] == [str(i) for i in range(10)] and \
        (pre or {}).get("channels") == "L"


def default_image(bundle=None):
    """The bundled sample that suits the model: the digit for a digit classifier, else the cat."""
    if bundle is not None and is_digit_model(bundle.labels, bundle.preprocess):
        digit = os.path.join(data_dir(), DIGIT_SAMPLE)
        if os.path.exists(digit):
            return digit
    cat = os.path.join(data_dir(), "cat.jpg")
    if os.path.exists(cat):
        return cat
    samples = sample_images()
    return samples[0] if samples else None


def zoo_names():
    try:
        from .. import zoo
        return list(zoo.names())
    except Exception:   # the zoo is optional
        return []


def is_image_path(path):
    return str(path).lower().endswith(IMAGE_EXTS)


# ------------------------------------------------------------------ model
@dataclass
class ModelBundle:
    model: object
    source: str
    summary: list                     # [LayerInfo] in execution order
    index: dict                       # layer name -> row
    edges: list                       # (producer row, consumer row), producer -1 = graph input
    merges: set                       # rows that merge >= 2 data paths
    preprocess: dict
    labels: list = None
    capture_all: bool = True
    load_seconds: float = 0.0
    times: dict = field(default_factory=dict)   # layer -> seconds, or the step name it is fused into
    spread: dict = field(default_factory=dict)  # layer -> (lowest, highest, runs) behind its time
    fused: dict = field(default_factory=dict)   # conv layer -> [the BatchNorm / activation layers after it]

    @property
    def name(self):
        return os.path.basename(self.source) if os.path.exists(self.source) else self.source


def open_model(source):
    import cnnengine as ce

    t0 = time.perf_counter()
    model = ce.load(source, prepare=False)   # the app's first runs capture: a prepared fast plan would wait unused
    summary = model.summary()
    index = {l.name: i for i, l in enumerate(summary)}
    edges, merges = graph_structure(model, summary, index)
    activation_bytes = sum(int(np.prod(l.output_shape)) * 4 for l in summary if l.output_shape)
    return ModelBundle(model=model, source=str(source), summary=summary, index=index, edges=edges,
                       merges=merges, preprocess=preprocess_for(model), labels=model.labels,
                       capture_all=activation_bytes <= CAPTURE_ALL_LIMIT,
                       load_seconds=time.perf_counter() - t0, fused=fused_chains(model, index))


def class_rows(bundle):
    """Rows whose output holds one 1x1 value per class label (logits, class scores)."""
    n = len(bundle.labels or [])
    return [r for r, l in enumerate(bundle.summary) if n > 1 and len(l.output_shape) >= 2 and
            l.output_shape[1] == n and int(np.prod(l.output_shape[2:], dtype=np.int64)) == 1]


NORM_OPS = ("BatchNormalization", "InstanceNormalization")
ACT_OPS = ("Relu", "Clip", "Sigmoid", "HardSwish", "HardSigmoid", "Tanh", "LeakyRelu", "Elu", "cnn.Silu")


def fused_chains(model, index):
    """{conv layer: [layers after it]}: the BatchNorm, then the activation, that
    directly follow a Conv (each the only reader of the value before it) and
    that the engine folds into the conv's step, so that the last of them is the
    block's real output. Read from the source graph (what the engine fuses)."""
    graph = getattr(model, "graph", None)
    nodes = getattr(graph, "nodes", None) or []
    readers = {}
    for n in nodes:
        for i in n.inputs:
            if i:
                readers.setdefault(i, []).append(n)
    outputs = {v.name for v in getattr(graph, "outputs", [])}
    chains = {}
    for n in nodes:
        if n.op != "Conv" or n.name not in index:
            continue
        chain, cur = [], n
        for ops in (NORM_OPS, ACT_OPS):
            nxt = readers.get(cur.outputs[0], []) if cur.outputs and cur.outputs[0] not in outputs else []
            if len(nxt) == 1 and nxt[0].op in ops and nxt[0].name in index:
                cur = nxt[0]
                chain.append(cur.name)
        if chain:
            chains[n.name] = chain
    return chains


def graph_structure(model, summary, index):
    """Edges between layer rows from the IR (who consumes whose output), and
    the rows where two or more data paths meet (residual adds, concats)."""
    nodes = getattr(getattr(model, "graph", None), "nodes", None) or []
    weights = getattr(model.graph, "weights", {}) if nodes else {}
    by_name = {n.name: n for n in nodes}
    producer = {}
    for n in nodes:
        if n.name in index:
            for o in n.outputs:
                producer[o] = index[n.name]
    inputs = {v.name for v in getattr(model.graph, "inputs", [])}
    edges, merges = set(), set()
    for row, layer in enumerate(summary):
        n = by_name.get(layer.name)
        if n is None:           # removed by the engine (Identity): keep the chain visible
            if row > 0:
                edges.add((row - 1, row))
            continue
        sources = set()
        for i in n.inputs:
            if not i or i in weights:
                continue
            if i in producer:
                sources.add(producer[i])
            elif i in inputs:
                sources.add(-1)
        for s in sources:
            edges.add((s, row))
        if len(sources) >= 2 or (n.op in ("Add", "Sum", "Concat") and len(sources) >= 2):
            merges.add(row)
    return sorted(edges), merges


def graph_layout(bundle, sizes):
    """The layered layout of the layer graph (rows, -1 = the input) for the graph tab."""
    from .layered import layout
    return layout(list(sizes), bundle.edges, sizes)


# --------------------------------------------------------------- images
def preprocess_for(model):
    """The model's preprocessing metadata, or ImageNet conventions sized to its input."""
    pre = dict(model.preprocess or {})
    if pre:
        if "crop" in pre and "resize" not in pre:
            pre["resize"] = pre["crop"]
        return pre
    shape = model.inputs[0].shape if model.inputs else ()
    c = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
    size = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else 224
    width = shape[3] if len(shape) == 4 and isinstance(shape[3], int) else size
    if c == 1:
        return {"resize": size, "crop": size, "mean": [0.5], "std": [0.5], "channels": "L", "scale": 1 / 255}
    if size != width:
        return {"size": [size, width], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                "channels": "RGB", "scale": 1 / 255}
    resize = int(round(size / 0.875)) if size >= 64 else size
    return {"resize": resize, "crop": size, "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225], "channels": "RGB", "scale": 1 / 255}


@dataclass
class ImageBundle:
    path: str
    original: np.ndarray        # H x W x 3 uint8, as read
    x: np.ndarray               # (1, C, h, w) float32, the model's input
    display: np.ndarray         # h x w x 3 uint8: x with the normalisation undone
    crop_box: tuple             # (top, left, bottom, right) of the model input in `original` pixels


def open_image(path, pre):
    from PIL import Image

    with Image.open(path) as im:
        original = np.asarray(im.convert("RGB"))
    x = _load_input(path, pre)
    return ImageBundle(str(path), original, x, _display(x, pre), _crop_box(original.shape[:2], pre, x.shape[2:]))


def _load_input(path, pre):
    try:
        from ..preprocess import load_image
    except ImportError:
        load_image = None
    if load_image is not None:
        x = np.asarray(load_image(path, pre), dtype=np.float32)
        return x if x.ndim == 4 else x[None]
    return _fallback_load(path, pre)


def _fallback_load(path, pre):
    """Resize the shorter side, centre crop, scale, mean/std, channel order
    (only used while cnnengine.preprocess is absent)."""
    from PIL import Image

    channels = pre.get("channels", "RGB")
    with Image.open(path) as im:
        im = im.convert("L" if channels == "L" else "RGB")
        if "size" in pre:
            h, w = pre["size"]
            im = im.resize((int(w), int(h)), Image.BILINEAR)
        else:
            r, c = int(pre.get("resize", 224)), int(pre.get("crop", pre.get("resize", 224)))
            w, h = im.size
            s = r / min(w, h)
            im = im.resize((max(c, round(w * s)), max(c, round(h * s))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - c) // 2, (h - c) // 2
            im = im.crop((left, top, left + c, top + c))
        a = np.asarray(im, dtype=np.float32)
    a = a[..., None] if a.ndim == 2 else a
    if channels == "BGR":
        a = a[..., ::-1]
    a = a * float(pre.get("scale", 1 / 255))
    a = (a - np.asarray(pre.get("mean", [0.0]), np.float32)) / np.asarray(pre.get("std", [1.0]), np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None], dtype=np.float32)


def _display(x, pre):
    """Undo mean/std/scale so the model input can be looked at as a picture."""
    a = x[0].astype(np.float32)
    c = a.shape[0]
    mean = np.asarray(pre.get("mean", [0.0] * c), np.float32).reshape(-1, 1, 1)
    std = np.asarray(pre.get("std", [1.0] * c), np.float32).reshape(-1, 1, 1)
    a = a * std + mean
    scale = float(pre.get("scale", 1 / 255)) or 1.0
    a = a / scale
    if a.max() - a.min() > 0 and (a.max() > 300 or a.min() < -50):   # unknown conventions: stretch
        a = (a - a.min()) / (a.max() - a.min()) * 255
    a = np.clip(a, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    elif pre.get("channels") == "BGR":
        a = a[..., ::-1]
    elif c != 3:
        a = np.repeat(a[..., :1], 3, axis=2)
    return np.ascontiguousarray(a)


def _crop_box(orig_hw, pre, in_hw):
    """Where the model input sits in the original photo (resize shorter side, centre crop)."""
    H, W = orig_hw
    if "size" in pre or "resize" not in pre:
        return (0.0, 0.0, float(H), float(W))
    r = float(pre["resize"])
    s = r / min(H, W)
    ch, cw = in_hw
    rh, rw = H * s, W * s
    top, left = (rh - ch) / 2 / s, (rw - cw) / 2 / s
    return (top, left, top + ch / s, left + cw / s)


# -------------------------------------------------------------- running
@dataclass
class Inference:
    output: np.ndarray
    acts: dict                  # layer -> activation (all layers, or those asked for)
    probs: np.ndarray
    seconds: float


def infer(bundle, x, layers=None):
    """Run once, capturing every layer (or `layers` for very large models)."""
    if layers is None:
        capture = True if bundle.capture_all else [bundle.summary[0].name]
    else:
        capture = list(layers)
    t0 = time.perf_counter()
    out, acts = bundle.model.run(x, capture=capture)
    seconds = time.perf_counter() - t0
    if isinstance(out, dict):
        out = next(iter(out.values()))
    out = np.asarray(out)
    return Inference(out, acts, atlas.probabilities(out[0] if out.ndim > 1 else out), seconds)


def capture_layer(bundle, x, name):
    _, acts = bundle.model.run(x, capture=[name])
    return acts[name]


def layer_times(bundle, x, runs=3):
    """{layer: seconds} from Model.profile(); a layer the engine fused into a
    step maps to that step's name (a str); a layer it never runs maps to None."""
    return profile_layers(bundle, x, runs=runs, repeats=1)[0]


def profile_layers(bundle, x, runs=3, repeats=3, budget=1.5):
    """(times, spread): times as layer_times() gives them, each the median of
    `repeats` Model.profile() medians of `runs` runs (fewer repeats when one
    takes more than `budget` seconds), and spread[layer] = (lowest, highest,
    repeats) of those medians: one busy moment on a shared machine then shows
    as a wide spread rather than as the layer's time."""
    prof = getattr(bundle.model, "profile", None)
    if prof is None:
        return {}, {}
    samples = {}
    t0 = time.perf_counter()
    for r in range(max(1, repeats)):
        for name, _, secs in prof(x, runs=runs):
            samples.setdefault(name, []).append(secs)
        if r == 0 and time.perf_counter() - t0 > budget:
            break
    times = {name: float(np.median(v)) for name, v in samples.items()}
    out, spread, current = {}, {}, None
    for layer in bundle.summary:
        if layer.name in times:
            current = layer.name
            out[layer.name] = times[layer.name]
            v = samples[layer.name]
            spread[layer.name] = (float(min(v)), float(max(v)), len(v))
        else:
            out[layer.name] = current
    return out, spread
