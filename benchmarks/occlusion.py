"""Occlusion speed: naive vs incremental (exact) vs approximate, against the
bound that counted multiply-adds set (not a test).

    python benchmarks/occlusion.py [--models resnet18 vgg16 mobilenet_v2] [--threads 2]
                                   [--settings 16:8 32:16] [--rows R] [--rounds N] [--captum]

Models are torchvision exports with random weights (benchmarks/models.py
makes them, into benchmarks/.cache/), batch 1, 224x224, one random image.
For each setting (patch:stride) it times the three modes over the same
patch positions (all of them, or the first R rows of positions with
--rows), checks incremental == naive, and prints the speedups, the MAC
bound (the whole network against each layer over the window its patch
reaches; a dense layer after a Flatten counted over the columns of the
cells the patch changed, as incremental computes it; "dense-whole bound"
counts that layer whole, the bound printed before), incremental's share
of the bound, and approximate's rank
correlation with naive. --rounds N runs the modes N times, alternating
their order each round so that load from the rest of a shared machine
falls on all alike, and reports medians; the load average is printed
beside each row. --captum adds Captum's Occlusion on the PyTorch
model (when torch, torchvision and captum are installed).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run(model, x, mode, patch, stride, rows, **kw):
    import cnnengine as ce
    n_cols = (x.shape[3] - patch) // stride + 1
    limit = None if rows is None else rows * n_cols
    t0 = time.perf_counter()
    r = ce.occlusion(model, x, patch=patch, stride=stride, mode=mode,
                     progress=None if limit is None else (lambda d, t, h: d < limit), **kw)
    return r, time.perf_counter() - t0


def rank_corr(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    ra = np.argsort(np.argsort(a[ok]))
    rb = np.argsort(np.argsort(b[ok]))
    return float(np.corrcoef(ra, rb)[0, 1])


def captum_time(name, x, patch, stride, threads):
    """Captum's Occlusion on the same torchvision model (random weights), or None without captum."""
    try:
        import torch
        import torchvision
        from captum.attr import Occlusion
    except ImportError:
        return None
    torch.set_num_threads(threads)
    net = getattr(torchvision.models, name)(weights=None).eval()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        target = int(net(xt).argmax())
        t0 = time.perf_counter()
        Occlusion(net).attribute(xt, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride),
                                 target=target, baselines=0.0, perturbations_per_eval=16)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["resnet18", "vgg16", "mobilenet_v2"])
    ap.add_argument("--settings", nargs="+", default=["16:8", "32:16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rows", type=int, default=None, help="time only the first R rows of positions")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved runs of each mode (medians)")
    ap.add_argument("--no-approx", action="store_true", help="skip the approximate mode")
    ap.add_argument("--cap", type=float, default=0.5)
    ap.add_argument("--captum", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    import cnnengine as ce
    from cnnengine.occlusion.incremental import Incremental, mac_bound
    from cnnengine.ops.base import Box
    from models import cpu_model, export

    threads = args.threads or ce.num_cores()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {cpu_model()}, {threads} thread(s), cnnengine "
          f"({ce.active_isa()}); times in seconds for the positions timed")
    print("| model | patch:stride | positions | naive s | incremental s | speedup | MAC bound | "
          "dense-whole bound | share of bound | max diff | approximate s | speedup | rank corr | captum s | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    for name in args.models:
        model = ce.load(export(name), threads=threads)
        for setting in args.settings:
            patch, stride = (int(v) for v in setting.split(":"))
            modes = ["naive", "incremental"] + ([] if args.no_approx else ["approximate"])
            times, res = {m: [] for m in modes}, {}
            load0 = os.getloadavg()[0]
            for r in range(args.rounds):
                for mode in (modes if r % 2 == 0 else modes[::-1]):
                    res[mode], t = run(model, x, mode, patch, stride, args.rows,
                                       **({"cap": args.cap} if mode == "approximate" else {}))
                    times[mode].append(t)
            load = f"{load0:.1f}-{os.getloadavg()[0]:.1f}"
            # times per position (with --rows the modes' batches may stop at different counts),
            # scaled to naive's count of positions
            done = int(np.isfinite(res["naive"].heatmap).sum())
            per = {m: done / int(np.isfinite(res[m].heatmap).sum()) for m in modes}
            tn, ti = (statistics.median(times[m]) * per[m] for m in ("naive", "incremental"))
            naive, inc = res["naive"], res["incremental"]
            ys = range(0, 224 - patch + 1, stride)
            boxes = [Box(y, y + patch, c, c + patch) for y in ys for c in ys][:done]
            engine = Incremental(model._exec, {model.inputs[0].name: x}, [model.outputs[0].name])
            full, part = mac_bound(engine, boxes)
            full0, part0 = mac_bound(engine, boxes, sparse_dense=False)
            diff = float(np.nanmax(np.abs(inc.heatmap - naive.heatmap)))
            if args.no_approx:
                approx_cols = "- | - | -"
            else:
                ta = statistics.median(times["approximate"]) * per["approximate"]
                rc = rank_corr(res["approximate"].heatmap.ravel(), naive.heatmap.ravel())
                approx_cols = f"{ta:.2f} | {tn / ta:.2f}x | {rc:.3f}"
            cap_t = captum_time(name, x, patch, stride, threads) if args.captum and args.rows is None else None
            bound = full / part
            print(f"| {name} | {patch}:{stride} | {done} | {tn:.2f} | {ti:.2f} | {tn / ti:.2f}x | {bound:.2f}x | "
                  f"{full0 / part0:.2f}x | {100 * tn / ti / bound:.0f}% | {diff:.1e} | {approx_cols} | "
                  f"{'-' if cap_t is None else f'{cap_t:.2f}'} | {load} |", flush=True)


if __name__ == "__main__":
    main()
