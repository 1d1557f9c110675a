"""Runs a graph on the CPU op table.

A plan is made on the first run at each input signature (shapes and
dtypes): the run records every value's shape, evaluates once the nodes that
depend only on weights and input *shapes* (TorchScript's Shape -> Gather ->
Concat -> Reshape chains), and keeps the rest as steps with the index of
each value's last use, so intermediates are released as soon as they are
dead. Plans are immutable after construction; `run` keeps its state in
locals, so one executor serves several Python threads at once.
"""
import threading
import time

import numpy as np

from ..errors import Error, ShapeError
from .cpu_ops import OPS


class Plan:
    def __init__(self, graph, static, steps, shapes):
        self.graph = graph
        self.static = static          # value -> array, fixed for this signature
        self.steps = steps            # [(node, [input names], [output names], [values to free])]
        self.shapes = shapes          # value -> shape


class Executor:
    def __init__(self, graph):
        self.graph = graph
        self._plans = {}
        self._lock = threading.Lock()

    def run(self, feeds, keep=(), profile=None):
        """feeds: input name -> array. Returns {value: array} for graph outputs and `keep`.

        profile: a dict that receives {node name: seconds} for each step run."""
        key = tuple((k, v.shape, v.dtype.str) for k, v in sorted(feeds.items()))
        plan = self._plans.get(key)
        if plan is None:
            plan, values = self._make_plan(feeds, keep)
            with self._lock:
                self._plans.setdefault(key, plan)
            if profile is None:
                return values
        return self._run_plan(plan, feeds, keep, profile)

    def plan_for(self, feeds):
        key = tuple((k, v.shape, v.dtype.str) for k, v in sorted(feeds.items()))
        if key not in self._plans:
            self.run(feeds)
        return self._plans[key]

    # ---------------------------------------------------------- internals
    def _make_plan(self, feeds, keep):
        g = self.graph
        env = dict(g.weights)
        static = set(g.weights)
        env.update(feeds)
        shapes = {k: tuple(v.shape) for k, v in env.items()}
        steps = []
        for node in g.nodes:
            ins = [env[i] if i else None for i in node.inputs]
            outs = _call(node, ins)
            is_static = node.op in ("Shape", "Size") or all((not i) or i in static for i in node.inputs)
            for name, value in zip(node.outputs, outs):
                if name:
                    env[name] = value
                    shapes[name] = tuple(np.shape(value))
                    if is_static:
                        static.add(name)
            if not is_static:
                steps.append(node)
        wanted = {o.name for o in g.outputs} | set(keep)
        static_values = {k: env[k] for k in static if k in env}
        plan = Plan(g, static_values, _with_liveness(steps, wanted, static_values), shapes)
        return plan, {k: env[k] for k in wanted if k in env}

    def _run_plan(self, plan, feeds, keep, profile=None):
        env = dict(plan.static)
        env.update(feeds)
        kept = set(keep)
        for node, free in plan.steps:
            ins = [env[i] if i else None for i in node.inputs]
            if profile is None:
                outs = _call(node, ins)
            else:
                t0 = time.perf_counter()
                outs = _call(node, ins)
                profile[node.name] = profile.get(node.name, 0.0) + time.perf_counter() - t0
            for name, value in zip(node.outputs, outs):
                if name:
                    env[name] = value
            for name in free:
                if name not in kept:
                    env.pop(name, None)
        wanted = [o.name for o in plan.graph.outputs] + list(keep)
        return {k: env[k] for k in wanted if k in env}


def _with_liveness(steps, wanted, static):
    """Attach to each step the values whose last use it is."""
    last = {}
    for idx, node in enumerate(steps):
        for name in node.inputs:
            if name and name not in static:
                last[name] = idx
        for name in node.outputs:
            if name:
                last.setdefault(name, idx)
    free = [[] for _ in steps]
    for name, idx in last.items():
        if name not in wanted:
            free[idx].append(name)
    return [(node, free[i]) for i, node in enumerate(steps)]


def _call(node, ins):
    try:
        return OPS[node.op](node, ins)
    except Error as exc:
        msg = str(exc)
        if node.name not in msg:
            msg = f"node {node.name!r} ({node.op}): {msg}"
        raise type(exc)(msg) from None
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise ShapeError(f"node {node.name!r} ({node.op}) failed on inputs "
                         f"{[None if i is None else tuple(i.shape) for i in ins]}: {exc}") from None
