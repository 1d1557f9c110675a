"""The grouped convolutions of a model, one by one: the small-group kernel
(csrc/ops/nchwc_grouped.c) against the tiles it replaced, in one process.

    python benchmarks/grouped_ab.py [--threads 1] [--models regnet_y_400mf ...] [--off VAR]

For each grouped, not depthwise, conv of the cached ONNX export (random
weights; benchmarks/models.py exports them) it packs the layer twice: A
with CNNENGINE_GROUPED=0 (the pair or wide tiles; groups of 4 or 2 with
block-diagonal weights, as the engine expands them then), B as the engine
packs it now, checks they agree, and times them alternately. Prints the
medians, B/A, B's GFLOP/s (real multiplies, not the expanded ones) and
the model's totals over its grouped convs. --off CNNENGINE_GROUPED_WINO: A
is the direct tiles of unstrided groups of 4, 8 and 16 instead (B their
Winograd run). --in-model: the whole model loaded twice in this process (A
packed with the --off variable at 0, B as now), per-step profiles
alternating; prints the medians of the steps that moved by more than 3 %
and the sums of all steps (weights come from memory there, not a hot cache).
"""
import argparse
import collections
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def grouped_convs(path):
    """{(c, h, k, groups, kernel, strides, pads): count} of the model's grouped convs."""
    import onnx
    from onnx import shape_inference
    m = shape_inference.infer_shapes(onnx.load(path))
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(m.graph.value_info) + list(m.graph.input)}
    weights = {i.name: list(i.dims) for i in m.graph.initializer}
    found = collections.Counter()
    for n in m.graph.node:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        g = a.get("group", 1)
        if n.op_type != "Conv" or g == 1:
            continue
        x, w = dims[n.input[0]], weights[n.input[1]]
        if g == x[1] == w[0]:
            continue
        found[(x[1], x[2], w[0], g, tuple(a["kernel_shape"]), tuple(a.get("strides", (1, 1))),
               tuple(a.get("pads", (0, 0, 0, 0))))] += 1
    return found


def pack(w, b, dims, off, var="CNNENGINE_GROUPED"):
    from cnnengine import _kernels as K
    from cnnengine.backend.cpu.layout import expand_small_groups
    from cnnengine.errors import UnsupportedOpError
    os.environ.pop(var, None)
    if off:
        os.environ[var] = "0"
    try:
        return K.ConvNCHWc(w.ravel(), b, dims, 1, 0.0, 0.0, False)
    except UnsupportedOpError:
        g = dims[15]
        return K.ConvNCHWc(expand_small_groups(w, g).ravel(), b, dims[:15] + (dims[1] // 8,) + dims[16:],
                           1, 0.0, 0.0, False)
    finally:
        os.environ.pop(var, None)


def in_model(name, threads, rounds, var):
    import cnnengine as ce
    from models import export
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    os.environ[var] = "0"
    a = ce.load(export(name), threads=threads)
    a.run(x)
    del os.environ[var]
    b = ce.load(export(name), threads=threads)
    b.run(x)
    ta, tb = collections.defaultdict(list), collections.defaultdict(list)
    for _ in range(rounds):
        for model, into in ((a, ta), (b, tb)):
            for step, op, t in model.profile(x, runs=10):
                into[step].append(t)
    print(f"| {name} step | A ms | B ms | B/A |\n|---|---:|---:|---:|")
    for step in ta:
        ma, mb = np.median(ta[step]) * 1e3, np.median(tb[step]) * 1e3
        if mb / ma < 0.97 or mb / ma > 1.03:
            print(f"| {step} | {ma:.3f} | {mb:.3f} | {mb / ma:.2f} |")
    sa = sum(np.median(v) for v in ta.values()) * 1e3
    sb = sum(np.median(v) for v in tb.values()) * 1e3
    print(f"| {name} sum of steps | {sa:.3f} | {sb:.3f} | {sb / sa:.3f} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--models", nargs="+", default=["regnet_y_400mf", "regnet_x_400mf", "resnext50_32x4d"])
    ap.add_argument("--off", default="CNNENGINE_GROUPED",
                    choices=["CNNENGINE_GROUPED", "CNNENGINE_GROUPED_WINO"])
    ap.add_argument("--in-model", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from models import export
    if args.in_model:
        for name in args.models:
            in_model(name, args.threads, args.rounds, args.off)
        return
    rng = np.random.default_rng(0)
    print("| model | conv | count | A ms | B ms | B/A | B GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        total_a = total_b = 0.0
        for (c, h, k, g, ks, st, pads), count in grouped_convs(export(name)).items():
            oh = (h + pads[0] + pads[2] - ks[0]) // st[0] + 1
            ow = (h + pads[1] + pads[3] - ks[1]) // st[1] + 1
            w = rng.standard_normal((k, c // g) + ks).astype(np.float32)
            b = rng.standard_normal(k).astype(np.float32)
            dims = (1, c, h, h, k, ks[0], ks[1], st[0], st[1], 1, 1, pads[0], pads[1], pads[2], pads[3],
                    g, oh, ow)
            pa, pb = pack(w, b, dims, True, args.off), pack(w, b, dims, False, args.off)
            x = rng.standard_normal((1, (c + 7) // 8, h, h, 8)).astype(np.float32)
            ya = np.empty((1, (k + 7) // 8, oh, ow, 8), np.float32)
            yb = ya.copy()
            pa.run(x, None, ya, args.threads)
            pb.run(x, None, yb, args.threads)
            assert np.allclose(ya, yb, rtol=1e-4, atol=1e-3), (name, c, g)
            macs = oh * ow * k * (c // g) * ks[0] * ks[1]
            reps = max(1, int(1e7 / macs))
            times = {id(pa): [], id(pb): []}
            for _ in range(args.rounds):
                for pk, y in ((pa, ya), (pb, yb)):
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        pk.run(x, None, y, args.threads)
                    times[id(pk)].append((time.perf_counter() - t0) / reps)
            ta, tb = np.median(times[id(pa)]), np.median(times[id(pb)])
            total_a += ta * count
            total_b += tb * count
            print(f"| {name} | {c}@{h} g{g} ({c // g}/group) s{st[0]} | {count} | {ta * 1e3:.3f} | "
                  f"{tb * 1e3:.3f} | {tb / ta:.2f} | {2 * macs / tb / 1e9:.0f} |", flush=True)
        print(f"| {name} | all grouped | | {total_a * 1e3:.3f} | {total_b * 1e3:.3f} | "
              f"{total_b / total_a:.2f} | |", flush=True)


if __name__ == "__main__":
    main()
