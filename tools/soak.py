"""Soak: many inferences and load/unload cycles in one process; resident
memory (VmRSS) after a warm-up and at the end, and its growth.

    python tools/soak.py                      # lenet5: 10,000 runs, 1,000 cycles
    python tools/soak.py --model efficientnet_lite0 --runs 300 --cycles 30

Each load alternates the bundled native file and its ONNX file where both
exist (one path through each loader). Exit 1 when the growth after warm-up
is above --max-growth percent.
"""
import argparse
import gc
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cnnengine as ce  # noqa: E402


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def sources(name):
    """What each load cycle opens: the zoo name, and its .onnx where bundled."""
    out = [name]
    if not os.path.exists(name):
        import cnnengine.zoo
        onnx_path = Path(cnnengine.zoo.__file__).parent / f"{name}.onnx"
        if onnx_path.exists():
            out.append(str(onnx_path))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--runs", type=int, default=10_000, help="inferences (default 10,000)")
    ap.add_argument("--cycles", type=int, default=1_000, help="load/unload cycles (default 1,000)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warmup", type=float, default=0.05,
                    help="fraction of each phase run before the baseline (default 0.05)")
    ap.add_argument("--max-growth", type=float, default=1.0, help="percent (default 1)")
    a = ap.parse_args(argv)

    srcs = sources(a.model)
    model = ce.load(srcs[0], threads=a.threads)
    shape = [a.batch if not isinstance(d, int) else d for d in model.inputs[0].shape]
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(8)]

    def infer(n):
        for i in range(n):
            model.run(inputs[i % len(inputs)])

    def cycle(n):
        for i in range(n):
            m = ce.load(srcs[i % len(srcs)], threads=a.threads)
            m.run(inputs[i % len(inputs)])
            del m
            if i % 50 == 49:
                gc.collect()

    wr, wc = max(1, int(a.runs * a.warmup)), max(len(srcs), int(a.cycles * a.warmup))
    t0 = time.perf_counter()
    infer(wr)
    cycle(wc)
    gc.collect()
    base = rss_kib()
    print(f"model {a.model} ({', '.join(Path(s).name for s in srcs)}), input {tuple(shape)}, "
          f"isa {ce.active_isa()}")
    print(f"warm-up: {wr} runs + {wc} cycles in {time.perf_counter() - t0:.1f} s; RSS {base / 1024:.1f} MiB")

    t1 = time.perf_counter()
    infer(a.runs)
    gc.collect()
    after_runs = rss_kib()
    t2 = time.perf_counter()
    print(f"{a.runs} inferences in {t2 - t1:.1f} s ({(t2 - t1) / max(a.runs, 1) * 1e3:.2f} ms each); "
          f"RSS {after_runs / 1024:.1f} MiB ({(after_runs - base) / base * 100:+.2f}%)")
    cycle(a.cycles)
    gc.collect()
    end = rss_kib()
    t3 = time.perf_counter()
    growth = (end - base) / base * 100
    print(f"{a.cycles} load/unload cycles in {t3 - t2:.1f} s; RSS {end / 1024:.1f} MiB")
    print(f"RSS after warm-up {base / 1024:.1f} MiB, at the end {end / 1024:.1f} MiB: "
          f"growth {growth:+.2f}% (limit {a.max_growth}%), peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    return 0 if growth <= a.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
