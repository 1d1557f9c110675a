"""A packed blocked conv run over windows of the map it was packed for
(cnn_conv2d_nchwc_run_window_f32): each window, its input cut from the map
with the padding it reaches past the map, equals that window of the whole
conv -- direct and Winograd packs, strides, dilation, depthwise, stems."""
import numpy as np
import pytest

from cnnengine import _kernels as _k
from cnnengine.errors import Error
from tests.conftest import assert_close
from tests.kernels.test_nchwc import to_blocked

pytestmark = pytest.mark.usefixtures("avx2")


def _dims(n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, g):
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return (n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, g, oh, ow)


def _window_dims(dims, box):
    """dims of the conv on the input window that makes output box (y0, y1, x0, x1), and that window."""
    n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, g, oh, ow = dims
    y0, y1, x0, x1 = box
    iy0, iy1 = y0 * sh - pt, (y1 - 1) * sh - pt + (kh - 1) * dh + 1
    ix0, ix1 = x0 * sw - pl, (x1 - 1) * sw - pl + (kw - 1) * dw + 1
    cy0, cy1, cx0, cx1 = max(iy0, 0), min(iy1, h), max(ix0, 0), min(ix1, w)
    wd = (n, c, cy1 - cy0, cx1 - cx0, k, kh, kw, sh, sw, dh, dw, cy0 - iy0, cx0 - ix0, iy1 - cy1,
          ix1 - cx1, g, y1 - y0, x1 - x0)
    return wd, (cy0, cy1, cx0, cx1)


CASES = [  # (n, c, h, w, k, kh, kw, stride, pads, dilation, groups, winograd)
    (2, 16, 13, 11, 24, 3, 3, 1, 1, 1, 1, False),
    (1, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1, True),
    (2, 13, 7, 9, 21, 3, 3, 1, 1, 1, 1, "f2x3"),    # Winograd F(2x2, 3x3)
    (1, 24, 15, 9, 8, 3, 3, 2, 1, 1, 1, False),
    (1, 8, 12, 12, 16, 1, 1, 1, 0, 1, 1, False),
    (2, 16, 11, 10, 16, 3, 3, 1, 2, 2, 16, False),     # depthwise, dilated
    (1, 32, 9, 9, 64, 5, 5, 2, 2, 1, 1, False),
]


@pytest.mark.parametrize("case", CASES)
def test_windows_equal_the_whole_conv(case, rng):
    n, c, h, w, k, kh, kw, s, p, d, g, wino = case
    dims = _dims(n, c, h, w, k, kh, kw, s, s, d, d, p, p, p, p, g)
    oh, ow = dims[16], dims[17]
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // g, kh, kw)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    pk = _k.ConvNCHWc(wt.ravel(), b, dims, 1, 0.0, 0.0, False, wino)
    xb = to_blocked(x)
    whole = np.full((n, (k + 7) // 8, oh, ow, 8), np.nan, np.float32)
    pk.run(xb, None, whole, 2)
    for box in [(0, oh, 0, ow), (0, 1, 0, 1), (oh - 1, oh, ow - 2, ow), (1, oh - 1, 2, ow),
                (oh // 2, oh // 2 + 2, 0, ow)]:
        wd, (cy0, cy1, cx0, cx1) = _window_dims(dims, box)
        xw = np.ascontiguousarray(xb[:, :, cy0:cy1, cx0:cx1])
        y = np.full((n, (k + 7) // 8, box[1] - box[0], box[3] - box[2], 8), np.nan, np.float32)
        pk.run_window(xw, None, y, wd, 2)
        assert_close(y, whole[:, :, box[0]:box[1], box[2]:box[3]], atol=1e-4, what=f"{box}")


def test_window_of_another_conv_is_refused(rng):
    dims = _dims(1, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    pk = _k.ConvNCHWc(rng.standard_normal(8 * 8 * 9).astype(np.float32), None, dims, 0, 0.0, 0.0, False,
                      False)
    bad = list(_window_dims(dims, (0, 4, 0, 4))[0])
    bad[7] = 2                                   # another stride
    with pytest.raises(Error):
        pk.run_window(np.zeros(8 * 6 * 6, np.float32), None, np.zeros(8 * 16, np.float32), tuple(bad), 1)
