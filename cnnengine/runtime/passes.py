"""Graph rewrites, as one ordered pipeline of named passes.

fold_constants and remove_identities are exact and always run. The fusing
passes (BatchNorm into Conv, residual Add and activation into the Conv
epilogue, x*sigmoid(x) -> SiLU, a squeeze-excitation gate into the next
1x1 conv; GELU subgraphs, channels-last LayerNorm/MatMul blocks and layer
scales in fusions_modern.py) change which intermediate values exist, so
the executor keeps the unfused graph too and uses it when someone captures
a value that fusion removed. The last pass, the backend's layout, needs
shapes, so it runs when a plan is made for an input signature
(Backend.prepare); `cnnengine info MODEL --passes` shows every pass.
"""
import copy
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from ..errors import Error, ModelFormatError
from ..ir.graph import Graph, Node
from ..ir.weights import copy_weights, derive, raw, scaled, subset
from ..ops.epilogue import KERNEL_ACTS, activation_params
from .. import ops
from . import fusions_modern


def fold_constants(graph):
    """Evaluate every node whose inputs are all weights; its outputs become weights."""
    weights = copy_weights(graph.weights)     # unread file weights stay unread
    kept = []
    for node in graph.nodes:
        if ops.known(node.op) and node.inputs and all((not i) or i in weights for i in node.inputs) \
                and not any(o in {v.name for v in graph.outputs} for o in node.outputs):
            try:
                outs = ops.evaluate(node, [weights[i] if i else None for i in node.inputs])
            except (Error, ValueError, IndexError, TypeError, KeyError, ArithmeticError):
                kept.append(node)       # left to run time, where the executor names node and shapes
                continue
            for name, value in zip(node.outputs, outs):
                if name:
                    weights[name] = np.asarray(value, order="C")   # keeps 0-d scalars 0-d
            continue
        kept.append(node)
    used = {i for n in kept for i in n.inputs} | {o.name for o in graph.outputs}
    weights = subset(weights, [k for k in weights if k in used])
    return Graph(graph.inputs, graph.outputs, kept, weights, graph.metadata, graph.opset)


def remove_identities(graph):
    """Drop Identity nodes (and Dropout, already Identity) by renaming their consumers.

    Returns (graph, aliases) where aliases maps a removed value to the one
    that holds the same data.
    """
    outputs = {o.name for o in graph.outputs}
    rename, kept = {}, []
    for node in graph.nodes:
        if node.op == "Identity" and node.outputs[0] not in outputs:
            src = node.inputs[0]
            rename[node.outputs[0]] = rename.get(src, src)
            continue
        kept.append(node)
    nodes = [Node(n.name, n.op, [rename.get(i, i) for i in n.inputs], n.outputs, n.attrs, n.params, n.fused)
             for n in kept]
    return Graph(graph.inputs, graph.outputs, nodes, graph.weights, graph.metadata, graph.opset), rename



@dataclass(frozen=True)
class PassReport:
    name: str
    nodes: int          # node count after the pass
    change: str         # what it changed, in words ("" when nothing)


@dataclass
class Pipeline:
    original: Graph     # after constant folding: the graph whose nodes are the model's layers
    graph: Graph        # plus Identity removal: the unfused graph the executor can run
    aliases: dict       # removed Identity output -> the value holding its data
    fused: Graph        # after every fusion pass (== graph when not fusing)
    reports: list       # [PassReport] in order


def run_pipeline(graph, *, fuse=True):
    """Every load-time pass in order (the layout pass runs per plan)."""
    reports = []
    g = fold_constants(graph)
    reports.append(PassReport("fold_constants", len(g.nodes), describe(graph, g)))
    original = g
    g, aliases = remove_identities(original)
    reports.append(PassReport("remove_identities", len(g.nodes), describe(original, g)))
    plain, fused = g, g
    if fuse:
        fused = _copy(plain)
        for name, fn in FUSION_PASSES:
            before = _copy(fused)
            fn(fused)
            reports.append(PassReport(name, len(fused.nodes), describe(before, fused)))
    return Pipeline(original, plain, aliases, fused, reports)


def fuse(graph):
    """The fusion passes on a copy of graph."""
    g = _copy(graph)
    for _, fn in FUSION_PASSES:
        fn(g)
    return g


