"""cnnengine: a CPU inference engine for convolutional neural networks."""
from . import functional
from ._kernels import active_isa, detected_isa, num_cores, set_isa
from .errors import (BackendUnavailableError, Error, InputError, ModelFormatError,
                     ResourceError, ShapeError, UnsupportedOpError)

__version__ = "0.1.0"


def cpu_info():
    """What the kernels will use: detected and active ISA, core count."""
    return {"detected_isa": detected_isa(), "active_isa": active_isa(), "cores": num_cores()}
