"""What a first run costs (not a test).

    python benchmarks/first_run.py [--models efficientnet_lite0 resnet50 ...] [--rounds 5] [--threads 1 [2]]
                                   [--cli 3] [--fresh N] [--no-prepare]

1. For each model, in one process, `--rounds` rounds alternating the two
   ways a plan is made at a new input shape: from inferred shapes
   (runtime/shape_walk.py, the default) and by the reference walk
   (CNNENGINE_PLAN=reference, the behaviour before it). Each round loads
   the model afresh (prepare=False: the first run makes the plan), times
   its first run (plan, packing, compiling, the run) and 7 steady runs;
   printed: medians of first, steady and first/steady.
2. `--fresh N`: for each model and each of `--threads`, N fresh processes
   (interleaved over the models), each of which imports cnnengine, loads
   the model (timed: load), times its first run at the declared shape,
   7 steady runs, then the first run at a new shape (batch 2) and 7 steady
   runs there; printed: medians of load, first, steady and first/steady
   (the first run here also pays first imports of the kernel modules and
   first-touch page faults, which an in-process round does not). Since
   ce.load prepares the plan for the declared shape, that work is in
   load, so the table also gives load + first; `--no-prepare` loads with
   prepare=False (the first run makes the plan, as before).
3. `cnnengine run` on the bundled photo with the default model, `--cli`
   times in fresh processes: wall seconds and the CPU seconds (user + sys)
   of the process, which a loaded machine inflates less than the wall
   time; and `python -X importtime -c "import cnnengine"`'s total.

Benchmark names are ONNX exports in benchmarks/.cache (see models.py) or
zoo names.
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _source(name):
    path = os.path.join(HERE, ".cache", f"{name}.onnx")
    return path if os.path.exists(path) else name


def _load(ce, name, threads):
    kw = {"prepare": False} if os.environ.get("FIRST_RUN_NO_PREPARE") else {}
    return ce.load(_source(name), threads=threads, **kw)


def first_and_steady(name, threads, mode):
    import cnnengine as ce
    if mode == "reference":
        os.environ["CNNENGINE_PLAN"] = "reference"
    else:
        os.environ.pop("CNNENGINE_PLAN", None)
    m = ce.load(_source(name), threads=threads, prepare=False)
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in m.inputs[0].shape]
    shape[0] = 1
    if len(shape) == 4 and shape[2] <= 1:
        shape[2:] = [299, 299] if "inception" in name else [224, 224]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t0 = time.perf_counter()
    m.run(x)
    first = time.perf_counter() - t0
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        m.run(x)
        ts.append(time.perf_counter() - t0)
    return first, statistics.median(ts)


def _input(m, name, batch=1):
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in m.inputs[0].shape]
    shape[0] = batch
    if len(shape) == 4 and shape[2] <= 1:
        shape[2:] = [299, 299] if "inception" in name else [224, 224]
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def child(name, threads):
    """One fresh process: load, first and steady runs at the declared shape, then at batch 2."""
    t0 = time.perf_counter()
    import cnnengine as ce
    t1 = time.perf_counter()
    m = _load(ce, name, threads)
    t2 = time.perf_counter()
    out = {"import": t1 - t0, "load": t2 - t1}
    for key, batch in (("", 1), ("new_", 2)):
        x = _input(m, name, batch)
        t0 = time.perf_counter()
        m.run(x)
        out[key + "first"] = time.perf_counter() - t0
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            m.run(x)
            ts.append(time.perf_counter() - t0)
        out[key + "steady"] = statistics.median(ts)
    print(json.dumps(out))


def fresh(models, threads_list, n):
    rows = {}
    for _ in range(n):
        for threads in threads_list:
            for name in models:
                p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, str(threads)],
                                   capture_output=True, text=True)
                line = [l for l in p.stdout.splitlines() if l.startswith("{")]
                if p.returncode or not line:
                    print(f"# {name}: {p.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                rows.setdefault((name, threads), []).append(json.loads(line[-1]))
    print(f"\n{n} fresh processes per model and thread count, medians:\n")
    print("| model | threads | import ms | load ms | first ms | load + first ms | steady ms | first / steady "
          "| first at batch 2 ms | steady ms | first / steady |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, threads), v in rows.items():
        med = {k: statistics.median(r[k] for r in v) for k in v[0]}
        ratio = statistics.median(r["first"] / r["steady"] for r in v)
        ratio2 = statistics.median(r["new_first"] / r["new_steady"] for r in v)
        both = statistics.median(r["load"] + r["first"] for r in v)
        print(f"| {name} | {threads} | {med['import'] * 1e3:.0f} | {med['load'] * 1e3:.1f} | "
              f"{med['first'] * 1e3:.1f} | {both * 1e3:.1f} | {med['steady'] * 1e3:.2f} | {ratio:.2f} | "
              f"{med['new_first'] * 1e3:.1f} | {med['new_steady'] * 1e3:.2f} | {ratio2:.2f} |", flush=True)


def cli_times(n):
    out = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cnnengine", "run", "--top", "1"], check=True,
                       capture_output=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cnnengine"], capture_output=True,
                       text=True, check=True)
    total = [int(m.group(1)) for m in re.finditer(r"\|\s*(\d+) \| cnnengine$", p.stderr, re.M)]
    return out, (total[-1] / 1e6 if total else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["efficientnet_lite0", "mobilenet_v2", "resnet50"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--cli", type=int, default=3, help="cnnengine run timings (0: none)")
    ap.add_argument("--fresh", type=int, default=0, help="fresh processes per model and thread count "
                    "(then no in-process rounds)")
    ap.add_argument("--no-prepare", action="store_true", help="load with prepare=False (the first run plans)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.no_prepare:
        os.environ["FIRST_RUN_NO_PREPARE"] = "1"    # read by the --child processes too
    if args.child:
        return child(args.child[0], int(args.child[1]))
    load = os.getloadavg()[0]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} thread(s), "
          f"load average {load:.2f}, {args.rounds} interleaved rounds\n")
    if args.fresh:
        fresh(args.models, args.threads, args.fresh)
        print(f"# load average after: {os.getloadavg()[0]:.2f}")
        return
    args.threads = args.threads[0]
    print("| model | plan made | first run ms | steady ms | first / steady |")
    print("|---|---|---:|---:|---:|")
    for name in args.models:
        res = {"shapes": [], "reference": []}
        for r in range(args.rounds):
            for mode in (("shapes", "reference") if r % 2 == 0 else ("reference", "shapes")):
                res[mode].append(first_and_steady(name, args.threads, mode))
        for mode, v in res.items():
            f = statistics.median(a for a, _ in v)
            s = statistics.median(b for _, b in v)
            ratio = statistics.median(a / b for a, b in v)
            print(f"| {name} | {'from shapes' if mode == 'shapes' else 'reference walk'} | {f * 1e3:.1f} | "
                  f"{s * 1e3:.2f} | {ratio:.2f} |", flush=True)
    os.environ.pop("CNNENGINE_PLAN", None)
    if args.cli:
        runs, imp = cli_times(args.cli)
        print(f"\n`cnnengine run` (default model, bundled photo), {args.cli} fresh processes: wall "
              f"{statistics.median(w for w, _ in runs):.2f} s (min {min(w for w, _ in runs):.2f}), CPU "
              f"{statistics.median(c for _, c in runs):.2f} s (min {min(c for _, c in runs):.2f}); "
              f"`import cnnengine` {imp:.2f} s (-X importtime)")


if __name__ == "__main__":
    main()
