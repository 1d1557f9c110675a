"""A NumPy stand-in for the GPU: device memory as byte arrays and each
csrc/cuda kernel re-implemented from its source's definition, run on the
exact arguments the backend packs (ctypes structs, pointers, offsets).

It checks everything on the host side of a launch -- which kernel, its
arguments, weight layouts, offsets, strides, buffer reuse by the memory
plan, graph capture and replay -- against the CPU backend, on a machine
without a GPU. It does not check the kernels' own tiling (test_launch.py
emulates that index arithmetic separately) nor the device code itself
(tests/cuda/test_gpu.py, on a GPU)."""
import bisect
import ctypes
import itertools
import math

import numpy as np

from cnnengine.backend.cuda import driver as D

_ACTS = {
    0: lambda v, a, b: v,
    1: lambda v, a, b: np.where(v < 0, 0, v),
    2: lambda v, a, b: np.where(v < a, a, np.where(v > b, b, v)),
    3: lambda v, a, b: np.where(v >= 0, v, a * v),
    4: lambda v, a, b: np.where(v > 0, v, a * np.expm1(v)),
    5: lambda v, a, b: 1 / (1 + np.exp(-v)),
    6: lambda v, a, b: np.tanh(v),
    7: lambda v, a, b: v / (1 + np.exp(-v)),
    8: lambda v, a, b: v * np.clip(v + 3, 0, 6) / 6,
    9: lambda v, a, b: np.clip(a * v + b, 0, 1),
    10: lambda v, a, b: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2))) if v.size else v,
    11: lambda v, a, b: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))),
    12: lambda v, a, b: np.vectorize(math.erf)(v) if v.size else v,
}


def act(code, v, a, b):
    with np.errstate(all="ignore"):
        return np.asarray(_ACTS[code](np.asarray(v, np.float64), a, b), np.float32)


def _softplus(v):
    return np.where(v > 20, v, np.log1p(np.exp(np.minimum(v, 20))))


_UNARY = {0: np.abs, 1: np.negative, 2: np.exp, 3: np.log, 4: np.sqrt, 5: lambda v: 1 / v, 6: np.floor,
          7: np.ceil, 8: np.vectorize(math.erf, otypes=[np.float64]), 9: np.sin, 10: np.cos, 11: np.sign,
          12: np.rint, 13: _softplus, 14: lambda v: v * np.tanh(_softplus(v))}
_BINARY = {0: np.add, 1: np.subtract, 2: np.multiply, 3: np.divide, 4: np.power, 5: np.maximum, 6: np.minimum,
           7: lambda u, v: np.where(u < 0, v * u, u)}


class Memory:
    def __init__(self):
        self.bases, self.bufs = [], {}
        self._next = itertools.count(0x100000000, 1 << 24)

    def alloc(self, nbytes):
        base = next(self._next)
        bisect.insort(self.bases, base)
        self.bufs[base] = np.zeros(max(int(nbytes), 4) + 64, np.uint8)
        return base

    def view(self, ptr, count, dtype=np.float32):
        i = bisect.bisect_right(self.bases, ptr) - 1
        base = self.bases[i]
        buf = self.bufs[base]
        off = ptr - base
        n = int(count) * np.dtype(dtype).itemsize
        assert 0 <= off and off + n <= buf.size - 64, f"access past an allocation at 0x{ptr:x}"
        return buf[off:off + n].view(dtype)


def _v(a):
    return a.value if hasattr(a, "value") else a


def _offsets(sizes, strides):
    """Element offsets of every index of a row-major walk over sizes."""
    off = np.zeros(sizes, np.int64) if sizes else np.zeros((), np.int64)
    for k, (n, st) in enumerate(zip(sizes, strides)):
        shape = [1] * len(sizes)
        shape[k] = n
        off = off + np.arange(n, dtype=np.int64).reshape(shape) * st
    return off.reshape(-1)


def _dims(d, b=True):
    sizes = [d.size[i] for i in range(d.ndim)]
    return sizes, [d.sa[i] for i in range(d.ndim)], ([d.sb[i] for i in range(d.ndim)] if b else None)