def _copy(graph):
    g = Graph(graph.inputs, graph.outputs, [copy.copy(n) for n in graph.nodes],
              copy_weights(graph.weights), graph.metadata, graph.opset)
    for n in g.nodes:
        n.attrs = dict(n.attrs)
        n.inputs = list(n.inputs)
    return g


def describe(before, after):
    """What turned `before` into `after`, by op: nodes removed, added and rewritten."""
    old = {n.name: n for n in before.nodes}
    new = {n.name: n for n in after.nodes}
    removed = Counter(n.op for k, n in old.items() if k not in new)
    added = Counter(n.op for k, n in new.items() if k not in old)
    changed = Counter(n.op if old[k].op == n.op else f"{old[k].op} -> {n.op}"
                      for k, n in new.items() if k in old and _differs(old[k], n))
    parts = [f"-{c} {op}" for op, c in sorted(removed.items())]
    parts += [f"+{c} {op}" for op, c in sorted(added.items())]
    parts += [f"{c} {op}" + ("" if "->" in op else " rewritten") for op, c in sorted(changed.items())]
    folded = len(after.weights) - len(before.weights)
    if folded > 0:
        parts.append(f"+{folded} constants")
    return ", ".join(parts)


def _differs(a, b):
    return a.op != b.op or list(a.inputs) != list(b.inputs) or list(a.outputs) != list(b.outputs) or \
        _params(a) != _params(b)


def _params(node):
    return ops.params_of(node) if ops.known(node.op) else node.params


class _Maps:
    """g's producer and consumer maps, built once and again only after a
    pass changed the graph: asking g for them per candidate node made the
    passes quadratic (a 10,000-node chain took 25 s to load)."""

    def __init__(self, g):
        self.g, self._prod, self._cons = g, None, None

    def producers(self):
        if self._prod is None:
            self._prod = self.g.producers()
        return self._prod

    def consumers(self):
        if self._cons is None:
            self._cons = self.g.consumers()
        return self._cons

    def changed(self):
        self._prod = self._cons = None

    def replaced(self, old_nodes, new):
        """Update the maps for `new` taking the place of old_nodes, instead of
        rebuilding them (rebuilding after each of EfficientNet-Lite0's 49 BN
        folds was a tenth of `cnnengine run`'s CPU time)."""
        if self._prod is not None:
            for n in old_nodes:
                for o in n.outputs:
                    if o and self._prod.get(o) is n:
                        del self._prod[o]
            self._prod.update((o, new) for o in new.outputs if o)
        if self._cons is not None:
            gone = {id(n) for n in old_nodes}
            for v in {i for n in old_nodes for i in n.inputs if i}:
                users = [u for u in self._cons.get(v, []) if u is None or id(u) not in gone]
                if users:
                    self._cons[v] = users
                else:
                    self._cons.pop(v, None)
            for i in new.inputs:
                if i:
                    self._cons.setdefault(i, []).append(new)


def _single_consumer(g, value, maps=None):
    users = (maps or g).consumers().get(value, [])
    return users[0] if len(users) == 1 and users[0] is not None else None


def _replace(g, old_nodes, new_node):
    idx = g.nodes.index(old_nodes[0])
    for n in old_nodes:
        g.nodes.remove(n)
    g.nodes.insert(idx, new_node)


