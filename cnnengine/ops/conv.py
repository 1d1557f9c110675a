"""Convolutions: Conv (with the epilogue the passes fuse into it) and ConvTranspose."""
from dataclasses import dataclass, replace

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from . import register
from ._common import check_2d, f32, given, opt_ints
from ._geometry import AUTO_PADS, conv_out, resolve_pads, window_pads, window_region
from .base import FULL, Box, OpDef, unsupported


def _auto_pad(node):
    auto = node.attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto not in AUTO_PADS:
        raise unsupported(node, f"auto_pad {auto!r} is not supported")
    return auto


@dataclass(frozen=True)
class ConvParams:
    kernel_shape: tuple = None   # None: the weights' spatial shape
    strides: tuple = (1, 1)
    dilations: tuple = (1, 1)
    pads: tuple = None           # (top, left, bottom, right); None: zeros
    auto_pad: str = "NOTSET"
    group: int = 1
    act: str = ""                # an activation fused into the epilogue (passes)
    act_alpha: float = 0.0
    act_beta: float = 0.0


def _conv_geometry(p, x_shape, w_shape):
    kernel = tuple(p.kernel_shape or w_shape[2:])
    pads = resolve_pads(p.auto_pad, p.pads, x_shape[2:], kernel, p.strides, p.dilations)
    return kernel, pads


@register
class Conv(OpDef):
    types = ("Conv",)
    Params = ConvParams
    # residual: added before the activation (passes._fuse_residual); gate: per-image
    # channel scale of x (passes._fuse_channel_scale)
    inputs = ("x", "w", "b", "residual", "gate")

    def parse(self, node):
        a = node.attrs
        return ConvParams(opt_ints(a.get("kernel_shape")) or None, opt_ints(a.get("strides", (1, 1))),
                          opt_ints(a.get("dilations", (1, 1))), opt_ints(a.get("pads")), _auto_pad(node),
                          int(a.get("group", 1)))

    def infer(self, p, in_shapes, consts):
        x, w = in_shapes[0], in_shapes[1]
        if len(x) != 4:
            raise ShapeError(f"only 4-D (N,C,H,W) input is supported, got shape {x}")
        if len(w) != 4 or w[1] * p.group != x[1] or w[0] % p.group:
            raise ShapeError(f"weights {w} do not fit input {x} with {p.group} groups")
        kernel, pads = _conv_geometry(p, x, w)
        oh = conv_out(x[2], kernel[0], p.strides[0], p.dilations[0], pads[0], pads[2])
        ow = conv_out(x[3], kernel[1], p.strides[1], p.dilations[1], pads[1], pads[3])
        if oh < 1 or ow < 1:
            raise ShapeError(f"kernel {kernel} does not fit the padded input {x}")
        return [(x[0], w[0], oh, ow)]

    def reference(self, p, ins):
        x, w = ins[0], ins[1]
        check_2d(x)
        if given(ins, 4):
            x = F.mul(f32(x), f32(ins[4]))
        kernel, pads = _conv_geometry(p, x.shape, w.shape)
        b = ins[2] if len(ins) > 2 else None
        res = ins[3] if len(ins) > 3 else None
        act = p.act or None
        if res is not None:
            oh = conv_out(x.shape[2], kernel[0], p.strides[0], p.dilations[0], pads[0], pads[2])
            ow = conv_out(x.shape[3], kernel[1], p.strides[1], p.dilations[1], pads[1], pads[3])
            if res.shape != (x.shape[0], w.shape[0], oh, ow) or res.dtype != np.float32:
                # A broadcasting residual: run the epilogue unfused.
                y = F.conv2d(f32(x), w, b, stride=p.strides, padding=pads, dilation=p.dilations,
                             groups=p.group)
                y = F.add(y, f32(res))
                return [F.activation(y, act, p.act_alpha, p.act_beta) if act else y]
        return [F.conv2d(f32(x), w, b, stride=p.strides, padding=pads, dilation=p.dilations,
                         groups=p.group, residual=res, activation=act, alpha=p.act_alpha, beta=p.act_beta)]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        kernel, pads = _conv_geometry(p, in_shapes[0], in_shapes[1])
        boxes = [window_region(out_box, kernel, p.strides, p.dilations, pads)] + [FULL] * (len(in_shapes) - 1)
        if len(in_shapes) > 3 and in_shapes[3] is not None and tuple(in_shapes[3]) == tuple(out_shape):
            boxes[3] = out_box
        return boxes

    def cropped(self, p, in_shapes, in_boxes, consts=None):
        if len(in_shapes) > 3 and in_shapes[3] is not None and in_boxes[3] is FULL:
            return None    # a broadcasting residual: not cut with the output
        pads = window_pads(in_shapes[0], in_boxes[0])
        if pads is None:
            return None
        kernel, _ = _conv_geometry(p, in_shapes[0], in_shapes[1])
        return replace(p, kernel_shape=kernel, pads=pads, auto_pad="NOTSET")


