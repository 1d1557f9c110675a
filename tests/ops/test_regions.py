"""Region rules: for each spatial or per-pixel op, a random tiling of its
output into boxes, each box made from the input windows region() names
(cut, run with cropped() params, or run whole and cut where cropped() says
None), assembles to the whole run. And region() is sufficient: changing the
inputs outside the named windows leaves the box unchanged."""
import zlib
from dataclasses import replace

import numpy as np
import pytest

from cnnengine import ops
from cnnengine.ir.graph import Node
from cnnengine.ops import FULL, Box

TOL = 1e-6   # of the output's largest magnitude: a window may take another kernel path (Winograd, direct)


def case(op, shapes, attrs=None, consts=(), opset=13, cropped="all", ints=None, dtype=np.float32):
    """shapes: input shapes (None: an omitted input); consts: positions that are
    plan-time constants, given as values in `ints` (position -> value)."""
    return dict(op=op, shapes=shapes, attrs=dict(attrs or {}, _opset=opset), consts=consts,
                cropped=cropped, ints=ints or {}, dtype=dtype)


CASES = {
    # convolutions: odd shapes
    "conv_1x1_map": case("Conv", [(1, 3, 1, 1), (5, 3, 1, 1), (5,)]),
    "conv_prime_channels": case("Conv", [(1, 7, 11, 13), (5, 7, 3, 3), (5,)], {"pads": [1, 1, 1, 1]}),
    "conv_stride_gt_kernel": case("Conv", [(1, 3, 17, 14), (4, 3, 2, 2)], {"strides": [3, 3]}),
    "conv_asymmetric_pads": case("Conv", [(1, 5, 12, 9), (3, 5, 3, 3)], {"strides": [2, 2], "pads": [0, 2, 1, 0]}),
    "conv_dilation": case("Conv", [(1, 4, 13, 15), (6, 4, 3, 3)], {"dilations": [2, 3], "pads": [2, 3, 2, 3]}),
    "conv_groups_batch2": case("Conv", [(2, 6, 10, 11), (9, 2, 3, 3), (9,)], {"group": 3, "pads": [1, 1, 1, 1]}),
    "conv_depthwise_same_upper": case("Conv", [(1, 8, 15, 12), (8, 1, 3, 3)],
                                      {"group": 8, "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "conv_same_lower_even_kernel": case("Conv", [(1, 3, 11, 10), (4, 3, 4, 4)],
                                        {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "conv_pads_past_kernel": case("Conv", [(1, 2, 6, 5), (3, 2, 3, 3)], {"pads": [4, 3, 4, 3]}, cropped="any"),
    "conv_fused_residual_relu": case("Conv", [(1, 6, 9, 9), (6, 6, 3, 3), (6,), (1, 6, 9, 9)],
                                     {"pads": [1, 1, 1, 1], "_act": "relu"}),
    "conv_fused_gate": case("Conv", [(1, 6, 9, 9), (4, 6, 1, 1), (4,), None, (1, 6, 1, 1)]),
    "conv_large_3x3": case("Conv", [(1, 32, 20, 20), (32, 32, 3, 3), (32,)], {"pads": [1, 1, 1, 1]}),
    # pools
    "maxpool_3s2p1": case("MaxPool", [(2, 3, 11, 10)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                        "pads": [1, 1, 1, 1]}),
    "maxpool_ceil": case("MaxPool", [(1, 4, 10, 13)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    "maxpool_dilated": case("MaxPool", [(1, 2, 12, 12)], {"kernel_shape": [2, 2], "dilations": [2, 2]}),
    "maxpool_indices": case("MaxPool", [(1, 2, 8, 8)], {"kernel_shape": [2, 2], "strides": [2, 2]}, cropped="none"),
    "avgpool_include_pad": case("AveragePool", [(1, 3, 11, 9)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                                 "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "avgpool_include_pad_ceil": case("AveragePool", [(1, 3, 10, 10)],
                                     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                      "count_include_pad": 1, "ceil_mode": 1}, cropped="some"),
    "avgpool_exclude_pad_ceil": case("AveragePool", [(1, 3, 10, 13)],
                                     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 1, 0],
                                      "ceil_mode": 1}),
    "avgpool_dilated": case("AveragePool", [(1, 2, 12, 11)], {"kernel_shape": [2, 3], "dilations": [2, 2],
                                                              "pads": [1, 1, 1, 1]}),
    "avgpool_same_upper": case("AveragePool", [(1, 2, 9, 7)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                               "auto_pad": "SAME_UPPER"}),
    # elementwise with broadcasting
    "add_channel_bias": case("Add", [(2, 5, 7, 9), (1, 5, 1, 1)]),
    "mul_same": case("Mul", [(1, 4, 8, 6), (1, 4, 8, 6)]),
    "sub_rows_only": case("Sub", [(1, 3, 7, 9), (1, 3, 7, 1)]),
    "div_rank3_vector": case("Div", [(1, 3, 6, 6), (3, 1, 1)]),
    "add_rank2_map": case("Add", [(1, 3, 6, 5), (6, 5)], cropped="none"),
    "pow_scalar": case("Pow", [(1, 2, 5, 5), ()]),
    "sum3": case("Sum", [(1, 2, 6, 7), (1, 2, 6, 7), (1, 2, 1, 1)]),
    "max2": case("Max", [(1, 2, 6, 7), (1, 1, 6, 7)]),
    "where": case("Where", [(1, 2, 5, 6), (1, 2, 5, 6), ()], dtype="where"),
    "add_fused_act": case("Add", [(1, 3, 6, 6), (1, 3, 6, 6)], {"_act": "relu"}),
    # normalisation and activations
    "batchnorm": case("BatchNormalization", [(2, 5, 7, 8), (5,), (5,), (5,), (5,)], dtype="bn"),
    "batchnorm_fused_relu6": case("BatchNormalization", [(1, 4, 6, 5), (4,), (4,), (4,), (4,)],
                                  {"_act": "clip", "_alpha": 0.0, "_beta": 6.0}, dtype="bn"),
    "lrn": case("LRN", [(1, 7, 6, 9)], {"size": 5, "alpha": 1e-3, "beta": 0.75, "bias": 2.0}),
    "relu": case("Relu", [(1, 3, 7, 7)]),
    "clip_inputs": case("Clip", [(1, 3, 7, 7), (), ()], consts=(1, 2),
                        ints={1: np.float32(-0.5), 2: np.float32(0.7)}),
    "clip_opset9": case("Clip", [(1, 3, 7, 7)], {"min": -0.2, "max": 0.3}, opset=9),
    "leaky": case("LeakyRelu", [(1, 3, 6, 7)], {"alpha": 0.1}),
    "hardswish": case("HardSwish", [(1, 3, 6, 7)]),
    "silu": case("cnn.Silu", [(1, 3, 6, 7)]),
    "gelu": case("Gelu", [(1, 3, 6, 7)]),
    "sigmoid": case("Sigmoid", [(1, 3, 6, 7)]),
    "prelu_channel": case("PRelu", [(1, 4, 6, 7), (4, 1, 1)]),
    "softmax_channels": case("Softmax", [(1, 6, 5, 7)], {"axis": 1}),
    "softmax_old_opset": case("Softmax", [(1, 6, 5, 7)], {"axis": 1}, opset=11, cropped="none"),
    "reduce_mean_channels": case("ReduceMean", [(1, 6, 5, 7)], {"axes": [1]}),
    # layout
    "concat_channels": case("Concat", [(1, 2, 6, 7), (1, 3, 6, 7), (1, 1, 6, 7)], {"axis": 1}),
    "concat_rows": case("Concat", [(1, 2, 3, 7), (1, 2, 4, 7)], {"axis": 2}, cropped="none"),
    "split_channels": case("Split", [(1, 6, 5, 7)], {"axis": 1, "split": [2, 4]}, opset=11),
    "slice_channels": case("Slice", [(1, 6, 5, 7), (1,), (1,), (1,)], consts=(1, 2, 3),
                           ints={1: np.array([1]), 2: np.array([5]), 3: np.array([1])}),
    "slice_rows": case("Slice", [(1, 6, 9, 7), (1,), (1,), (1,)], consts=(1, 2, 3), cropped="none",
                       ints={1: np.array([2]), 2: np.array([8]), 3: np.array([2])}),
    "space_to_depth": case("SpaceToDepth", [(1, 3, 8, 6)], {"blocksize": 2}),
    "depth_to_space": case("DepthToSpace", [(1, 8, 3, 5)], {"blocksize": 2}, cropped="none"),
    "pad_constant": case("Pad", [(1, 2, 6, 7), (8,), ()], consts=(1, 2), cropped="some",
                         ints={1: np.array([0, 0, 2, 1, 0, 0, 1, 3]), 2: np.float32(0.5)}),
    "pad_reflect": case("Pad", [(1, 2, 6, 7), (8,)], {"mode": "reflect"}, consts=(1,), cropped="none",
                        ints={1: np.array([0, 0, 2, 1, 0, 0, 1, 3])}),
    "pad_edge_opset9": case("Pad", [(1, 2, 6, 7)], {"mode": "edge", "pads": [0, 0, 1, 2, 0, 0, 2, 1]},
                            opset=9, cropped="none"),
    "resize_nearest": case("Resize", [(1, 2, 5, 6), (0,), (4,)], {"mode": "nearest"}, consts=(1, 2), cropped="none",
                           ints={1: np.zeros(0, np.float32), 2: np.array([1, 1, 2, 2], np.float32)}),
    "resize_linear_sizes": case("Resize", [(1, 2, 5, 6), (0,), (0,), (4,)], {"mode": "linear"}, consts=(1, 2, 3),
                                cropped="none", ints={1: np.zeros(0, np.float32), 2: np.zeros(0, np.float32),
                                                      3: np.array([1, 2, 13, 9])}),
    "resize_linear_down": case("Resize", [(1, 2, 12, 10), (0,), (4,)], {"mode": "linear"}, consts=(1, 2),
                               cropped="none", ints={1: np.zeros(0, np.float32),
                                                     2: np.array([1, 1, 0.5, 0.6], np.float32)}),
    "upsample_asymmetric": case("Resize", [(1, 2, 4, 5), (4,)], {"mode": "nearest"}, consts=(1,), opset=10,
                                cropped="none", ints={1: np.array([1, 1, 3, 2], np.float32)}),
    "conv_transpose": case("ConvTranspose", [(1, 3, 5, 6), (3, 4, 3, 3), (4,)],
                           {"strides": [2, 2], "pads": [1, 1, 1, 1]}, cropped="none"),
}


def _inputs(c, rng):
    ins = []
    for i, s in enumerate(c["shapes"]):
        if s is None:
            ins.append(None)
        elif i in c["ints"]:
            ins.append(np.asarray(c["ints"][i]))
        elif c["dtype"] == "where" and i == 0:
            ins.append(rng.random(s) > 0.5)
        elif c["dtype"] == "bn" and i == 4:
            ins.append(rng.uniform(0.5, 1.5, s).astype(np.float32))
        elif c["op"] == "Pow" and i == 0:
            ins.append(rng.uniform(0.5, 2.0, s).astype(np.float32))
        else:
            ins.append((rng.standard_normal(s) * 0.5).astype(np.float32))
    return ins


def _tiling(rng, h, w):
    """A random grid of boxes covering (h, w), and one random box more."""
    rows = [0] + sorted(rng.choice(np.arange(1, h), size=min(2, h - 1), replace=False).tolist()) + [h] \
        if h > 1 else [0, 1]
    cols = [0] + sorted(rng.choice(np.arange(1, w), size=min(2, w - 1), replace=False).tolist()) + [w] \
        if w > 1 else [0, 1]
    grid = [Box(r0, r1, c0, c1) for r0, r1 in zip(rows, rows[1:]) for c0, c1 in zip(cols, cols[1:])]
    y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
    extra = Box(y0, int(rng.integers(y0 + 1, h + 1)), x0, int(rng.integers(x0 + 1, w + 1)))
    return grid, extra


def _setup(name):
    c = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    ins = _inputs(c, rng)
    outs = ["y", "indices"] if name == "maxpool_indices" else ["y"] + (["y2"] if c["op"] == "Split" else [])
    attrs = dict(c["attrs"])
    fused = {k: attrs.pop("_" + k) for k in ("act", "alpha", "beta") if "_" + k in attrs}
    node = Node(name, c["op"], [f"i{k}" if s is not None else "" for k, s in enumerate(c["shapes"])], outs,
                attrs)
    op, params = ops.get(c["op"]), ops.params_of(node)
    if fused:    # an activation fused by the passes: set on the typed params, as they do
        params = replace(params, act=fused["act"], act_alpha=float(fused.get("alpha", 0.0)),
                         act_beta=float(fused.get("beta", 0.0)))
    consts = {k: ins[k] for k in c["consts"]}
    return c, rng, ins, op, params, consts


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiles_assemble_the_whole(name):
    c, rng, ins, op, params, consts = _setup(name)
    whole = op.reference(params, ins)[0]
    assert whole.ndim == 4
    shapes = [None if x is None else x.shape for x in ins]
    grid, extra = _tiling(rng, whole.shape[2], whole.shape[3])
    got = np.full(whole.shape, np.nan, np.float64)
    atol = TOL * max(1.0, float(np.abs(whole).max()))
    windowed = 0
    for box in grid + [extra]:
        boxes = op.region(params, shapes, whole.shape, box, consts)
        windowed += op.cropped(params, shapes, boxes, consts) is not None
        y = ops.evaluate_window(op, params, ins, whole.shape, box, consts)
        assert y.shape == whole[box.slices()].shape, f"{box}: shape {y.shape}"
        np.testing.assert_allclose(y, whole[box.slices()], rtol=0, atol=atol, err_msg=str(box))
        got[box.slices()] = y
    np.testing.assert_allclose(got, whole, rtol=0, atol=atol)
    total = len(grid) + 1
    expect = {"all": windowed == total, "none": windowed == 0, "some": 0 < windowed < total,
              "any": True}[c["cropped"]]
    assert expect, f"cropped() gave params for {windowed} of {total} boxes, expected {c['cropped']}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_region_is_sufficient(name):
    """New values outside each input's window do not change the box."""
    c, rng, ins, op, params, consts = _setup(name)
    whole = op.reference(params, ins)[0]
    shapes = [None if x is None else x.shape for x in ins]
    grid, extra = _tiling(rng, whole.shape[2], whole.shape[3])
    changed_any = windowed_op = False
    for box in grid + [extra]:
        boxes = op.region(params, shapes, whole.shape, box, consts)
        assert len(boxes) == len(ins)
        windowed_op |= any(b is not FULL for b in boxes)
        moved = list(ins)
        for k, (x, b) in enumerate(zip(ins, boxes)):
            if b is FULL or x is None or x.dtype != np.float32 or x.ndim != 4:
                continue
            fresh = (rng.standard_normal(x.shape) * 0.5).astype(np.float32)
            if c["op"] == "Pow":
                fresh = np.abs(fresh) + 0.5
            keep = b.clip(x.shape).slices()
            fresh[keep] = x[keep]
            changed_any |= not np.array_equal(fresh, x)
            moved[k] = fresh
        y = op.reference(params, moved)[0][box.slices()]
        np.testing.assert_allclose(y, whole[box.slices()], rtol=1e-5, atol=1e-5, err_msg=str(box))
    if whole.shape[2] * whole.shape[3] > 1 and windowed_op:
        assert changed_any, "no box left anything outside its window: the case tests nothing"


def test_avgpool_ceil_overhang_needs_the_whole_run():
    """count_include_pad=1 with ceil_mode: the last window reaches past the end
    padding, and those cells do not count; as explicit padding they would."""
    _, _, ins, op, params, consts = _setup("avgpool_include_pad_ceil")
    shapes = [ins[0].shape]
    out = op.infer(params, shapes, {})[0]
    last = Box(out[2] - 1, out[2], 0, 1)
    boxes = op.region(params, shapes, out, last)
    assert boxes[0].y1 > shapes[0][2] + 1 and op.cropped(params, shapes, boxes) is None
    naive = op.reference(params.__class__(**{**params.__dict__, "pads": (boxes[0].clip(shapes[0]).y0 - boxes[0].y0,
                                                                          1, boxes[0].y1 - shapes[0][2], 1),
                                             "ceil_mode": False}), [ins[0][:, :, boxes[0].clip(shapes[0]).y0:]])[0]
    assert not np.allclose(naive[:, :, -1, 0], op.reference(params, ins)[0][:, :, -1, 0])