def _fold_batchnorm(g):
    maps = _Maps(g)
    for bn in [n for n in g.nodes if n.op == "BatchNormalization"]:
        prod = maps.producers().get(bn.inputs[0])
        if prod is None or prod.op not in ("Conv", "ConvTranspose") or \
                _single_consumer(g, prod.outputs[0], maps) is not bn:
            continue
        if not all(i in g.weights for i in bn.inputs[1:5]) or prod.inputs[1] not in g.weights:
            continue
        if prod.op == "ConvTranspose" and int(prod.attrs.get("group", 1)) != 1:
            continue
        scale, beta, mean, var = (g.weights[i].astype(np.float64) for i in bn.inputs[1:5])
        w = raw(g.weights, prod.inputs[1])     # its shape: the fold itself may wait for the plan
        k = w.shape[0 if prod.op == "Conv" else 1] if w.ndim == 4 else -1
        if any(v.shape != (k,) for v in (scale, beta, mean, var)):
            continue      # not per-channel vectors of the conv's outputs: the op itself says what is wrong
        with np.errstate(invalid="ignore"):     # a negative variance gives NaN, as the unfolded op does
            s = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        b = g.weights[prod.inputs[2]].astype(np.float64) if len(prod.inputs) > 2 and prod.inputs[2] else 0.0
        b = (b - mean) * s + beta
        wname, bname = f"{prod.name}__w_bn", f"{prod.name}__b_bn"
        factor = s.reshape((-1, 1, 1, 1) if prod.op == "Conv" else (1, -1, 1, 1))
        derive(g.weights, wname, lambda w, factor=factor: scaled(w, factor), w.shape,
               [raw(g.weights, prod.inputs[1])])     # bound now: recomputed after the loop moved on
        g.weights[bname] = b.astype(np.float32)
        fused = Node(prod.name, prod.op, [prod.inputs[0], wname, bname], [bn.outputs[0]], dict(prod.attrs),
                     ops.params_of(prod), prod.fused + (bn.name,))
        _replace(g, [prod, bn], fused)
        maps.replaced([prod, bn], fused)


def _fuse_silu(g):
    """x * sigmoid(x) -> SiLU, and x * hardsigmoid(x) with alpha 1/6, beta
    1/2 -> HardSwish (how PyTorch exports nn.Hardswish below opset 14:
    MobileNetV3's 21 of them then fuse into the conv epilogues)."""
    maps = _Maps(g)
    for sig in [n for n in g.nodes if n.op in ("Sigmoid", "HardSigmoid")]:
        mul = _single_consumer(g, sig.outputs[0], maps)
        if mul is None or mul.op != "Mul" or sig not in g.nodes:
            continue
        x = sig.inputs[0]
        if sorted(mul.inputs) != sorted([x, sig.outputs[0]]):
            continue
        if sig.op == "Sigmoid":
            fused = Node(mul.name, "cnn.Silu", [x], mul.outputs, {}, None, (sig.name,))
        elif abs(float(sig.attrs.get("alpha", 0.2)) - 1.0 / 6.0) < 1e-7 and \
                float(sig.attrs.get("beta", 0.5)) == 0.5:
            fused = Node(mul.name, "HardSwish", [x], mul.outputs, {}, None, (sig.name,))
        else:
            continue
        _replace(g, [sig, mul], fused)
        maps.replaced([sig, mul], fused)


def _fuse_residual(g):
    maps = _Maps(g)
    for add in [n for n in g.nodes if n.op == "Add"]:
        for k in (0, 1):
            prod = maps.producers().get(add.inputs[k])
            if prod is None or prod.op != "Conv" or ops.params_of(prod).act or len(prod.inputs) > 3:
                continue
            if _single_consumer(g, prod.outputs[0], maps) is not add or add.inputs[1 - k] in g.weights:
                continue
            other = add.inputs[1 - k]
            bias = prod.inputs[2] if len(prod.inputs) > 2 else ""
            fused = Node(prod.name, "Conv", [prod.inputs[0], prod.inputs[1], bias, other],
                         [add.outputs[0]], dict(prod.attrs), ops.params_of(prod), prod.fused + (add.name,))
            # The residual must be computed before the conv runs: place the
            # fused node where the Add was (all its inputs exist there).
            idx = g.nodes.index(add)
            g.nodes.remove(add)
            g.nodes.insert(idx, fused)
            g.nodes.remove(prod)
            maps.replaced([prod, add], fused)
            break


def _fuse_activation(g):
    maps = _Maps(g)
    for act in [n for n in g.nodes if n.op in KERNEL_ACTS]:
        prod = maps.producers().get(act.inputs[0])
        if prod is None or prod.op not in ("Conv", "Gemm", "BatchNormalization") or \
                ops.params_of(prod).act or any(prod.outputs[1:]):
            continue
        if _single_consumer(g, prod.outputs[0], maps) is not act:
            continue
        params = activation_params(act, g.weights)
        if params is None:
            continue
        name, alpha, beta = params
        params = replace(ops.params_of(prod), act=name, act_alpha=alpha, act_beta=beta)
        fused = Node(prod.name, prod.op, list(prod.inputs), [act.outputs[0]], dict(prod.attrs), params,
                     prod.fused + (act.name,))
        idx = g.nodes.index(act)
        g.nodes.remove(act)
        g.nodes.insert(idx, fused)
        g.nodes.remove(prod)
        maps.replaced([prod, act], fused)


