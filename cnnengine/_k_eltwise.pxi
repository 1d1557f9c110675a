# Bindings for the eltwise kernel family; see the conventions in _kernels.pyx.
