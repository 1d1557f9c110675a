"""Control flow: If.

Running a branch is running a graph, which is the runtime's business; ops
must not import the runtime, so the runtime hands its runner in with
set_subgraph_runner(). Until it does, branches run node by node on the
reference ops (run_graph), which gives the same values.
"""
from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError
from ..ir.graph import Graph
from . import register
from ._common import dummy
from .base import OpDef, unsupported


def run_graph(graph, feeds):
    """Evaluate a graph on the reference ops -> {value: array} of every value."""
    from . import evaluate
    env = dict(graph.weights)
    env.update(feeds)
    for node in graph.nodes:
        for name, value in zip(node.outputs, evaluate(node, [env[i] if i else None for i in node.inputs])):
            if name:
                env[name] = value
    return env


def _reference_runner(graph):
    return lambda feeds: run_graph(graph, feeds)


_runner = [_reference_runner]


def set_subgraph_runner(make):
    """make(graph) -> run(feeds) -> {value: array} holding the graph's outputs.
    The executor installs its own (plans, compiled steps) when it is imported."""
    _runner[0] = make


def infer_graph(graph, in_shapes, consts):
    """Output shapes of a graph from its input shapes (input position -> shape) and
    the inputs known at plan time: nodes whose inputs are all known are evaluated
    (Shape and Size from shapes alone), the rest go through infer."""
    from . import evaluate, infer
    shapes = {v.name: tuple(s) for v, s in zip(graph.inputs, in_shapes) if s is not None}
    values = dict(graph.weights)
    values.update({graph.inputs[i].name: v for i, v in consts.items() if i < len(graph.inputs)})
    shapes.update({k: np.shape(v) for k, v in values.items()})
    for node in graph.nodes:
        ins = [i for i in node.inputs]
        if all((not i) or i in values for i in ins):
            outs = evaluate(node, [values[i] if i else None for i in ins])
            values.update({o: v for o, v in zip(node.outputs, outs) if o})
            shapes.update({o: np.shape(v) for o, v in zip(node.outputs, outs) if o})
            continue
        if node.op in ("Shape", "Size") and ins[0] in shapes:
            outs = evaluate(node, [dummy(shapes[ins[0]])])
            values.update({o: v for o, v in zip(node.outputs, outs) if o})
        else:
            outs = infer(node, [shapes.get(i) if i else None for i in ins],
                         {k: values[i] for k, i in enumerate(ins) if i and i in values})
        shapes.update({o: tuple(np.shape(v)) if not isinstance(v, tuple) else v
                       for o, v in zip(node.outputs, outs) if o})
    return [shapes[o.name] for o in graph.outputs]


@dataclass(frozen=True)
class IfParams:
    then_branch: Graph = field(compare=False)
    else_branch: Graph = field(compare=False)
    runners: dict = field(default_factory=dict, compare=False, repr=False)   # branch key -> run(feeds)


@register
class If(OpDef):
    """Run the branch the condition picks; inputs after the condition are the
    outer values the branches read, in the order of the branch graphs' inputs."""
    types = ("If",)
    Params = IfParams
    inputs = ("cond", "outer*")

    def parse(self, node):
        for key in ("then_branch", "else_branch"):
            if not isinstance(node.attrs.get(key), Graph):
                raise unsupported(node, f"attribute {key} is not a graph")
        return IfParams(node.attrs["then_branch"], node.attrs["else_branch"])

    def _branch(self, p, cond):
        cond = np.asarray(cond)
        if cond.size != 1:
            raise ShapeError(f"condition has {cond.size} elements, expected 1")
        key = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
        return key, getattr(p, key)

    def infer(self, p, in_shapes, consts):
        if 0 not in consts:
            raise ShapeError("the condition is not known at plan time")
        _, branch = self._branch(p, consts[0])
        inner = {k - 1: v for k, v in consts.items() if k > 0}
        return infer_graph(branch, list(in_shapes[1:]), inner)

    def reference(self, p, ins):
        key, branch = self._branch(p, ins[0])
        run = p.runners.get(key)
        if run is None:
            run = p.runners.setdefault(key, _runner[0](branch))
        feeds = {v.name: x for v, x in zip(branch.inputs, ins[1:]) if x is not None}
        result = run(feeds)
        return [result[o.name] for o in branch.outputs]
