"""Fusion passes for the modern CNN families (ConvNeXt's blocks, GELU MLPs,
layer scale): each rewrites a graph in place, as the passes in passes.py.

- fuse_gelu: the exported GELU subgraphs, x * 0.5 * (1 + erf(x / sqrt 2))
  and 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in the operand
  orders PyTorch writes, become one Gelu node (a kernel activation, which
  fuse_activation then puts into the producing conv's epilogue).
- channels_last: Transpose(0,2,3,1) -> [LayerNormalization over the last
  axis, MatMul by a constant, Add / Mul of a per-channel constant,
  activations]* -> Transpose(0,3,1,2) runs in NCHW instead: the norm as
  cnn.ChannelNorm (across channels per pixel), each MatMul as a 1x1 Conv
  with the following Add as its bias, so the layout pass keeps the whole
  block blocked and no Transpose runs.
- fuse_channel_norm: the same norm written out over axis 1 of NCHW
  (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, scale, bias) ->
  cnn.ChannelNorm.
- fuse_last_axis_norm: that norm written out over the last axis (what
  exporters before opset 17 make of F.layer_norm, e.g. torchvision's
  ConvNeXt) -> LayerNormalization(axis=-1), before channels_last sees it.
- fold_channel_mul: Conv -> Mul by a per-output-channel constant (ConvNeXt's
  layer scale) folds into the conv's weights and bias.
"""
import math

import numpy as np

from ..ir.graph import Node
from ..ir.weights import derive, empty, raw, scaled, shape_of
from ..ops.epilogue import KERNEL_ACTS


class _Maps:
    """g's consumer and producer maps, made again only after a rewrite
    (per candidate they made a pass quadratic in the node count)."""

    def __init__(self, g):
        self.g, self._maps = g, None

    def get(self):
        if self._maps is None:
            self._maps = (self.g.consumers(), self.g.producers())
        return self._maps

    def changed(self):
        self._maps = None


def _consumer(g, users, value):
    """The one node reading `value` (None when several, none, or a graph output)."""
    u = users.get(value, [])
    return u[0] if len(u) == 1 and u[0] is not None else None


def _const(g, node, value):
    """(other input, constant array) when `node` is binary with one constant input."""
    a, b = node.inputs[0], node.inputs[1]
    if b in g.weights and a not in g.weights:
        return a, np.asarray(g.weights[b])
    if a in g.weights and b not in g.weights:
        return b, np.asarray(g.weights[a])
    return None, None


def _scalar_is(arr, want, tol=1e-5):
    return arr is not None and arr.size == 1 and abs(float(arr.reshape(-1)[0]) - want) <= tol * abs(want)


def _gelu_tail(g, users, prods, core, x):
    """Match Add(core, 1) -> the product with x and 0.5 (three orders):
    returns (nodes, output value) or None."""
    add = _consumer(g, users, core)
    if add is None or add.op != "Add" or len(add.inputs) != 2:
        return None
    _, one = _const(g, add, core)
    if not _scalar_is(one, 1.0):
        return None
    m1 = _consumer(g, users, add.outputs[0])
    if m1 is None or m1.op != "Mul" or len(m1.inputs) != 2:
        return None
    other = m1.inputs[1] if m1.inputs[0] == add.outputs[0] else m1.inputs[0]
    if other == x:                                   # (x * (1 + e)) * 0.5
        m2 = _consumer(g, users, m1.outputs[0])
        if m2 is None or m2.op != "Mul" or len(m2.inputs) != 2 or not _scalar_is(_const(g, m2, "")[1], 0.5):
            return None
        return [add, m1, m2], m2.outputs[0]
    if other in g.weights and _scalar_is(np.asarray(g.weights[other]), 0.5):   # ((1 + e) * 0.5) * x
        m2 = _consumer(g, users, m1.outputs[0])
        if m2 is None or m2.op != "Mul" or sorted(m2.inputs) != sorted([m1.outputs[0], x]):
            return None
        return [add, m1, m2], m2.outputs[0]
    half = prods.get(other)                          # (x * 0.5) * (1 + e)
    if half is not None and half.op == "Mul" and _consumer(g, users, other) is m1:
        hx, hc = _const(g, half, "")
        if hx == x and _scalar_is(hc, 0.5):
            return [half, add, m1], m1.outputs[0]
    return None


