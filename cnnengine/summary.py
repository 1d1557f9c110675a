"""Per-layer summary: shapes, parameters, MACs and receptive fields.

Receptive fields follow the usual recurrence (Araujo et al., Distill 2019):
for a layer with kernel k, stride s, dilation d and leading pad p,
    k_eff = d(k-1)+1,  size' = size + (k_eff-1)*jump,  jump' = jump*s,
    start' = start + ((k_eff-1)/2 - p)*jump.
`start` is the input-pixel coordinate of the centre of the first output
unit's field (pixel centres at integer coordinates), so output unit i covers
input pixels start + i*jump +- (size-1)/2, clipped to the image.
Where branches merge (Add, Concat) the field is the largest of the inputs'.
Parameters count learnable weights (BatchNorm: scale and bias, not running
statistics), MACs count multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul,
the convention of the published figures (ResNet-50: 25.6 M params, 4.1 GMACs).
"""
from dataclasses import asdict, dataclass

import numpy as np

from .ir.weights import raw

_WINDOWED = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")
_GLOBAL = ("GlobalAveragePool", "GlobalMaxPool", "Flatten", "Gemm", "MatMul", "Reshape", "ReduceMean")


@dataclass
class LayerInfo:
    name: str
    op: str
    input_shapes: list
    output_shape: tuple
    params: int
    macs: int
    receptive_field: dict      # {"size": [h, w], "jump": [h, w], "start": [h, w]}

    def as_dict(self):
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        d["input_shapes"] = [list(s) for s in self.input_shapes]
        return d


def summarize(graph, shapes, aliases=None):
    aliases = aliases or {}
    rf = {}
    for v in graph.inputs:
        rf[v.name] = ((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))
    layers = []
    for node in graph.nodes:
        in_shapes = [tuple(shapes.get(aliases.get(i, i), ())) for i in node.inputs if i]
        out = node.outputs[0]
        out_shape = tuple(shapes.get(aliases.get(out, out), ()))
        field = _field(node, graph, shapes, rf, aliases)
        for o in node.outputs:
            rf[o] = field
        (sh, sw), (jh, jw), (th, tw) = field
        layers.append(LayerInfo(
            node.name, node.op, in_shapes, out_shape, _params(node, graph), _macs(node, graph, in_shapes, out_shape),
            {"size": [_num(sh), _num(sw)], "jump": [_num(jh), _num(jw)], "start": [_num(th), _num(tw)]}))
    return layers


def _num(v):
    return int(v) if float(v).is_integer() else round(float(v), 4)


def _field(node, graph, shapes, rf, aliases):
    ins = [rf[i] for i in node.inputs if i and i in rf]
    if not ins:
        return ((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))
    base = max(ins, key=lambda f: f[0][0] * f[0][1])
    (sh, sw), (jh, jw), (th, tw) = base
    a = node.attrs
    if node.op in _WINDOWED:
        w = raw(graph.weights, node.inputs[1]) if node.op in ("Conv", "ConvTranspose") and len(node.inputs) > 1 \
            and node.inputs[1] in graph.weights else None
        kernel = a.get("kernel_shape") or (list(w.shape[2:]) if w is not None else [1, 1])
        strides = a.get("strides", [1, 1])
        dil = a.get("dilations", [1, 1])
        pads = a.get("pads", [0, 0, 0, 0])
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            from .ops._geometry import spatial_pads
            x_shape = shapes.get(aliases.get(node.inputs[0], node.inputs[0]), (1, 1, 1, 1))
            pads = spatial_pads(node, x_shape[2:], kernel, strides, dil)
        if len(kernel) != 2:
            return base
        if node.op == "ConvTranspose":
            # Each output pixel sees ceil(k/s) input pixels; the grid gets finer by s.
            keff = [d * (k - 1) + 1 for k, d in zip(kernel, dil)]
            return ((sh + (keff[0] / strides[0] - 1) * jh, sw + (keff[1] / strides[1] - 1) * jw),
                    (jh / strides[0], jw / strides[1]), (th, tw))
        ke = [d * (k - 1) + 1 for k, d in zip(kernel, dil)]
        return ((sh + (ke[0] - 1) * jh, sw + (ke[1] - 1) * jw),
                (jh * strides[0], jw * strides[1]),
                (th + ((ke[0] - 1) / 2 - pads[0]) * jh, tw + ((ke[1] - 1) / 2 - pads[1]) * jw))
    if node.op in _GLOBAL or node.op.startswith("Reduce"):
        x_shape = shapes.get(aliases.get(node.inputs[0], node.inputs[0]), ())
        if len(x_shape) == 4:
            h, w = x_shape[2], x_shape[3]
            return ((sh + (h - 1) * jh, sw + (w - 1) * jw), (jh * h, jw * w),
                    (th + (h - 1) / 2 * jh, tw + (w - 1) / 2 * jw))
        return base
    if node.op in ("Resize", "Upsample"):
        x_shape = shapes.get(aliases.get(node.inputs[0], node.inputs[0]), ())
        y_shape = shapes.get(aliases.get(node.outputs[0], node.outputs[0]), ())
        if len(x_shape) == 4 and len(y_shape) == 4:
            fh, fw = x_shape[2] / y_shape[2], x_shape[3] / y_shape[3]
            return ((sh, sw), (jh * fh, jw * fw), (th, tw))
    return base


def _params(node, graph):
    if node.op == "BatchNormalization":
        return int(sum(raw(graph.weights, i).size for i in node.inputs[1:3] if i in graph.weights))
    if node.op in ("Reshape", "Expand", "Tile", "Slice", "Squeeze", "Unsqueeze", "Pad", "Resize",
                   "Clip", "Split", "ConstantOfShape", "Range", "Gather", "ReduceMean"):
        return 0
    total = 0
    for i in node.inputs:
        w = raw(graph.weights, i) if i and i in graph.weights else None   # its size, not its values
        if w is not None and np.dtype(w.dtype).kind == "f":
            total += int(w.size)
    return total


def _macs(node, graph, in_shapes, out_shape):
    if not out_shape:
        return 0
    out_elems = int(np.prod(out_shape))
    if node.op == "Conv" and len(in_shapes) >= 2 and len(in_shapes[1]) == 4:
        _, cg, kh, kw = in_shapes[1]
        return out_elems * cg * kh * kw
    if node.op == "ConvTranspose" and len(in_shapes) >= 2 and len(in_shapes[1]) == 4:
        c, kg, kh, kw = in_shapes[1]
        return int(np.prod(in_shapes[0])) * kg * kh * kw
    if node.op == "Gemm" and len(in_shapes) >= 2:
        k = in_shapes[0][0] if node.attrs.get("transA", 0) else in_shapes[0][-1]
        return out_elems * int(k)
    if node.op == "MatMul" and len(in_shapes) >= 2 and in_shapes[0]:
        return out_elems * int(in_shapes[0][-1])
    return 0


def format_table(layers, title="model"):
    rows = [("layer", "op", "output", "params", "MACs", "RF")]
    for l in layers:
        rows.append((l.name, l.op, "x".join(str(d) for d in l.output_shape), f"{l.params:,}",
                     f"{l.macs:,}", "x".join(str(v) for v in l.receptive_field["size"])))
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(len(rows[0]))]
    lines = [title]
    for k, r in enumerate(rows):
        lines.append("  ".join(c[:48].ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    total_p = sum(l.params for l in layers)
    total_m = sum(l.macs for l in layers)
    lines.append(f"total: {total_p:,} parameters, {total_m:,} MACs ({total_m / 1e9:.3f} GMACs)")
    return "\n".join(lines)
