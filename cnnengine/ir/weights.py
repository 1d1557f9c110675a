"""Weights that stay in their file until something reads them.

A model's float weights are needed whole only once per plan: the CPU
backend packs each conv's weights into its own layout and never reads the
original again. Holding the originals as well doubled a model's memory
(ResNet-152: 240 MB of weights, 480 MB resident). So an importer may store
a weight as a FileTensor (where its bytes lie in the file) inside a Weights
mapping; reading `weights[name]` reads the file into a fresh array (exact:
the file's bytes), shared while anyone holds it (a weak reference) and
freed when nobody does. Everything else is an ordinary dict of arrays.

The ONNX importer reads the weights at load all the same (hold(), so that
the first plan does not wait for the file); release() drops one once a plan
has packed it (and unmaps a memory-mapped one's pages: the native file).
"""
import math
import mmap
import os
import threading
import weakref

import numpy as np

from ..errors import ModelFormatError


class _Anon(mmap.mmap):
    """Anonymous memory of its own mapping: unmapped when its array dies. Weights
    read or computed on demand are transient (packed, then dropped); from
    malloc, a packing thread's arena kept them (ConvNeXt at 2 threads: 315
    MB resident after planning, 180 with this)."""


def empty(shape, dtype=np.float32):
    """np.empty, but a large array gets a mapping of its own (see _Anon)."""
    dtype = np.dtype(dtype)
    count = 1
    for d in shape:
        count *= int(d)
    if count * dtype.itemsize < (1 << 20):
        return np.empty(shape, dtype)
    # shaped directly on the mapping: views of it then keep it (and a weak reference to it) alive
    return np.ndarray(tuple(int(d) for d in shape), dtype, buffer=_Anon(-1, count * dtype.itemsize))


def scaled(w, s):
    """w * s (s broadcast over w) in double, rounded once to float32, in one pass
    (no double copy of w: three passes over one were most of a BN fold's time)."""
    out = empty(np.shape(w), np.float32)
    np.multiply(w, s, out=out, dtype=np.float64, casting="same_kind")
    return out


class _Source:
    """An open file, shared by the FileTensors read from it (reads by pread:
    the file may be renamed or deleted after load, as a temp file is)."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.stamp = self._stamp()

    def _stamp(self):
        st = os.fstat(self.fd)
        return st.st_size, st.st_mtime_ns

    def read_into(self, buf, offset):
        if self._stamp() != self.stamp:     # rewritten in place: its bytes are no longer the model's
            raise ModelFormatError(f"{self.path}: the file changed after the model was loaded from it; "
                                   f"load the model again")
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view):
            got = os.preadv(self.fd, [view[done:]], offset + done)
            if got <= 0:
                raise ModelFormatError(f"{self.path}: the file is shorter than when it was loaded")
            done += got

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError, TypeError):
            pass


def open_source(path):
    return _Source(os.fspath(path))


class FileTensor:
    """A tensor's place in a file: `count` values of `stored` dtype at `offset`,
    read as `dtype` (float16/float64 files hold float32 weights here)."""
    __slots__ = ("source", "offset", "shape", "stored", "dtype", "_ref", "_lock", "held", "__weakref__")

    def __init__(self, source, offset, shape, stored, dtype=None):
        self.source, self.offset, self.shape = source, int(offset), tuple(int(d) for d in shape)
        self.stored = np.dtype(stored)
        self.dtype = np.dtype(dtype if dtype is not None else stored)
        self._ref = None
        self._lock = threading.Lock()
        self.held = None

    def hold(self):
        """Read now and keep until drop(): a model reads its weights at load, as
        before, and its first plan does not wait for the file."""
        self.held = self.load()

    def drop(self):
        """Keep it no longer (a plan packed it): read again from the file if asked."""
        self.held = None

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def ndim(self):
        return len(self.shape)

    def load(self):
        """The array (read-only); the same object while anyone holds it."""
        with self._lock:
            arr = self._ref() if self._ref is not None else None
            if arr is not None:
                return arr
            raw = empty(self.shape, self.stored)
            if raw.size:
                self.source.read_into(raw, self.offset)
            arr = raw if self.stored == self.dtype else np.ascontiguousarray(raw.astype(self.dtype))
            arr.flags.writeable = False
            self._ref = weakref.ref(arr)
            return arr


class DerivedTensor:
    """A weight a load-time pass computes from weights still in their file
    (BatchNorm or a layer scale folded into a conv, a MatMul turned 1x1 conv):
    computed on access like a FileTensor is read, so the model holds neither."""
    __slots__ = ("fn", "shape", "dtype", "_ref", "_lock", "held", "__weakref__")

    def __init__(self, fn, shape, dtype=np.float32):
        self.fn, self.shape, self.dtype = fn, tuple(int(d) for d in shape), np.dtype(dtype)
        self._ref = None
        self._lock = threading.Lock()
        self.held = None

    size = FileTensor.size
    ndim = FileTensor.ndim
    hold = FileTensor.hold
    drop = FileTensor.drop

    def load(self):
        with self._lock:
            arr = self._ref() if self._ref is not None else None
            if arr is not None:
                return arr
            arr = np.ascontiguousarray(self.fn(), dtype=self.dtype)
            if arr.shape != self.shape:
                raise ValueError(f"a derived weight came out {arr.shape}, not {self.shape}")
            arr.flags.writeable = False
            self._ref = weakref.ref(arr)
            return arr


_LAZY = (FileTensor, DerivedTensor)


def value(entry):
    """A raw entry's array (read or computed where it is lazy)."""
    return entry.load() if type(entry) in _LAZY else entry


