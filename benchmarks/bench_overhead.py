"""Per-run overhead of Model.run outside the kernels, per tree (not a test).

    python benchmarks/bench_overhead.py [--threads 1 2] [--tree PATH ...] [--rounds R]

A one-node model (Relu on 1x16x7x7) and the output side of a network
(GlobalAveragePool -> Flatten -> Gemm 1280->1000 on a 1x1280x7x7 input):
microseconds per Model.run, median of R blocks of 2000 runs, one worker
process per tree, blocks interleaved, so two builds compare on one load.
ONNX Runtime's InferenceSession.run on the same file in the first tree's
worker, for scale.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

import tree_workers


def _models(folder):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    out = {}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 7, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 7, 7])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "relu", [x], [y])
    out["relu 1x16x7x7"] = (g, (1, 16, 7, 7))
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((1000, 1280)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(1000).astype(np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1280, 7, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "head", [x], [y], [w, b])
    out["relu+pool+flatten+gemm 1280@7x7"] = (g, (1, 1280, 7, 7))
    paths = {}
    for name, (g, shape) in out.items():
        p = os.path.join(folder, name.split()[0].replace("+", "_") + ".onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
        paths[name] = (p, shape)
    return paths


def worker(threads, repeat):
    import cnnengine as ce
    print("peak 0", flush=True)
    folder = tempfile.mkdtemp()
    models = _models(folder)
    loaded = {}
    for line in sys.stdin:
        name, which = line.rstrip("\n").rsplit(" ", 1)
        path, shape = models[name]
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        if (name, which) not in loaded:
            if which == "ort":
                import onnxruntime as ort
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                loaded[name, which] = lambda s=s: s.run(None, {"x": x})
            else:
                m = ce.load(path, threads=threads)
                loaded[name, which] = lambda m=m: m.run(x)
        f = loaded[name, which]
        for _ in range(200):
            f()
        t0 = time.perf_counter()
        for _ in range(repeat):
            f()
        print(f"{(time.perf_counter() - t0) / repeat * 1e6:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tree", nargs="+", default=[os.getcwd()])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads[0], args.repeat)
        return
    names = ["relu 1x16x7x7", "relu+pool+flatten+gemm 1280@7x7"]
    for threads in args.threads:
        procs, _ = tree_workers.start(__file__, args.tree, threads, args.repeat)
        cols = [(p, "ce") for p in procs] + [(procs[0], "ort")]
        print(f"\n{threads} thread(s), us per run, median of {args.rounds} blocks of {args.repeat}")
        print("| model | " + " | ".join(os.path.basename(t) for t in args.tree) + " | ORT |")
        print("|---|" + "---:|" * len(cols))
        for name in names:
            res = [[] for _ in cols]
            for _ in range(args.rounds):
                for j, (p, which) in enumerate(cols):
                    p.stdin.write(f"{name} {which}\n")
                    p.stdin.flush()
                    res[j].append(float(p.stdout.readline()))
            print(f"| {name} | " + " | ".join(f"{np.median(r):.2f}" for r in res) + " |", flush=True)
        for p in procs:
            p.stdin.close()
            p.wait()


if __name__ == "__main__":
    main()
