"""The graph IR.

Operators keep ONNX names and ONNX attribute semantics (normalised to the
newest form at import: Clip's min/max, Pad's pads, Resize's scales are
attributes here, whatever the opset stored them as), so one importer is the
identity map and every other source is a translation to a well-specified
vocabulary. Node names are kept from the source file because people see
them (capture, summary, the app).
"""
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFormatError
from .weights import shape_of

MAX_DIM = 1 << 24          # no real CNN has a dimension this large
MAX_ELEMENTS = 1 << 31     # per tensor (8 GiB of float32): refuses absurd allocations


@dataclass(eq=False)     # identity: list.index/remove in the passes compared whole nodes (attrs and all)
class Node:
    name: str
    op: str
    inputs: list          # value names; "" marks an omitted optional input
    outputs: list
    attrs: dict = field(default_factory=dict)
    params: object = None  # the op's typed parameters (cnnengine.ops), parsed once
    fused: tuple = ()      # names of the source layers a fusion pass folded into this node

    def __repr__(self):
        return f"Node({self.name!r}, {self.op}, {self.inputs} -> {self.outputs})"


@dataclass
class ValueInfo:
    name: str
    shape: tuple          # ints, or None / str for unknown (symbolic) dims
    dtype: str = "float32"


@dataclass
class Graph:
    inputs: list                              # [ValueInfo], the data inputs
    outputs: list                             # [ValueInfo]
    nodes: list                               # [Node] in execution order
    weights: dict = field(default_factory=dict)   # name -> np.ndarray (or a weights.Weights)
    metadata: dict = field(default_factory=dict)  # labels, preprocess, source, ...
    opset: int = 18

    # ------------------------------------------------------------ queries
    def producers(self):
        return {out: n for n in self.nodes for out in n.outputs if out}

    def consumers(self):
        users = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    users.setdefault(i, []).append(n)
        for o in self.outputs:
            users.setdefault(o.name, []).append(None)   # None: a graph output
        return users

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    # --------------------------------------------------------- validation
    def validate(self, source="model"):
        """Topologically sort the nodes and check the graph is well formed.

        Raises ModelFormatError for cycles, values nobody produces, a value
        produced twice, absurd weight or input sizes.
        """
        known = {v.name for v in self.inputs} | set(self.weights)
        for name in self.weights:
            check_shape(shape_of(self.weights, name), f"{source}: weight {name!r}")
        for v in self.inputs:
            check_shape([d for d in v.shape if isinstance(d, int)], f"{source}: input {v.name!r}")
        produced = {}
        seen_names = set()
        for n in self.nodes:
            if not n.name or n.name in seen_names:
                raise ModelFormatError(f"{source}: node names must be unique and non-empty ({n.name!r})")
            seen_names.add(n.name)
            for o in n.outputs:
                if not o:
                    continue
                if o in produced or o in known:
                    raise ModelFormatError(f"{source}: value {o!r} is produced twice (node {n.name!r})")
                produced[o] = n
        self.nodes = toposort(self.nodes, known, source)
        available = known | set(produced)
        for o in self.outputs:
            if o.name not in available:
                raise ModelFormatError(f"{source}: graph output {o.name!r} is not produced by any node")
        return self


def check_shape(shape, what):
    total = 1
    for d in shape:
        if not isinstance(d, (int, np.integer)) or d < 0 or d > MAX_DIM:
            raise ModelFormatError(f"{what}: dimension {d!r} out of range in shape {tuple(shape)}")
        total *= int(d)
    if total > MAX_ELEMENTS:
        raise ModelFormatError(f"{what}: {total} elements is more than this engine will allocate")


def toposort(nodes, known, source="model"):
    """Kahn's algorithm, stable with respect to the file's order."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.outputs if o}
    deps = []
    for i, n in enumerate(nodes):
        d = set()
        for name in n.inputs:
            if not name or name in known:
                continue
            if name not in producer:
                raise ModelFormatError(
                    f"{source}: node {n.name!r} ({n.op}) reads {name!r}, which no node, input or weight defines")
            d.add(producer[name])
        deps.append(d)
    users = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    remaining = [len(d) for d in deps]
    import heapq
    ready = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for u in users[i]:
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name for i, r in enumerate(remaining) if r > 0][:5]
        raise ModelFormatError(f"{source}: the graph has a cycle through nodes {stuck}")
    return order
