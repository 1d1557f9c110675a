"""Occlusion speed: naive vs incremental (exact) vs approximate, against the
bound that counted multiply-adds set (not a test).

    python benchmarks/occlusion.py [--models resnet18 vgg16 mobilenet_v2] [--threads 2]
                                   [--settings 16:8 32:16] [--rows R] [--rounds N]
                                   [--no-approx] [--no-captum]

Models are torchvision exports with random weights (benchmarks/models.py
makes them, into benchmarks/.cache/) or a zoo name (efficientnet_lite0:
real weights), batch 1, 224x224, the bundled sample image (--image random:
one random image).
For each setting (patch:stride) it times the three modes over the same
patch positions (all of them, or the first R rows of positions with
--rows), checks incremental == naive, and prints the speedups, the MAC
bound (the whole network against each layer over the window its patch
reaches; a dense layer after a Flatten counted over the columns of the
cells the patch changed, as incremental computes it; "dense-whole bound"
counts that layer whole, the bound printed before), incremental's share
of that bound, and approximate's rank
correlation with naive, and the error approximate mode reports from its
spot checks (the largest absolute error on the positions it checked,
against the true largest over the whole map). Captum's Occlusion on the
torchvision model of the same architecture (random weights, the same
patch, stride and mean fill, 16 images per batch, all positions) is timed
when torch, torchvision and captum are installed (--no-captum skips it).
--rounds N runs the modes N times, alternating their order each round so
that load from the rest of a shared machine falls on all alike, and reports
medians; the load average is printed beside each row.
"""
import argparse
import os
import statistics
import sys
import time
import types

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
    """Captum's Occlusion on the torchvision model of that name (random weights),
    mean fill as ours; None without torch/torchvision/captum or such a model."""
    # a torchvision wheel whose C ops do not load still builds its models
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_registrations"))
    try:
        import torch
        import torchvision
        from captum.attr import Occlusion
    except ImportError:
        return None
    if not hasattr(torchvision.models, name):
        return None
    torch.set_num_threads(threads)
    net = getattr(torchvision.models, name)(weights=None).eval()
    xt = torch.from_numpy(x)
    fill = xt.mean(dim=(2, 3), keepdim=True)
    with torch.no_grad():
        target = int(net(xt).argmax())
        t0 = time.perf_counter()
        Occlusion(net).attribute(xt, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride),
                                 target=target, baselines=fill, perturbations_per_eval=16)
    return time.perf_counter() - t0


def load(name, threads):
    """A bundled zoo model by name, else the torchvision export."""
    import cnnengine as ce
    from cnnengine import zoo
    from models import export
    return ce.load(name if name in zoo.names() else export(name), threads=threads)


def image(model, kind):
    if kind == "random":
        return np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    import cnnengine as ce
    from cnnengine.preprocess import guess_preprocess, load_image
    return np.ascontiguousarray(load_image(ce.sample_image(), model.preprocess or guess_preprocess(model)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["resnet18", "vgg16", "mobilenet_v2"])
    ap.add_argument("--settings", nargs="+", default=["16:8", "32:16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rows", type=int, default=None, help="time only the first R rows of positions")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved runs of each mode (medians)")
    ap.add_argument("--no-approx", action="store_true", help="skip the approximate mode")
    ap.add_argument("--budget", type=float, default=None, help="approximate mode's budget (default: its own)")
    ap.add_argument("--cap", type=float, default=None, help="approximate mode with Krypton's cap instead")
    ap.add_argument("--image", choices=["sample", "random"], default="sample")
    ap.add_argument("--no-captum", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    import cnnengine as ce
    from cnnengine.occlusion.incremental import Incremental, mac_bound
    from cnnengine.ops.base import Box
    from models import cpu_model

    threads = args.threads or ce.num_cores()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {cpu_model()}, {threads} thread(s), cnnengine "
          f"({ce.active_isa()}); times in seconds for the positions timed")
    print("| model | patch:stride | positions | naive s | incremental s | speedup | MAC bound | "
          "dense-whole bound | share of bound | max diff | approximate s | speedup | rank corr | reported max err (checked) / "
          "true max err | captum s | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    approx_kw = {} if args.budget is None else {"budget": args.budget}
    if args.cap is not None:
        approx_kw["cap"] = args.cap
    for name in args.models:
        model = load(name, threads)
        x = image(model, args.image)
        for setting in args.settings:
            patch, stride = (int(v) for v in setting.split(":"))
            modes = ["naive", "incremental"] + ([] if args.no_approx else ["approximate"])
            times, res = {m: [] for m in modes}, {}
            load0 = os.getloadavg()[0]
            for r in range(args.rounds):
                for mode in (modes if r % 2 == 0 else modes[::-1]):
                    res[mode], t = run(model, x, mode, patch, stride, args.rows,
                                       **(approx_kw if mode == "approximate" else {}))
                    times[mode].append(t)
            load_txt = f"{load0:.1f}-{os.getloadavg()[0]:.1f}"
            # per position (with --rows the modes' batches may stop at different
            # counts), scaled to naive's count of positions
            naive, inc = res["naive"], res["incremental"]
            done = int(np.isfinite(naive.heatmap).sum())
            per = {m: done / int(np.isfinite(res[m].heatmap).sum()) for m in modes}
            tn, ti = (statistics.median(times[m]) * per[m] for m in ("naive", "incremental"))
            ys = range(0, 224 - patch + 1, stride)
            boxes = [Box(y, y + patch, c, c + patch) for y in ys for c in ys][:done]
            engine = Incremental(model._exec, {model.inputs[0].name: x}, [model.outputs[0].name])
            full, part = mac_bound(engine, boxes)
            full0, part0 = mac_bound(engine, boxes, sparse_dense=False)
            diff = float(np.nanmax(np.abs(inc.heatmap - naive.heatmap)))
            if args.no_approx:
                approx_cols = "- | - | - | -"
            else:
                approx = res["approximate"]
                ta = statistics.median(times["approximate"]) * per["approximate"]
                rc = rank_corr(approx.heatmap.ravel(), naive.heatmap.ravel())
                err = approx.error
                true_err = float(np.nanmax(np.abs(approx.heatmap - naive.heatmap)))
                reported = "-" if err is None else f"{err['max_abs_error']:.1e} ({err['sampled_positions']})"
                approx_cols = f"{ta:.2f} | {tn / ta:.2f}x | {rc:.3f} | {reported} / {true_err:.1e}"
            cap_t = captum_time(name, x, patch, stride, threads) if not args.no_captum and args.rows is None \
                else None
            bound = full / part
            print(f"| {name} | {patch}:{stride} | {done} | {tn:.2f} | {ti:.2f} | {tn / ti:.2f}x | {bound:.2f}x | "
                  f"{full0 / part0:.2f}x | {100 * tn / ti / bound:.0f}% | {diff:.1e} | {approx_cols} | "
                  f"{'-' if cap_t is None else f'{cap_t:.2f}'} | {load_txt} |", flush=True)
            if not args.no_approx:
                print(f"<!-- {name} {setting} approximate: {res['approximate'].timings.get('approximate')} -->",
                      flush=True)


if __name__ == "__main__":
    main()
