"""Randomised cross-check of cnnengine.functional against PyTorch (not a test).

    python tools/fuzz_functional.py [--cases N] [--seed S]

Draws random shapes and keyword arguments for every functional op, runs them
under both ISA paths and compares with torch.nn.functional (relative error:
max |ours - torch| / max(1, max |torch|)). Prints failures and a summary.
"""
import argparse
import random
import traceback

import numpy as np
import torch
import torch.nn.functional as TF

import cnnengine as ce
import cnnengine.functional as F


def rel(a, b):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b)) / max(1.0, float(np.max(np.abs(b))))) if b.size else 0.0


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def case_conv(r):
    g = r.choice([1, 1, 2, 3, "dw"])
    cin = r.randint(1, 12)
    if g == "dw":
        g = cin
    cin = max(cin // g, 1) * g
    k = r.randint(1, 8) * g
    kh, kw = r.randint(1, 5), r.randint(1, 5)
    dh, dw = r.randint(1, 3), r.randint(1, 3)
    sh, sw = r.randint(1, 4), r.randint(1, 4)
    ph, pw = r.randint(0, 3), r.randint(0, 3)
    h = max(r.randint(1, 20), dh * (kh - 1) + 1 - 2 * ph)
    w = max(r.randint(1, 20), dw * (kw - 1) + 1 - 2 * pw)
    x = np.random.randn(r.randint(1, 3), cin, h, w).astype(np.float32)
    wt = np.random.randn(k, cin // g, kh, kw).astype(np.float32)
    b = np.random.randn(k).astype(np.float32) if r.random() < 0.7 else None
    ours = F.conv2d(x, wt, b, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=g)
    ref = TF.conv2d(T(x), T(wt), None if b is None else T(b), stride=(sh, sw), padding=(ph, pw),
                    dilation=(dh, dw), groups=g)
    return ours, ref


def case_convt(r):
    g = r.choice([1, 1, 2])
    cin = r.randint(1, 6) * g
    kout = r.randint(1, 6) * g
    kh, kw = r.randint(1, 4), r.randint(1, 4)
    sh, sw = r.randint(1, 3), r.randint(1, 3)
    dh, dw = r.randint(1, 2), r.randint(1, 2)
    ph, pw = r.randint(0, (dh * (kh - 1)) // 1), r.randint(0, (dw * (kw - 1)))
    oph, opw = r.randint(0, max(sh, dh) - 1), r.randint(0, max(sw, dw) - 1)
    x = np.random.randn(r.randint(1, 2), cin, r.randint(1, 9), r.randint(1, 9)).astype(np.float32)
    wt = np.random.randn(cin, kout // g, kh, kw).astype(np.float32)
    b = np.random.randn(kout).astype(np.float32) if r.random() < 0.5 else None
    try:
        ref = TF.conv_transpose2d(T(x), T(wt), None if b is None else T(b), stride=(sh, sw), padding=(ph, pw),
                                  output_padding=(oph, opw), groups=g, dilation=(dh, dw))
        if ref.numel() == 0:
            raise RuntimeError("empty output")
    except RuntimeError:
        # torch refuses or gives an empty output: we refuse, with our error.
        try:
            F.conv_transpose2d(x, wt, b, stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw),
                               dilation=(dh, dw), groups=g)
        except ce.Error:
            return None, None
        raise
    ours = F.conv_transpose2d(x, wt, b, stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw),
                              dilation=(dh, dw), groups=g)
    return ours, ref


def case_pool(r):
    kind = r.choice(["max", "avg"])
    kh, kw = r.randint(1, 4), r.randint(1, 4)
    sh, sw = r.randint(1, 4), r.randint(1, 4)
    ph, pw = r.randint(0, kh // 2), r.randint(0, kw // 2)
    ceil = r.random() < 0.5
    x = np.random.randn(r.randint(1, 2), r.randint(1, 7), r.randint(kh, 15), r.randint(kw, 15)).astype(np.float32)
    if kind == "max":
        d = (r.randint(1, 2), r.randint(1, 2))
        if (d[0] * (kh - 1) + 1 > x.shape[2] + 2 * ph) or (d[1] * (kw - 1) + 1 > x.shape[3] + 2 * pw):
            d = (1, 1)
        ref = TF.max_pool2d(T(x), (kh, kw), (sh, sw), (ph, pw), d, ceil_mode=ceil)
        ours = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), d, ceil_mode=ceil)
    else:
        cip = r.random() < 0.5
        ref = TF.avg_pool2d(T(x), (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, count_include_pad=cip)
        ours = F.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, count_include_pad=cip)
    return ours, ref


def case_global(r):
    x = np.random.randn(r.randint(1, 3), r.randint(1, 9), r.randint(1, 9), r.randint(1, 9)).astype(np.float32)
    if r.random() < 0.5:
        return F.global_avg_pool2d(x), TF.adaptive_avg_pool2d(T(x), 1)
    return F.global_max_pool2d(x), TF.adaptive_max_pool2d(T(x), 1)


def case_bn(r):
    c = r.randint(1, 9)
    x = np.random.randn(r.randint(1, 3), c, r.randint(1, 7), r.randint(1, 7)).astype(np.float32)
    m, v = np.random.randn(c).astype(np.float32), np.random.rand(c).astype(np.float32) + 0.1
    g, b = np.random.randn(c).astype(np.float32), np.random.randn(c).astype(np.float32)
    eps = r.choice([1e-5, 1e-3])
    return F.batch_norm(x, m, v, g, b, eps=eps), TF.batch_norm(T(x), T(m), T(v), T(g), T(b), False, 0.0, eps)


def case_linear(r):
    i, o = r.randint(1, 40), r.randint(1, 40)
    x = np.random.randn(r.randint(1, 5), i).astype(np.float32)
    w = np.random.randn(o, i).astype(np.float32)
    b = np.random.randn(o).astype(np.float32) if r.random() < 0.5 else None
    return F.linear(x, w, b), TF.linear(T(x), T(w), None if b is None else T(b))


ACTS = {
    "relu": (lambda x: F.relu(x), lambda t: TF.relu(t)),
    "relu6": (lambda x: F.relu6(x), lambda t: TF.relu6(t)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda t: TF.leaky_relu(t, 0.2)),
    "elu": (lambda x: F.elu(x, 0.7), lambda t: TF.elu(t, 0.7)),
    "sigmoid": (F.sigmoid, torch.sigmoid), "tanh": (F.tanh, torch.tanh), "silu": (F.silu, TF.silu),
    "hardswish": (F.hardswish, TF.hardswish), "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid),
    "gelu": (F.gelu, TF.gelu),
}


def case_act(r):
    name = r.choice(sorted(ACTS))
    x = (np.random.randn(*[r.randint(1, 6) for _ in range(r.randint(1, 4))]) * r.choice([1, 5, 30])).astype(np.float32)
    f, t = ACTS[name]
    return f(x), t(T(x))


def case_prelu(r):
    c = r.randint(1, 6)
    x = np.random.randn(r.randint(1, 3), c, r.randint(1, 5), r.randint(1, 5)).astype(np.float32)
    s = np.random.randn(c).astype(np.float32)
    return F.prelu(x, s), TF.prelu(T(x), T(s))


def case_binary(r):
    shape = [r.randint(1, 5) for _ in range(r.randint(1, 4))]
    other = [d if r.random() < 0.5 else 1 for d in shape][r.randint(0, len(shape) - 1):]
    a = np.random.randn(*shape).astype(np.float32)
    b = np.random.randn(*other).astype(np.float32)
    if r.random() < 0.5:
        a, b = b, a
    op = r.choice(["add", "sub", "mul", "div"])
    tb = T(b) if op != "div" else T(b)
    return getattr(F, op)(a, b), getattr(torch, op)(T(a), tb)


def case_concat(r):
    rank = r.randint(1, 4)
    axis = r.randint(-rank, rank - 1)
    base = [r.randint(1, 4) for _ in range(rank)]
    xs = []
    for _ in range(r.randint(1, 4)):
        s = list(base)
        s[axis] = r.randint(1, 4)
        xs.append(np.random.randn(*s).astype(np.float32))
    return F.concat(xs, axis=axis), torch.cat([T(x) for x in xs], dim=axis)


def case_softmax(r):
    x = np.random.randn(*[r.randint(1, 6) for _ in range(r.randint(1, 4))]).astype(np.float32) * 5
    axis = r.randint(-x.ndim, x.ndim - 1)
    return F.softmax(x, axis=axis), torch.softmax(T(x), dim=axis)


def case_lrn(r):
    x = np.random.randn(r.randint(1, 2), r.randint(1, 9), r.randint(1, 5), r.randint(1, 5)).astype(np.float32)
    size = r.randint(1, 6)
    a, b, k = r.choice([1e-4, 0.1]), r.choice([0.75, 0.5]), r.choice([1.0, 2.0])
    return F.local_response_norm(x, size, a, b, k), TF.local_response_norm(T(x), size, a, b, k)


def case_pad(r):
    x = np.random.randn(r.randint(1, 2), r.randint(1, 3), r.randint(2, 7), r.randint(2, 7)).astype(np.float32)
    mode = r.choice(["constant", "reflect", "edge"])
    lim_h, lim_w = (x.shape[2] - 1, x.shape[3] - 1) if mode == "reflect" else (4, 4)
    t, b_, l, rr = r.randint(0, lim_h), r.randint(0, lim_h), r.randint(0, lim_w), r.randint(0, lim_w)
    tmode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode]
    kw = {"value": 1.5} if mode == "constant" else {}
    return F.pad(x, (t, l, b_, rr), mode=mode, **({"value": 1.5} if mode == "constant" else {})), \
        TF.pad(T(x), (l, rr, t, b_), mode=tmode, **kw)


