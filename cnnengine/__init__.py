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


def _check_isa_env():
    """CNNENGINE_ISA is read by the C dispatcher, which ignores what it does not
    know; say so at import instead of running silently on another path."""
    import warnings
    want = _os.environ.get("CNNENGINE_ISA", "").strip().lower()
    if not want:
        return
    known = ("scalar", "ref", "portable", "avx2", "avx512")
    if want not in known:
        warnings.warn(f"CNNENGINE_ISA={_os.environ['CNNENGINE_ISA']!r} is not one of {', '.join(known)}; "
                      f"ignored, using {active_isa()}", RuntimeWarning, stacklevel=3)
    elif want in ("avx2", "avx512") and active_isa() != want:
        warnings.warn(f"CNNENGINE_ISA={want}: this CPU supports {detected_isa()}; using {active_isa()}",
                      RuntimeWarning, stacklevel=3)


_check_isa_env()