def _erf_core(g, users, prods, erf):
    """(x, nodes) when erf reads x / sqrt 2 (a Div or a Mul by 1/sqrt 2)."""
    d = prods.get(erf.inputs[0])
    if d is None or d.op not in ("Div", "Mul") or len(d.inputs) != 2 or \
            _consumer(g, users, d.outputs[0]) is not erf:
        return None
    if d.op == "Div":
        if d.inputs[1] not in g.weights or not _scalar_is(np.asarray(g.weights[d.inputs[1]]), math.sqrt(2)):
            return None
        return d.inputs[0], [d, erf]
    x, c = _const(g, d, "")
    return (x, [d, erf]) if _scalar_is(c, 1 / math.sqrt(2)) else None


def _tanh_core(g, users, prods, tanh):
    """(x, nodes) when tanh reads sqrt(2/pi) * (x + 0.044715 * x^3)."""
    u = prods.get(tanh.inputs[0])
    if u is None or u.op != "Mul" or _consumer(g, users, u.outputs[0]) is not tanh:
        return None
    s_name, k = _const(g, u, "")
    s = prods.get(s_name)
    if not _scalar_is(k, math.sqrt(2 / math.pi)) or s is None or s.op != "Add" or \
            _consumer(g, users, s_name) is not u:
        return None
    for j in (0, 1):
        x, t = s.inputs[j], prods.get(s.inputs[1 - j])
        if t is None or t.op != "Mul" or _consumer(g, users, t.outputs[0]) is not s:
            continue
        cube, c = _const(g, t, "")
        if not _scalar_is(c, 0.044715, 1e-4):
            continue
        cube_nodes = _cube(g, users, prods, cube, x)
        if cube_nodes is not None:
            return x, cube_nodes + [t, s, u, tanh]
    return None


def _cube(g, users, prods, value, x):
    """The nodes making x^3 (Pow(x, 3), x * (x * x), (x * x) * x), or None."""
    n = prods.get(value)
    if n is None or _consumer(g, users, value) is None:
        return None
    if n.op == "Pow" and n.inputs[0] == x and n.inputs[1] in g.weights and \
            _scalar_is(np.asarray(g.weights[n.inputs[1]]), 3.0):
        return [n]
    if n.op != "Mul" or x not in n.inputs:
        return None
    sq_name = n.inputs[1] if n.inputs[0] == x else n.inputs[0]
    sq = prods.get(sq_name)
    if sq is None or sq.op != "Mul" or sq.inputs != [x, x] or _consumer(g, users, sq_name) is not n:
        return None
    return [sq, n]


def fuse_gelu(g):
    maps = _Maps(g)
    for core in [n for n in g.nodes if n.op in ("Erf", "Tanh")]:
        if core not in g.nodes:
            continue
        users, prods = maps.get()
        found = (_erf_core if core.op == "Erf" else _tanh_core)(g, users, prods, core)
        if found is None:
            continue
        x, head = found
        tail = _gelu_tail(g, users, prods, core.outputs[0], x)
        if tail is None:
            continue
        nodes, out = tail
        last = [n for n in g.nodes if out in n.outputs][0]
        approx = "none" if core.op == "Erf" else "tanh"
        gelu = Node(last.name, "Gelu", [x], [out], {"approximate": approx}, None,
                    tuple(n.name for n in head + nodes if n is not last))
        idx = g.nodes.index(last)
        g.nodes[idx] = gelu
        for n in head + nodes:
            if n is not last:
                g.nodes.remove(n)
        maps.changed()