@dataclass(frozen=True)
class ConvTransposeParams:
    kernel_shape: tuple = None
    strides: tuple = (1, 1)
    dilations: tuple = (1, 1)
    pads: tuple = None
    auto_pad: str = "NOTSET"
    output_padding: tuple = (0, 0)
    output_shape: tuple = None
    group: int = 1


def _transpose_geometry(p, x_shape, w_shape):
    """(kernel, pads); pads solved from output_shape or auto_pad, negative when
    the requested output is larger than the full result."""
    kernel = tuple(p.kernel_shape or w_shape[2:])
    s, d, outpad = p.strides, p.dilations, p.output_padding
    if p.output_shape is None and p.auto_pad == "NOTSET":
        return kernel, tuple(p.pads or (0, 0, 0, 0))
    h, wd = x_shape[2:]
    if p.output_shape is not None:
        target = list(p.output_shape)[-2:]
    elif p.auto_pad == "VALID":
        target = [(h - 1) * s[0] + (kernel[0] - 1) * d[0] + 1 + outpad[0],
                  (wd - 1) * s[1] + (kernel[1] - 1) * d[1] + 1 + outpad[1]]
    else:
        target = [h * s[0], wd * s[1]]
    begin, end = [], []
    for i, size in enumerate((h, wd)):
        total = s[i] * (size - 1) + outpad[i] + (kernel[i] - 1) * d[i] + 1 - target[i]
        if p.auto_pad == "SAME_UPPER":
            begin.append(total // 2), end.append(total - total // 2)
        else:
            begin.append(total - total // 2), end.append(total // 2)
    return kernel, (begin[0], begin[1], end[0], end[1])


@register
class ConvTranspose(OpDef):
    types = ("ConvTranspose",)
    Params = ConvTransposeParams
    inputs = ("x", "w", "b")

    def parse(self, node):
        a = node.attrs
        return ConvTransposeParams(opt_ints(a.get("kernel_shape")) or None, opt_ints(a.get("strides", (1, 1))),
                                   opt_ints(a.get("dilations", (1, 1))), opt_ints(a.get("pads")),
                                   _auto_pad(node), opt_ints(a.get("output_padding", (0, 0))),
                                   opt_ints(a.get("output_shape")), int(a.get("group", 1)))

    def infer(self, p, in_shapes, consts):
        x, w = in_shapes[0], in_shapes[1]
        if len(x) != 4:
            raise ShapeError(f"only 4-D (N,C,H,W) input is supported, got shape {x}")
        if len(w) != 4 or w[0] != x[1]:
            raise ShapeError(f"weights {w} do not fit input {x}")
        kernel, pads = _transpose_geometry(p, x, w)
        out = [p.strides[i] * (x[2 + i] - 1) + p.output_padding[i] + (kernel[i] - 1) * p.dilations[i] + 1
               - pads[i] - pads[i + 2] for i in (0, 1)]
        return [(x[0], w[1] * p.group, out[0], out[1])]

    def reference(self, p, ins):
        x, w = ins[0], ins[1]
        check_2d(x)
        b = ins[2] if len(ins) > 2 else None
        kernel, pads = _transpose_geometry(p, x.shape, w.shape)
        kw = dict(stride=p.strides, output_padding=p.output_padding, dilation=p.dilations, groups=p.group)
        if min(pads) < 0:
            # A requested output larger than the full result: the extra rows and
            # columns receive no input, only the bias.
            y = F.conv_transpose2d(f32(x), w, None, padding=tuple(max(v, 0) for v in pads), **kw)
            grow = [(0, 0), (0, 0), (max(-pads[0], 0), max(-pads[2], 0)), (max(-pads[1], 0), max(-pads[3], 0))]
            y = np.pad(y, grow)
            return [y if b is None else (y + f32(b).reshape(1, -1, 1, 1)).astype(np.float32)]
        return [F.conv_transpose2d(f32(x), w, b, padding=pads, **kw)]

    def region(self, p, in_shapes, out_shape, out_box, consts=None):
        # input row i reaches output rows i*s - top + j*d for taps j < k
        kernel, pads = _transpose_geometry(p, in_shapes[0], in_shapes[1])
        (kh, kw), (sh, sw), (dh, dw) = kernel, p.strides, p.dilations
        lo = [-((-(b0 + pads[a] - (k - 1) * d)) // s) for b0, k, s, d, a in
              ((out_box.y0, kh, sh, dh, 0), (out_box.x0, kw, sw, dw, 1))]
        hi = [(b1 - 1 + pads[a]) // s + 1 for b1, s, a in ((out_box.y1, sh, 0), (out_box.x1, sw, 1))]
        return [Box(lo[0], max(lo[0], hi[0]), lo[1], max(lo[1], hi[1]))] + [FULL] * (len(in_shapes) - 1)
