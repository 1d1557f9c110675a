"""Vector-Jacobian products over a plain (unfused) plan, for the linearised
tail of approximate occlusion (approximate.py).

One backward pass from a seed gradient at a late value to an earlier value
(the cut), through the ops a classification CNN's tail uses: Conv (its
adjoint is the transposed convolution with the same filters), BatchNormalization,
ReLU / Clip / LeakyRelu / Sigmoid / HardSigmoid / HardSwish / SiLU-like Mul,
Add / Sub / Mul (with broadcasting), AveragePool and MaxPool (no padding
past the map needed: both computed from the clean values), global pools,
Flatten / Reshape, Gemm / MatMul, Concat, Softmax / LogSoftmax, Identity /
Dropout. A step outside that list raises NotLinearisable; approximate.py
then picks a cut after it.
"""
import math

import numpy as np

from .. import ops
from ..functional.conv import gemm
from ..ops._geometry import resolve_pads


class NotLinearisable(Exception):
    """A step on the path from the cut to the target has no backward rule here."""


def cuts(plan, source, target):
    """Values v (in plan order) such that every path from `source` to
    `target` passes through v: the single values a linearised tail can
    start from. The target itself is last."""
    steps = plan.steps
    index = {o: k for k, st in enumerate(steps) for o in st.node.outputs if o}
    need = _ancestors(plan, index, target)
    # values on a path from source: those computed from it
    from_source = {source}
    for k in sorted(need):
        node = steps[k].node
        if any(i in from_source for i in node.inputs if i):
            from_source.update(o for o in node.outputs if o)
    last_use = {}
    for k in sorted(need):
        for i in steps[k].node.inputs:
            if i in from_source:
                last_use[i] = k
    out = []
    live = {source}
    for k in sorted(need):
        node = steps[k].node
        live.update(o for o in node.outputs if o and o in from_source)
        live = {v for v in live if last_use.get(v, -1) > k or v == target}
        if len(live) == 1 and len(node.outputs) == 1 and node.outputs[0] in live:
            out.append(node.outputs[0])
    return out


def _ancestors(plan, index, target):
    need, todo = set(), [target]
    while todo:
        v = todo.pop()
        k = index.get(v)
        if k is None or k in need:
            continue
        need.add(k)
        todo.extend(i for i in plan.steps[k].node.inputs if i)
    return need


def backward(plan, values, target, seed, cut, threads=None):
    """d(seed . target)/d(cut): the gradient at `cut` of the scalar
    sum(seed * values[target]), through the steps between them.
    values: the clean run's value of every tensor the steps read."""
    index = {o: k for k, st in enumerate(plan.steps) for o in st.node.outputs if o}
    need = _ancestors(plan, index, target) - _ancestors(plan, index, cut)
    grads = {target: np.asarray(seed, np.float64)}
    for k in sorted(need, reverse=True):
        node = plan.steps[k].node
        gy = [grads.pop(o, None) for o in node.outputs]
        if all(g is None for g in gy):
            continue
        if len(node.outputs) > 1 and any(g is not None for g in gy[1:]):
            raise NotLinearisable(f"{node.op} {node.name}: a second output on the path")
        ins = [None if not i else (values[i] if i in values else plan.static.get(i)) for i in node.inputs]
        y = values.get(node.outputs[0])
        for name, g in zip(node.inputs, _rule(node, ins, y, gy[0], threads)):
            if g is None or not name or name in plan.static:
                continue
            g = _unbroadcast(g, ins[node.inputs.index(name)].shape)
            grads[name] = grads[name] + g if name in grads else g
    if cut not in grads:
        raise NotLinearisable(f"the target does not depend on {cut!r}")
    return grads[cut]


def _unbroadcast(g, shape):
    """Sum g over the axes an input of `shape` was broadcast along."""
    if g.shape == tuple(shape):
        return g
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def _rule(node, ins, y, g, threads):
    """Per input, its gradient (None: a constant or not differentiated)."""
    op = node.op
    x = ins[0]
    if op in ("Identity", "Dropout"):
        return [g]
    if op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
        return [g.reshape(x.shape)]
    if op == "Relu":
        return [g * (x > 0)]
    if op == "LeakyRelu":
        return [g * np.where(x > 0, 1.0, float(node.attrs.get("alpha", 0.01)))]
    if op == "Clip":
        from ..ops.activation import clip_bounds
        lo, hi = clip_bounds(ops.params_of(node), ins)
        return [g * ((x > lo) & (x < hi))]
    if op == "Sigmoid":
        return [g * y * (1.0 - y)]
    if op == "HardSigmoid":
        a, b = float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))
        t = a * x + b
        return [g * a * ((t > 0) & (t < 1))]
    if op == "HardSwish":
        return [g * np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2 * x + 3) / 6))]
    if op in ("Add", "Sub", "Mul", "Div"):
        a, b = ins
        if op == "Add":
            return [g, g]
        if op == "Sub":
            return [g, -g]
        if op == "Mul":
            return [g * b, g * a]
        return [g / b, -g * a / (b * b)]
    if op == "Sum":
        return [g] * len(ins)
    if op == "BatchNormalization":
        scale, _, _, var = ins[1:5]
        if scale.ndim != 1:
            raise NotLinearisable(f"BatchNormalization {node.name}: per-position statistics")
        eps = ops.params_of(node).epsilon
        k = (np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps))
        return [g * k.reshape((1, -1) + (1,) * (x.ndim - 2))]
    if op == "Conv":
        return [_conv_input_grad(node, x, ins[1], g, threads)]
    if op == "GlobalAveragePool":
        return [np.broadcast_to(g, x.shape) / math.prod(x.shape[2:])]
    if op == "GlobalMaxPool":
        hit = x == x.max(axis=(2, 3), keepdims=True)
        return [g * hit / hit.sum(axis=(2, 3), keepdims=True)]
    if op in ("AveragePool", "MaxPool"):
        return [_pool_grad(node, x, y, g)]
    if op == "Gemm":
        p = ops.params_of(node)
        w = ins[1].T if p.trans_b else ins[1]          # (K, N)
        ga = p.alpha * (g @ w.T.astype(np.float64))
        return [ga.T if p.trans_a else ga]
    if op == "MatMul":
        b = ins[1]
        if b.ndim != 2:
            raise NotLinearisable(f"MatMul {node.name}: a batched right operand")
        return [g @ b.T.astype(np.float64)]
    if op == "Concat":
        axis = int(node.attrs.get("axis", 1)) % x.ndim
        bounds = np.cumsum([0] + [v.shape[axis] for v in ins])
        return [np.take(g, range(bounds[j], bounds[j + 1]), axis=axis) for j in range(len(ins))]
    if op in ("Softmax", "LogSoftmax"):
        p = ops.params_of(node)
        if p.flatten and x.ndim != 2:
            raise NotLinearisable(f"{op} {node.name}: opset < 13 over flattened axes")
        axis = p.axis % x.ndim
        if op == "Softmax":
            return [y * (g - (g * y).sum(axis=axis, keepdims=True))]
        return [g - np.exp(y) * g.sum(axis=axis, keepdims=True)]
    raise NotLinearisable(f"{op} {node.name}: no backward rule")


