"""Blocked 3x3/s1 convs: direct vs Winograd F(4x4,3x3) vs F(2x2,3x3) (not a test).

    python benchmarks/bench_wino_blocked.py [--threads 1 2] [--rounds R]
                                            [--shapes CIN,COUT,HW ...]

Each shape packed three ways (ConvNCHWc winograd=False, True, "f2x3") and
run round-robin, one call of each per round, so the three see the same load
and each finds the others' weights in the caches, as a layer of a model
does (`--cold MB`: each call finds its filters evicted, as in a model whose
weights outgrow the caches). Prints the median ms over the rounds, the ratio of each Winograd to
direct, and what the packer picks (`auto`). CNNENGINE_ISA=avx2 measures the
AVX2 kernels.
"""
import argparse
import statistics
import time

import numpy as np

from cnnengine import _kernels as K

SHAPES = [(512, 512, 7), (1024, 1024, 7), (256, 256, 7), (448, 384, 8), (512, 512, 14),
          (256, 256, 14), (128, 32, 7), (128, 32, 14)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--shapes", nargs="*", default=None)
    ap.add_argument("--cold", type=int, default=0, metavar="MB",
                    help="before each timed call read MB of other memory, then the input "
                         "again: filters arrive cold and the input hot, as in a model")
    args = ap.parse_args()
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split(",")) for s in args.shapes]
    rng = np.random.default_rng(0)
    n = args.batch
    junk = np.ones(args.cold << 18, np.float32)
    print(f"{'shape':>18s} {'thr':>3s} {'direct':>8s} {'f4x3':>8s} {'f2x3':>8s} "
          f"{'f4/dir':>7s} {'f2/dir':>7s} {'auto':>14s}")
    for cin, cout, hw in shapes:
        dims = (n, cin, hw, hw, cout, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, hw, hw)
        w = (rng.standard_normal(cout * cin * 9) / np.sqrt(9 * cin)).astype(np.float32)
        x = rng.standard_normal(n * ((cin + 7) // 8) * 8 * hw * hw).astype(np.float32)
        y = np.empty(n * ((cout + 7) // 8) * 8 * hw * hw, np.float32)
        pks = [K.ConvNCHWc(w, None, dims, 1, 0.0, 0.0, False, m) for m in (False, True, "f2x3")]
        auto = K.ConvNCHWc(w, None, dims, 1, 0.0, 0.0, False).algo
        for threads in args.threads:
            times = [[] for _ in pks]
            for pk in pks:
                pk.run(x, None, y, threads)
            for _ in range(args.rounds):
                for i, pk in enumerate(pks):
                    if args.cold:
                        junk.sum()
                        x.sum()
                    t0 = time.perf_counter()
                    pk.run(x, None, y, threads)
                    times[i].append(time.perf_counter() - t0)
            med = [statistics.median(t) * 1e3 for t in times]
            print(f"{f'{cin}->{cout} @{hw} n{n}':>18s} {threads:3d} {med[0]:8.3f} {med[1]:8.3f} "
                  f"{med[2]:8.3f} {med[1] / med[0]:7.2f} {med[2] / med[0]:7.2f} {auto:>14s}",
                  flush=True)


if __name__ == "__main__":
    main()
