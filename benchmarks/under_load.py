"""Latency under CPU load: thread counts, environments and builds side by side.

    python benchmarks/under_load.py [--models mobilenet_v3_small resnet50] [--burners 3]
        [--runs 10] [--rounds 5] [VARIANT ...]

A VARIANT is `label=THREADS[:ENV=VAL,...][@TREE]`, e.g. `t1=1`, `t2=2`,
`nocap=2:CNNENGINE_LOAD_AWARE=0`, `new=2@/path/to/worktree` (default: t1,
t2 and nocap of this tree). Each variant is one worker process with its own
environment (the kernels read CNNENGINE_* once). The parent
starts `--burners` busy-loop processes (a deterministic load on top of
whatever else runs), then alternates between the workers, `--runs` timed
runs each per round, so that load falls on all variants alike, and prints
each variant's median and p90 with the load average before and after.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

from ab import timed, worker as ab_worker  # noqa: E402  (the A/B script's timing worker)


def parse(spec):
    label, _, rest = spec.partition("=")
    rest, _, tree = rest.partition("@")
    threads, _, envs = rest.partition(":")
    env = dict(kv.split("=", 1) for kv in envs.split(",") if kv)
    return label, int(threads), env, os.path.abspath(tree or ROOT)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="*", default=["t1=1", "t2=2", "nocap=2:CNNENGINE_LOAD_AWARE=0"])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v3_small"])
    ap.add_argument("--burners", type=int, default=0)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    variants = [parse(v) for v in a.variants]
    burners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(a.burners)]
    try:
        for model in a.models:
            path = os.path.join(HERE, ".cache", model + ".onnx")
            load0 = loadavg()
            ws = [ab_worker(tree, path, t, env) for _, t, env, tree in variants]
            times = [[] for _ in ws]
            for r in range(a.rounds):
                order = range(len(ws)) if r % 2 == 0 else reversed(range(len(ws)))
                for i in order:
                    times[i] += timed(ws[i], a.runs)
            for w in ws:
                w.stdin.close()
                w.wait()
            print(f"{model}: burners {a.burners}, load average {load0} -> {loadavg()}, "
                  f"{a.rounds}x{a.runs} runs each (ms)")
            for (label, t, env, tree), ts in zip(variants, times):
                ts = sorted(x * 1e3 for x in ts)
                p90 = ts[int(0.9 * (len(ts) - 1))]
                print(f"  {label:12s} threads={t} median {statistics.median(ts):8.2f}  p90 {p90:8.2f}"
                      f"  min {ts[0]:7.2f}")
    finally:
        for b in burners:
            b.kill()
            b.wait()


if __name__ == "__main__":
    main()
