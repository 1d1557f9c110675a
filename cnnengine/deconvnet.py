"""ZFNet's deconvnet projection (Zeiler & Fergus 2014, "Visualizing and
Understanding Convolutional Networks", section 2.1).

One activation map (or one unit of it) is kept, every other activation of
that layer is set to zero, and the result is walked back to pixel space
through the layers below it:

=====================  ==================================================================
forward layer          backward rule
=====================  ==================================================================
Conv                   transposed convolution with the layer's own filters (same stride,
                       padding, dilation, groups; output_padding so the shape is the
                       layer's input exactly); the bias is not added  [ZFNet]
Relu, Clip(min >= 0)   ReLU on the reconstruction  [ZFNet]
MaxPool                max-unpooling: each value goes back to the input position that
                       won its window in the forward pass (the "switches"); where
                       overlapping windows share a winner, their values add  [ZFNet]
LRN                    passed through, as ZFNet's deconvnet does
Gemm, MatMul           the transposed matrix (a dense layer is a conv whose kernel covers
                       the whole map), bias not added  [extension]
BatchNormalization     multiplied by its per-channel scale gamma / sqrt(var + eps), the
                       transpose of its linear part, exactly what the transposed conv
                       would do had the exporter folded BN into the conv  [extension:
                       ZFNet predates BN]
AveragePool,           spread evenly: each value divided by its window's count and added
GlobalAveragePool      to every input cell of the window (the transpose)  [extension]
GlobalMaxPool          to the single switch position  [extension]
Tanh                   passed through: odd and monotone, it has no sign to enforce the way
                       ReLU does (LeNet-5)  [extension]
Dropout, Identity,     reshaped back to the layer's input shape
Flatten, Reshape,
Squeeze, Unsqueeze
=====================  ==================================================================

Anything else -- a residual Add, a Concat, a Split, an op with no rule --
raises UnsupportedOpError naming the node where the walk stops: deconvnet is
defined for chain networks (LeNet, AlexNet, ZFNet, VGG). Only the path from
the chosen layer down to the input must be a chain; branches above the layer
do not matter.
"""
import os

import numpy as np

from . import functional as F
from .errors import InputError, ShapeError, UnsupportedOpError
from .ops import params_of
from .ops._geometry import pool_taps, resolve_pads
from .ops.activation import clip_bounds

__all__ = ["deconvnet", "projection_path", "SUPPORTED_OPS"]

CHAIN = "deconvnet is defined for chain networks of conv/ReLU/pool layers (LeNet, AlexNet, ZFNet, VGG)"