def case_resize(r):
    x = np.random.randn(r.randint(1, 2), r.randint(1, 3), r.randint(1, 9), r.randint(1, 9)).astype(np.float32)
    size = (r.randint(1, 17), r.randint(1, 17))
    mode = r.choice(["nearest", "bilinear"])
    ref = TF.interpolate(T(x), size=size, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return F.resize(x, size, mode=mode), ref


CASES = [case_conv, case_convt, case_pool, case_global, case_bn, case_linear, case_act, case_prelu,
         case_binary, case_concat, case_softmax, case_lrn, case_pad, case_resize]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=12345)
    args = ap.parse_args()
    isas = ["scalar"] + (["avx2"] if ce.detected_isa() == "avx2" else [])
    fails, skipped, worst = 0, 0, {}
    for isa in isas:
        ce.set_isa(isa)
        r = random.Random(args.seed)
        np.random.seed(args.seed)
        for i in range(args.cases):
            fn = CASES[i % len(CASES)]
            try:
                ours, ref = fn(r)
                if ours is None:
                    skipped += 1
                    continue
                e = rel(ours, ref)
            except Exception:  # noqa: BLE001 - report every failure
                e = float("inf")
                traceback.print_exc()
            worst[fn.__name__] = max(worst.get(fn.__name__, 0.0), e)
            if not e <= 2e-4:
                fails += 1
                print(f"FAIL {isa} case {i} {fn.__name__}: rel err {e:.3g}")
    for k, v in sorted(worst.items()):
        print(f"{k:14s} worst rel err {v:.2e}")
    print(f"{fails} failures in {args.cases * len(isas)} cases ({', '.join(isas)}); "
          f"{skipped} invalid cases refused by both torch and cnnengine")
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
