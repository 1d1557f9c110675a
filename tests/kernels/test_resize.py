"""resize against a NumPy reference of the ONNX definition, PyTorch and ONNX Runtime."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import resize
from tests.conftest import assert_close

f32 = np.float32
COORDS = ["half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners"]
ROUNDINGS = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def src_coords(out, inp, scale, coord):
    """ONNX's coordinate transforms, evaluated in float32 as ONNX Runtime does."""
    o = np.arange(out, dtype=f32)
    if coord == "asymmetric":
        return o / f32(scale)
    if coord == "align_corners":
        return np.zeros(out, f32) if out == 1 else o * f32(inp - 1) / f32(out - 1)
    v = (o + f32(0.5)) / f32(scale) - f32(0.5)
    return np.zeros(out, f32) if (coord == "pytorch_half_pixel" and out == 1) else v


def nearest_idx(v, rounding, inp):
    if rounding == "floor":
        r = np.floor(v)
    elif rounding == "ceil":
        r = np.ceil(v)
    else:   # round half away from zero, except prefer_floor at exact halves
        r = np.sign(v) * np.floor(np.abs(v) + 0.5)
        if rounding == "round_prefer_floor":
            r = np.where(v - np.floor(v) == 0.5, np.floor(v), r)
    return np.clip(r, 0, inp - 1).astype(np.int64)


def ref_resize(x, oh, ow, mode, coord, rounding="floor", scales=None):
    h, w = x.shape[-2:]
    sh, sw = scales if scales else (f32(oh) / f32(h), f32(ow) / f32(w))
    cy, cx = src_coords(oh, h, sh, coord), src_coords(ow, w, sw, coord)
    x = x.astype(np.float64)
    if mode == "nearest":
        return x[..., nearest_idx(cy, rounding, h), :][..., nearest_idx(cx, rounding, w)]
    def lin(c, n):
        c = np.clip(c.astype(np.float64), 0, n - 1)
        i0 = np.floor(c).astype(np.int64)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, c - i0
    y0, y1, ly = lin(cy, h)
    x0, x1, lx = lin(cx, w)
    top = x[..., y0, :] * (1 - ly)[:, None] + x[..., y1, :] * ly[:, None]
    return top[..., x0] * (1 - lx) + top[..., x1] * lx


SIZES = [((1, 1, 1, 1), (3, 5)), ((2, 3, 4, 5), (8, 10)), ((1, 7, 10, 6), (6, 13)),
         ((1, 2, 5, 9), (1, 1)), ((3, 13, 7), (7, 7)), ((1, 1, 9, 11), (4, 17))]


@pytest.mark.parametrize("shape,size", SIZES)
@pytest.mark.parametrize("coord", COORDS)
def test_resize_matches_reference(rng, shape, size, coord):
    x = rng.standard_normal(shape).astype(np.float32)
    for threads in (1, 2, 3, 8):
        got = resize(x, size, "bilinear", coordinate_transformation_mode=coord, threads=threads)
        assert_close(got, ref_resize(x, *size, "linear", coord),
                     what=f"linear {coord}")
        for rounding in ROUNDINGS:
            got = resize(x, size, "nearest", coordinate_transformation_mode=coord,
                         nearest_mode=rounding, threads=threads)
            np.testing.assert_array_equal(got, ref_resize(x, *size, "nearest", coord, rounding),
                                          err_msg=f"nearest {coord} {rounding}")


def test_resize_scales_argument(rng):
    x = rng.standard_normal((1, 2, 5, 7)).astype(np.float32)
    got = resize(x, None, "bilinear", scales=(2.5, 0.6))
    assert got.shape == (1, 2, 12, 4)
    assert_close(got, ref_resize(x, 12, 4, "linear", "half_pixel", scales=(2.5, 0.6)))


def test_resize_writes_every_output(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    for mode in (0, 1):
        y = np.full(3 * 9 * 2, np.nan, np.float32)
        _k.resize(x.reshape(-1), y, 3, 4, 5, 9, 2, mode, 0, 0, 9 / 4, 2 / 5, 2)
        assert not np.isnan(y).any()


@pytest.mark.parametrize("shape,size", [((2, 3, 4, 5), (8, 10)), ((1, 2, 10, 6), (6, 13)),
                                        ((1, 3, 7, 9), (3, 4)), ((1, 1, 5, 5), (1, 1)),
                                        ((1, 2, 3, 3), (7, 11))])
def test_resize_vs_torch(rng, shape, size):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal(shape).astype(np.float32)
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(resize(x, size), F.interpolate(t, size=size).numpy())
    want = F.interpolate(t, size=size, mode="bilinear", align_corners=False).numpy()
    assert_close(resize(x, size, "bilinear"), want, what="bilinear")
    want = F.interpolate(t, size=size, mode="bilinear", align_corners=True).numpy()
    assert_close(resize(x, size, "bilinear", coordinate_transformation_mode="align_corners"),
                 want, what="bilinear align_corners")


def _ort_resize(x, size, mode, coord, rounding):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    node = helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["y"], mode=mode,
                            coordinate_transformation_mode=coord, nearest_mode=rounding)
    graph = helper.make_graph(
        [node], "r", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor("roi", TensorProto.FLOAT, [0], []),
                     helper.make_tensor("scales", TensorProto.FLOAT, [0], []),
                     helper.make_tensor("sizes", TensorProto.INT64, [4],
                                        list(x.shape[:2]) + list(size))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("coord", COORDS)
def test_resize_vs_onnxruntime(rng, coord):
    for shape, size in [((1, 2, 4, 5), (8, 10)), ((1, 3, 10, 6), (6, 13)), ((1, 1, 7, 9), (3, 4))]:
        x = rng.standard_normal(shape).astype(np.float32)
        want = _ort_resize(x, size, "linear", coord, "floor")
        assert_close(resize(x, size, "linear", coordinate_transformation_mode=coord), want,
                     what=f"linear {coord}")
        for rounding in ROUNDINGS:
            want = _ort_resize(x, size, "nearest", coord, rounding)
            got = resize(x, size, "nearest", coordinate_transformation_mode=coord,
                         nearest_mode=rounding)
            np.testing.assert_array_equal(got, want, err_msg=f"{coord} {rounding} {shape}")


def test_resize_errors():
    x = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ce.ShapeError, match="unknown mode"):
        resize(x, (4, 4), "bicubic")
    with pytest.raises(ce.ShapeError, match="coordinate_transformation_mode"):
        resize(x, (4, 4), coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(ce.ShapeError, match="nearest_mode"):
        resize(x, (4, 4), nearest_mode="round")
    with pytest.raises(ce.ShapeError, match=">= 1"):
        resize(x, (0, 4))
    with pytest.raises(ce.ShapeError, match="size or scales"):
        resize(x)
    with pytest.raises(ce.ShapeError, match="scales"):
        resize(x, None, scales=(0, 1))
