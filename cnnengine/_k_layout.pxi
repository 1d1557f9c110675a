# Bindings for the layout kernel family; see the conventions in _kernels.pyx.
