"""Every 1x1 convolution of the benchmark families, alone, against the FMA peak (not a test).

    python benchmarks/bench_pointwise.py [--models M ...] [--threads 1 2] [--repeat R] [--rounds N]
                                         [--shapes-out F.json] [--shapes-in F.json]
                                         [--tree PATH ...] [--top N]

Step 1 (skipped with --shapes-in): each model of benchmarks/models.py (the
ONNX files in benchmarks/.cache) is loaded in its own process and profiled
(Model.profile, the per-step times `cnnengine bench --layers` prints) at
each thread count; every blocked 1x1 conv step (cnn.ConvNCHWc, kh = kw = 1,
one group) is keyed by (C, K, H, W, stride, activation, residual) and gets
its share of the model's time. A shape's share is the mean over the models
of its steps' shares (each family counts alike, as in the geometric mean
over families).

Step 2: each distinct shape is packed and run alone (hot weights and input,
best of R) at each thread count, as GFLOP/s and % of the FMA peak measured
in the same process (csrc/x86/fma_peak*: K.fma_peak_gflops). The in-model
time of the same steps is shown beside it (cold caches, as the model sees
them). Rows sorted by share x (1 - alone % of peak): the shapes that cost
the families most come first. With several --tree, one worker per tree,
interleaved shape by shape, N rounds each (the first tree's share and
in-model columns). Under load the in-model column and 2-thread times are
unreliable (a preempted step counts whole time slices): compare trees on
the alone columns, best of rounds. Under sustained load the engine runs one
thread whatever --threads says (csrc/core/threads.c); CNNENGINE_LOAD_AWARE=0
times the threads asked for.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from models import CACHE, MODELS  # noqa: E402
import tree_workers  # noqa: E402

COLLECT = r"""
import json, sys
import numpy as np
import cnnengine as ce
from cnnengine import bench
from cnnengine.ops import params_of
from cnnengine.backend.cpu.kernels import _act_code
path, threads = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
out = {}
for t in threads:
    m = ce.load(path, threads=t)
    x = bench.input_for(m, 1)
    prof = m.profile(x, runs=7)
    total = sum(s for _, _, s in prof)
    times = {n: s for n, _, s in prof}
    plan = m._exec.plan_for(m._feeds(x))
    steps = []
    for st in plan.steps:
        dims = getattr(st.runner, "dims", None)
        if st.node.op != "cnn.ConvNCHWc" or dims is None or st.node.name not in times:
            continue
        if dims[5] != 1 or dims[6] != 1 or dims[15] != 1:
            continue
        act, a, b = _act_code(params_of(st.node).conv)
        res = len(st.node.inputs) > 3 and bool(st.node.inputs[3])
        steps.append({"dims": list(dims), "act": [act, a, b], "res": res,
                      "ms": times[st.node.name] * 1e3, "share": times[st.node.name] / total})
    out[t] = {"total_ms": total * 1e3, "steps": steps}
