# Bindings for the pool kernel family; see the conventions in _kernels.pyx.
