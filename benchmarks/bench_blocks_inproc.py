"""The fused inverted-residual blocks (cnn_nchwc_block_run_f32) of the mobile families, two builds
of the kernels in one process (bench_dw_inproc.py's scheme; not a test).

    python benchmarks/bench_blocks_inproc.py BEFORE_TREE AFTER_TREE [--threads 1 2] [--rounds 9]
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_dw_inproc import batch, load  # noqa: E402

# (label, C in, expanded (== C in: no expand), k, H (= W), stride, C out (0: pooled, no
# projection), residual, activation code, alpha, beta)
BLOCKS = [
    ("mv2 f1 dw32@112 -> 16", 32, 32, 3, 112, 1, 16, False, 2, 0.0, 6.0),
    ("mv2 f2 16-96@112 s2 -> 24", 16, 96, 3, 112, 2, 24, False, 2, 0.0, 6.0),
    ("mv2 f3 24-144@56 -> 24 +res", 24, 144, 3, 56, 1, 24, True, 2, 0.0, 6.0),
    ("mv2 f4 24-144@56 s2 -> 32", 24, 144, 3, 56, 2, 32, False, 2, 0.0, 6.0),
    ("mv3 f2 16-64@112 s2 -> 24", 16, 64, 3, 112, 2, 24, False, 1, 0.0, 0.0),
    ("eff 16-96@112 s2 pooled", 16, 96, 3, 112, 2, 0, False, 7, 0.0, 0.0),
    ("eff 24-144@56 5x5 s2 pooled", 24, 144, 5, 56, 2, 0, False, 7, 0.0, 0.0),
]


def make(K, blk, threads):
    _, c, e, k, h, s, co, res, act, al, be = blk
    rng = np.random.default_rng(0)
    p = k // 2
    o = (h + 2 * p - k) // s + 1
    cb = lambda n: (n + 7) // 8 * 8  # noqa: E731
    pe = None
    if e != c:
        w = (rng.standard_normal(e * c) / np.sqrt(c)).astype(np.float32)
        pe = K.ConvNCHWc(w, rng.standard_normal(e).astype(np.float32),
                         (1, c, h, h, e, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, h, h), act, al, be, False, False)
    wd = rng.standard_normal(e * k * k).astype(np.float32)
    pd = K.ConvNCHWc(wd, rng.standard_normal(e).astype(np.float32),
                     (1, e, h, h, e, k, k, s, s, 1, 1, p, p, p, p, e, o, o), act, al, be, False, False)
    pp = None
    if co:
        w = (rng.standard_normal(co * e) / np.sqrt(e)).astype(np.float32)
        pp = K.ConvNCHWc(w, rng.standard_normal(co).astype(np.float32),
                         (1, e, o, o, co, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, o, o), 0, 0.0, 0.0, False, False)
    x = rng.standard_normal(cb(c) * h * h).astype(np.float32)
    y = np.empty(cb(co if co else e) * o * o, np.float32)
    r = rng.standard_normal(y.size).astype(np.float32) if res else None
    pool = None if co else np.empty(cb(e), np.float32)
    return lambda: K.nchwc_block(pe, pd, pp, x, r, y, pool, threads), y, pool


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    mods = [load(a.before, "before"), load(a.after, "after")]
    print(f"# load {os.getloadavg()}")
    for t in a.threads:
        print(f"\n{t} thread(s), best of {a.rounds} alternating batches, ms per call")
        print("| block | before | after | after/before | max diff |\n|---|---:|---:|---:|---:|")
        for blk in BLOCKS:
            made = [make(K, blk, t) for K in mods]
            fns = [m[0] for m in made]
            for fn in fns:
                fn()
            diff = float(np.max(np.abs(made[0][1] - made[1][1])))
            reps = max(3, int(0.002 / batch(fns[0], 3)))
            best = [float("inf")] * 2
            for _ in range(a.rounds):
                for i, fn in enumerate(fns):
                    fn()
                    best[i] = min(best[i], batch(fn, reps))
            print(f"| {blk[0]} | {best[0] * 1e3:.4f} | {best[1] * 1e3:.4f} | {best[1] / best[0]:.3f} | {diff:.1e} |",
                  flush=True)
    print(f"# load {os.getloadavg()}")


if __name__ == "__main__":
    main()