_RESHAPES = ("Dropout", "Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze")
_PASS = ("LRN", "Tanh")
SUPPORTED_OPS = ("Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                 "BatchNormalization", "Gemm", "MatMul") + _PASS + _RESHAPES

# the input positions that must be stored weights (everything else but input 0 is ignored)
_WEIGHT_INPUTS = {"Conv": (1, 2), "BatchNormalization": (1, 2, 3, 4), "Gemm": (1, 2), "MatMul": (1,),
                  "Clip": (1, 2)}


def deconvnet(model, image, layer, channel, *, unit=None):
    """Project `channel` of `layer` (or its single unit (y, x)) back to pixel
    space with ZFNet's deconvnet; returns a float32 array shaped like the
    input, (1, C, H, W).

    image: a preprocessed (1, C, H, W) float32 array, or a path / PIL image
    that the model's preprocessing metadata turns into one. The activation
    kept is the layer's output as the source graph defines it (choose the
    ReLU after a conv to start, as ZFNet did, from rectified maps)."""
    graph = model._original
    nodes = {n.name: n for n in graph.nodes}
    if not isinstance(layer, str) or layer not in nodes:
        raise InputError(f"deconvnet: no layer named {layer!r} (see Model.layers)")
    x = _image(model, image)
    path = projection_path(model, layer)
    names = [n.name for n in path]      # path[i]'s input is path[i+1]'s output; the last reads the image
    _, acts = model.run(x, capture=names)
    values = {v: x for v in _input_names(graph)}
    values.update({nodes[name].outputs[0]: acts[name] for name in names})
    top = np.asarray(acts[layer], np.float32)
    r = _keep(top, layer, channel, unit)
    for node in path:
        xin = values[node.inputs[0]]
        r = _backward(node, r, xin, graph.weights)
        if r.shape != xin.shape:   # a rule that misses the shape would be a bug here, not the user's
            raise ShapeError(f"deconvnet: {node.name!r} ({node.op}) gave {r.shape}, expected {xin.shape}")
    return np.ascontiguousarray(r, dtype=np.float32)


def projection_path(model, layer):
    """The nodes from `layer` down to the graph input, in walking order.
    Raises UnsupportedOpError at the first node the projection cannot pass."""
    graph = model._original
    producers = graph.producers()
    inputs = _input_names(graph)
    weights = graph.weights
    node = next((n for n in graph.nodes if n.name == layer), None)
    if node is None:
        raise InputError(f"deconvnet: no layer named {layer!r} (see Model.layers)")
    path = []
    while True:
        data = [i for i in node.inputs if i and i not in weights]
        if node.op not in SUPPORTED_OPS:
            if len(data) >= 2:
                raise UnsupportedOpError(
                    f"deconvnet stops at node {node.name!r} ({node.op}): it merges {len(data)} data paths "
                    f"(a residual add or a concatenation); {CHAIN}")
            raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} ({node.op}): no backward rule "
                                     f"for {node.op}; {CHAIN}")
        for pos in _WEIGHT_INPUTS.get(node.op, ()):
            if pos < len(node.inputs) and node.inputs[pos] and node.inputs[pos] not in weights:
                raise UnsupportedOpError(
                    f"deconvnet stops at node {node.name!r} ({node.op}): its input {node.inputs[pos]!r} is "
                    f"computed, not a stored weight; {CHAIN}")
        src = node.inputs[0] if node.inputs else ""
        if not src or src in weights:
            raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} ({node.op}): its first input "
                                     f"is not data; {CHAIN}")
        path.append(node)
        if src in inputs:
            return path
        prev = producers.get(src)
        if prev is None:
            raise UnsupportedOpError(f"deconvnet stops at node {node.name!r}: nothing produces {src!r}")
        if prev.outputs[0] != src:
            raise UnsupportedOpError(f"deconvnet stops at node {prev.name!r} ({prev.op}): {node.name!r} "
                                     f"reads its secondary output {src!r}; {CHAIN}")
        node = prev


# ------------------------------------------------------------ inputs
def _input_names(graph):
    return {v.name for v in graph.inputs}


def _image(model, image):
    if isinstance(image, (str, os.PathLike)) or _is_pil(image):
        from .preprocess import load_image
        pre = model.preprocess
        if not pre:
            from .preprocess import guess_preprocess   # ImageNet conventions sized to the input, as `run` does
            pre = guess_preprocess(model)
        image = load_image(image, pre)
    if not isinstance(image, np.ndarray):
        raise InputError(f"deconvnet: image must be a (1, C, H, W) float32 array, a path or a PIL image, "
                         f"not {type(image).__name__}")
    if image.dtype.kind != "f":
        raise InputError(f"deconvnet: image dtype {image.dtype}, expected float32 (preprocessed)")
    if image.ndim != 4 or image.shape[0] != 1:
        raise ShapeError(f"deconvnet: image must have shape (1, C, H, W), got {image.shape}")
    if len(model.inputs) != 1:
        raise InputError(f"deconvnet: the model has {len(model.inputs)} inputs; it needs exactly one image")
    spec = model.inputs[0]
    want = tuple(spec.shape)
    if len(want) != 4 or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want[1:], image.shape[1:])):
        raise ShapeError(f"deconvnet: image shape {image.shape} does not fit input {spec.name!r} {want}")
    return np.ascontiguousarray(image, dtype=np.float32)


def _is_pil(obj):
    return type(obj).__module__.startswith("PIL.")


def _index(value, size, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"deconvnet: {what} must be an int, got {value!r}")
    if not 0 <= int(value) < size:
        raise InputError(f"deconvnet: {what} {int(value)} is out of range 0..{size - 1}")
    return int(value)


