"""CPU time of the Winograd filter transform + packing (not a test).

    python benchmarks/winograd_filter.py [--isa scalar avx2 avx512] [--reps 5]

For ResNet-50's and SqueezeNet's 3x3 shapes, ns per weight (K*C*9) of
winograd_pack (the NCHW layout; in every tree) and, where the tree has it,
winograd_pack_nchwc (the blocked layout the engine uses), best of --reps in
process CPU time, at each ISA asked for. Run it with PYTHONPATH at a tree
(e.g. /work/main) for the before numbers.
"""
import argparse
import time

import numpy as np

import cnnengine as ce
from cnnengine import _kernels as _k

SHAPES = [(64, 64), (128, 128), (256, 256), (512, 512), (16, 16), (64, 32)]  # (K, C)


def best(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    return min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--isa", nargs="+", default=[ce.detected_isa()])
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| K x C | isa | pack ns/weight | pack_nchwc ns/weight |")
    print("|---|---|---:|---:|")
    for k, c in SHAPES:
        w = rng.standard_normal(k * c * 9).astype(np.float32)
        dims = (1, c, 14, 14, k, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 14, 14)
        for isa in a.isa:
            ce.set_isa(isa)
            reps = max(1, a.reps if k * c <= 65536 else a.reps // 2)
            flat = best(lambda: _k.winograd_pack(w, dims), reps) / w.size * 1e9
            nchwc = "-"
            if hasattr(_k, "winograd_pack_nchwc"):
                nchwc = f"{best(lambda: _k.winograd_pack_nchwc(w, dims), reps) / w.size * 1e9:.2f}"
            print(f"| {k} x {c} | {isa} | {flat:.2f} | {nchwc} |", flush=True)


if __name__ == "__main__":
    main()
