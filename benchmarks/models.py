"""Whole-model latency against ONNX Runtime, measured side by side (not a test).

    python benchmarks/models.py [--runs R] [--threads 1 2] [--models resnet18 ...]

Exports ResNet-18, ResNet-50, MobileNetV2, EfficientNet-B0 and VGG-16
(torchvision definitions, random weights; batch 1, 3x224x224) to ONNX with
torch (benchmark-only dependency: `pip install torch==2.13.0` and
`pip install --no-deps torchvision==0.28.0`), then for each model and thread
count runs cnnengine and ONNX Runtime interleaved, run by run, and prints
median latencies and their ratio, plus the geometric mean of the ratios.
It also prints the GFLOP/s of the largest 3x3 convolutions against the FMA
peak measured in the same run. Exported files are cached in
benchmarks/.cache/.
"""
import argparse
import os
import platform
import statistics
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
MODELS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg16"]


def export(name):
    path = os.path.join(CACHE, f"{name}.onnx")
    if os.path.exists(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_registrations"))
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, path, input_names=["input"], output_names=["logits"],
                      opset_version=13, dynamo=False)
    return path


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(path, threads, runs, warmup=3):
    import cnnengine as ce
    from cnnengine.bench import interleaved, ort_session

    model = ce.load(path, threads=threads)
    sess = ort_session(open(path, "rb").read(), threads)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    feed = {sess.get_inputs()[0].name: x}
    ref = sess.run(None, feed)[0]
    err = float(np.max(np.abs(model.run(x) - ref)))
    for _ in range(warmup):
        model.run(x)
        sess.run(None, feed)
    ours, peer = interleaved([lambda: model.run(x), lambda: sess.run(None, feed)], runs)
    return statistics.median(ours) * 1e3, statistics.median(peer) * 1e3, err


def conv_gflops(threads, repeat=10):
    """Big 3x3 convs: the GFLOP/s of the im2col + packed-GEMM path and of
    the blocked direct kernel against the FMA peak, and the time of what the
    engine runs for that layer inside a model (the blocked conv, Winograd
    where the packer picks it), as effective GFLOP/s."""
    from cnnengine import _kernels as K
    from cnnengine.functional import conv2d

    rng = np.random.default_rng(0)
    peak = K.fma_peak_gflops(threads)
    rows = []
    for cin, cout, hw in [(256, 256, 14), (64, 64, 56), (128, 128, 28), (512, 512, 7)]:
        x = rng.standard_normal((1, cin, hw, hw)).astype(np.float32)
        w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
        flops = 2.0 * cout * cin * 9 * hw * hw
        conv2d(x, w, padding=1, threads=threads)
        gemm = min(_timed(lambda: conv2d(x, w, padding=1, threads=threads)) for _ in range(repeat))
        dims = (1, cin, hw, hw, cout, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, hw, hw)
        xb = np.zeros(((cin + 7) // 8) * 8 * hw * hw, np.float32)
        K.nchw_to_nchwc(x.reshape(-1), xb, 1, cin, hw * hw, threads)
        y = np.empty(((cout + 7) // 8) * 8 * hw * hw, np.float32)
        times = {}
        for key, wino in (("direct", False), ("engine", None)):
            pk = K.ConvNCHWc(w.reshape(-1), None, dims, 0, 0.0, 0.0, False, wino)
            pk.run(xb, None, y, threads)
            times[key] = min(_timed(lambda: pk.run(xb, None, y, threads)) for _ in range(repeat))
            times[key + "_algo"] = pk.algo
        g, d, e = (flops / t * 1e-9 for t in (gemm, times["direct"], times["engine"]))
        rows.append((f"conv3x3 {cin}->{cout} @{hw}x{hw}", gemm * 1e3, g, 100 * g / peak,
                     times["direct"] * 1e3, d, 100 * d / peak, times["engine_algo"],
                     times["engine"] * 1e3, e))
    return peak, rows


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=MODELS)
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import cnnengine as ce
    import onnxruntime

    print(f"# {time.strftime('%Y-%m-%d')}, {cpu_model()}, {ce.num_cores()} cores, "
          f"cnnengine {ce.__version__} ({ce.active_isa()}), onnxruntime {onnxruntime.__version__}")
    paths = {m: export(m) for m in args.models}
    for threads in args.threads:
        print(f"\n## {threads} thread(s), batch 1, median of {args.runs} interleaved runs\n")
        print("| model | cnnengine ms | onnxruntime ms | ratio | max abs diff |")
        print("|---|---:|---:|---:|---:|")
        ratios = []
        for m in args.models:
            ours, peer, err = measure(paths[m], threads, args.runs)
            ratios.append(ours / peer)
            print(f"| {m} | {ours:.2f} | {peer:.2f} | {ours / peer:.3f} | {err:.1e} |", flush=True)
        geo = float(np.exp(np.mean(np.log(ratios))))
        print(f"| **geometric mean** | | | **{geo:.3f}** | |")
        peak, rows = conv_gflops(threads)
        print(f"\nFMA peak ({threads} thread(s)): {peak:.1f} GFLOP/s")
        print("| layer | GEMM path ms | GFLOP/s | % of peak | blocked direct ms | GFLOP/s "
              "| % of peak | engine algo | engine ms | effective GFLOP/s |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for name, ms, g, pct, dms, dg, dpct, algo, ems, eg in rows:
            print(f"| {name} | {ms:.3f} | {g:.1f} | {pct:.0f}% | {dms:.3f} | {dg:.1f} | "
                  f"{dpct:.0f}% | {algo} | {ems:.3f} | {eg:.1f} |")

if __name__ == "__main__":
    main()
