# Bindings for the norm kernel family; see the conventions in _kernels.pyx.
