"""Backends the executor can run a plan on, and which of them this build has.

    ce.backends()                      # [BackendInfo(name, available, reason, description)]
    ce.load(path, backend="reference")

Adding one: a Backend subclass (base.py) -- a kernel table, a buffer
allocator, optionally a layout -- and a line in _KNOWN.
"""
import importlib
from dataclasses import dataclass

from ..errors import BackendUnavailableError

# name -> (module, class); "cuda" is known so that asking for it says why it is absent
_KNOWN = {
    "cpu": ("cnnengine.backend.cpu", "CpuBackend"),
    "reference": ("cnnengine.backend.reference", "ReferenceBackend"),
    "cuda": ("cnnengine.backend.cuda", "CudaBackend"),
}


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    reason: str          # why not, where not available
    description: str


def _class(name):
    module, cls = _KNOWN[name]
    return getattr(importlib.import_module(module), cls)


def backends():
    """Every backend this build knows: whether it is available here, and why not."""
    out = []
    for name in _KNOWN:
        cls = _class(name)
        ok, reason = cls.availability()
        out.append(BackendInfo(name, ok, reason, cls.description))
    return out


def names():
    return list(_KNOWN)


def create(name):
    """A backend instance, or BackendUnavailableError saying why there is none."""
    if not isinstance(name, str) or name not in _KNOWN:
        raise BackendUnavailableError(f"unknown backend {name!r} (known: {', '.join(_KNOWN)})")
    cls = _class(name)
    ok, reason = cls.availability()
    if not ok:
        raise BackendUnavailableError(f"backend {name!r} is not available: {reason}")
    return cls()
