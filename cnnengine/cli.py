"""The `cnnengine` command line: run, info, convert.

Every failure a user can cause prints one line on stderr and exits 2
(argparse's own convention); --debug shows the traceback instead.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
from .preprocess import guess_preprocess
from .scores import probabilities

DEFAULT_MODEL = "efficientnet_lite0"


def _default_image():
    return os.path.join(os.path.dirname(__file__), "data", "cat.jpg")


def _add_preprocess_flags(p):
    g = p.add_argument_group("preprocessing (defaults come from the model's metadata)")
    g.add_argument("--resize", type=int, help="resize the shorter side to this many pixels")
    g.add_argument("--crop", type=int, help="centre crop to this square size")
    g.add_argument("--mean", type=float, nargs="+", help="per-channel mean (after scaling)")
    g.add_argument("--std", type=float, nargs="+", help="per-channel standard deviation")
    g.add_argument("--channels", choices=["RGB", "BGR", "L"], help="channel order")
    g.add_argument("--scale", type=float, help="pixel scale before mean/std (default 1/255)")
    g.add_argument("--labels", help="text file with one class label per line")


def _add_backend_flag(p):
    from .backend import names
    p.add_argument("--backend", choices=names(), default="cpu",
                   help="where to run (ce.backends() says which are available here); default cpu")


def build_parser():
    parser = argparse.ArgumentParser(prog="cnnengine", description="Run and inspect CNNs on the CPU.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="classify images (default: the bundled photo with EfficientNet-Lite0)")
    p.add_argument("model", nargs="?", default=None, help="model file or zoo name (default efficientnet_lite0)")
    p.add_argument("images", nargs="*", help="image files, folders (searched recursively for image files) or "
                   "quoted globs (default: the bundled sample photo)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    p.add_argument("--threads", type=int, default=None, help="threads (default or 0: all cores; more than the cores is clamped to them)")
    _add_backend_flag(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    from . import cli_batch
    cli_batch.add_run_flags(p)
    _add_preprocess_flags(p)

    p = sub.add_parser("info", help="layer table: shapes, params, MACs, receptive fields")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    p.add_argument("--passes", action="store_true",
                   help="the graph after each rewrite pass: node count and what the pass changed")
    _add_backend_flag(p)

    p = sub.add_parser("bench", help="latency, throughput and memory, optionally against ONNX Runtime or PyTorch")
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=None, help="threads (default or 0: all cores)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compare", choices=["onnxruntime", "torch"], default=None,
                   help="a peer timed interleaved with ours: ONNX Runtime, or PyTorch eager on the GPU "
                        "(cuDNN; the torchvision architecture named by the model's file stem)")
    p.add_argument("--layers", action="store_true", help="per-step time breakdown, each step marked C, shape or numpy (what runs it)")
    _add_backend_flag(p)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("view", help="desktop app: layers, feature maps, filters, receptive fields")
    p.add_argument("model", nargs="?", default=None, help="model file or zoo name (default efficientnet_lite0)")
    p.add_argument("image", nargs="?", default=None, help="image file (default: the bundled sample photo)")
    p.add_argument("image2", nargs="?", default=None, help="second image, for the compare tab")
    p.add_argument("--size", type=_window_size, metavar="WxH", help="window size in pixels, e.g. 1000x700")
    p.add_argument("--layer", help="layer to show first")
    p.add_argument("--channel", type=int, metavar="C", help="channel of that layer to select")
    # checked against the tabs this build's window registers (an unknown one is a one-line error)
    p.add_argument("--tab", metavar="NAME", default=None,
                   help="tab to open: maps, filters, graph, patches, compute, compare, deconvnet, occlusion "
                        "(occlusion with --screenshot runs the map first)")
    p.add_argument("--patches-from", metavar="FOLDER", default=None,
                   help="folder of images for the top-activating patches tab")
    p.add_argument("--screenshot", metavar="OUT.png", help="render (offscreen without a display), save, exit")

    p = sub.add_parser("convert", help="ONNX or PyTorch state dict -> native file")
    p.add_argument("src")
    p.add_argument("dst")
    _add_preprocess_flags(p)

    from . import cli_occlude
    cli_occlude.add_parser(sub, _add_backend_flag, _add_preprocess_flags)
    for p in sub.choices.values():
        # --debug is accepted after the subcommand too; SUPPRESS keeps a
        # --debug given before it from being reset by the subparser's default
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import Error
    try:
        check_numbers(args)
        return {"run": cmd_run, "info": cmd_info, "convert": cmd_convert, "bench": cmd_bench,
                "view": cmd_view, "occlude": cmd_occlude}[args.command](args)
    except Error as exc:
        if args.debug:
            raise
        print(f"cnnengine: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnengine: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


# numeric option -> its smallest allowed value
_LOWER_BOUNDS = {"top": 1, "batch": 1, "runs": 1, "warmup": 0, "resize": 1, "crop": 1, "threads": 0}


def check_numbers(args):
    """Refuse numeric options no run can mean (NaN, infinities, negative
    counts) with one InputError line, whatever the subcommand.

    --threads: 0 means all cores, as leaving it out does (run and bench
    alike); more than the machine's cores is clamped to the cores with a note
    on stderr, since the kernels never run more threads than cores anyway."""
    from ._kernels import num_cores
    from .errors import InputError

    for key, low in _LOWER_BOUNDS.items():
        v = getattr(args, key, None)
        if v is not None and v < low:
            raise InputError(f"--{key} must be at least {low}, got {v}")
    for key in ("scale", "mean", "std"):
        v = getattr(args, key, None)
        if v is None:
            continue
        vals = v if isinstance(v, list) else [v]
        if not all(np.isfinite(vals)):
            raise InputError(f"--{key} must be finite, got {' '.join(map(str, vals))}")
        if key != "mean" and min(vals) <= 0:
            raise InputError(f"--{key} must be greater than 0, got {' '.join(map(str, vals))}")
    threads = getattr(args, "threads", None)
    if threads == 0:
        args.threads = None
    elif threads is not None and threads > num_cores():
        print(f"cnnengine: note: --threads {threads} is more than this machine's {num_cores()} cores; "
              f"using {num_cores()}", file=sys.stderr)
        args.threads = num_cores()


# ------------------------------------------------------------------- run
def _split_model_and_images(args):
    model, images = args.model, list(args.images)
    if model is not None and model.lower().endswith(IMAGE_EXTS):
        images.insert(0, model)
        model = None
    return model or DEFAULT_MODEL, images or [_default_image()]


def _preprocess_from(args, model):
    pre = dict(model.preprocess or {})
    if not pre:
        pre = guess_preprocess(model)
    for key in ("resize", "crop", "mean", "std", "channels", "scale"):
        v = getattr(args, key, None)
        if v is not None:
            pre[key] = v
    if "crop" in pre and "resize" not in pre:
        pre["resize"] = pre["crop"]
    return pre


def _labels(args, model, n):
    from .errors import InputError
    if getattr(args, "labels", None):
        try:
            with open(args.labels, encoding="utf-8") as f:
                labels = [line.rstrip("\r\n") for line in f]
        except OSError as exc:
            raise InputError(f"{args.labels}: cannot read labels ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise InputError(f"{args.labels}: not a UTF-8 text file of labels") from None
        while labels and not labels[-1].strip():
            labels.pop()
        # a count that differs from the classes is a wrong file (or one shifted
        # by a background class): every label printed would be wrong
        if n >= 0 and len(labels) != n:
            raise InputError(f"{args.labels}: {len(labels)} labels, but the model has {n} classes "
                             f"(one label per line, in class order)")
        return labels
    labels = model.labels
    return labels if labels and len(labels) == n else None


def cmd_run(args):
    import cnnengine as ce
    from .errors import InputError
    from .preprocess import load_image
    from . import cli_batch

    if cli_batch.is_batch_run(args):    # folders, globs, --batch, --out, --dask
        return cli_batch.cmd_run_batch(args, _split_model_and_images, _preprocess_from, _labels,
                                       DEFAULT_MODEL, _default_image())
    model_name, images = _split_model_and_images(args)
    if args.top < 1:
        raise InputError("--top must be at least 1")
    model = ce.load(model_name, backend=args.backend, threads=args.threads)
    pre = _preprocess_from(args, model)
    results = []
    for path in images:
        x = load_image(path, pre)
        t0 = time.perf_counter()
        y = model.run(x)
        ms = (time.perf_counter() - t0) * 1e3
        if isinstance(y, dict):
            y = next(iter(y.values()))
        probs = probabilities(np.asarray(y)[0] if np.ndim(y) > 1 else np.asarray(y))
        labels = _labels(args, model, probs.size)
        order = np.argsort(-probs, kind="stable")[: args.top]
        top = [{"index": int(i), "label": labels[i] if labels else str(int(i)), "prob": float(probs[i])}
               for i in order]
        results.append({"image": path, "top": top, "ms": round(ms, 3)})
    threads = model.threads or ce.num_cores()
    if args.json:
        print(json.dumps({"model": model_name, "backend": args.backend, "threads": threads, "results": results}))
        return 0
    for r in results:
        print(f"{r['image']}  ({model_name}, {r['ms']:.1f} ms, {threads} threads)")
        for t in r["top"]:
            print(f"  {t['prob'] * 100:6.2f}%  {t['label']}  [{t['index']}]")
    return 0


def cmd_occlude(args):
    from .cli_occlude import cmd_occlude as run
    return run(args, _preprocess_from, _labels)


# ------------------------------------------------------------------ info
def cmd_info(args):
    import cnnengine as ce
    from .summary import format_table

    model = ce.load(args.model, backend=args.backend, prepare=False)   # info never runs the fast plan
    if args.passes:
        return _print_passes(args, model)
    layers = model.summary()
    if args.json:
        doc = {
            "model": args.model,
            "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in model.inputs],
            "outputs": [{"name": o.name, "shape": list(o.shape), "dtype": o.dtype} for o in model.outputs],
            "layers": [{"name": l.name, "op": l.op, "output_shape": list(l.output_shape), "params": l.params,
                        "macs": l.macs, "receptive_field": l.receptive_field,
                        "input_shapes": [list(s) for s in l.input_shapes]} for l in layers],
            "total_params": sum(l.params for l in layers),
            "total_macs": sum(l.macs for l in layers),
        }
        print(json.dumps(doc))
        return 0
    print(format_table(layers, title=args.model))
    return 0


def _print_passes(args, model):
    reports = list(model.passes) + [model.layout_report()]
    if args.json:
        print(json.dumps({"model": args.model, "passes": [
            {"name": r.name, "nodes": r.nodes, "change": r.change} for r in reports]}))
        return 0
    print(f"{args.model}: the graph after each pass (the layout pass at the declared input shape)")
    width = max(len(r.name) for r in reports)
    for r in reports:
        print(f"  {r.name:<{width}}  {r.nodes:5d} nodes  {r.change or 'no change'}")
    return 0


# --------------------------------------------------------------- convert
def cmd_convert(args):
    import cnnengine as ce
    from .errors import InputError

    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        raise InputError("convert: source and destination are the same file")
    model = ce.load(args.src, prepare=False)
    pre = dict(model.preprocess or {})
    for key in ("resize", "crop", "mean", "std", "channels", "scale"):
        v = getattr(args, key, None)
        if v is not None:
            pre[key] = v
    if pre:
        model.graph.metadata["preprocess"] = pre
        model._original.metadata["preprocess"] = pre
    if args.labels:
        labels = _labels(args, model, -1)
        model.graph.metadata["labels"] = labels
        model._original.metadata["labels"] = labels
    try:
        model.save(args.dst)
    except OSError as exc:
        raise InputError(f"{args.dst}: cannot write ({exc.strerror})") from None
    size = os.path.getsize(args.dst)
    print(f"wrote {args.dst} ({size / 1e6:.1f} MB, {len(model.layers)} layers)")
    return 0


# ----------------------------------------------------------------- bench
def cmd_bench(args):
    from . import bench

    r = bench.bench(args.model, threads=args.threads, batch=args.batch, runs=args.runs,
                    warmup=args.warmup, compare=args.compare, memory=not args.no_memory,
                    backend=args.backend)
    if args.layers:
        import cnnengine as ce
        model = ce.load(args.model, threads=r["threads"], backend=args.backend)
        x = bench.input_for(model, args.batch)
        kinds = {n: k for n, _, k in model.kernels(x)}
        r["layers"] = [{"name": n, "op": op, "ms": t * 1e3, "kernel": kinds.get(n, "numpy")}
                       for n, op, t in model.profile(x, runs=args.runs)]
    if args.json:
        print(bench.to_json(r))
        return 0
    print(bench.format_result(r))
    if args.layers:
        print(bench.format_layers([(l["name"], l["op"], l["ms"] / 1e3) for l in r["layers"]],
                                  kernels={l["name"]: l["kernel"] for l in r["layers"]}))
    return 0


# ------------------------------------------------------------------ view
def _window_size(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1000x700") from None
    if not (320 <= w <= 10000 and 240 <= h <= 10000):
        raise argparse.ArgumentTypeError(f"--size {text!r}: width 320-10000, height 240-10000 pixels")
    return w, h


def cmd_view(args):
    from .errors import InputError
    from .viewer import main as view_main   # lazy: PyQt6 is an optional extra

    model, image, image2 = args.model, args.image, args.image2
    if model is not None and model.lower().endswith(IMAGE_EXTS):     # view IMAGE [IMAGE2]: default model
        if image2 is not None:
            raise InputError(f"view: {image2}: expected MODEL [IMAGE [IMAGE2]], and the first is an image")
        model, image, image2 = None, model, image
    if image2 is not None and not os.path.isfile(image2):
        raise InputError(f"{image2}: no such image file (the second image, for the compare tab)")
    if args.patches_from is not None:
        from .viewer.patches import folder_images
        folder_images(args.patches_from)      # a missing or empty folder: exit 2 before the window opens
    rc = view_main(model=model, image=image, layer=args.layer, screenshot=args.screenshot, tab=args.tab,
                   channel=args.channel, size=args.size, image2=image2, patches_from=args.patches_from)
    # Leave without running destructors: tearing down Qt, pyqtgraph and the
    # worker/OpenMP threads at interpreter exit can segfault after the work is
    # done (seen under load; pyqtgraph.exit() exists for the same reason).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