_TO_NHWC, _TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _per_channel(arr, c):
    """arr as C floats when it broadcasts along the last axis of (N, H, W, C) only."""
    a = np.asarray(arr)
    if a.ndim > 4 or a.size not in (1, c) or (a.ndim and a.shape[-1] != a.size):
        return None
    return np.broadcast_to(a.reshape(-1).astype(np.float32), (c,))


def channels_last(g):
    maps = _Maps(g)
    for t1 in [n for n in g.nodes if n.op == "Transpose" and list(n.attrs.get("perm", ())) == _TO_NHWC]:
        if t1 in g.nodes and _rewrite_chain(g, t1, maps.get()[0]):
            maps.changed()
    # the weights a chain made before it met a link it does not know
    used = {i for n in g.nodes for i in n.inputs}
    for k in [k for k in g.weights if k.endswith(_MADE) and k not in used]:
        del g.weights[k]


_MADE = ("__gamma", "__beta", "__w_1x1", "__c", "__b_add", "__b_mul", "__w_scaled")


def _rewrite_chain(g, t1, users):
    """The chain after t1 rewritten in NCHW, when every link is one the
    rewrite knows and only the next link reads it (True); else nothing
    changes."""
    outs = {o.name for o in g.outputs}
    chain, new, c = [t1], [], None
    cur, x = t1.outputs[0], t1.inputs[0]

    def value(node):
        return f"{node.outputs[0]}/nchw"
    src = x
    while True:
        n = _consumer(g, users, cur)
        if n is None or cur in outs:
            return
        chain.append(n)
        if n.op == "Transpose" and list(n.attrs.get("perm", ())) == _TO_NCHW:
            break
        if n.op == "LayerNormalization" and int(n.attrs.get("axis", -1)) in (-1, 3) and \
                len(n.inputs) >= 2 and all(i in g.weights for i in n.inputs[1:3] if i) and \
                not any(n.outputs[1:]):
            scale = np.asarray(g.weights[n.inputs[1]], np.float32).reshape(-1)
            c = scale.size if c is None else c
            bias = np.asarray(g.weights[n.inputs[2]], np.float32).reshape(-1) \
                if len(n.inputs) > 2 and n.inputs[2] else np.zeros(c, np.float32)
            if scale.size != c or bias.size != c:
                return
            wn, bn = f"{n.name}__gamma", f"{n.name}__beta"
            g.weights[wn], g.weights[bn] = scale, bias
            new.append(Node(n.name, "cnn.ChannelNorm", [src, wn, bn], [value(n)],
                            {"epsilon": float(n.attrs.get("epsilon", 1e-5))}))
        elif n.op == "MatMul" and n.inputs[0] == cur and n.inputs[1] in g.weights and \
                len(shape_of(g.weights, n.inputs[1])) == 2 and \
                (c is None or shape_of(g.weights, n.inputs[1])[0] == c):
            cin, c = shape_of(g.weights, n.inputs[1])
            wn = f"{n.name}__w_1x1"
            derive(g.weights, wn, lambda w, c=c, cin=cin: _transposed(w, (c, cin, 1, 1)),
                   (c, cin, 1, 1), [raw(g.weights, n.inputs[1])])
            new.append(Node(n.name, "Conv", [src, wn], [value(n)], {"kernel_shape": [1, 1]}))
        elif n.op in ("Add", "Mul") and len(n.inputs) == 2 and c is not None:
            other, k = _const(g, n, cur)
            vec = None if other != cur else _per_channel(k, c)
            if vec is None:
                return
            prev = new[-1] if new else None
            if prev is not None and prev.op == "Conv" and prev.outputs[0] == src:
                _fold_into_conv(g, prev, vec, n.op)
                prev.outputs = [value(n)]
                prev.fused = prev.fused + (n.name,)
            else:
                kn = f"{n.name}__c"
                g.weights[kn] = np.ascontiguousarray(vec.reshape(1, c, 1, 1))
                new.append(Node(n.name, n.op, [src, kn], [value(n)]))
        elif n.op in KERNEL_ACTS and n.inputs[0] == cur and all(i in g.weights for i in n.inputs[1:] if i):
            new.append(Node(n.name, n.op, [src] + list(n.inputs[1:]), [value(n)], dict(n.attrs)))
        else:
            return
        cur = n.outputs[0]
        src = new[-1].outputs[0]
    t2 = chain[-1]
    if new:
        new[-1].outputs = [t2.outputs[0]]
    idx = g.nodes.index(t2)
    if not new:     # Transpose then its inverse: consumers read x
        rename = {t2.outputs[0]: x}
        if t2.outputs[0] in outs:
            return
        for m in g.nodes:
            m.inputs = [rename.get(i, i) for i in m.inputs]
    g.nodes[idx:idx] = new
    for m in chain:
        g.nodes.remove(m)
    return True


