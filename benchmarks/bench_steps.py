"""Each step of a model alone, hot, at several thread counts and builds: which steps scale badly?

    python benchmarks/bench_steps.py MODEL [--trees A B ...] [--threads 1 2] [--rounds 9]
                                     [--inner 10] [--match TEXT] [--top 40] [--best]

One worker process per source tree (kernels built in place) loads MODEL
(a name in benchmarks/.cache or an .onnx path) once per thread count, runs
it once keeping every step's inputs, then the parent asks the workers for
one step at a time, alternating trees and thread counts rep by rep, each
rep `--inner` calls of that step's runner (the same runner and buffers as
in the model; its weights and inputs hot). Prints each step's median (or,
with --best, fastest) time per call in us, the steps that lose most at the
last thread count first, and each tree's scaling. CNNENGINE_LOAD_AWARE=0:
the thread counts asked for run whatever the load (2-thread times under
load from other processes are unreliable: use --best and say so).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

WORKER = r'''
import sys, time, json, numpy as np
import cnnengine as ce
path, threads = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
caps = {}
for t in threads:
    m = ce.load(path, threads=t)
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in m.inputs[0].shape]
    feeds = m._feeds(np.random.default_rng(0).random(shape, dtype=np.float32))
    plan = m._exec.plan_for(feeds)
    be = plan.backend
    env = dict(plan.run_static)
    env.update((k, be.to_device(v)) for k, v in feeds.items())
    steps = []
    for st in plan.steps:
        if st.runner is None:
            break
        ins = [env[i] if i else None for i in st.node.inputs]
        v = st.runner(ins, None, t)
        env.update(zip(st.node.outputs, v) if type(v) is tuple else [(st.node.outputs[0], v)])
        steps.append((st.node.name, st.node.op, st.runner, ins))
    caps[t] = steps
print(json.dumps([s[:2] for s in caps[threads[0]]]), flush=True)
for line in sys.stdin:
    k, t, n = map(int, line.split())
    _, _, run, ins = caps[t][k]
    run(ins, None, t)
    t0 = time.perf_counter()
    for _ in range(n):
        run(ins, None, t)
    print((time.perf_counter() - t0) / n, flush=True)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--trees", nargs="+", default=[os.getcwd()])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--inner", type=int, default=10)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--match", help="only steps whose name or op contains this")
    ap.add_argument("--best", action="store_true", help="fastest rep instead of the median")
    a = ap.parse_args()
    path = a.model if a.model.endswith(".onnx") else os.path.join(HERE, ".cache", a.model + ".onnx")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, path, ",".join(map(str, a.threads))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree,
                              env=dict(os.environ, PYTHONPATH=os.path.abspath(tree),
                                       CNNENGINE_LOAD_AWARE="0", OPENBLAS_NUM_THREADS="1"))
             for tree in a.trees]
    names = [json.loads(p.stdout.readline()) for p in procs][0]

    def ask(p, k, t):
        p.stdin.write(f"{k} {t} {a.inner}\n")
        p.stdin.flush()
        return float(p.stdout.readline())

    steps = [k for k, (n, op) in enumerate(names) if not a.match or a.match in n or a.match in op]
    cells = [(i, t) for i in range(len(procs)) for t in a.threads]
    pick = min if a.best else statistics.median
    res = {}
    for k in steps:
        ts = {c: [] for c in cells}
        for r in range(a.rounds):
            for c in (cells if r % 2 == 0 else cells[::-1]):
                ts[c].append(ask(procs[c[0]], k, c[1]))
        res[k] = {c: pick(v) * 1e6 for c, v in ts.items()}
    for p in procs:
        p.stdin.close()
        p.wait()
    with open("/proc/loadavg") as f:
        print("load average", f.read().split()[0])

    def row(name, op, d):
        sc = " ".join(f"{d[(i, a.threads[0])] / d[(i, a.threads[-1])]:.2f}" for i in range(len(procs)))
        return f"{name[-48:]:48s} {op[:14]:14s} " + " ".join(f"{d[c]:8.1f}" for c in cells) + f"  {sc}"
    print(f"{'step':48s} {'op':14s} " + " ".join(f"{'T%d/%dt' % c:>8s}" for c in cells) + "  scaling")
    print(row("TOTAL", "", {c: sum(res[k][c] for k in steps) for c in cells}))
    lo, hi = (0, a.threads[0]), (0, a.threads[-1])
    scale = a.threads[-1] / a.threads[0] * 0.95
    for k in sorted(steps, key=lambda k: res[k][lo] / scale - res[k][hi])[:a.top]:
        print(row(*names[k], res[k]))


if __name__ == "__main__":
    main()
