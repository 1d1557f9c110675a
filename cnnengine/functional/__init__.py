"""NumPy-in, NumPy-out CNN operators with PyTorch's semantics and weight layouts.

Every op validates its arguments (raising cnnengine.ShapeError naming the
bad dimension), copies non-contiguous or non-float32 input, releases the GIL
and runs the C kernel. `threads=` sets the team size for one call.
"""
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .layout import *  # noqa: F401,F403
