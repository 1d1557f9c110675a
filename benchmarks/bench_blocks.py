"""Streamed inverted-residual blocks: one fused step (cnn_nchwc_block_run_f32)
against the three blocked convs it replaces, per block shape of MobileNetV2,
MNASNet-0.5, MobileNetV3-Large and EfficientNet-B0 (batch 1, random weights).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_blocks.py [--threads 1] [--reps 200]

Each rep runs the unfused chain, then the fused step, back to back, so that
load from the rest of a shared machine falls on both alike; reported: the
medians, their ratio (fused / unfused), and the largest difference between
the two outputs (0: the same row kernels on the same rows).
"""
import argparse
import time

import numpy as np

from cnnengine import _kernels as K
from cnnengine.backend.cpu.blocked_ops import block
from cnnengine.functional._common import ACTIVATIONS

# (name, C in, expanded, k, H(=W), stride, C out (0: a squeeze-excitation block,
# no projection), residual, activation); C in == expanded: no expand
BLOCKS = [
    ("mv2 dw32@112 -> 16", 32, 32, 3, 112, 1, 16, False, "clip"),
    ("mv2 16-96@112 s2 -> 24", 16, 96, 3, 112, 2, 24, False, "clip"),
    ("mv2 24-144@56 s1 -> 24 +res", 24, 144, 3, 56, 1, 24, True, "clip"),
    ("mv2 24-144@56 s2 -> 32", 24, 144, 3, 56, 2, 32, False, "clip"),
    ("mv2 32-192@28 s1 -> 32 +res", 32, 192, 3, 28, 1, 32, True, "clip"),
    ("mnas 16-48@112 s2 -> 24", 16, 48, 3, 112, 2, 24, False, "relu"),
    ("mnas 24-72@56 s1 -> 24 +res", 24, 72, 3, 56, 1, 24, True, "relu"),
    ("v3L 16-64@112 s2 -> 24", 16, 64, 3, 112, 2, 24, False, "relu"),
    ("eff 16-96@112 s2 SE", 16, 96, 3, 112, 2, 0, False, "silu"),
    ("eff 24-144@56 s1 SE", 24, 144, 3, 56, 1, 0, False, "silu"),
    ("eff 24-144@56 5x5 s2 SE", 24, 144, 5, 56, 2, 0, False, "silu"),
]


def packs(rng, c, e, k, h, s, out, act):
    code, beta = ACTIVATIONS[act], 6.0 if act == "clip" else 0.0
    p, o = k // 2, (h + 2 * (k // 2) - k) // s + 1
    pe = pp = None
    if c != e:
        w = (rng.standard_normal((e, c)) * 0.3).astype(np.float32)
        pe = K.ConvNCHWc(w.reshape(-1), rng.standard_normal(e).astype(np.float32),
                         (1, c, h, h, e, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, h, h), code, 0.0, beta, False)
    w = (rng.standard_normal((e, k * k)) * 0.3).astype(np.float32)
    pd = K.ConvNCHWc(w.reshape(-1), rng.standard_normal(e).astype(np.float32),
                     (1, e, h, h, e, k, k, s, s, 1, 1, p, p, p, p, e, o, o), code, 0.0, beta, False)
    if out:
        w = (rng.standard_normal((out, e)) * 0.1).astype(np.float32)
        pp = K.ConvNCHWc(w.reshape(-1), rng.standard_normal(out).astype(np.float32),
                         (1, e, o, o, out, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, o, o), 0, 0.0, 0.0, False)
    return pe, pd, pp, o


def blocked(c, h):
    return np.zeros((1, (c + 7) // 8, h, h, 8), np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    t = a.threads
    print(f"| block | unfused ms | fused ms | fused/unfused | max diff |  ({t} thread(s), {K.active_isa()})")
    for name, c, e, k, h, s, out, res, act in BLOCKS:
        pe, pd, pp, o = packs(rng, c, e, k, h, s, out, act)
        x = block(rng.standard_normal((1, c, h, h)).astype(np.float32))
        r = block(rng.standard_normal((1, out, o, o)).astype(np.float32)) if res else None
        pool = None if out else np.zeros((1, (e + 7) // 8, 1, 1, 8), np.float32)
        ex, dy, y0, y1 = blocked(e, h), blocked(e, o), blocked(out or e, o), blocked(out or e, o)

        def unfused():
            src = x
            if pe is not None:
                pe.run(x, None, ex, t)
                src = ex
            if pp is None:
                pd.run_pooled(src, None, y0, pool, t)
            else:
                pd.run(src, None, dy, t)
                pp.run(dy, r, y0, t)

        def fused():
            K.nchwc_block(pe, pd, pp, x, r, y1, pool, t)
        unfused()
        fused()
        tu, tf = [], []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            unfused()
            t1 = time.perf_counter()
            fused()
            tf.append(time.perf_counter() - t1)
            tu.append(t1 - t0)
        mu, mf = np.median(tu) * 1e3, np.median(tf) * 1e3
        print(f"| {name} | {mu:.3f} | {mf:.3f} | {mf / mu:.3f} | {np.abs(y1 - y0).max():.1e} |", flush=True)


if __name__ == "__main__":
    main()