def _keep(top, layer, channel, unit):
    """Zero every activation of the layer but the chosen channel (or unit)."""
    if top.ndim < 2:
        raise ShapeError(f"deconvnet: layer {layer!r} has output shape {top.shape}, not (N, C, ...)")
    c = _index(channel, top.shape[1], f"channel of {layer!r} (shape {top.shape})")
    r = np.zeros_like(top)
    if unit is None:
        r[:, c] = top[:, c]
        return r
    if top.ndim != 4:
        raise InputError(f"deconvnet: unit needs a layer with (N, C, H, W) maps; {layer!r} has shape {top.shape}")
    if not isinstance(unit, (tuple, list)) or len(unit) != 2:
        raise InputError(f"deconvnet: unit must be (y, x), got {unit!r}")
    y = _index(unit[0], top.shape[2], f"unit y of {layer!r} (shape {top.shape})")
    x = _index(unit[1], top.shape[3], f"unit x of {layer!r} (shape {top.shape})")
    r[:, c, y, x] = top[:, c, y, x]
    return r


# ---------------------------------------------------------- backward rules
def _backward(node, r, xin, weights):
    op = node.op
    if op == "Conv":
        return _conv_back(node, r, xin, weights)
    if op in ("Relu", "Clip"):
        if op == "Clip":
            lo, _ = clip_bounds(params_of(node), [None] + [weights.get(i) if i else None for i in node.inputs[1:]])
            if lo < 0:
                raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} (Clip): min {lo} < 0 is not "
                                         f"a rectifier; {CHAIN}")
        return np.maximum(r, 0.0)
    if op == "MaxPool":
        return _max_unpool(node, r, xin)
    if op == "AveragePool":
        return _avg_unpool(node, r, xin)
    if op == "GlobalAveragePool":
        _check_4d(node, xin)
        return np.broadcast_to(r / (xin.shape[2] * xin.shape[3]), xin.shape).astype(np.float32)
    if op == "GlobalMaxPool":
        _check_4d(node, xin)
        n, c, h, w = xin.shape
        flat = xin.reshape(n, c, h * w)
        out = np.zeros_like(flat)
        np.put_along_axis(out, np.argmax(flat, axis=2)[..., None], r.reshape(n, c, 1), axis=2)
        return out.reshape(xin.shape)
    if op == "BatchNormalization":
        return _bn_back(node, r, xin, weights)
    if op == "Gemm":
        return _gemm_back(node, r, xin, weights)
    if op == "MatMul":
        w = weights[node.inputs[1]]
        if w.ndim != 2:
            raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} (MatMul): weights of shape "
                                     f"{w.shape} are not a matrix; {CHAIN}")
        return (r @ w.T.astype(np.float32)).reshape(xin.shape)
    if op in _PASS or op in _RESHAPES:
        return r.reshape(xin.shape)
    raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} ({op}): no backward rule; {CHAIN}")


def _check_4d(node, xin):
    if xin.ndim != 4:
        raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} ({node.op}): input of shape "
                                 f"{xin.shape} is not (N, C, H, W)")


def _conv_back(node, r, xin, weights):
    _check_4d(node, xin)
    p = params_of(node)
    w = np.asarray(weights[node.inputs[1]], np.float32)
    kernel = tuple(p.kernel_shape or w.shape[2:])
    pads = resolve_pads(p.auto_pad, p.pads, xin.shape[2:], kernel, p.strides, p.dilations)
    # the floor in the forward size drops up to stride-1 rows/cols: output_padding puts them back
    out_pad = []
    for ax in range(2):
        base = (r.shape[2 + ax] - 1) * p.strides[ax] - pads[ax] - pads[ax + 2] + \
            p.dilations[ax] * (kernel[ax] - 1) + 1
        out_pad.append(xin.shape[2 + ax] - base)
    return F.conv_transpose2d(r, w, None, stride=p.strides, padding=pads, output_padding=tuple(out_pad),
                              dilation=p.dilations, groups=p.group)


