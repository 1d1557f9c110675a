"""Blocked depthwise convs of the mobile families, alone, A/B between source trees (not a test).

    python benchmarks/bench_dw_ab.py [--tree BEFORE AFTER ...] [--threads 1 2] [--rounds 5]
                                     [--filter STR] [--ort]

Each shape (C@HxW kxk stride, activation, +res, +pool as the step runs in
the model) is packed once per tree (cnnengine._kernels.ConvNCHWc, hot
weights and input) and timed as the median of calls batched to ~5 ms; the
trees' worker processes (tree_workers.py) alternate shape by shape, --rounds
times, and each tree's median over rounds is printed. --ort adds ONNX
Runtime on a one-node Conv(group=C) (+ Clip / Sigmoid*Mul) model of the
shape, NCHW in and out (what its NCHWc transformer makes of it).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tree_workers  # noqa: E402

ACT = {"none": (0, 0.0, 0.0), "relu": (1, 0.0, 0.0), "clip": (2, 0.0, 6.0), "silu": (7, 0.0, 0.0),
       "hswish": (8, 0.0, 0.0)}
# (label, C, H (= W), k, stride, act, residual, pooled) -- the layers of MobileNetV2 (mv2),
# MobileNetV3-Large (mv3), MNASNet 0.5 (mn), EfficientNet-B0 (eff), EfficientNetV2-S (ev2)
SHAPES = [
    ("mv2 192@28 3x3 s1", 192, 28, 3, 1, "clip", False, False),
    ("mv2 192@28 3x3 s2", 192, 28, 3, 2, "clip", False, False),
    ("mv2 384@14 3x3 s1", 384, 14, 3, 1, "clip", False, False),
    ("mv2 576@14 3x3 s1", 576, 14, 3, 1, "clip", False, False),
    ("mv2 576@14 3x3 s2", 576, 14, 3, 2, "clip", False, False),
    ("mv2 960@7 3x3 s1", 960, 7, 3, 1, "clip", False, False),
    ("mv3 16@112 3x3 s1", 16, 112, 3, 1, "relu", False, False),
    ("mv3 72@56 3x3 s1", 72, 56, 3, 1, "relu", False, False),
    ("mv3 72@56 5x5 s2 pool", 72, 56, 5, 2, "relu", False, True),
    ("mv3 120@28 5x5 s1 pool", 120, 28, 5, 1, "relu", False, True),
    ("mv3 240@28 3x3 s2", 240, 28, 3, 2, "hswish", False, False),
    ("mv3 200@14 3x3 s1", 200, 14, 3, 1, "hswish", False, False),
    ("mv3 184@14 3x3 s1", 184, 14, 3, 1, "hswish", False, False),
    ("mv3 480@14 3x3 s1 pool", 480, 14, 3, 1, "hswish", False, True),
    ("mv3 672@14 5x5 s2 pool", 672, 14, 5, 2, "hswish", False, True),
    ("mv3 960@7 5x5 s1 pool", 960, 7, 5, 1, "hswish", False, True),
    ("mn 48@56 3x3 s1", 48, 56, 3, 1, "relu", False, False),
    ("mn 72@28 5x5 s1", 72, 28, 5, 1, "relu", False, False),
    ("mn 120@28 5x5 s2", 120, 28, 5, 2, "relu", False, False),
    ("mn 240@14 5x5 s1", 240, 14, 5, 1, "relu", False, False),
    ("mn 288@7 5x5 s1", 288, 7, 5, 1, "relu", False, False),
    ("eff 32@112 3x3 s1 pool", 32, 112, 3, 1, "silu", False, True),
    ("eff 144@56 5x5 s2 pool", 144, 56, 5, 2, "silu", False, True),
    ("eff 240@28 5x5 s1 pool", 240, 28, 5, 1, "silu", False, True),
    ("eff 240@28 3x3 s2 pool", 240, 28, 3, 2, "silu", False, True),
    ("eff 480@14 3x3 s1 pool", 480, 14, 3, 1, "silu", False, True),
    ("eff 480@14 5x5 s1 pool", 480, 14, 5, 1, "silu", False, True),
    ("eff 672@14 5x5 s1 pool", 672, 14, 5, 1, "silu", False, True),
    ("eff 672@14 5x5 s2 pool", 672, 14, 5, 2, "silu", False, True),
    ("eff 1152@7 5x5 s1 pool", 1152, 7, 5, 1, "silu", False, True),
    ("eff 1152@7 3x3 s1 pool", 1152, 7, 3, 1, "silu", False, True),
    ("ev2 512@14 3x3 s1 pool", 512, 14, 3, 1, "silu", False, True),
    ("ev2 768@14 3x3 s1 pool", 768, 14, 3, 1, "silu", False, True),
    ("ev2 768@14 3x3 s2 pool", 768, 14, 3, 2, "silu", False, True),
    ("ev2 960@7 3x3 s1 pool", 960, 7, 3, 1, "silu", False, True),
    ("ev2 1536@7 3x3 s1 pool", 1536, 7, 3, 1, "silu", False, True),
    ("odd 100@9 3x3 s2 res", 100, 9, 3, 2, "clip", True, False),
]


def out_size(h, k, s):
    return (h + 2 * (k // 2) - k) // s + 1


def make(shape, threads, K=None):
    """A call of the shape's conv, packed by K (default: the imported cnnengine's kernels)."""
    if K is None:
        from cnnengine import _kernels as K
    _, c, h, k, s, act, res, pool = shape
    o = out_size(h, k, s)
    cb = (c + 7) // 8 * 8
    rng = np.random.default_rng(0)
    x = rng.standard_normal(cb * h * h).astype(np.float32)
    w = rng.standard_normal(c * k * k).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    y = np.empty(cb * o * o, np.float32)
    r = rng.standard_normal(y.size).astype(np.float32) if res else None
    p = np.empty(cb, np.float32) if pool else None
    dims = (1, c, h, h, c, k, k, s, s, 1, 1, k // 2, k // 2, k // 2, k // 2, c, o, o)
    pk = K.ConvNCHWc(w, b, dims, *ACT[act], False, False)
    if pool:
        return lambda: pk.run_pooled(x, r, y, p, threads)
    return lambda: pk.run(x, r, y, threads)


def make_ort(shape, threads):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    _, c, h, k, s, act, res, pool = shape
    o, p = out_size(h, k, s), k // 2
    rng = np.random.default_rng(0)
    w = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=c, kernel_shape=[k, k],
                              strides=[s, s], pads=[p, p, p, p])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    if act == "clip":
        inits += [numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")]
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    elif act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    elif act == "hswish":
        nodes.append(helper.make_node("HardSwish", ["c"], ["y"]))
    elif act == "silu":
        nodes += [helper.make_node("Sigmoid", ["c"], ["sg"]), helper.make_node("Mul", ["c", "sg"], ["y"])]
    else:
        nodes[0].output[0] = "y"
    g = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, h])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, o, o])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    return lambda: sess.run(None, {"x": x})


def timed(fn):
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    reps = max(3, int(0.005 / one))
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        ts.append((time.perf_counter() - t0) / reps)
    return float(np.median(ts))


def worker(threads, repeat):
    print("peak 0", flush=True)
    cache = {}
    for line in sys.stdin:
        sh = tuple(json.loads(line))
        ort = sh[0].startswith("ORT:")
        key = sh
        if key not in cache:
            cache[key] = (make_ort if ort else make)((sh[0][4:] if ort else sh[0],) + sh[1:], threads)
        print(f"0 {timed(cache[key]) * 1e3:.5f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", nargs="+", default=[os.getcwd()])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--filter", default="")
    ap.add_argument("--ort", action="store_true")
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.threads[0], a.repeat)
        return
    shapes = [s for s in SHAPES if a.filter in s[0]]
    trees = list(a.tree) + ([a.tree[0]] if a.ort else [])
    names = [os.path.basename(t.rstrip("/")) for t in a.tree] + (["ort"] if a.ort else [])
    print(f"# load {os.getloadavg()}")
    for t in a.threads:
        procs, _ = tree_workers.start(__file__, trees, t, 0)
        print(f"\n{t} thread(s), median of {a.rounds} alternating rounds, ms")
        print("| layer | " + " | ".join(names) + (" | after/before |" if len(a.tree) > 1 else " |"))
        print("|---|" + "---:|" * (len(names) + (len(a.tree) > 1)))
        tot = [0.0] * len(names)
        for sh in shapes:
            cells = [[] for _ in procs]
            for _ in range(a.rounds):
                for i, p in enumerate(procs):
                    msg = list(sh)
                    if a.ort and i == len(procs) - 1:
                        msg[0] = "ORT:" + msg[0]
                    p.stdin.write(json.dumps(msg) + "\n")
                    p.stdin.flush()
                    cells[i].append(float(p.stdout.readline().split()[1]))
            med = [float(np.median(c)) for c in cells]
            tot = [u + v for u, v in zip(tot, med)]
            ratio = f" | {med[1] / med[0]:.3f}" if len(a.tree) > 1 else ""
            print(f"| {sh[0]} | " + " | ".join(f"{m:.4f}" for m in med) + ratio + " |", flush=True)
        ratio = f" | {tot[1] / tot[0]:.3f}" if len(a.tree) > 1 else ""
        print("| sum | " + " | ".join(f"{m:.3f}" for m in tot) + ratio + " |")
        for p in procs:
            p.stdin.close()
            p.wait()
    print(f"# load {os.getloadavg()}")


if __name__ == "__main__":
    main()
