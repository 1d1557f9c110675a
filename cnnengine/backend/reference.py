"""The reference backend: every op through its NumPy-level definition.

Its kernel table is empty, so each step runs the op's reference evaluation
(cnnengine.ops) on the unfused graph, exactly as the source file defines
it. It is the oracle the tests hold every other backend to.
"""
from .base import Backend


class ReferenceBackend(Backend):
    name = "reference"
    fuses = False
    description = "every op's NumPy-level definition, on the unfused graph (the tests' oracle)"
