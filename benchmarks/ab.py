"""Two builds of cnnengine side by side: is a change free of speed regressions?

    python benchmarks/ab.py BEFORE_TREE AFTER_TREE [--runs 15] [--rounds 7] [--threads 1 2]
                            [--before-env K=V ...] [--after-env K=V ...]

Each tree is a source checkout with its kernels built in place
(`python setup.py build_ext --inplace`). For each model and thread count
one worker process per tree loads the model (ONNX files exported by
benchmarks/models.py into benchmarks/.cache/); the parent then alternates
between the two workers, `--runs` timed runs each per round, for
`--rounds` rounds, so that load from the rest of the machine falls on both
alike. Prints each side's median and the ratio after/before, and each
side's best run and their ratio. Models run at their own input size
(benchmarks/models.py: Inception-v3 at 299). The same tree twice with `--after-env CNNENGINE_ISA=avx2` compares the AVX2 path
with the default one.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

WORKER = r"""
import sys, time, numpy as np
import cnnengine as ce
path, threads, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = ce.load(path, threads=threads)
x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
for _ in range(3):
    m.run(x)
print(ce.__file__, flush=True)
for line in sys.stdin:
    n = int(line)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); m.run(x); ts.append(time.perf_counter() - t0)
    print(" ".join(f"{t:.6f}" for t in ts), flush=True)
"""


def worker(tree, path, threads, extra_env=None, size=224):
    """A timing worker importing cnnengine from `tree` (extra_env: variables on
    top), running batch 1 at size x size."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), OPENBLAS_NUM_THREADS="1")
    env.update(extra_env or {})
    p = subprocess.Popen([sys.executable, "-c", WORKER, path, str(threads), str(size)], cwd=os.path.abspath(tree),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    where = p.stdout.readline().strip()
    if not where.startswith(os.path.abspath(tree)):
        raise SystemExit(f"{tree}: imported cnnengine from {where}; build it in place first")
    return p


def timed(p, n):
    p.stdin.write(f"{n}\n")
    p.stdin.flush()
    return [float(t) for t in p.stdout.readline().split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+",
                    default=["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg16"])
    ap.add_argument("--before-env", nargs="+", default=[], metavar="K=V",
                    help="environment variables of the BEFORE worker")
    ap.add_argument("--after-env", nargs="+", default=[], metavar="K=V",
                    help="environment variables of the AFTER worker")
    args = ap.parse_args()
    envs = [dict(kv.split("=", 1) for kv in e) for e in (args.before_env, args.after_env)]
    sys.path.insert(0, HERE)
    from models import export, input_shape

    print("| model | threads | before ms | after ms | after/before | before best | after best | best ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for threads in args.threads:
        for name in args.models:
            path = export(name)
            size = input_shape(name)[2]     # Inception-v3 takes 299
            a = worker(args.before, path, threads, envs[0], size)
            b = worker(args.after, path, threads, envs[1], size)
            ta, tb = [], []
            for r in range(args.rounds):
                first, second = (a, b) if r % 2 == 0 else (b, a)
                t1, t2 = timed(first, args.runs), timed(second, args.runs)
                (ta, tb)[first is b].extend(t1)
                (ta, tb)[second is b].extend(t2)
            for p in (a, b):
                p.stdin.close()
                p.wait()
            ma, mb = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
            # the best runs too: under load from elsewhere the medians carry
            # its preemptions, the best runs the least of them
            ba, bb = min(ta) * 1e3, min(tb) * 1e3
            print(f"| {name} | {threads} | {ma:.2f} | {mb:.2f} | {mb / ma:.3f} | {ba:.2f} | {bb:.2f} "
                  f"| {bb / ba:.3f} |", flush=True)


if __name__ == "__main__":
    main()
