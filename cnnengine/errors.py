"""The exceptions users can see. Everything a caller can cause is an Error.

Subclasses also derive from the closest builtin (ValueError, MemoryError) so
code written against NumPy-style errors keeps working.
"""


class Error(Exception):
    """Base class of every error cnnengine raises on purpose."""


class ShapeError(Error, ValueError):
    """A tensor's shape, rank or dtype does not fit the operation."""


class ModelFormatError(Error, ValueError):
    """A model file is malformed, truncated, inconsistent or hostile."""


class UnsupportedOpError(Error, NotImplementedError):
    """The model uses an operator (or an attribute of one) we do not run."""


class BackendUnavailableError(Error, RuntimeError):
    """The requested backend (e.g. cuda) is not built or has no device."""


class ResourceError(Error, MemoryError):
    """A request needs more memory than the engine will allocate."""


class InputError(Error, ValueError):
    """A bad input to a model or command: wrong name, file, image or value."""