# ops a squeeze-excitation gate passes through between its spatial mean and the Mul
_GATE_OPS = ("Conv", "Relu", "Clip", "cnn.Silu", "HardSwish", "Sigmoid", "HardSigmoid")


def _gate(g, mul):
    """(x, s, conv) when mul = x * s and s is computed from the spatial mean
    of x through 1x1-sized convs and activations (squeeze-excitation), conv
    the last conv before s; else None."""
    prods = g.producers()
    for k in (0, 1):
        x, s = mul.inputs[k], mul.inputs[1 - k]
        node, last_conv = prods.get(s), None
        for _ in range(8):
            if node is None or not node.inputs:
                break
            if node.op == "GlobalAveragePool" or (
                    node.op == "ReduceMean" and int(node.attrs.get("keepdims", 1)) and
                    sorted(a % 4 for a in node.attrs.get("axes", ())) == [2, 3]):
                if node.inputs[0] == x and last_conv is not None:
                    return x, s, last_conv
                break
            if node.op not in _GATE_OPS:
                break
            if node.op == "Conv" and last_conv is None:
                last_conv = node
            node = prods.get(node.inputs[0])
    return None


def _fuse_channel_scale(g):
    """Squeeze-excitation's x * gate feeding a 1x1 conv (EfficientNet's and
    MobileNetV3's projections): the conv takes x and the gate (input 4) and
    folds the gate into its weights per image, K*C multiplies instead of a
    pass of C*H*W over the activations."""
    for mul in [n for n in g.nodes if n.op == "Mul"]:
        found = _gate(g, mul)
        conv = _single_consumer(g, mul.outputs[0])
        if found is None or conv is None or conv.op != "Conv" or conv.inputs[0] != mul.outputs[0] \
                or len(conv.inputs) > 4 or conv.inputs[1] not in g.weights:
            continue
        x, s, gate_conv = found
        w, a = g.weights[conv.inputs[1]], conv.attrs
        gw = g.weights.get(gate_conv.inputs[1]) if len(gate_conv.inputs) > 1 else None
        if w.ndim != 4 or tuple(w.shape[2:]) != (1, 1) or int(a.get("group", 1)) != 1 or \
                any(v != 1 for v in a.get("strides", [1, 1])) or any(a.get("pads", [0] * 4)) or \
                a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or \
                gw is None or gw.ndim != 4 or gw.shape[0] != w.shape[1]:
            continue
        ins = list(conv.inputs) + [""] * (4 - len(conv.inputs))
        ins[0] = x
        fused = Node(conv.name, "Conv", ins + [s], list(conv.outputs), dict(a), ops.params_of(conv),
                     (mul.name,) + conv.fused)
        _replace(g, [conv], fused)
        g.nodes.remove(mul)


FUSION_PASSES = [
    ("fold_batchnorm", _fold_batchnorm),
    ("fuse_gelu", fusions_modern.fuse_gelu),
    ("fuse_last_axis_norm", fusions_modern.fuse_last_axis_norm),
    ("channels_last", fusions_modern.channels_last),
    ("fuse_channel_norm", fusions_modern.fuse_channel_norm),
    ("fold_channel_mul", fusions_modern.fold_channel_mul),
    ("fuse_silu", _fuse_silu),
    ("fuse_residual", _fuse_residual),
    ("fuse_activation", _fuse_activation),
    ("fuse_channel_scale", _fuse_channel_scale),
]


def check_ops(graph, source="model"):
    """Raise UnsupportedOpError naming the first op the CPU table lacks."""
    from ..errors import UnsupportedOpError
    for n in graph.nodes:
        if not ops.known(n.op):
            raise UnsupportedOpError(
                f"{source}: node {n.name!r} uses op {n.op!r} (opset {graph.opset}), which cnnengine does not run")
        for key in ("then_branch", "else_branch"):
            if isinstance(n.attrs.get(key), Graph):
                check_ops(n.attrs[key], f"{source}: node {n.name!r} {key}")


__all__ = ["fold_constants", "remove_identities", "fuse", "run_pipeline", "check_ops", "ModelFormatError"]
