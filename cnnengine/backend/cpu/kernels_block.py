"""The compiled step of cnn.BlockNCHWc (blocked_block.py): three packed
convs run as one streamed kernel (cnn_nchwc_block_run_f32), and its
window runner for region runs (the three packs one after the other)."""
import numpy as np

from ... import _kernels as K
from ...functional._common import ACTIVATIONS
from ...ops._geometry import resolve_pads

BLOCK = 8


def _act(conv):
    return (ACTIVATIONS[conv.act] if conv.act else 0), float(conv.act_alpha), float(conv.act_beta)


def _geometry(conv, h, w, kernel):
    """(pads, oh, ow) of conv on an h x w map."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, conv.strides, conv.dilations
    pads = resolve_pads(conv.auto_pad, conv.pads, (h, w), kernel, conv.strides, conv.dilations)
    oh = (h + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    return pads, oh, ow


def _dims(cp, n, c, h, w, k, kernel):
    """The kernels' conv dims tuple (kernels.conv_dims) of a ConvNCHWc's params on an h x w map."""
    c_ = cp.conv
    pads, oh, ow = _geometry(c_, h, w, kernel)
    return (n, c, h, w, k, kernel[0], kernel[1], c_.strides[0], c_.strides[1], c_.dilations[0],
            c_.dilations[1], *pads, int(c_.group), oh, ow)


def _pack(cp, static, wname, bname, n, h, w):
    wt = np.ascontiguousarray(static[wname], dtype=np.float32)
    b = np.ascontiguousarray(static[bname], dtype=np.float32).reshape(-1) if bname else None
    dims = _dims(cp, n, cp.channels, h, w, wt.shape[0], tuple(wt.shape[2:]))
    return K.ConvNCHWc(wt.reshape(-1), b, dims, *_act(cp.conv), False), dims


def compile_block(node, shapes, dtypes, oshape, static):
    p = node.params
    ins = list(node.inputs) + [""] * (8 - len(node.inputs))
    n, _, h, w, _ = shapes[0]
    pe = pp = None
    if p.expand is not None:
        pe, _ = _pack(p.expand, static, ins[1], ins[2], n, h, w)
    pd, ddims = _pack(p.dw, static, ins[3], ins[4], n, h, w)
    oh, ow = ddims[16], ddims[17]
    if p.project is not None:
        pp, _ = _pack(p.project, static, ins[5], ins[6], n, oh, ow)
    has_res = bool(ins[7])
    oshape = tuple(oshape)

    if p.dw.pooled:
        pshape = (n, (p.dw.out_channels + BLOCK - 1) // BLOCK, 1, 1, BLOCK)

        def run(ins, out, t):
            # the pool is small and made per run: concurrent runs stay apart
            y, pool = (out if out is not None else np.empty(oshape, np.float32)), np.empty(pshape, np.float32)
            K.nchwc_block(pe, pd, None, ins[0], None, y, pool, t)
            return y, pool

        def bind(ins, out):
            pool = np.empty(pshape, np.float32)     # one per arena
            return K.bind_block(pe, pd, None, ins[0], None, out, pool), (out, pool)
    else:
        def run(ins, out, t):
            y = out if out is not None else np.empty(oshape, np.float32)
            K.nchwc_block(pe, pd, pp, ins[0], ins[7] if has_res else None, y, None, t)
            return y

        def bind(ins, out):
            return K.bind_block(pe, pd, pp, ins[0], ins[7] if has_res else None, out, None), out
    run.bind = bind
    run.packed = tuple(k for k in (1, 3, 5) if ins[k])   # the weights live in the packs
    run.packs = (pe, pd, pp)
    run.dw_kernel = (ddims[5], ddims[6])
    return run


def block_window(plan_runner, node):
    """A runner of the block over windows of its map with the plan step's
    packs: node has the window's params (BlockNCHWc.cropped: the
    depthwise's padding); the window's size comes from the input."""
    packs = getattr(plan_runner, "packs", None)
    if packs is None or node.params.dw.pooled:     # the squeeze needs the whole map: compiled anew
        return None
    pe, pd, pp = packs
    p = node.params
    has_res = len(node.inputs) > 7 and bool(node.inputs[7])
    e_ch = p.dw.channels
    kernel = tuple(p.dw.conv.kernel_shape or plan_runner.dw_kernel)

    def run(ins, out, t):
        x = ins[0]
        n, _, h, w = x.shape[:4]
        eb = (e_ch + BLOCK - 1) // BLOCK
        if pe is not None:
            ex = np.empty((n, eb, h, w, BLOCK), np.float32)
            pe.run_window(x, None, ex,
                          (n, p.expand.channels, h, w, e_ch, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, h, w), t)
            x = ex
        ddims = _dims(p.dw, n, e_ch, h, w, e_ch, kernel)
        oh, ow = ddims[16], ddims[17]
        if pp is None:
            y = out if out is not None else np.empty((n, eb, oh, ow, BLOCK), np.float32)
            pd.run_window(x, None, y, ddims, t)
            return y
        dy = np.empty((n, eb, oh, ow, BLOCK), np.float32)
        pd.run_window(x, None, dy, ddims, t)
        k = p.project.out_channels
        y = out if out is not None else np.empty((n, (k + BLOCK - 1) // BLOCK, oh, ow, BLOCK), np.float32)
        pp.run_window(dy, ins[7] if has_res else None, y,
                      (n, e_ch, oh, ow, k, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, oh, ow), t)
        return y
    return run
