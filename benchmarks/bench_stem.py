"""Stem convolutions (ConvNCHWc reading the NCHW image, C = 3) per tree (not a test).

    python benchmarks/bench_stem.py [--threads 1 2] [--repeat R] [--tree PATH ...]

The first convolutions of the mobile families (3x3 s2 -> 16/32 with their
fused activation), ResNet's 7x7 s2 -> 64 and ConvNeXt's 4x4 s4 -> 96, on a
224x224 image: median of R runs, one worker process per tree, interleaved
shape by shape and rep block by rep block, so two builds compare on one load.
--cold: 32 MB written between runs, so that the input and output come from
memory, as in a network (the stem's 1.6 MB output is written once per run).
"""
import argparse
import os
import sys
import time

import numpy as np

import tree_workers

# name, cout, kernel, stride, pad, act (cnn_act), alpha, beta
SHAPES = [("mobilenet_v2 3x3s2 ->32 clip", 32, 3, 2, 1, 2, 0.0, 6.0),
          ("mobilenet_v3 3x3s2 ->16 hswish", 16, 3, 2, 1, 8, 0.0, 0.0),
          ("regnet 3x3s2 ->32 relu", 32, 3, 2, 1, 1, 0.0, 0.0),
          ("efficientnet 3x3s2 ->32 silu", 32, 3, 2, 1, 7, 0.0, 0.0),
          ("resnet 7x7s2 ->64 relu", 64, 7, 2, 3, 1, 0.0, 0.0),
          ("convnext 4x4s4 ->96", 96, 4, 4, 0, 0, 0.0, 0.0)]


def make(shape, hw=224):
    from cnnengine import _kernels as K
    _, cout, k, s, pad, act, alpha, beta = shape
    o = (hw + 2 * pad - k) // s + 1
    rng = np.random.default_rng(0)
    dims = (1, 3, hw, hw, cout, k, k, s, s, 1, 1, pad, pad, pad, pad, 1, o, o)
    x = rng.standard_normal(3 * hw * hw).astype(np.float32)
    y = np.empty(((cout + 7) // 8) * 8 * o * o, np.float32)
    w = rng.standard_normal(cout * 3 * k * k).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return K.ConvNCHWc(w, b, dims, act, alpha, beta, True), x, y


def worker(threads, repeat, cold):
    print("peak 0", flush=True)
    cache = {}
    junk = np.ones(8 << 20, np.float32)
    for line in sys.stdin:
        i = int(line)
        if i not in cache:
            cache[i] = make(SHAPES[i])
        pk, x, y = cache[i]
        for _ in range(3):
            pk.run(x, None, y, threads)
        ts = []
        for _ in range(repeat):
            if cold:
                junk += 1.0
            t0 = time.perf_counter()
            pk.run(x, None, y, threads)
            ts.append(time.perf_counter() - t0)
        print(f"{np.median(ts) * 1e3:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tree", nargs="+", default=[os.getcwd()])
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads[0], abs(args.repeat), args.repeat < 0)
        return
    if args.cold:
        args.repeat = -args.repeat     # the workers' flag (tree_workers passes --repeat)
    for threads in args.threads:
        procs, _ = tree_workers.start(__file__, args.tree, threads, args.repeat)
        print(f"\n{threads} thread(s), median of {args.rounds} rounds x {abs(args.repeat)} runs (ms)" + (", cold" if args.cold else ""))
        print("| stem | " + " | ".join(os.path.basename(t) for t in args.tree) + " |")
        print("|---|" + "---:|" * len(args.tree))
        for i, shape in enumerate(SHAPES):
            res = [[] for _ in procs]
            for _ in range(args.rounds):
                for j, p in enumerate(procs):
                    p.stdin.write(f"{i}\n")
                    p.stdin.flush()
                    res[j].append(float(p.stdout.readline()))
            print(f"| {shape[0]} | " + " | ".join(f"{np.median(r):.3f}" for r in res) + " |",
                  flush=True)
        for p in procs:
            p.stdin.close()
            p.wait()


if __name__ == "__main__":
    main()
