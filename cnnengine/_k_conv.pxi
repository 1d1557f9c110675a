# Bindings for the conv kernel family; see the conventions in _kernels.pyx.
