"""conv_transpose2d (GEMM + col2im on AVX2, direct scatter on scalar)
against a float64 scatter reference and PyTorch."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine.functional import conv_transpose2d
from tests.conftest import assert_close, torch_or_skip
from tests.kernels._conv_ref import conv_transpose2d_np

# (N, C, H, W, K, kh, kw, stride, pads (t, l, b, r), output_padding, dilation, groups)
CASES = [
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0, 0, 0), (0, 0), (1, 1), 1),
    (2, 3, 4, 5, 7, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 1),
    (1, 4, 5, 3, 6, 4, 4, (2, 2), (1, 1, 1, 1), (0, 0), (1, 1), 2),
    (1, 5, 3, 4, 3, 2, 3, (3, 1), (0, 1, 2, 0), (2, 0), (1, 2), 1),
    (2, 6, 6, 7, 6, 3, 3, (1, 1), (1, 1, 1, 1), (0, 0), (2, 2), 6),   # depthwise, dilated
    (1, 13, 7, 7, 17, 5, 5, (2, 2), (2, 2, 2, 2), (1, 1), (1, 1), 1),
    (1, 2, 3, 3, 4, 1, 1, (4, 4), (0, 0, 0, 0), (3, 2), (1, 1), 2),   # stride > kernel
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_conv_transpose2d_matches_numpy(case, isa, rng):
    n, c, h, wd, k, kh, kw, stride, pads, op, dil, groups = case
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((c, k // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    y = conv_transpose2d(x, w, b, stride=stride, padding=pads, output_padding=op,
                         dilation=dil, groups=groups, threads=2)
    ref = conv_transpose2d_np(x, w, b, stride, pads, op, dil, groups)
    assert_close(y, ref, rtol=1e-5 * np.sqrt(c * kh * kw), what=f"{isa} {case}")
    for threads in (3, 8):
        y3 = conv_transpose2d(x, w, b, stride=stride, padding=pads, output_padding=op,
                              dilation=dil, groups=groups, threads=threads)
        np.testing.assert_allclose(y3, y, rtol=1e-6, atol=1e-6, err_msg=f"threads={threads}")
    y1 = conv_transpose2d(x, w, None, stride=stride, padding=pads, output_padding=op,
                          dilation=dil, groups=groups, threads=1)
    assert_close(y1, ref - b[None, :, None, None], rtol=1e-5 * np.sqrt(c * kh * kw))


def test_conv_transpose2d_randomised(isa, rng):
    for _ in range(10):
        groups = int(rng.choice([1, 2]))
        c, k = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 5))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dil = tuple(int(v) for v in rng.integers(1, 3, 2))
        op = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dil))
        pads = tuple(int(v) for v in rng.integers(0, 2, 4))
        x = rng.standard_normal((int(rng.integers(1, 3)), c, int(rng.integers(2, 8)),
                                 int(rng.integers(2, 8)))).astype(np.float32)
        w = rng.standard_normal((c, k // groups, kh, kw)).astype(np.float32)
        y = conv_transpose2d(x, w, None, stride, pads, op, dil, groups)
        assert_close(y, conv_transpose2d_np(x, w, None, stride, pads, op, dil, groups))


def test_matches_torch(rng):
    torch = torch_or_skip()
    F = torch.nn.functional
    for (n, c, h, wd, k, kh, kw, stride, pads, op, dil, groups) in CASES:
        if pads[0] != pads[2] or pads[1] != pads[3]:
            continue
        x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
        w = rng.standard_normal((c, k // groups, kh, kw)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        ref = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                 stride=stride, padding=pads[:2], output_padding=op,
                                 groups=groups, dilation=dil).numpy()
        y = conv_transpose2d(x, w, b, stride, pads[:2], op, dil, groups)
        assert_close(y, ref)


def test_errors():
    x = np.zeros((1, 4, 3, 3), np.float32)
    with pytest.raises(ce.ShapeError, match="output_padding 2"):
        conv_transpose2d(x, np.zeros((4, 2, 3, 3), np.float32), stride=2, output_padding=2)
    with pytest.raises(ce.ShapeError, match="weight has 3 input channels but x has 4"):
        conv_transpose2d(x, np.zeros((3, 2, 3, 3), np.float32))
    with pytest.raises(ce.ShapeError, match="not divisible by groups 3"):
        conv_transpose2d(x, np.zeros((4, 2, 3, 3), np.float32), groups=3)
    with pytest.raises(ce.ShapeError, match="empty output"):
        conv_transpose2d(x, np.zeros((4, 2, 1, 1), np.float32), padding=2)
