"""GEMM / conv throughput against the machine's measured FMA peak (not a test).

    python benchmarks/bench_gemm.py [--repeat R]

Prints GFLOP/s (2 flops per multiply-add) of cnn_gemm_f32 for M=N=K=512 and
of 3x3 convolutions (packed GEMM with im2col fused into the packing) at 1
and 2 threads, as a fraction of the FMA peak measured by a register-only
FMA loop of the active ISA (csrc/x86/fma_peak.h). Best of R runs.
"""
import argparse
import time

import numpy as np

import cnnengine as ce
from cnnengine import _kernels as _k
from cnnengine.functional import conv2d, linear


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"cpu: {ce.cpu_info()}")
    cases = []
    m = n = k = 512
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    cases.append(("gemm 512x512x512", 2.0 * m * n * k,
                  lambda t: _k.gemm(0, 0, m, n, k, 1.0, a.ravel(), k, b.ravel(), n, 0.0,
                                    c.ravel(), n, t)))
    for cin, cout, hw in [(256, 256, 14), (64, 64, 56), (128, 128, 28)]:
        x = rng.standard_normal((1, cin, hw, hw)).astype(np.float32)
        w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
        flops = 2.0 * cout * cin * 9 * hw * hw
        cases.append((f"conv3x3 {cin}->{cout} @{hw}x{hw}", flops,
                      lambda t, x=x, w=w: conv2d(x, w, padding=1, threads=t)))
    x = rng.standard_normal((1, 256, 56, 56)).astype(np.float32)
    w = rng.standard_normal((64, 256, 1, 1)).astype(np.float32)
    cases.append(("conv1x1 256->64 @56x56", 2.0 * 64 * 256 * 56 * 56,
                  lambda t: conv2d(x, w, threads=t)))
    xd = rng.standard_normal((1, 144, 56, 56)).astype(np.float32)
    wd = rng.standard_normal((144, 1, 3, 3)).astype(np.float32)
    cases.append(("depthwise3x3 144 @56x56 s1", 2.0 * 144 * 9 * 56 * 56,
                  lambda t: conv2d(xd, wd, padding=1, groups=144, threads=t)))
    cases.append(("depthwise3x3 144 @56x56 s2", 2.0 * 144 * 9 * 28 * 28,
                  lambda t: conv2d(xd, wd, stride=2, padding=1, groups=144, threads=t)))
    # prepacked weights (what the engine runs): late small-spatial layers,
    # where per-call weight packing used to rival the compute
    for cin, cout, kk, hw, stride in [(512, 512, 3, 7, 1), (960, 160, 1, 7, 1),
                                      (2048, 512, 1, 7, 1), (3, 64, 7, 224, 2)]:
        pad = kk // 2
        o = (hw + 2 * pad - kk) // stride + 1
        dims = (1, cin, hw, hw, cout, kk, kk, stride, stride, 1, 1, pad, pad, pad, pad, 1, o, o)
        xp = rng.standard_normal(cin * hw * hw).astype(np.float32)
        pk = _k.PackedConv2d(rng.standard_normal(cout * cin * kk * kk).astype(np.float32), dims)
        yp = np.empty(cout * o * o, np.float32)
        cases.append((f"packed {kk}x{kk}/s{stride} {cin}->{cout} @{hw}", 2.0 * cout * cin * kk * kk * o * o,
                      lambda t, pk=pk, xp=xp, yp=yp: pk.run(xp, None, None, yp, t)))
    xl = rng.standard_normal((1, 2048)).astype(np.float32)
    wl = rng.standard_normal((1000, 2048)).astype(np.float32)
    cases.append(("linear 2048->1000 batch 1", 2.0 * 2048 * 1000,
                  lambda t: linear(xl, wl, threads=t)))
    for threads in (1, 2):
        peak = _k.fma_peak_gflops(threads)
        print(f"\nthreads={threads}: FMA peak {peak:.1f} GFLOP/s")
        for name, flops, fn in cases:
            sec = best(lambda: fn(threads), args.repeat)
            g = flops / sec * 1e-9
            print(f"  {name:30s} {sec * 1e3:8.3f} ms  {g:7.1f} GFLOP/s  {100 * g / peak:5.1f}% of peak")


if __name__ == "__main__":
    main()
