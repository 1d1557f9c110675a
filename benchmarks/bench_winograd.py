"""Winograd F(4x4,3x3) vs the direct conv path (im2col + packed GEMM); not a test.

    python benchmarks/bench_winograd.py [--repeat R] [--rounds N] [--batch B]

For ResNet-style 3x3/s1/p1 convolutions prints, at 1 and 2 threads, the
median time (ms) of the direct path (cnnengine.functional.conv2d) and of
Winograd (filters packed once, outside the timing), the speed-up, and the
"effective GFLOP/s" (direct-conv flops 2*K*C*9*OH*OW / time) next to the
machine's FMA peak (cnnengine._kernels.fma_peak_gflops). Each time is the
median over --rounds rounds of the best of --repeat calls (the box is shared).
"""
import argparse
import statistics
import time

import numpy as np

from cnnengine import _kernels as _k
from cnnengine.functional import conv2d

CASES = [(64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7)]


def timed(fn, repeat, rounds):
    fn()
    meds = []
    for _ in range(rounds):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        meds.append(best)
    return statistics.median(meds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cases", default="")
    args = ap.parse_args()
    cases = CASES
    if args.cases:
        cases = [tuple(int(v) for v in c.split(",")) for c in args.cases.split(";")]
    rng = np.random.default_rng(0)
    n = args.batch
    print(f"{'conv3x3 s1 p1':24s} {'thr':>3s} {'direct ms':>10s} {'wino ms':>9s} {'speedup':>8s}"
          f" {'direct GF/s':>11s} {'wino eff GF/s':>13s} {'peak':>6s} {'eligible':>8s}")
    for threads in (1, 2):
        peak = _k.fma_peak_gflops(threads)
        for cin, cout, hw in cases:
            x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
            w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
            b = rng.standard_normal(cout).astype(np.float32)
            dims = (n, cin, hw, hw, cout, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, hw, hw)
            packed = _k.winograd_pack(w.ravel(), dims)
            y = np.empty((n, cout, hw, hw), np.float32)
            flops = 2.0 * n * cout * cin * 9 * hw * hw
            td = timed(lambda: conv2d(x, w, b, padding=1, activation="relu", threads=threads),
                       args.repeat, args.rounds)
            tw = timed(lambda: _k.winograd_conv2d(x.ravel(), packed, b, None, y.ravel(), dims,
                                                  1, 0.0, 0.0, threads),
                       args.repeat, args.rounds)
            name = f"{cin}->{cout} @{hw}x{hw} n{n}"
            print(f"{name:24s} {threads:3d} {td * 1e3:10.3f} {tw * 1e3:9.3f} {td / tw:8.2f}"
                  f" {flops / td / 1e9:11.1f} {flops / tw / 1e9:13.1f} {peak:6.1f}"
                  f" {str(_k.winograd_eligible(dims)):>8s}")


if __name__ == "__main__":
    main()
