"""cnnengine: a CPU inference engine for convolutional neural networks.

    import cnnengine as ce
    m = ce.load("efficientnet_lite0")
    y = m.run(x)                       # x: float32 NCHW
    y, acts = m.run(x, capture=True)   # every layer's activation
"""
import os as _os

from . import functional
from .backend import backends
from .batch import ClusterError, batch_occlusion, batch_run, to_dataframe
from .deconvnet import deconvnet
from ._kernels import active_isa, detected_isa, num_cores, set_isa
from .errors import (BackendUnavailableError, Error, InputError, ModelFormatError,
                     ResourceError, ShapeError, UnsupportedOpError)
from .model import Model, TensorInfo, load
from .occlusion import OcclusionResult, occlusion
from .summary import LayerInfo

__version__ = "0.1.0"


def sample_image(name="cat"):
    """Path of a bundled sample photo: "cat" or "coffee" (see data/LICENSE-images.txt)."""
    path = _os.path.join(_os.path.dirname(__file__), "data", f"{name}.jpg")
    if not _os.path.isfile(path):
        raise InputError(f"no bundled sample image {name!r} (bundled: cat, coffee)")
    return path


def cpu_info():
    """What the kernels will use: detected and active ISA, core count."""
    return {"detected_isa": detected_isa(), "active_isa": active_isa(), "cores": num_cores()}