class Emulator:
    def __init__(self):
        self.mem = Memory()
        self.launches = []      # (kernel, grid, block, argument sizes), as conftest.check_launches reads them

    def f32(self, ptr, count):
        return self.mem.view(ptr, count)

    def launch(self, fn, grid, block, args, s=None, shared=0):
        self.launches.append((fn, tuple(grid), tuple(block), [ctypes.sizeof(a) for a in args]))
        source, name = fn
        getattr(self, "k_" + name.replace("_tf32", ""))(*args)

    # ------------------------------------------------------------ conv.cu
    def _epilogue(self, ep, acc, shape):
        v = acc.astype(np.float32)
        k = shape[1]
        if ep.scale:
            v = v * self.f32(ep.scale, k).reshape(1, k, 1, 1)
        if ep.shift:
            v = v + self.f32(ep.shift, k).reshape(1, k, 1, 1)
        if ep.residual:
            v = v + self.f32(ep.residual, v.size).reshape(shape)
        return act(ep.act, v, ep.alpha, ep.beta)

    def _direct(self, s, x, w, gate):
        cg, kg = s.c // s.groups, s.k // s.groups
        if gate is not None:
            x = x * gate.reshape(s.n, s.c, 1, 1)
        oy, ox = np.arange(s.oh)[:, None], np.arange(s.ow)[None, :]
        acc = np.zeros((s.n, s.k, s.oh, s.ow))
        for r in range(s.kh):
            for t in range(s.kw):
                iy, ix = oy * s.sh - s.pt + r * s.dh, ox * s.sw - s.pl + t * s.dw
                ok = (iy >= 0) & (iy < s.h) & (ix >= 0) & (ix < s.w)
                patch = x[:, :, np.clip(iy, 0, s.h - 1), np.clip(ix, 0, s.w - 1)] * ok
                for g in range(s.groups):
                    acc[:, g * kg:(g + 1) * kg] += np.einsum("kc,nchw->nkhw", w[g * kg:(g + 1) * kg, :, r, t],
                                                             patch[:, g * cg:(g + 1) * cg])
        return acc

    def _conv(self, s, xp, wp, gp, yp, ep, depthwise=False):
        cg, kg = s.c // s.groups, s.k // s.groups
        x = self.f32(xp, s.n * s.c * s.h * s.w).reshape(s.n, s.c, s.h, s.w)
        if depthwise:
            w = self.f32(wp, s.k * s.kh * s.kw).reshape(s.k, 1, s.kh, s.kw)
        else:
            wt = self.f32(wp, s.groups * cg * s.kh * s.kw * kg).reshape(s.groups, cg * s.kh * s.kw, kg)
            w = wt.transpose(0, 2, 1).reshape(s.k, cg, s.kh, s.kw)
        gate = self.f32(gp, s.n * s.c) if gp else None
        shape = (s.n, s.k, s.oh, s.ow)
        self.f32(yp, int(np.prod(shape)))[:] = self._epilogue(ep, self._direct(s, x, w, gate), shape).reshape(-1)

    def k_conv2d_igemm(self, s, x, wt, gate, y, ep):
        self._conv(s, _v(x), _v(wt), _v(gate), _v(y), ep)

    k_conv2d_1x1 = k_conv2d_igemm

    def k_conv2d_depthwise(self, s, x, w, gate, y, ep):
        self._conv(s, _v(x), _v(w), _v(gate), _v(y), ep, depthwise=True)

    def k_conv_transpose2d(self, s, xp, wp, yp, ep):
        cg, kg = s.c // s.groups, s.k // s.groups
        x = self.f32(_v(xp), s.n * s.c * s.h * s.w).reshape(s.n, s.c, s.h, s.w)
        w = self.f32(_v(wp), s.c * kg * s.kh * s.kw).reshape(s.c, kg, s.kh, s.kw)
        oy, ox = np.arange(s.oh)[:, None], np.arange(s.ow)[None, :]
        acc = np.zeros((s.n, s.k, s.oh, s.ow))
        for r in range(s.kh):
            for t in range(s.kw):
                ty, tx = oy + s.pt - r * s.dh, ox + s.pl - t * s.dw
                ok = (ty >= 0) & (ty % s.sh == 0) & (ty // s.sh < s.h) & (tx >= 0) & (tx % s.sw == 0) & \
                    (tx // s.sw < s.w)
                patch = x[:, :, np.clip(ty // s.sh, 0, s.h - 1), np.clip(tx // s.sw, 0, s.w - 1)] * ok
                for g in range(s.groups):
                    acc[:, g * kg:(g + 1) * kg] += np.einsum("ck,nchw->nkhw", w[g * cg:(g + 1) * cg, :, r, t],
                                                             patch[:, g * cg:(g + 1) * cg])
        shape = (s.n, s.k, s.oh, s.ow)
        self.f32(_v(yp), int(np.prod(shape)))[:] = self._epilogue(ep, acc, shape).reshape(-1)

    # ------------------------------------------------------------ pool.cu
    def _pool(self, s, xp, yp, is_max):
        x = self.f32(_v(xp), s.nc * s.h * s.w).reshape(s.nc, s.h, s.w).astype(np.float64)
        oy, ox = np.arange(s.oh)[:, None], np.arange(s.ow)[None, :]
        out = np.full((s.nc, s.oh, s.ow), -np.inf if is_max else 0.0)
        cy = np.zeros((s.oh, 1))
        cx = np.zeros((1, s.ow))
        for i in range(s.kh):
            iy = oy * s.sh - s.pt + i * s.dh
            cy = cy + (((iy >= -s.pt) & (iy < s.h + s.pb)) if s.count_include_pad else ((iy >= 0) & (iy < s.h)))
        for j in range(s.kw):
            ix = ox * s.sw - s.pl + j * s.dw
            cx = cx + (((ix >= -s.pl) & (ix < s.w + s.pr)) if s.count_include_pad else ((ix >= 0) & (ix < s.w)))
        for i in range(s.kh):
            for j in range(s.kw):
                iy, ix = oy * s.sh - s.pt + i * s.dh, ox * s.sw - s.pl + j * s.dw
                ok = (iy >= 0) & (iy < s.h) & (ix >= 0) & (ix < s.w)
                v = x[:, np.clip(iy, 0, s.h - 1), np.clip(ix, 0, s.w - 1)]
                out = np.where(ok & (v > out), v, out) if is_max else out + np.where(ok, v, 0.0)
        if not is_max:
            out = out / (cy * cx)
        self.f32(_v(yp), out.size)[:] = out.reshape(-1)

    def k_max_pool2d(self, s, x, y):
        self._pool(s, x, y, True)

    def k_avg_pool2d(self, s, x, y):
        self._pool(s, x, y, False)

    # ---------------------------------------------------------- reduce.cu
    def k_reduce_axis(self, xp, yp, outer, length, inner, op):
        outer, length, inner = _v(outer), _v(length), _v(inner)
        x = self.f32(_v(xp), outer * length * inner).reshape(outer, length, inner).astype(np.float64)
        op = _v(op)
        r = [x.sum(1), x.mean(1), x.max(1), x.min(1), (x * x).sum(1), np.sqrt((x * x).sum(1))][op]
        self.f32(_v(yp), outer * inner)[:] = r.reshape(-1)

    def k_softmax_axis(self, xp, yp, outer, length, inner, log_):
        outer, length, inner = _v(outer), _v(length), _v(inner)
        x = self.f32(_v(xp), outer * length * inner).reshape(outer, length, inner).astype(np.float64)
        z = x - x.max(1, keepdims=True)
        e = np.exp(z)
        r = z - np.log(e.sum(1, keepdims=True)) if _v(log_) else e / e.sum(1, keepdims=True)
        self.f32(_v(yp), r.size)[:] = r.reshape(-1)

    def k_layer_norm(self, xp, yp, rows, length, gp, bp, eps):
        rows, length = _v(rows), _v(length)
        x = self.f32(_v(xp), rows * length).reshape(rows, length).astype(np.float64)
        r = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + _v(eps))
        r = r * self.f32(_v(gp), length) + (self.f32(_v(bp), length) if _v(bp) else 0)
        self.f32(_v(yp), r.size)[:] = r.reshape(-1)

    def k_channel_norm(self, xp, yp, n, c, hw, gp, bp, eps):
        n, c, hw = _v(n), _v(c), _v(hw)
        x = self.f32(_v(xp), n * c * hw).reshape(n, c, hw).astype(np.float64)
        r = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + _v(eps))
        r = r * self.f32(_v(gp), c)[:, None] + self.f32(_v(bp), c)[:, None]
        self.f32(_v(yp), r.size)[:] = r.reshape(-1)

    # --------------------------------------------------------- eltwise.cu
    def k_activation(self, xp, yp, n, code, alpha, beta):
        n = _v(n)
        self.f32(_v(yp), n)[:] = act(_v(code), self.f32(_v(xp), n), _v(alpha), _v(beta))

    def k_unary(self, xp, yp, n, op, alpha, beta):
        n, op, a, b = _v(n), _v(op), _v(alpha), _v(beta)
        x = self.f32(_v(xp), n).astype(np.float64)
        with np.errstate(all="ignore"):
            if op == 15:
                r = np.where(x > 0, b * x, b * a * np.expm1(x))
            elif op == 16:
                r = a * x
            elif op == 17:
                r = 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))
            else:
                r = _UNARY[op](x)
        self.f32(_v(yp), n)[:] = r

    def k_binary(self, d, ap, bp, yp, n, op, code, alpha, beta):
        sizes, sa, sb = _dims(d)
        oa, ob = _offsets(sizes, sa), _offsets(sizes, sb)
        a = self.f32(_v(ap), oa.max() + 1)[oa].astype(np.float64)
        b = self.f32(_v(bp), ob.max() + 1)[ob].astype(np.float64)
        with np.errstate(all="ignore"):
            r = _BINARY[_v(op)](a, b)
        self.f32(_v(yp), _v(n))[:] = act(_v(code), r, _v(alpha), _v(beta))

    def k_channel_affine(self, xp, yp, n, c, inner, sp, hp, code, alpha, beta):
        n, c, inner = _v(n), _v(c), _v(inner)
        x = self.f32(_v(xp), n * c * inner).reshape(n, c, inner)
        r = x * self.f32(_v(sp), c).reshape(1, c, 1) + self.f32(_v(hp), c).reshape(1, c, 1)
        self.f32(_v(yp), x.size)[:] = act(_v(code), r, _v(alpha), _v(beta)).reshape(-1)

    def k_lrn(self, xp, yp, n, c, inner, size, alpha, beta, bias):
        n, c, inner, size = _v(n), _v(c), _v(inner), _v(size)
        x = self.f32(_v(xp), n * c * inner).reshape(n, c, inner).astype(np.float64)
        sq = np.zeros_like(x)
        for ch in range(c):
            lo, hi = max(0, ch - (size - 1) // 2), min(c - 1, ch + size // 2)
            sq[:, ch] = (x[:, lo:hi + 1] ** 2).sum(1)
        r = x / (_v(bias) + _v(alpha) / size * sq) ** _v(beta)
        self.f32(_v(yp), x.size)[:] = r.reshape(-1)

    # ---------------------------------------------------------- layout.cu
    def k_strided_copy(self, d, xp, ox, yp, oy, n):
        sizes, sa, sb = _dims(d)
        src, dst = _offsets(sizes, sa) + _v(ox), _offsets(sizes, sb) + _v(oy)
        x = self.f32(_v(xp), src.max() + 1)
        y = self.f32(_v(yp), dst.max() + 1)
        y[dst] = x[src]

    def k_pad_nd(self, d, xp, xoff, yp, n, mode, value):
        mode, rank = _v(mode), d.ndim
        total = _offsets([d.out[k] for k in range(rank)], [0] * rank)   # shape holder
        off = np.full(total.shape, _v(xoff), np.int64)
        outside = np.zeros(total.shape, bool)
        idx = np.indices([d.out[k] for k in range(rank)]).reshape(rank, -1)
        for k in range(rank):
            c = idx[k] - d.begin[k]
            length = d.inp[k]
            bad = (c < 0) | (c >= length)
            if mode == 0:
                outside |= bad
                c = np.clip(c, 0, max(length - 1, 0))
            elif mode == 2:
                c = np.clip(c, 0, length - 1)
            elif mode == 3:
                c = c % length
            else:
                period = 2 * (length - 1) if length > 1 else 1
                c = c % period
                c = np.where(c >= length, period - c, c)
            off = off + c * d.stride[k]
        x = self.f32(_v(xp), off.max() + 1)
        self.f32(_v(yp), _v(n))[:] = np.where(outside, _v(value), x[off])

    def k_resize2d(self, xp, yp, nc, h, w, oh, ow, iyp, wyp, ty, ixp, wxp, tx):
        nc, h, w, oh, ow, ty, tx = map(_v, (nc, h, w, oh, ow, ty, tx))
        x = self.f32(_v(xp), nc * h * w).reshape(nc, h, w).astype(np.float64)
        iy = self.mem.view(_v(iyp), oh * ty, np.int32).reshape(oh, ty)
        ix = self.mem.view(_v(ixp), ow * tx, np.int32).reshape(ow, tx)
        wy = self.f32(_v(wyp), oh * ty).reshape(oh, ty)
        wx = self.f32(_v(wxp), ow * tx).reshape(ow, tx)
        my, mx = np.zeros((oh, h)), np.zeros((ow, w))
        for a in range(ty):
            np.add.at(my, (np.arange(oh), iy[:, a]), wy[:, a])
        for b in range(tx):
            np.add.at(mx, (np.arange(ow), ix[:, b]), wx[:, b])
        r = np.einsum("yh,chw,xw->cyx", my, x, mx)
        self.f32(_v(yp), r.size)[:] = r.reshape(-1)

    def k_gather_map(self, xp, mp, yp, n, value):
        n = _v(n)
        m = self.mem.view(_v(mp), n, np.int64)
        x = self.f32(_v(xp), max(int(m.max()) + 1, 1)) if n else None
        self.f32(_v(yp), n)[:] = np.where(m < 0, _v(value), x[np.maximum(m, 0)]) if n else []

    # ----------------------------------------------------------- dense.cu
    def k_matmul_batched(self, d, ap, bp, cp, m, n, k):
        m, n, k = _v(m), _v(n), _v(k)
        sizes, sa, sb = _dims(d)
        oa, ob = _offsets(sizes, sa), _offsets(sizes, sb)
        for z, (i, j) in enumerate(zip(oa, ob)):
            a = self.f32(_v(ap) + 4 * int(i), m * k).reshape(m, k).astype(np.float64)
            b = self.f32(_v(bp) + 4 * int(j), k * n).reshape(k, n)
            self.f32(_v(cp) + 4 * z * m * n, m * n)[:] = (a @ b).reshape(-1)


def install(monkeypatch):
    """Route the driver layer through a fresh Emulator; returns it."""
    emu = Emulator()

    class Device:
        arch, sms, name = 80, 108, "emulated"

        def function(self, source, name):
            return (source, name)

    dev = Device()

    def empty(shape, s=None):
        n = int(np.prod(shape)) if len(shape) else 1
        return D.DeviceArray(emu.mem.alloc(4 * n), shape, None)

    def upload(a, s=None):
        a = D._c_order(a, np.float32)
        d = empty(a.shape)
        emu.f32(d.ptr, a.size)[:] = a.reshape(-1)
        return d

    def upload_raw(a, s=None):
        a = np.ascontiguousarray(a)
        ptr = emu.mem.alloc(a.nbytes)
        emu.mem.view(ptr, a.size, a.dtype)[:] = a.reshape(-1)
        return D.DeviceArray(ptr, (a.size,), None)

    def copy_in(dst, a, s):
        a = np.ascontiguousarray(a, np.float32)
        emu.f32(dst.ptr, a.size)[:] = a.reshape(-1)
        return a

    def download(d, s=None):
        return emu.f32(d.ptr, d.size).reshape(d.shape).copy()

    class Graph:
        """Records the launches of a capture; launch() replays them."""

        def __init__(self, s, record):
            self.calls = []
            real = emu.launch
            emu.launch = lambda fn, grid, block, args, s=None, shared=0: self.calls.append((fn, grid, block, args))
            try:
                record()
            finally:
                emu.launch = real

        def launch(self, s):
            for fn, grid, block, args in self.calls:
                emu.launch(fn, grid, block, args)

    patches = {"device": lambda: dev, "stream": lambda: None, "new_stream": lambda: object(),
               "destroy_stream": lambda s: None, "launch": lambda *a, **k: emu.launch(*a, **k),
               "empty": empty, "upload": upload, "upload_raw": upload_raw, "copy_in": copy_in,
               "download": download, "synchronize": lambda s=None: None, "Graph": Graph}
    for k, v in patches.items():
        monkeypatch.setattr(D, k, v)
    return emu


__all__ = ["Emulator", "install"]
