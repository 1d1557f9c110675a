"""Read PyTorch checkpoint files (``torch.save`` of a state dict) without torch.

Nothing in the file is executed. The pickle inside a checkpoint is read by a
restricted, pure-Python unpickler whose ``find_class`` knows exactly the names
a state dict needs:

- ``collections.OrderedDict`` (the container),
- ``torch._utils._rebuild_tensor_v2`` and ``torch._utils._rebuild_parameter``
  (replaced by our own functions that build NumPy arrays),
- the typed storage names ``torch.FloatStorage``, ``torch.LongStorage``, ...
  (only used as dtype tags).

Any other global (``os.system``, ``builtins.eval``, ``torch.storage._load_from_bytes``,
a pickled ``nn.Module``...) is refused with :class:`ModelFormatError` before
anything is looked up. The pure-Python unpickler is used on purpose: its memo
is a dict, so a hostile ``LONG_BINPUT 4294967295`` cannot make it allocate a
huge memo array as the C implementation would.

Two container formats are supported:

- the zip format (torch >= 1.6 default): ``<root>/data.pkl`` plus one entry
  ``<root>/data/<key>`` per storage, with an optional ``<root>/byteorder``;
- the legacy format: a magic number, a protocol version and a sys-info dict
  (three small pickles), the state pickle whose persistent ids are
  ``('storage', storage_type, key, location, numel, view_metadata)``, a pickled
  list of storage keys, then each storage as an 8-byte little-endian element
  count followed by the raw elements.

Every tensor is rebuilt with ``as_strided`` semantics from
``(storage, offset, size, stride)`` after checking that the furthest element it
reaches lies inside its storage, and the total output is capped relative to the
file size, so a hostile file gives ModelFormatError, never a crash or a huge
allocation.

Public: :func:`load_state_dict`.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from ..errors import ModelFormatError

__all__ = ["load_state_dict", "read_checkpoint"]

# torch storage type name -> (numpy dtype of the raw little-endian data, element size)
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # converted by a shift into float32
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_RANK = 16
# Output tensors may alias storages (tied or expanded weights), so the cap is
# a small multiple of the file size rather than the file size itself.
_OUTPUT_FACTOR = 2
_OUTPUT_SLACK = 1 << 20
# The pickles of a state dict are small; refuse silly sizes early.
_MAX_PICKLE_BYTES = 256 << 20
# Preferred sub-dicts of a training checkpoint, in order.
_MAX_DEPTH = 64  # nesting of dicts/lists around the tensors
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module",
                "params", "weights", "ema")


class _StorageType:
    """A storage type tag such as torch.FloatStorage: holds the dtype only."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    def __setstate__(self, state):
        raise ModelFormatError("unexpected state for a storage type")

    def __reduce__(self):  # never pickled back out
        raise TypeError("not picklable")


class _Storage:
    """A storage referenced by a persistent id; data is filled in afterwards."""

    __slots__ = ("key", "dtype", "numel", "data", "view_of", "view_offset")

    def __init__(self, key, dtype, numel):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.data = None          # 1-D numpy array of `numel` elements
        self.view_of = None       # legacy view: root storage
        self.view_offset = 0

    def __setstate__(self, state):
        raise ModelFormatError("unexpected state for a storage")


