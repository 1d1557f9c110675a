"""What a first run costs (not a test).

    python benchmarks/first_run.py [--models efficientnet_lite0 resnet50 ...] [--rounds 5] [--threads 1]
                                   [--cli 3]

1. For each model, in one process, `--rounds` rounds alternating the two
   ways a plan is made at a new input shape: from inferred shapes
   (runtime/shape_walk.py, the default) and by the reference walk
   (CNNENGINE_PLAN=reference, the behaviour before it). Each round loads
   the model afresh, times its first run (plan, packing, compiling, the
   run) and 7 steady runs; printed: medians of first, steady and
   first/steady.
2. `cnnengine run` on the bundled photo with the default model, `--cli`
   times in fresh processes: wall seconds and the CPU seconds (user + sys)
   of the process, which a loaded machine inflates less than the wall
   time; and `python -X importtime -c "import cnnengine"`'s total.

Benchmark names are ONNX exports in benchmarks/.cache (see models.py) or
zoo names.
"""
import argparse
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


def first_and_steady(name, threads, mode):
    import cnnengine as ce
    if mode == "reference":
        os.environ["CNNENGINE_PLAN"] = "reference"
    else:
        os.environ.pop("CNNENGINE_PLAN", None)
    m = ce.load(_source(name), threads=threads)
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
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cli", type=int, default=3, help="cnnengine run timings (0: none)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} thread(s), "
          f"load average {load:.2f}, {args.rounds} interleaved rounds\n")
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