print(json.dumps(out))
"""


def collect(models, threads):
    """{threads: {key: {...}}}: the distinct 1x1 shapes with their shares."""
    per = {t: {} for t in threads}
    for name in models:
        path = os.path.join(CACHE, f"{name}.onnx")
        if not os.path.exists(path):
            print(f"# {name}: no {path}, skipped", file=sys.stderr)
            continue
        r = subprocess.run([sys.executable, "-c", COLLECT, path, ",".join(map(str, threads))],
                           capture_output=True, text=True, check=True)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        for t in threads:
            m = res[str(t)]
            nsteps = len(m["steps"])
            share = sum(s["share"] for s in m["steps"])
            print(f"# {name} {t}T: {m['total_ms']:.1f} ms, {nsteps} 1x1 steps, {100 * share:.0f}% of the time",
                  file=sys.stderr, flush=True)
            for s in m["steps"]:
                d = s["dims"]
                key = json.dumps([d[1], d[4], d[2], d[3], d[7], d[11:15], s["act"], s["res"]])
                e = per[t].setdefault(key, {"dims": d, "act": s["act"], "res": s["res"], "share": 0.0,
                                            "ms": 0.0, "count": 0, "models": []})
                e["share"] += s["share"] / len(models)
                e["ms"] += s["ms"]
                e["count"] += 1
                if name not in e["models"]:
                    e["models"].append(name)
    return per


def one(shape, threads, repeat):
    from cnnengine import _kernels as K
    d = tuple(shape["dims"])
    c, k, oh, ow = d[1], d[4], d[16], d[17]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(((c + 7) // 8) * 8 * d[2] * d[3]).astype(np.float32)
    y = np.empty(((k + 7) // 8) * 8 * oh * ow, np.float32)
    res = rng.standard_normal(y.size).astype(np.float32) if shape["res"] else None
    w = (rng.standard_normal(k * c) / np.sqrt(c)).astype(np.float32)
    act, a, b = shape["act"]
    pk = K.ConvNCHWc(w, None, d, act, a, b, False, False)
    pk.run(x, res, y, threads)
    best = float("inf")
    reps = max(3, min(repeat, int(0.2 / max(1e-6, _time(pk, x, res, y, threads)))))
    for _ in range(reps):
        best = min(best, _time(pk, x, res, y, threads))
    return 2.0 * k * c * oh * ow / best * 1e-9, best


def _time(pk, x, res, y, threads):
    t0 = time.perf_counter()
    pk.run(x, res, y, threads)
    return time.perf_counter() - t0


def worker(threads, repeat):
    from cnnengine import _kernels as K
    print(f"peak {K.fma_peak_gflops(threads):.2f}", flush=True)
    for line in sys.stdin:
        g, t = one(json.loads(line), threads, repeat)
        print(f"{g:.3f} {t * 1e3:.5f}", flush=True)


ACTS = {0: "", 1: "relu", 2: "clip", 3: "leaky", 5: "sigmoid", 7: "silu", 8: "hswish",
        9: "hsigmoid", 10: "gelu", 11: "gelu_tanh"}


def label(e):
    d = e["dims"]
    tags = [f"s{d[7]}" if d[7] != 1 else "", ACTS.get(e["act"][0], f"act{e['act'][0]}"),
            "+res" if e["res"] else "", f"pad{d[11]}" if any(d[11:15]) else ""]
    return f"{d[1]}->{d[4]} @{d[2]}x{d[3]} " + " ".join(t for t in tags if t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the trees per shape")
    ap.add_argument("--tree", nargs="+", default=[os.getcwd()])
    ap.add_argument("--shapes-out", help="save the collected shapes (JSON)")
    ap.add_argument("--shapes-in", help="the shapes saved by --shapes-out: no profiling")
    ap.add_argument("--top", type=int, default=0, help="print only the N worst-paying shapes")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads[0], args.repeat)
        return
    if args.shapes_in:
        with open(args.shapes_in) as f:
            per = {int(t): v for t, v in json.load(f).items()}
    else:
        per = collect(args.models, args.threads)
        if args.shapes_out:
            with open(args.shapes_out, "w") as f:
                json.dump(per, f)
    for threads in args.threads:
        shapes = list(per[threads].values())
        procs, peaks = tree_workers.start(__file__, args.tree, threads, args.repeat)
        rows = []
        for e in shapes:
            # rounds alternate the trees; each tree's best round counts
            cells = [(0.0, float("inf"))] * len(procs)
            for _ in range(args.rounds):
                for i, p in enumerate(procs):
                    p.stdin.write(json.dumps(e) + "\n")
                    p.stdin.flush()
                    g, ms = (float(v) for v in p.stdout.readline().split())
                    if ms < cells[i][1]:
                        cells[i] = (g, ms)
            rows.append((e, cells))
        for p in procs:
            p.stdin.close()
            p.wait()
        rows.sort(key=lambda r: -r[0]["share"] * (1 - r[1][0][0] / peaks[0]))
        if args.top:
            rows = rows[:args.top]
        covered = sum(e["share"] for e in shapes)
        print(f"\n{threads} thread(s); FMA peak " + ", ".join(f"{v:.1f}" for v in peaks) +
              f" GFLOP/s; {len(shapes)} shapes, {100 * covered:.1f}% of the mean model time")
        names = [os.path.basename(t.rstrip("/")) for t in args.tree]
        print("| 1x1 conv | steps | share % | in-model % peak | " +
              " | ".join(f"{n} ms | % peak" for n in names) + " | share x lost % | models |")
        print("|---|---:|---:|---:|" + "---:|---:|" * len(names) + "---:|---|")
        for e, cells in rows:
            d = e["dims"]
            flops = 2.0 * d[1] * d[4] * d[16] * d[17]
            inm = flops * e["count"] / (e["ms"] * 1e-3) * 1e-9 / peaks[0]
            txt = " | ".join(f"{ms:.4f} | {100 * g / pk:.0f}" for (g, ms), pk in zip(cells, peaks))
            lost = e["share"] * (1 - cells[0][0] / peaks[0])
            ms_ = ", ".join(e["models"][:3]) + (" ..." if len(e["models"]) > 3 else "")
            print(f"| {label(e)} | {e['count']} | {100 * e['share']:.2f} | {100 * inm:.0f} | {txt} | "
                  f"{100 * lost:.2f} | {ms_} |", flush=True)


if __name__ == "__main__":
    main()
