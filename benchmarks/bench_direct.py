"""The blocked direct convolution against the machine's zmm (or ymm) FMA peak (not a test).

    python benchmarks/bench_direct.py [--threads 1 2] [--repeat R] [--tree PATH ...]
                                      [--shapes CIN,COUT,K,HW,S ...]

Big 3x3 convolutions forced onto the direct kernel (ConvNCHWc winograd=False):
the stride-1 shapes Winograd usually takes (VGG, ResNet), the stride-2 ones
and ResNet's late 512->512 @7 it leaves to direct, and AlexNet's 5x5.
GFLOP/s (2 flops per multiply-add, padding taps counted as the model counts
them) as a share of the FMA peak measured by the register-only loop of the
active ISA (csrc/x86/fma_peak.h). Best of R runs; one process per tree with
--tree, interleaved shape by shape, so two builds compare on the same load.
"""
import argparse
import os
import sys
import time

import numpy as np

import tree_workers

# (cin, cout, kernel, input size, stride)
SHAPES = [(64, 64, 3, 56, 1), (128, 128, 3, 28, 1), (256, 256, 3, 14, 1), (512, 512, 3, 7, 1),
          (128, 128, 3, 56, 2), (256, 256, 3, 28, 2), (512, 512, 3, 14, 2), (64, 128, 3, 56, 2),
          (64, 192, 5, 27, 1)]


def one(threads, repeat, shape):
    from cnnengine import _kernels as K
    cin, cout, k, hw, s = shape
    pad = k // 2
    o = (hw + 2 * pad - k) // s + 1
    rng = np.random.default_rng(0)
    dims = (1, cin, hw, hw, cout, k, k, s, s, 1, 1, pad, pad, pad, pad, 1, o, o)
    xb = rng.standard_normal(((cin + 7) // 8) * 8 * hw * hw).astype(np.float32)
    y = np.empty(((cout + 7) // 8) * 8 * o * o, np.float32)
    w = rng.standard_normal(cout * cin * k * k).astype(np.float32)
    pk = K.ConvNCHWc(w, None, dims, 0, 0.0, 0.0, False, False)
    pk.run(xb, None, y, threads)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        pk.run(xb, None, y, threads)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * cout * cin * k * k * o * o / best * 1e-9, best


def worker(threads, repeat):
    from cnnengine import _kernels as K
    print(f"peak {K.fma_peak_gflops(threads):.2f}", flush=True)
    for line in sys.stdin:
        shape = tuple(int(v) for v in line.split())
        g, t = one(threads, repeat, shape)
        print(f"{g:.2f} {t * 1e3:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--tree", nargs="+", default=[os.getcwd()])
    ap.add_argument("--shapes", nargs="+", metavar="CIN,COUT,K,HW,S",
                    help="convs to time instead of the default list")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads[0], args.repeat)
        return
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else SHAPES
    for threads in args.threads:
        procs, peaks = tree_workers.start(__file__, args.tree, threads, args.repeat)
        print(f"\n{threads} thread(s); FMA peak " + ", ".join(f"{v:.1f}" for v in peaks) + " GFLOP/s")
        print("| conv | " + " | ".join(f"{os.path.basename(t)} ms | GFLOP/s | % peak" for t in args.tree) + " |")
        print("|---|" + "---:|---:|---:|" * len(args.tree))
        for shape in shapes:
            cells = []
            for p, peak in zip(procs, peaks):
                p.stdin.write(" ".join(map(str, shape)) + "\n")
                p.stdin.flush()
                g, ms = (float(v) for v in p.stdout.readline().split())
                cells.append(f"{ms:.3f} | {g:.1f} | {100 * g / peak:.0f}%")
            cin, cout, k, hw, s = shape
            print(f"| {k}x{k}/s{s} {cin}->{cout} @{hw} | " + " | ".join(cells) + " |", flush=True)
        for p in procs:
            p.stdin.close()
            p.wait()


if __name__ == "__main__":
    main()