def _transposed(w, shape):
    """A MatMul's (C, K) weights as a 1x1 conv's (K, C, 1, 1)."""
    out = empty(shape, np.float32)
    out[...] = np.asarray(w, np.float32).T.reshape(shape)
    return out


def _fold_into_conv(g, conv, vec, op):
    """conv's output + vec (op Add) or * vec (op Mul), per output channel, into its weights."""
    k = shape_of(g.weights, conv.inputs[1])[0]
    b = np.asarray(g.weights[conv.inputs[2]], np.float64) if len(conv.inputs) > 2 and conv.inputs[2] \
        else np.zeros(k, np.float64)
    if op == "Add":
        b = b + vec
    else:
        wn = f"{conv.name}__w_scaled"
        scale = np.asarray(vec, np.float64).reshape(-1, 1, 1, 1)
        derive(g.weights, wn, lambda w: scaled(w, scale), shape_of(g.weights, conv.inputs[1]),
               [raw(g.weights, conv.inputs[1])])
        conv.inputs[1] = wn
        b = b * vec
    bn = f"{conv.name}__b_{op.lower()}"
    g.weights[bn] = b.astype(np.float32)
    conv.inputs[2:3] = [bn]


def fold_channel_mul(g):
    """Conv -> Mul by a constant of one factor per output channel ((K,1,1),
    (1,K,1,1) or a scalar): the factor scales the conv's weights and bias."""
    from .. import ops
    maps = _Maps(g)
    for mul in [n for n in g.nodes if n.op == "Mul" and len(n.inputs) == 2]:
        users, prods = maps.get()
        v, k = _const(g, mul, "")
        conv = prods.get(v) if v else None
        if conv is None or conv.op != "Conv" or len(conv.inputs) > 3 or conv.inputs[1] not in g.weights or \
                (len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in g.weights) or \
                _consumer(g, users, v) is not mul or ops.params_of(conv).act:
            continue
        kk = shape_of(g.weights, conv.inputs[1])[0]
        if not (k.size == 1 or (k.size == kk and k.ndim in (3, 4) and k.shape[-3] == kk and
                                k.shape[-2:] == (1, 1) and (k.ndim == 3 or k.shape[0] == 1))):
            continue
        _fold_into_conv(g, conv, np.broadcast_to(k.reshape(-1).astype(np.float64), (kk,)), "Mul")
        conv.outputs = list(mul.outputs)
        conv.fused = conv.fused + (mul.name,)
        g.nodes.remove(mul)
        maps.changed()


def _mean_over(g, node, axes_want):
    """Whether node is ReduceMean over exactly axes_want, keeping dims."""
    if node is None or node.op != "ReduceMean" or not int(node.attrs.get("keepdims", 1)):
        return False
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1] in g.weights:
        axes = np.asarray(g.weights[node.inputs[1]]).reshape(-1).tolist()
    return axes is not None and [int(a) for a in axes] == axes_want


def _last_vector(arr):
    """A (C,) or (1,..,1,C) constant as C floats, else None."""
    a = np.asarray(arr)
    if a.ndim < 1 or any(d != 1 for d in a.shape[:-1]):
        return None
    return a.reshape(-1).astype(np.float32)