def derive(weights, name, fn, shape, sources):
    """weights[name] = fn(*arrays of sources), sources being raw entries: lazily
    where every big source is lazy (nothing held), else computed now."""
    if type(weights) is Weights and any(type(s) in _LAZY for s in sources):
        entry = DerivedTensor(lambda: fn(*(value(s) for s in sources)), shape)
        if all(s.held is not None for s in sources if type(s) in _LAZY):
            entry.hold()            # computed now, as before; its sources need not stay
            for s in sources:
                if type(s) in _LAZY:
                    s.drop()
        dict.__setitem__(weights, name, entry)
    else:
        weights[name] = np.ascontiguousarray(fn(*(value(s) for s in sources)), dtype=np.float32)


class Weights(dict):
    """name -> array, where a value may be stored as a FileTensor and is read
    on access. dict(w), w.items(), w.values() give arrays; w.copy() and
    subset() keep the unread entries unread. `caching`: an entry read once
    stays read (a plan's values after planning: occlusion reads them per
    window); otherwise it is re-read whenever nobody holds the array."""

    caching = False

    def __getitem__(self, key):
        v = dict.__getitem__(self, key)
        if type(v) in _LAZY:
            arr = v.load()
            if self.caching:
                dict.__setitem__(self, key, arr)
            return arr
        return v

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __iter__(self):             # also makes dict(w) read through __getitem__
        return dict.__iter__(self)

    def items(self):
        return [(k, self[k]) for k in dict.keys(self)]

    def values(self):
        return [self[k] for k in dict.keys(self)]

    def pop(self, key, *default):
        if key in self:
            v = self[key]
            dict.__delitem__(self, key)
            return v
        if default:
            return default[0]
        raise KeyError(key)

    def setdefault(self, key, default=None):
        if key not in self:
            dict.__setitem__(self, key, default)
        return self[key]

    def copy(self):
        return copy_weights(self)

    def __reduce__(self):
        return dict, (dict(self),)


def copy_weights(weights):
    """A copy of a weights dict that leaves unread entries unread (a plain dict stays plain)."""
    if type(weights) is not Weights:
        return dict(weights)
    out = Weights()
    dict.update(out, dict.items(weights))
    return out


def subset(weights, keys):
    """The entries of weights named in keys, unread ones left unread."""
    out = Weights() if type(weights) is Weights else {}
    for k in keys:
        if k in weights:
            dict.__setitem__(out, k, dict.__getitem__(weights, k))
    return out


def raw(weights, key):
    """The stored entry: an array or a FileTensor (has .shape, .dtype, .size, .ndim)."""
    return dict.__getitem__(weights, key)


def shape_of(weights, key):
    v = raw(weights, key)
    return v.shape if type(v) in _LAZY else tuple(np.shape(v))


def dtype_of(weights, key):
    v = raw(weights, key)
    return v.dtype if type(v) in _LAZY else np.asarray(v).dtype


def is_unread(weights, key):
    return type(weights) is Weights and type(dict.__getitem__(weights, key)) in _LAZY


def release(weights, name):
    """A weight a plan packed and nothing will read soon: a held lazy entry is
    dropped (read again from its file if asked), a memory-mapped array's
    resident pages go; anything else stays."""
    entry = raw(weights, name)
    if type(entry) in _LAZY:
        entry.drop()
    else:
        release_pages(entry)


def release_pages(array):
    """Drop the resident pages of a memory-mapped array (they fault back in from the file)."""
    if not isinstance(array, np.ndarray) or array.nbytes < mmap.PAGESIZE:
        return
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    if not isinstance(base, mmap.mmap) or isinstance(base, _Anon) or not hasattr(base, "madvise"):
        return      # only a file's pages come back from the file
    try:
        start = np.frombuffer(base, np.uint8, count=1).ctypes.data
    except (ValueError, TypeError):
        return
    lo = array.ctypes.data - start
    hi = lo + array.nbytes
    page = mmap.PAGESIZE
    lo = (lo + page - 1) // page * page
    hi = hi // page * page
    if hi > lo:
        try:
            base.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):
            pass