def _windows(node, xin, r):
    """Tap positions (OH, KH), (OW, KW) and their in-range masks of a 2-D pool."""
    _check_4d(node, xin)
    p = params_of(node)
    k = p.kernel_shape
    s = p.strides or (1, 1)
    d = p.dilations or (1, 1)
    pads = resolve_pads(p.auto_pad, p.pads, xin.shape[2:], k, s, d)
    ih = pool_taps(xin.shape[2], k[0], s[0], d[0], pads[0], pads[2], p.ceil_mode)
    iw = pool_taps(xin.shape[3], k[1], s[1], d[1], pads[1], pads[3], p.ceil_mode)
    if (ih.shape[0], iw.shape[0]) != r.shape[2:]:
        raise ShapeError(f"deconvnet: {node.name!r} windows {ih.shape[0]}x{iw.shape[0]} != map {r.shape[2:]}")
    vh = (ih >= 0) & (ih < xin.shape[2])
    vw = (iw >= 0) & (iw < xin.shape[3])
    return p, pads, ih, iw, vh, vw


def _max_unpool(node, r, xin):
    """Switches: the argmax of each window over its in-range taps (first on ties, as the kernels)."""
    _, _, ih, iw, vh, vw = _windows(node, xin, r)
    n, c, h, w = xin.shape
    oh, ow = ih.shape[0], iw.shape[0]
    ch, cw = np.clip(ih, 0, h - 1), np.clip(iw, 0, w - 1)
    win = xin[:, :, ch][:, :, :, :, cw]                                     # (N, C, OH, KH, OW, KW)
    valid = vh[:, :, None, None] & vw[None, None]
    win = np.where(valid, win, -np.inf).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, -1)
    arg = np.argmax(win, axis=-1)                                          # (N, C, OH, OW)
    kw = iw.shape[1]
    ys = ih[np.arange(oh)[:, None], arg // kw]
    xs = iw[np.arange(ow)[None, :], arg % kw]
    plane = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    out = np.bincount((plane + ys * w + xs).reshape(-1), weights=r.reshape(-1).astype(np.float64),
                      minlength=n * c * h * w)                            # shared winners add up
    return out.reshape(xin.shape).astype(np.float32)


def _avg_unpool(node, r, xin):
    p, pads, ih, iw, vh, vw = _windows(node, xin, r)
    h, w = xin.shape[2:]
    if p.count_include_pad:   # padding cells count, the ceil_mode overhang past them does not
        cnt_h = ((ih >= -pads[0]) & (ih < h + pads[2])).sum(axis=1)
        cnt_w = ((iw >= -pads[1]) & (iw < w + pads[3])).sum(axis=1)
    else:
        cnt_h, cnt_w = vh.sum(axis=1), vw.sum(axis=1)
    share = r.astype(np.float64) / np.maximum(cnt_h[:, None] * cnt_w[None, :], 1)
    # separable: spread along H with a (H, OH, KH) scatter matrix, then along W
    sh = np.zeros((h, ih.shape[0]))
    for (o, t), y in np.ndenumerate(ih):
        if vh[o, t]:
            sh[y, o] += 1.0
    sw = np.zeros((w, iw.shape[0]))
    for (o, t), x in np.ndenumerate(iw):
        if vw[o, t]:
            sw[x, o] += 1.0
    return np.einsum("yo,ncop,xp->ncyx", sh, share, sw).astype(np.float32)


def _bn_back(node, r, xin, weights):
    gamma, var = (np.asarray(weights[node.inputs[i]], np.float64) for i in (1, 4))
    if gamma.ndim > 1 or var.ndim > 1:
        raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} (BatchNormalization): statistics "
                                 f"per position (spatial=0) are not supported; {CHAIN}")
    scale = gamma / np.sqrt(var + params_of(node).epsilon)
    shape = (1, -1) + (1,) * (r.ndim - 2)
    return (r * scale.reshape(shape)).astype(np.float32)


def _gemm_back(node, r, xin, weights):
    p = params_of(node)
    if p.trans_a:
        raise UnsupportedOpError(f"deconvnet stops at node {node.name!r} (Gemm): transA=1 is not a dense "
                                 f"layer over a batch; {CHAIN}")
    b = np.asarray(weights[node.inputs[1]], np.float32)
    bmat = b.T if p.trans_b else b                  # (K, F): y = alpha * x @ bmat
    return (p.alpha * (r @ bmat.T)).astype(np.float32).reshape(xin.shape)