class _TensorRef:
    """A tensor to be rebuilt once the storages are read."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def __setstate__(self, state):
        raise ModelFormatError("unexpected tensor state in the pickle")


def _as_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFormatError(f"{what} must be an integer, got {type(value).__name__}")
    return value


def _as_int_tuple(value, what):
    if not isinstance(value, (tuple, list)):
        raise ModelFormatError(f"{what} must be a tuple of integers, got {type(value).__name__}")
    if len(value) > _MAX_RANK:
        raise ModelFormatError(f"{what} has rank {len(value)} (at most {_MAX_RANK} is supported)")
    return tuple(_as_int(v, what) for v in value)


class _Rebuild:
    """Callable objects handed to the unpickler in place of torch functions.

    Instances (not plain functions) so that a hostile BUILD opcode cannot set
    attributes such as __defaults__ on shared module-level functions.
    """

    __slots__ = ("kind",)

    def __init__(self, kind):
        self.kind = kind

    def __setstate__(self, state):
        raise ModelFormatError("unexpected state for a rebuild function")

    def __call__(self, *args):
        if self.kind == "tensor":
            # _rebuild_tensor_v2(storage, storage_offset, size, stride,
            #                    requires_grad, backward_hooks, metadata=None)
            if len(args) < 4:
                raise ModelFormatError("_rebuild_tensor_v2 called with too few arguments")
            storage, offset, size, stride = args[:4]
            if not isinstance(storage, _Storage):
                raise ModelFormatError("_rebuild_tensor_v2 expects a storage as first argument")
            offset = _as_int(offset, "tensor storage offset")
            size = _as_int_tuple(size, "tensor size")
            stride = _as_int_tuple(stride, "tensor stride")
            if len(size) != len(stride):
                raise ModelFormatError(f"tensor size {size} and stride {stride} differ in rank")
            return _TensorRef(storage, offset, size, stride)
        # _rebuild_parameter(data, requires_grad, backward_hooks)
        if len(args) < 1 or not isinstance(args[0], _TensorRef):
            raise ModelFormatError("_rebuild_parameter expects a tensor as first argument")
        return args[0]


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Rebuild("tensor"),
    ("torch._utils", "_rebuild_parameter"): _Rebuild("parameter"),
}
for _name in _STORAGE_DTYPES:
    _ALLOWED[("torch", _name)] = _StorageType(_name)


class _RestrictedUnpickler(pickle._Unpickler):  # pure Python on purpose, see module doc
    """Refuses every global not in _ALLOWED; resolves storages through a callback."""

    def __init__(self, data, source, persistent=None, allow=True):
        super().__init__(io.BytesIO(data), encoding="latin1")
        self._source = source
        self._persistent = persistent
        self._allow = allow

    def find_class(self, module, name):
        key = (module, name)
        if self._allow and key in _ALLOWED:
            return _ALLOWED[key]
        raise ModelFormatError(
            f"refusing to load {module}.{name} from {self._source}: only tensor data is allowed")

    def persistent_load(self, pid):
        if self._persistent is None:
            raise ModelFormatError(f"unexpected persistent id in {self._source}")
        return self._persistent(pid)


def _unpickle(data, source, persistent=None, allow=True):
    """Run the restricted unpickler; every failure becomes ModelFormatError."""
    try:
        return _RestrictedUnpickler(data, source, persistent, allow).load()
    except ModelFormatError:
        raise
    except RecursionError:
        raise ModelFormatError(f"{source}: pickle nests too deeply") from None
    except MemoryError:
        raise ModelFormatError(f"{source}: pickle needs too much memory") from None
    except Exception as exc:  # malformed pickle: EOF, bad opcode, wrong call...
        raise ModelFormatError(f"{source}: malformed pickle ({type(exc).__name__}: {exc})") from None


def _parse_pid(pid, source, legacy):
    """Validate a persistent id tuple, return (storage_type, key, numel, view)."""
    if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
        raise ModelFormatError(f"{source}: unsupported persistent id {str(pid)[:80]}")
    stype, key, _location, numel = pid[1:5]
    view = pid[5] if len(pid) > 5 else None
    if not isinstance(stype, _StorageType):
        raise ModelFormatError(f"{source}: persistent id names no storage type")
    if not isinstance(key, str) or not key or len(key) > 64:
        raise ModelFormatError(f"{source}: bad storage key {str(key)[:80]!r}")
    numel = _as_int(numel, "storage size")
    if numel < 0:
        raise ModelFormatError(f"{source}: storage {key} has negative size {numel}")
    if view is not None:
        if not legacy:
            raise ModelFormatError(f"{source}: storage views are not expected in the zip format")
        if (not isinstance(view, tuple) or len(view) != 3 or not isinstance(view[0], str)):
            raise ModelFormatError(f"{source}: bad storage view metadata")
        view = (view[0], _as_int(view[1], "view offset"), _as_int(view[2], "view size"))
    return stype, key, numel, view


def _check_total(total, limit, source, what="storages"):
    if total > limit:
        raise ModelFormatError(
            f"{source}: {what} claim {total} bytes, more than this file can hold ({limit} bytes "
            f"allowed; truncated or inconsistent file?)")


# ----------------------------------------------------------------------------- formats

def _read_zip(path, raw, source):
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = zf.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFormatError(f"{source}: damaged zip archive ({exc})") from None
    pkls = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ModelFormatError(f"{source}: zip archive has no single <root>/data.pkl")
    root = pkls[0][: -len("data.pkl")]
    limit = len(raw)

    def read_entry(name, max_bytes):
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise ModelFormatError(f"{source}: missing archive entry {name}") from None
        if info.file_size > max_bytes:
            raise ModelFormatError(f"{source}: archive entry {name} is {info.file_size} bytes, "
                                   f"more than the {max_bytes} expected")
        try:
            with zf.open(info) as fh:
                data = fh.read(max_bytes + 1)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
            raise ModelFormatError(f"{source}: cannot read archive entry {name} ({exc})") from None
        if len(data) > max_bytes:
            raise ModelFormatError(f"{source}: archive entry {name} is larger than declared")
        return data

    byteorder = "little"
    if root + "byteorder" in names:
        byteorder = read_entry(root + "byteorder", 16).decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ModelFormatError(f"{source}: unknown byteorder {byteorder!r}")

    storages = {}
    declared = [0]

    def persistent(pid):
        stype, key, numel, _ = _parse_pid(pid, source, legacy=False)
        st = storages.get(key)
        if st is None:
            nbytes = numel * stype.dtype.itemsize
            declared[0] += nbytes
            _check_total(declared[0], limit, source)
            st = storages[key] = _Storage(key, stype.dtype, numel)
        elif st.dtype != stype.dtype or st.numel != numel:
            raise ModelFormatError(f"{source}: storage {key} is declared twice differently")
        return st

    obj = _unpickle(read_entry(root + "data.pkl", min(limit, _MAX_PICKLE_BYTES)), source, persistent)
    for key, st in storages.items():
        nbytes = st.numel * st.dtype.itemsize
        data = read_entry(f"{root}data/{key}", limit)
        if len(data) < nbytes:
            raise ModelFormatError(f"{source}: storage {key} holds {len(data)} bytes, "
                                   f"{nbytes} declared")
        dt = st.dtype.newbyteorder(">") if byteorder == "big" else st.dtype
        st.data = np.frombuffer(data, dtype=dt, count=st.numel)
    return obj


def _read_legacy(path, raw, source):
    buf = io.BytesIO(raw)

    def next_pickle(persistent=None, allow=False):
        # The restricted unpickler reads from its own BytesIO; find where this
        # pickle ends by scanning opcodes without executing anything.
        start = buf.tell()
        end = _pickle_end(raw, start, source)
        buf.seek(end)
        return _unpickle(raw[start:end], source, persistent, allow)

    magic = next_pickle()
    if magic != _LEGACY_MAGIC:
        raise ModelFormatError(f"{source}: not a PyTorch checkpoint (bad magic number)")
    protocol = next_pickle()
    if protocol != _LEGACY_PROTOCOL:
        raise ModelFormatError(f"{source}: unsupported legacy protocol version {protocol!r}")
    sys_info = next_pickle()
    little = True
    if isinstance(sys_info, dict):
        little = bool(sys_info.get("little_endian", True))
    limit = len(raw)
    storages = {}
    views = []
    declared = [0]

    def persistent(pid):
        stype, key, numel, view = _parse_pid(pid, source, legacy=True)
        st = storages.get(key)
        if st is None:
            declared[0] += numel * stype.dtype.itemsize
            _check_total(declared[0], limit, source)
            st = storages[key] = _Storage(key, stype.dtype, numel)
        elif st.dtype != stype.dtype or st.numel != numel:
            raise ModelFormatError(f"{source}: storage {key} is declared twice differently")
        if view is None:
            return st
        view_key, off, size = view
        vst = _Storage(view_key, stype.dtype, size)
        vst.view_of, vst.view_offset = st, off
        views.append(vst)
        return vst

    obj = next_pickle(persistent, allow=True)
    keys = next_pickle()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ModelFormatError(f"{source}: bad storage key list")
    dtype_order = "<" if little else ">"
    for key in keys:
        st = storages.get(key)
        if st is None:
            raise ModelFormatError(f"{source}: storage {key!r} is listed but never used")
        if st.data is not None:
            raise ModelFormatError(f"{source}: storage {key!r} is listed twice")
        head = buf.read(8)
        if len(head) != 8:
            raise ModelFormatError(f"{source}: truncated before storage {key!r}")
        (count,) = struct.unpack(dtype_order + "q", head)
        if count != st.numel:
            raise ModelFormatError(f"{source}: storage {key!r} has {count} elements, "
                                   f"{st.numel} declared")
        nbytes = count * st.dtype.itemsize
        start = buf.tell()
        if start + nbytes > len(raw):
            raise ModelFormatError(f"{source}: truncated inside storage {key!r} "
                                   f"({len(raw) - start} of {nbytes} bytes present)")
        dt = st.dtype if little else st.dtype.newbyteorder(">")
        st.data = np.frombuffer(raw, dtype=dt, count=count, offset=start)
        buf.seek(start + nbytes)
    missing = [k for k, s in storages.items() if s.data is None]
    if missing:
        raise ModelFormatError(f"{source}: storages {missing[:5]} are used but not stored")
    for v in views:
        root = v.view_of
        if v.view_offset < 0 or v.numel < 0 or v.view_offset + v.numel > root.numel:
            raise ModelFormatError(f"{source}: storage view outside storage {root.key!r}")
        v.data = root.data[v.view_offset:v.view_offset + v.numel]
    return obj


def _pickle_end(raw, start, source):
    """Offset just past the STOP opcode of the pickle starting at `start`."""
    import pickletools

    stream = io.BytesIO(raw)
    stream.seek(start)
    try:
        for op, _arg, pos in pickletools.genops(stream):
            if op.name == "STOP":
                return stream.tell()
    except (ValueError, EOFError, struct.error, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{source}: malformed or truncated pickle ({exc})") from None
    raise ModelFormatError(f"{source}: truncated pickle")


# ----------------------------------------------------------------------------- tensors

def _materialise(ref, source, name):
    st = ref.storage
    if st.data is None:
        raise ModelFormatError(f"{source}: tensor {name} refers to a storage without data")
    size, stride, offset = ref.size, ref.stride, ref.offset
    if any(s < 0 for s in size):
        raise ModelFormatError(f"{source}: tensor {name} has negative size {size}")
    if any(s < 0 for s in stride):
        raise ModelFormatError(f"{source}: tensor {name} has negative stride {stride}")
    if offset < 0:
        raise ModelFormatError(f"{source}: tensor {name} has negative offset {offset}")
    numel = 1
    for s in size:
        numel *= s
    if numel == 0:
        out = np.zeros(size, dtype=st.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= st.numel:
            raise ModelFormatError(
                f"{source}: tensor {name} (size {size}, stride {stride}, offset {offset}) "
                f"reaches element {last} of a storage of {st.numel} elements")
        item = st.data.dtype.itemsize
        base = st.data[offset:]
        out = np.lib.stride_tricks.as_strided(
            base, shape=size, strides=tuple(s * item for s in stride), writeable=False)
    return _convert(out, st.dtype)


def _convert(arr, storage_dtype):
    """A fresh C-contiguous copy in the output dtype (0-d tensors stay 0-d)."""
    if storage_dtype == _STORAGE_DTYPES["BFloat16Storage"]:
        return (np.array(arr, dtype=np.uint32) << 16).view(np.float32)
    kind = arr.dtype.kind
    if kind == "f":
        return np.array(arr, dtype=np.float32, order="C")
    if kind in "iu":
        return np.array(arr, dtype=np.int64, order="C")
    return np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C")


def _materialise_all(obj, source, limit, budget=None, path="", depth=0):
    """Replace _TensorRef objects inside dicts/lists with numpy arrays."""
    if depth > _MAX_DEPTH:
        raise ModelFormatError(f"{source}: containers nest more than {_MAX_DEPTH} levels deep")
    if budget is None:
        budget = [0, 0]
    # Shared references (memo gets) could make a small pickle describe an
    # exponentially large tree; each reference costs the pickle >= 1 byte.
    budget[1] += 1
    if budget[1] > (limit - _OUTPUT_SLACK) // _OUTPUT_FACTOR + 10000:  # file size + slack
        raise ModelFormatError(f"{source}: the pickle refers to more objects than it can hold")
    if isinstance(obj, _TensorRef):
        n = 8 if obj.storage.dtype.kind in "iu" else 4  # bytes per output element
        for s in obj.size:
            n *= max(s, 0)
        budget[0] += n
        _check_total(budget[0], limit, source, "tensors")
        return _materialise(obj, source, path or "<root>")
    if isinstance(obj, dict):
        return collections.OrderedDict(
            (k, _materialise_all(v, source, limit, budget, f"{path}.{k}" if path else str(k), depth + 1))
            for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise_all(v, source, limit, budget, f"{path}.{i}", depth + 1)
                         for i, v in enumerate(obj))
    return obj


def _flatten(obj, prefix, out):
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, np.ndarray):
            out[name] = v
        elif isinstance(v, dict):
            _flatten(v, name + ".", out)


def _select_state_dict(obj, source):
    """The flat name -> array mapping inside a checkpoint object."""
    if not isinstance(obj, dict):
        raise ModelFormatError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    for _ in range(8):  # unwrap {"state_dict": {...}} / {"model": {...}} layers
        direct = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
        if direct and len(direct) * 2 >= len(obj):
            break
        inner = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    out = collections.OrderedDict()
    _flatten(obj, "", out)
    if not out:
        raise ModelFormatError(f"{source}: contains no tensors")
    return out


def read_checkpoint(path):
    """The whole unpickled checkpoint, tensors as NumPy arrays (nesting kept)."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ModelFormatError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{source}: is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise ModelFormatError(f"{source}: cannot read ({exc.strerror or exc})") from None
    if len(raw) < 4:
        raise ModelFormatError(f"{source}: too short to be a PyTorch checkpoint")
    if raw[:4] == b"PK\x03\x04":
        obj = _read_zip(source, raw, source)
    elif raw[:1] == b"\x80":
        obj = _read_legacy(source, raw, source)
    elif len(raw) > 262 and raw[257:262] == b"ustar":
        raise ModelFormatError(f"{source}: the pre-0.4 tar checkpoint format is not supported")
    else:
        raise ModelFormatError(f"{source}: not a PyTorch checkpoint (neither zip nor pickle)")
    limit = _OUTPUT_FACTOR * len(raw) + _OUTPUT_SLACK
    return _materialise_all(obj, source, limit)


def load_state_dict(path):
    """Read a PyTorch ``.pth``/``.pt`` state dict: ``{name: np.ndarray}``.

    Float tensors (float16/bfloat16/float32/float64) come back as float32,
    integer tensors (e.g. ``num_batches_tracked``) as int64, bool as bool.
    Checkpoints that wrap the state dict (``{"state_dict": ...}``,
    ``{"model": ...}``, ...) are unwrapped; other nested dicts are flattened
    with dotted names. Raises ModelFormatError for anything that is not tensor
    data (naming the refused global), for truncated or inconsistent files.
    """
    return _select_state_dict(read_checkpoint(path), os.fspath(path))