def _channel_vector(arr):
    """A (C,1,1) or (1,C,1,1) constant as C floats, else None."""
    a = np.asarray(arr)
    if a.ndim not in (3, 4) or a.shape[-2:] != (1, 1) or (a.ndim == 4 and a.shape[0] != 1):
        return None
    return a.reshape(-1).astype(np.float32)


def fuse_channel_norm(g):
    """The channels-first LayerNorm written out (ConvNeXt's own LayerNorm,
    data_format="channels_first"): d = x - mean_1(x); d / sqrt(mean_1(d^2)
    + eps) * w[:, None, None] + b[:, None, None] -> cnn.ChannelNorm. The
    scale must be there: it tells the channel count."""
    _fuse_written_norm(g, [1], _channel_vector, "cnn.ChannelNorm", {})


def fuse_last_axis_norm(g):
    """The same written out over the last axis, scale and bias of C values
    -> LayerNormalization(axis=-1) (then channels_last may make it a
    cnn.ChannelNorm, and a lone one runs the channel-norm kernel)."""
    _fuse_written_norm(g, [-1], _last_vector, "LayerNormalization", {"axis": -1})


def _fuse_written_norm(g, axes, vector, op, attrs):
    maps = _Maps(g)
    for div in [n for n in g.nodes if n.op == "Div" and len(n.inputs) == 2]:
        if div not in g.nodes:
            continue
        users, prods = maps.get()
        sub, sqrt = prods.get(div.inputs[0]), prods.get(div.inputs[1])
        if sub is None or sub.op != "Sub" or sqrt is None or sqrt.op != "Sqrt" or \
                not _mean_over(g, prods.get(sub.inputs[1]), axes) or \
                prods[sub.inputs[1]].inputs[0] != sub.inputs[0]:
            continue
        x, mean = sub.inputs[0], prods[sub.inputs[1]]
        add = prods.get(sqrt.inputs[0])
        if add is None or add.op != "Add" or _consumer(g, users, add.outputs[0]) is not sqrt:
            continue
        var_name, eps = _const(g, add, "")
        var = prods.get(var_name)
        if eps is None or eps.size != 1 or not _mean_over(g, var, axes):
            continue
        sq = prods.get(var.inputs[0])
        if sq is None or not ((sq.op == "Pow" and sq.inputs[0] == sub.outputs[0] and sq.inputs[1] in g.weights
                               and _scalar_is(np.asarray(g.weights[sq.inputs[1]]), 2.0)) or
                              (sq.op == "Mul" and sq.inputs == [sub.outputs[0]] * 2)):
            continue
        if sorted(id(u) for u in users.get(sub.outputs[0], [])) != sorted((id(sq), id(div))) or \
                _consumer(g, users, mean.outputs[0]) is not sub:
            continue
        mul = _consumer(g, users, div.outputs[0])
        gamma = vector(_const(g, mul, div.outputs[0])[1]) if mul is not None and mul.op == "Mul" \
            and len(mul.inputs) == 2 else None
        if gamma is None:
            continue
        nodes, out = [mean, sub, sq, var, add, sqrt, div, mul], mul.outputs[0]
        beta = np.zeros_like(gamma)
        bias = _consumer(g, users, out)
        if bias is not None and bias.op == "Add" and len(bias.inputs) == 2:
            other, b = _const(g, bias, out)
            b = vector(b) if other == out else None
            if b is not None and b.size == gamma.size:
                beta, out = b, bias.outputs[0]
                nodes.append(bias)
        name = mean.name
        g.weights[f"{name}__gamma"], g.weights[f"{name}__beta"] = gamma, beta
        cn = Node(name, op, [x, f"{name}__gamma", f"{name}__beta"], [out],
                  dict(attrs, epsilon=float(eps.reshape(-1)[0])), None, tuple(n.name for n in nodes[1:]))
        g.nodes[g.nodes.index(nodes[-1])] = cn
        for n in nodes[:-1]:
            g.nodes.remove(n)
        maps.changed()
