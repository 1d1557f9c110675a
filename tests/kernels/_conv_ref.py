"""Float64 NumPy references for the conv family, written from the definitions."""
import math

import numpy as np


def act_np(v, name, alpha=0.0, beta=0.0):
    """The epilogue activations (cnnengine.h cnn_act) in float64."""
    v = np.asarray(v, np.float64)
    if name in (None, "none"):
        return v
    if name == "relu":
        return np.maximum(v, 0.0)
    if name == "clip":
        return np.clip(v, alpha, beta)
    if name == "leaky_relu":
        return np.where(v >= 0, v, alpha * v)
    if name == "elu":
        return np.where(v > 0, v, alpha * np.expm1(np.minimum(v, 0)))
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-v))
    if name == "tanh":
        return np.tanh(v)
    if name == "silu":
        return v / (1.0 + np.exp(-v))
    if name == "hardswish":
        return v * np.clip(v + 3.0, 0.0, 6.0) / 6.0
    if name == "hardsigmoid":
        return np.clip(alpha * v + beta, 0.0, 1.0)
    if name == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * v * (1.0 + erf(v / math.sqrt(2.0)))
    raise ValueError(name)


def conv2d_np(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1,
              residual=None, act=None, alpha=0.0, beta=0.0):
    """y[n,k,oy,ox] = sum_{c in group(k), ky, kx} xpad[n, c, oy*sh + ky*dh, ox*sw + kx*dw]
    * w[k, c - group start, ky, kx] + b[k] (+ residual, then act)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = stride, dilation, pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    kg = k // groups
    y = np.zeros((n, k, oh, ow))
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for ky in range(kh):
            for kx in range(kw):
                patch = xs[:, :, ky * dh: ky * dh + sh * (oh - 1) + 1: sh,
                           kx * dw: kx * dw + sw * (ow - 1) + 1: sw]
                y[:, g * kg:(g + 1) * kg] += np.einsum(
                    "nchw,kc->nkhw", patch, w[g * kg:(g + 1) * kg, :, ky, kx])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    if residual is not None:
        y += residual
    return act_np(y, act, alpha, beta)


def conv_transpose2d_np(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), output_padding=(0, 0),
                        dilation=(1, 1), groups=1):
    """Scatter: full[n, k, iy*sh + ky*dh, ix*sw + kx*dw] += x[n,c,iy,ix] w[c, k', ky, kx],
    then y = full[pt : pt+OH, pl : pl+OW]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    _, kg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = stride, dilation, pads
    oh = (h - 1) * sh - pt - pb + dh * (kh - 1) + 1 + output_padding[0]
    ow = (wd - 1) * sw - pl - pr + dw * (kw - 1) + 1 + output_padding[1]
    fh = max((h - 1) * sh + dh * (kh - 1) + 1, pt + oh)
    fw = max((wd - 1) * sw + dw * (kw - 1) + 1, pl + ow)
    cg = c // groups
    full = np.zeros((n, kg * groups, fh, fw))
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                full[:, g * kg:(g + 1) * kg, ky * dh: ky * dh + sh * (h - 1) + 1: sh,
                     kx * dw: kx * dw + sw * (wd - 1) + 1: sw] += np.einsum(
                    "nchw,ck->nkhw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, ky, kx])
    y = full[:, :, pt:pt + oh, pl:pl + ow]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv_dims(x, w, stride, pads, dil, groups):
    """The kernels' conv dims tuple (_k_conv.pxi) and the output shape."""
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    return (n, c, h, wd, k, kh, kw, stride[0], stride[1], dil[0], dil[1], *pads, groups, oh,
            ow), (n, k, oh, ow)
