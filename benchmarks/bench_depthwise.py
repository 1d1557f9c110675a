"""Depthwise conv benchmark: the MobileNetV2 / EfficientNet-B0 depthwise layers
(batch 1, NCHW, bias, fused activation), ms and GFLOP/s per shape.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_depthwise.py [--impl new|ort]
        [--pkg DIR] [--threads 1,2] [--runs 7]

--impl new times cnnengine (the package found first on sys.path, or the one
under --pkg DIR, e.g. a stashed older build); --impl ort times ONNX Runtime
on a one-node Conv(group=C) model of each shape. Reported: the median over
--runs timed runs of the per-call time (each run loops enough calls to last
about 20 ms), so a shared machine's noise mostly falls outside the median.
"""
import argparse
import os
import sys
import time

import numpy as np

# (name, C, H(=W), k, stride, activation) -- "x2" etc. = times the layer occurs
LAYERS = [
    ("mv2 3x3 32@112 s1", 32, 112, 3, 1, "clip"),
    ("mv2 3x3 96@112 s2", 96, 112, 3, 2, "clip"),
    ("mv2 3x3 144@56 s1", 144, 56, 3, 1, "clip"),
    ("mv2 3x3 144@56 s2", 144, 56, 3, 2, "clip"),
    ("mv2 3x3 192@28 s1 x2", 192, 28, 3, 1, "clip"),
    ("mv2 3x3 192@28 s2", 192, 28, 3, 2, "clip"),
    ("mv2 3x3 384@14 s1 x4", 384, 14, 3, 1, "clip"),
    ("mv2 3x3 576@14 s1 x2", 576, 14, 3, 1, "clip"),
    ("mv2 3x3 576@14 s2", 576, 14, 3, 2, "clip"),
    ("mv2 3x3 960@7 s1 x3", 960, 7, 3, 1, "clip"),
    ("eff 5x5 144@56 s2", 144, 56, 5, 2, "silu"),
    ("eff 5x5 240@28 s1", 240, 28, 5, 1, "silu"),
    ("eff 3x3 240@28 s2", 240, 28, 3, 2, "silu"),
    ("eff 3x3 480@14 s1 x2", 480, 14, 3, 1, "silu"),
    ("eff 5x5 480@14 s1", 480, 14, 5, 1, "silu"),
    ("eff 5x5 672@14 s1 x2", 672, 14, 5, 1, "silu"),
    ("eff 5x5 672@14 s2", 672, 14, 5, 2, "silu"),
    ("eff 5x5 1152@7 s1 x3", 1152, 7, 5, 1, "silu"),
    ("eff 3x3 1152@7 s1", 1152, 7, 3, 1, "silu"),
]
STAT = "median"
ACT = {"none": 0, "clip": 2, "silu": 7}


def out_size(h, k, s):
    p = k // 2
    return (h + 2 * p - k) // s + 1


def timed(fn, runs):
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(0.02 / one))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps)
    return float(np.min(times) if STAT == "min" else np.median(times))


def make_cnnengine(c, h, k, s, act, threads):
    from cnnengine import _kernels as _k
    rng = np.random.default_rng(0)
    p = k // 2
    o = out_size(h, k, s)
    x = rng.standard_normal(c * h * h).astype(np.float32)
    w = rng.standard_normal(c * k * k).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    y = np.empty(c * o * o, np.float32)
    dims = (1, c, h, h, c, k, k, s, s, 1, 1, p, p, p, p, c, o, o)
    code = ACT[act]
    alpha, beta = (0.0, 6.0) if act == "clip" else (0.0, 0.0)
    return lambda: _k.conv2d(x, w, b, None, y, dims, code, alpha, beta, threads)


def make_ort(c, h, k, s, act, threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    p = k // 2
    o = out_size(h, k, s)
    w = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=c, kernel_shape=[k, k],
                              strides=[s, s], pads=[p, p, p, p])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    if act == "clip":
        inits += [numpy_helper.from_array(np.float32(0), "lo"),
                  numpy_helper.from_array(np.float32(6), "hi")]
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    elif act == "silu":
        nodes += [helper.make_node("Sigmoid", ["c"], ["sg"]),
                  helper.make_node("Mul", ["c", "sg"], ["y"])]
    else:
        nodes[0].output[0] = "y"
    g = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      [1, c, h, h])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, o, o])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    return lambda: sess.run(None, {"x": x})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", default="new", choices=["new", "ort"])
    ap.add_argument("--pkg", default=None, help="directory holding the cnnengine package")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--filter", default="")
    ap.add_argument("--stat", default="median", choices=["median", "min"])
    a = ap.parse_args()
    global STAT
    STAT = a.stat
    sys.path.insert(0, a.pkg or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    make = make_cnnengine if a.impl == "new" else make_ort
    threads = [int(t) for t in a.threads.split(",")]
    print(f"impl={a.impl} pkg={a.pkg or 'default'} OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}")
    print(f"{'layer':24s}" + "".join(f"  {'t' + str(t) + ' ms':>9s} {'GF/s':>6s}" for t in threads))
    totals = {t: 0.0 for t in threads}
    for name, c, h, k, s, act in LAYERS:
        if a.filter not in name:
            continue
        o = out_size(h, k, s)
        flops = 2.0 * c * o * o * k * k
        mult = int(name.rsplit("x", 1)[1]) if " x" in name else 1
        line = f"{name:24s}"
        for t in threads:
            sec = timed(make(c, h, k, s, act, t), a.runs)
            totals[t] += sec * mult
            line += f"  {sec * 1e3:9.4f} {flops / sec * 1e-9:6.1f}"
        print(line, flush=True)
    print(f"{'sum (x multiplicity)':24s}" + "".join(f"  {totals[t] * 1e3:9.3f} {'':6s}"
                                                   for t in threads))


if __name__ == "__main__":
    main()
