"""bench_dw_ab.py's depthwise shapes, two builds of the kernels in ONE process (not a test).

    python benchmarks/bench_dw_inproc.py BEFORE_TREE AFTER_TREE [--threads 1 2] [--rounds 9]
                                        [--filter STR]

Each tree's cnnengine/_kernels*.so is loaded as a module of its own (its C
symbols stay local to it), each shape packed in both, and the two alternate
batch by batch (~2 ms of calls each), --rounds times: the machine's load and
clock fall on both alike. Printed: each build's best batch (per-call ms)
and the ratio after/before. Best, not median: on this shared 2-core box a
batch that loses a time slice is load, not kernel.
"""
import argparse
import glob
import importlib.util
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_dw_ab import SHAPES, make  # noqa: E402


def load(tree, tag):
    import cnnengine  # noqa: F401  (the modules import cnnengine.errors)
    so = glob.glob(os.path.join(tree, "cnnengine", "_kernels*.so"))[0]
    spec = importlib.util.spec_from_file_location("_kernels", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def batch(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--filter", default="")
    a = ap.parse_args()
    mods = [load(a.before, "before"), load(a.after, "after")]
    print(f"# load {os.getloadavg()}")
    for t in a.threads:
        print(f"\n{t} thread(s), best of {a.rounds} alternating batches, ms per call")
        print("| layer | before | after | after/before |\n|---|---:|---:|---:|")
        tot = np.zeros(2)
        for sh in SHAPES:
            if a.filter not in sh[0]:
                continue
            fns = [make(sh, t, K) for K in mods]
            for fn in fns:
                for _ in range(3):
                    fn()
            reps = max(3, int(0.002 / batch(fns[0], 3)))
            best = [float("inf")] * 2
            for _ in range(a.rounds):
                for i, fn in enumerate(fns):
                    fn()
                    best[i] = min(best[i], batch(fn, reps))
            tot += best
            print(f"| {sh[0]} | {best[0] * 1e3:.4f} | {best[1] * 1e3:.4f} | {best[1] / best[0]:.3f} |",
                  flush=True)
        print(f"| sum | {tot[0] * 1e3:.3f} | {tot[1] * 1e3:.3f} | {tot[1] / tot[0]:.3f} |")
    print(f"# load {os.getloadavg()}")


if __name__ == "__main__":
    main()
