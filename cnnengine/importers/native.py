"""The native model file: one safetensors file.

Weights are the file's named tensors and are memory-mapped on load (a model
opens in milliseconds and shares pages between processes). The metadata
entry "cnnengine" holds JSON: format version, the graph (inputs, outputs,
nodes with ONNX-semantics attributes), preprocessing and labels. Loading
never executes anything from the file; every offset and size is checked
against the file before a tensor is mapped.
"""
import json
import mmap
import os
import struct

import numpy as np

from ..errors import InputError, ModelFormatError, UnsupportedOpError
from ..ir.graph import Graph, Node, ValueInfo, check_shape

FORMAT = "cnnengine"
VERSION = 1
MAX_HEADER = 100 << 20
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
           "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_, "U32": np.uint32}
_CODES = {np.dtype(v).str: k for k, v in _DTYPES.items()}
_VALUE_DTYPES = {np.dtype(v).name for v in _DTYPES.values()} | {"float16", "uint16", "uint64"}


def is_native(path):
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < MAX_HEADER


def save(graph, path):
    from safetensors.numpy import save_file

    tensors, attr_tensors = {}, {}
    nodes = []
    for n in graph.nodes:
        if n.op == "If":
            raise UnsupportedOpError(f"node {n.name!r}: the native format does not store control flow "
                                     f"(If) yet; keep this model as ONNX")
        attrs = {}
        for k, v in n.attrs.items():
            if isinstance(v, np.ndarray):
                tname = f"__attr__/{n.name}/{k}"
                attr_tensors[tname] = v
                attrs[k] = {"__tensor__": tname}
            else:
                attrs[k] = v
        nodes.append({"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs, "attrs": attrs})
    for name, w in list(graph.weights.items()) + list(attr_tensors.items()):
        w = np.asarray(w, order="C")   # keeps 0-d scalars 0-d
        if w.dtype.str not in _CODES:
            w = w.astype(np.float32)
        tensors[name] = w
    meta = {
        "format": FORMAT, "version": VERSION, "opset": graph.opset,
        "inputs": [_vi(v) for v in graph.inputs], "outputs": [_vi(v) for v in graph.outputs],
        "nodes": nodes, "metadata": graph.metadata,
    }
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: cannot write, folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    text = json.dumps(meta, default=_json_default)
    tmp = f"{path}.tmp"
    try:
        save_file(tensors, tmp, metadata={"cnnengine": text})
        # safetensors writes through a private (0600) temp file: give the
        # result the mode any new file gets under the user's umask
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except Exception as exc:     # OSError, or safetensors' SafetensorError wrapping one
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise InputError(f"{path}: cannot write ({exc})") from None


def _umask():
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot store {type(v).__name__} in the native file")


def _vi(v):
    return {"name": v.name, "shape": list(v.shape), "dtype": v.dtype}


def load(path):
    name = os.fspath(path)
    try:
        f = open(name, "rb")
    except OSError as exc:
        raise ModelFormatError(f"{name}: cannot open ({exc.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ModelFormatError(f"{name}: truncated (only {size} bytes)")
        (hlen,) = struct.unpack("<Q", f.read(8))
        if hlen > MAX_HEADER or 8 + hlen > size:
            raise ModelFormatError(f"{name}: header length {hlen} does not fit in a {size}-byte file")
        try:
            header = json.loads(f.read(hlen))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{name}: corrupt header ({exc})") from None
        if not isinstance(header, dict):
            raise ModelFormatError(f"{name}: corrupt header (not an object)")
        meta_s = (header.pop("__metadata__", None) or {}).get("cnnengine")
        if meta_s is None:
            raise ModelFormatError(f"{name}: a safetensors file without cnnengine metadata "
                                   f"(convert a model with `cnnengine convert`)")
        try:
            meta = json.loads(meta_s)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{name}: corrupt graph metadata ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFormatError(f"{name}: not a cnnengine file")
        version = meta.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise ModelFormatError(f"{name}: file format version {version} is newer than this cnnengine "
                                   f"understands (version {VERSION}); upgrade cnnengine")
        data_start = 8 + hlen
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size > data_start else None
    tensors = {}
    for tname, info in header.items():
        tensors[tname] = _map_tensor(name, mm, data_start, size, tname, info)
    try:
        return _graph_from_meta(meta, tensors, name)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{name}: malformed graph description ({type(exc).__name__}: {exc})") from None


def _map_tensor(name, mm, data_start, size, tname, info):
    try:
        dtype = np.dtype(_DTYPES[info["dtype"]])
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ModelFormatError(f"{name}: tensor {tname!r} has a malformed entry {info!r}") from None
    check_shape(shape, f"{name}: tensor {tname!r}")
    count = int(np.prod(shape, dtype=np.int64))
    if not 0 <= begin <= end or end - begin != count * dtype.itemsize:
        raise ModelFormatError(f"{name}: tensor {tname!r} claims {count} x {dtype} but spans bytes {begin}..{end}")
    if data_start + end > size:
        raise ModelFormatError(f"{name}: tensor {tname!r} extends past the end of the file "
                               f"({data_start + end} > {size} bytes); the file is truncated")
    if count == 0:
        return np.zeros(shape, dtype)
    arr = np.frombuffer(mm, dtype=dtype, count=count, offset=data_start + begin)
    return arr.reshape(shape)


def _graph_from_meta(meta, tensors, name):
    nodes = []
    for nd in meta["nodes"]:
        attrs = {}
        for k, v in nd.get("attrs", {}).items():
            if isinstance(v, dict) and "__tensor__" in v:
                if v["__tensor__"] not in tensors:
                    raise ModelFormatError(f"{name}: node {nd['name']!r} refers to missing tensor {v['__tensor__']!r}")
                v = tensors[v["__tensor__"]]
            attrs[k] = v
        nodes.append(Node(str(nd["name"]), str(nd["op"]), [str(i) for i in nd["inputs"]],
                          [str(o) for o in nd["outputs"]], attrs))
    weights = {k: v for k, v in tensors.items() if not k.startswith("__attr__/")}
    def vi(d):
        dtype = str(d.get("dtype", "float32"))
        if dtype not in _VALUE_DTYPES:
            raise ModelFormatError(f"{name}: graph value {d.get('name')!r} has unknown dtype {dtype!r}")
        shape = tuple(d["shape"])
        if not all(s is None or isinstance(s, str) or (type(s) is int and 0 <= s <= 1 << 40) for s in shape):
            raise ModelFormatError(f"{name}: graph value {d.get('name')!r} has a malformed shape {list(shape)}")
        return ValueInfo(str(d["name"]), shape, dtype)

    g = Graph([vi(d) for d in meta["inputs"]], [vi(d) for d in meta["outputs"]], nodes, weights,
              meta.get("metadata", {}), int(meta.get("opset", 18)))
    from .onnx_import import check_arity
    for n in nodes:
        check_arity(n.op, n.inputs, n.outputs, g.opset, f"{name}: node {n.name!r} ({n.op})")
    return g.validate(name)
