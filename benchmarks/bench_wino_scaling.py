"""Blocked 3x3/s1 convs at 1 and 2 threads, weights hot or cold, across source trees (not a test).

    python benchmarks/bench_wino_scaling.py [--trees A B ...] [--threads 1 2]
        [--algos auto f4x3 f2x3 direct] [--shapes CIN,COUT,HW[,N] ...]
        [--rounds 15] [--cold] [--best]

One worker process per source tree (kernels built in place) packs each
shape each way (ConvNCHWc winograd=None, True, "f2x3", False); the parent
asks for one call at a time, alternating trees, algorithms and thread
counts rep by rep (reversed every other round). --cold runs an in-place ReLU
over a 64 MiB buffer before each timed call and then over the input
(threaded as the conv, so its team spins as between a model's steps): the weights (and
the transformed filter U) come from memory as in a model, where the other
layers' weights evict them, while the input is hot as if just produced.
Prints median (or --best: fastest) ms per call, each tree's 2T/1T scaling
and the load average. CNNENGINE_LOAD_AWARE=0 is set for the workers, so 2
threads run whatever the load (unreliable when the load is above ~1.5).
"""
import argparse
import os
import statistics
import subprocess
import sys

SHAPES = ["64,64,56", "128,128,28", "256,256,14", "512,512,7"]

WORKER = r'''
import sys, time, numpy as np
from cnnengine import _kernels as K
shapes = [tuple(int(v) for v in s.split(",")) for s in sys.argv[1].split(";")]
algos = sys.argv[2].split(",")
flag = {"auto": None, "f4x3": True, "f2x3": "f2x3", "direct": False}
rng = np.random.default_rng(0)
cases = []
for s in shapes:
    cin, cout, hw = s[:3]
    n = s[3] if len(s) > 3 else 1
    dims = (n, cin, hw, hw, cout, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, hw, hw)
    w = (rng.standard_normal(cout * cin * 9) / np.sqrt(9 * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal(n * ((cin + 7) // 8) * 8 * hw * hw).astype(np.float32)
    y = np.empty(n * ((cout + 7) // 8) * 8 * hw * hw, np.float32)
    cases.append([(K.ConvNCHWc(w, b, dims, 1, 0.0, 0.0, False, flag[a]), x, y) for a in algos])
print(";".join(",".join(pk.algo for pk, _, _ in c) for c in cases), flush=True)
flush = np.ones(16 << 20, np.float32)
for line in sys.stdin:
    i, j, t, cold = map(int, line.split())
    pk, x, y = cases[i][j]
    pk.run(x, None, y, t)
    if cold:   # threaded, so that the team spins as between a model's steps
        K.activation(1, 0.0, 0.0, flush, flush, t)
        K.activation(1, 0.0, 0.0, x, x, t)
    t0 = time.perf_counter()
    pk.run(x, None, y, t)
    print(time.perf_counter() - t0, flush=True)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", nargs="+", default=[os.getcwd()])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--algos", nargs="+", default=["auto"])
    ap.add_argument("--shapes", nargs="+", default=SHAPES)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--best", action="store_true")
    a = ap.parse_args()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, ";".join(a.shapes), ",".join(a.algos)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree,
                              env=dict(os.environ, PYTHONPATH=os.path.abspath(tree),
                                       CNNENGINE_LOAD_AWARE="0", OPENBLAS_NUM_THREADS="1"))
             for tree in a.trees]
    picked = [p.stdout.readline().strip().split(";") for p in procs]

    def ask(p, i, j, t):
        p.stdin.write(f"{i} {j} {t} {int(a.cold)}\n")
        p.stdin.flush()
        return float(p.stdout.readline())

    pick = min if a.best else statistics.median
    cells = [(k, t) for k in range(len(procs)) for t in a.threads]
    what = ("best" if a.best else "median") + (", cold" if a.cold else ", hot")
    print(f"{'shape':>16s} {'algo':>6s} " + " ".join(f"{'T%d/%dt' % c:>8s}" for c in cells)
          + f"  scaling (ms, {what})")
    for i, s in enumerate(a.shapes):
        for j, al in enumerate(a.algos):
            ts = {c: [] for c in cells}
            for r in range(a.rounds):
                for c in (cells if r % 2 == 0 else cells[::-1]):
                    ts[c].append(ask(procs[c[0]], i, j, c[1]))
            d = {c: pick(v) * 1e3 for c, v in ts.items()}
            sc = " ".join(f"{d[(k, a.threads[0])] / d[(k, a.threads[-1])]:.2f}"
                          for k in range(len(procs)))
            got = "/".join(sorted({pk[i].split(",")[j].replace("winograd_", "") for pk in picked}))
            print(f"{s:>16s} {al:>6s} " + " ".join(f"{d[c]:8.3f}" for c in cells)
                  + f"  {sc}  {got}", flush=True)
    for p in procs:
        p.stdin.close()
        p.wait()
    with open("/proc/loadavg") as f:
        print("load average", f.read().split()[0])


if __name__ == "__main__":
    main()