def _conv_input_grad(node, x, w, g, threads):
    """The conv's adjoint as one GEMM (batched per group), W^T g, and a
    col2im scatter: faster here than the transposed-convolution kernel."""
    p = ops.params_of(node)
    kh, kw = tuple(p.kernel_shape or w.shape[2:])
    (sh, sw), (dh, dw) = p.strides, p.dilations
    pt, pl, pb, pr = resolve_pads(p.auto_pad, p.pads, x.shape[2:], (kh, kw), p.strides, p.dilations)
    n, c, h, wd = x.shape
    k, cg = w.shape[0], w.shape[1]
    groups, (oh, ow) = p.group, g.shape[2:]
    if groups == 1:
        # the engine's GEMM: NumPy's BLAS threads spin against the engine's (20 ms a conv under load)
        gg = np.asarray(g, np.float32).reshape(n, k, oh * ow).transpose(1, 0, 2).reshape(k, n * oh * ow)
        cols = gemm(np.asarray(w, np.float32).reshape(k, c * kh * kw), gg, trans_a=True, threads=threads)
        cols = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
    else:
        wg = np.asarray(w, np.float32).reshape(groups, k // groups, cg * kh * kw).transpose(0, 2, 1)
        gg = np.asarray(g, np.float32).reshape(n, groups, k // groups, oh * ow)
        cols = np.matmul(wg, gg).reshape(n, c, kh, kw, oh, ow)
    big = (max(h + pt + pb, (oh - 1) * sh + dh * (kh - 1) + 1), max(wd + pl + pr, (ow - 1) * sw + dw * (kw - 1) + 1))
    gx = np.zeros((n, c) + big, np.float64)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw] += cols[:, :, i, j]
    return gx[:, :, pt:pt + h, pl:pl + wd]


def _pool_grad(node, x, y, g):
    """Average pooling spreads each output's gradient over its window; max
    pooling sends it to the first tap equal to the output."""
    p = ops.params_of(node)
    k, s = tuple(p.kernel_shape), tuple(p.strides or (1, 1))
    d = tuple(p.dilations or (1, 1))
    pt, pl, pb, pr = resolve_pads(p.auto_pad, p.pads, x.shape[2:], k, s, d)
    n, c, h, w = x.shape
    oh, ow = g.shape[2], g.shape[3]
    big = (max(h + pt + pb, (oh - 1) * s[0] + d[0] * (k[0] - 1) + 1),
           max(w + pl + pr, (ow - 1) * s[1] + d[1] * (k[1] - 1) + 1))
    maxpool = node.op == "MaxPool"
    xp = np.full((n, c) + big, -np.inf if maxpool else 0.0)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    inside = np.zeros(big)
    inside[pt:pt + h, pl:pl + w] = 1
    taps = [(i * d[0], j * d[1]) for i in range(k[0]) for j in range(k[1])]
    grid = lambda a, dy, dx: a[..., dy:dy + (oh - 1) * s[0] + 1:s[0], dx:dx + (ow - 1) * s[1] + 1:s[1]]
    gp = np.zeros_like(xp)
    if maxpool:
        # each output's gradient to the first tap (in kernel order) equal to it, as PyTorch does
        taken = np.zeros(g.shape, bool)
        for dy, dx in taps:
            hit = (grid(xp, dy, dx) == y) & ~taken
            taken |= hit
            grid(gp, dy, dx)[...] += g * hit
    else:
        if p.count_include_pad:
            pad_in = np.ones(big)
            pad_in[pt + h + pb:, :] = 0       # ceil mode's extra rows are never counted
            pad_in[:, pl + w + pr:] = 0
        else:
            pad_in = inside
        count = sum(grid(pad_in, dy, dx) for dy, dx in taps)
        for dy, dx in taps:
            grid(gp, dy, dx)[...] += g * grid(pad_in, dy, dx) / np.maximum(count, 1)
    return gp[:, :, pt:pt + h, pl:pl + w]
