"""Padded direct convs of small maps, two builds in one process (not a test).

    python benchmarks/pad_taps_ab.py BEFORE_TREE [--threads 1] [--reps 21] [--shapes NAME ...]

Run from a source tree with its kernels built in place (the "after" build);
BEFORE_TREE's built cnnengine/_kernels*.so is loaded beside it as a second
module. Each shape (ResNet, DenseNet, GoogLeNet, Inception-v3 and AlexNet
convs the packer leaves to the direct kernel, ReLU epilogue) is packed in
both, checked equal, and timed rep by rep alternately; prints both medians
and the median of the per-rep ratios before/after (above 1: after faster).
CNNENGINE_ISA=avx2 runs both at that level.
"""
import argparse
import glob
import importlib.util
import os
import statistics
import sys
import time
import types

import numpy as np

# name: (cin, h = w, cout, kh, kw, stride); padding kh // 2, kw // 2
SHAPES = {
    "resnet_512@7": (512, 7, 512, 3, 3, 1),
    "resnet_256-512_s2@14": (256, 14, 512, 3, 3, 2),
    "resnet_512_s2@14": (512, 14, 512, 3, 3, 2),
    "resnet_128-256_s2@28": (128, 28, 256, 3, 3, 2),
    "resnet_256_s2@28": (256, 28, 256, 3, 3, 2),
    "resnet_128_s2@56": (128, 56, 128, 3, 3, 2),
    "densenet_128-32@7": (128, 7, 32, 3, 3, 1),
    "densenet_128-32@14": (128, 14, 32, 3, 3, 1),
    "googlenet_24-64@14": (24, 14, 64, 3, 3, 1),
    "inception_448-384@8": (448, 8, 384, 3, 3, 1),
    "inception_384_1x3@8": (384, 8, 384, 1, 3, 1),
    "inception_384_3x1@8": (384, 8, 384, 3, 1, 1),
    "inception_192_1x7@17": (192, 17, 192, 1, 7, 1),
    "inception_192_7x1@17": (192, 17, 192, 7, 1, 1),
    "inception_48-64_5x5@35": (48, 35, 64, 5, 5, 1),
    "alexnet_64-192_5x5@27": (64, 27, 192, 5, 5, 1),
}


def load_before(tree):
    """BEFORE_TREE's kernels as the module before._kernels."""
    path = glob.glob(os.path.join(tree, "cnnengine", "_kernels*.so"))[0]
    sys.modules["before"] = types.ModuleType("before")
    spec = importlib.util.spec_from_file_location("before._kernels", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def packed(K, shape):
    cin, hw, cout, kh, kw, s = shape
    pt, pl = kh // 2, kw // 2
    oh, ow = (hw + 2 * pt - kh) // s + 1, (hw + 2 * pl - kw) // s + 1
    rng = np.random.default_rng(0)
    dims = (1, cin, hw, hw, cout, kh, kw, s, s, 1, 1, pt, pl, pt, pl, 1, oh, ow)
    w = (rng.standard_normal(cout * cin * kh * kw) * 0.05).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    pk = K.ConvNCHWc(w, b, dims, 1, 0.0, 0.0, False, False)
    x = rng.standard_normal(((cin + 7) // 8) * 8 * hw * hw).astype(np.float32)
    return pk, x, np.zeros(((cout + 7) // 8) * 8 * oh * ow, np.float32), 2.0 * cin * cout * kh * kw * oh * ow


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    args = ap.parse_args()
    sys.path.insert(0, os.getcwd())
    from cnnengine import _kernels as after
    before = load_before(args.before)
    if os.environ.get("CNNENGINE_ISA"):
        after.set_isa(os.environ["CNNENGINE_ISA"])
        before.set_isa(os.environ["CNNENGINE_ISA"])
    print(f"load {os.getloadavg()[0]:.1f}, {args.threads} thread(s), ISA {after.active_isa()}")
    for name in args.shapes:
        sides = [packed(before, SHAPES[name]), packed(after, SHAPES[name])]
        runs = min(100, max(2, int(1e8 / sides[0][3])))
        times = [[], []]
        for _ in range(args.reps):
            for (pk, x, y, _), ts in zip(sides, times):
                pk.run(x, None, y, args.threads)
                t0 = time.perf_counter()
                for _ in range(runs):
                    pk.run(x, None, y, args.threads)
                ts.append((time.perf_counter() - t0) / runs)
        assert np.array_equal(sides[0][2], sides[1][2]), f"{name}: the builds disagree"
        ratio = statistics.median(a / b for a, b in zip(*times))
        print(f"{name:24s} before {statistics.median(times[0]) * 1e6:8.1f} us  "
              f"after {statistics.median(times[1]) * 1e6:8.1f} us  before/after {ratio:.3f}",
              flush=True)


if __name__ == "__main__":
    main()
