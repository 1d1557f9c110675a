"""cnnengine: a CPU inference engine for convolutional neural networks.

    import cnnengine as ce
    m = ce.load("efficientnet_lite0")
    y = m.run(x)                       # x: float32 NCHW
    y, acts = m.run(x, capture=True)   # every layer's activation
"""
from . import functional
from ._kernels import active_isa, detected_isa, num_cores, set_isa
from .errors import (BackendUnavailableError, Error, InputError, ModelFormatError,
                     ResourceError, ShapeError, UnsupportedOpError)
from .model import Model, TensorInfo, load
from .summary import LayerInfo

__version__ = "0.1.0"


def cpu_info():
    """What the kernels will use: detected and active ISA, core count."""
    return {"detected_isa": detected_isa(), "active_isa": active_isa(), "cores": num_cores()}
