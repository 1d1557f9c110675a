"""`cnnengine occlude`: an occlusion sensitivity map of one image (ce.occlusion)."""
import json
import sys


def add_parser(sub, add_backend_flag, add_preprocess_flags):
    p = sub.add_parser("occlude", help="occlusion sensitivity map: how much each image region matters")
    p.add_argument("model", help="model file or zoo name")
    p.add_argument("image", nargs="+", help="image file; or several, folders or globs with --out-dir")
    p.add_argument("--patch", type=int, default=16, help="patch size in input pixels (default 16)")
    p.add_argument("--stride", type=int, default=8, help="step between patch positions (default 8)")
    p.add_argument("--fill", default="mean", help="mean, zero, blur or a number (default mean)")
    p.add_argument("--target", default=None,
                   help="class index (default: the top-1), or LAYER:CHANNEL for one channel's activation")
    p.add_argument("--mode", choices=["naive", "incremental", "approximate"], default="incremental")
    p.add_argument("--batch", type=int, default=None, help="patch positions per batch")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    p.add_argument("--out", metavar="HEAT.png", help="write the heatmap over the image as a PNG")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    from .cli_batch import add_occlude_flags
    add_occlude_flags(p)
    add_backend_flag(p)
    add_preprocess_flags(p)


def check_patch_and_fill(args):
    """--patch/--stride at least 1; --fill as occlusion() takes it (occlusion.parse_fill)."""
    from .errors import InputError
    if args.patch < 1 or args.stride < 1:
        raise InputError("--patch and --stride must be at least 1")
    from .occlusion import parse_fill
    return parse_fill(args.fill)


def _target(text, labels_of):
    from .errors import InputError
    if text is None:
        return None
    if ":" in text:
        layer, _, channel = text.rpartition(":")
        try:
            return (layer, int(channel))
        except ValueError:
            raise InputError(f"--target {text!r}: expected LAYER:CHANNEL with an integer channel") from None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--target {text!r}: expected a class index or LAYER:CHANNEL") from None


def cmd_occlude(args, preprocess_from, labels_of):
    import cnnengine as ce
    from tqdm import tqdm

    from .errors import InputError
    from .occlusion.render import overlay_png
    from .preprocess import load_image
    from . import cli_batch

    if cli_batch.is_batch_occlude(args):    # several images, folders, globs, --out-dir, --dask
        return cli_batch.cmd_occlude_batch(args, preprocess_from, labels_of, _target, check_patch_and_fill)
    args.image = args.image[0]
    fill = check_patch_and_fill(args)
    target = _target(args.target, labels_of)
    model = ce.load(args.model, backend=args.backend, threads=args.threads)
    pre = preprocess_from(args, model)
    x = load_image(args.image, pre)
    bars = []      # made at the first batch: errors before it print no bar

    def progress(done, total, heat):
        if not bars:
            bars.append(tqdm(total=total, unit="pos", file=sys.stderr, desc="occlude", mininterval=0.25,
                             leave=False))
        bars[0].update(done - bars[0].n)

    try:
        r = ce.occlusion(model, x, patch=args.patch, stride=args.stride, fill=fill, target=target,
                         mode=args.mode, batch=args.batch, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    if args.out:
        try:
            overlay_png(args.out, x, pre, r)
        except OSError as exc:
            raise InputError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        doc = r.to_json()
        doc.update(model=args.model, image=args.image, backend=args.backend)
        print(json.dumps(doc))
        return 0
    target = r.target
    if isinstance(target, int):
        labels = labels_of(args, model, -1) if getattr(args, "labels", None) else (model.labels or None)
        name = labels[target] if labels and target < len(labels) else f"class {target}"
        what = f"{name} [{target}], probability {r.baseline_prob:.4f}"
    else:
        what = f"layer {target[0]!r} channel {target[1]}, activation {r.baseline_prob:.4g}"
    heat = r.heatmap
    i, j = divmod(int(heat.argmax()), heat.shape[1])
    print(f"{args.image}: {what}")
    print(f"  {heat.shape[0]}x{heat.shape[1]} positions (patch {r.patch}, stride {r.stride}, {r.mode}) "
          f"in {r.seconds:.2f} s ({r.timings['ms_per_position']:.1f} ms per position)")
    print(f"  largest drop {float(heat.max()):.4g} with the patch at row {i * r.stride}, col {j * r.stride}")
    if r.error:
        corr = r.error.get("rank_corr")
        print(f"  approximate: max abs error {r.error['max_abs_error']:.3g}"
              f"{'' if corr is None else f', rank correlation {corr:.3f},'} on "
              f"{r.error['sampled_positions']} positions checked against naive")
    if args.out:
        print(f"  wrote {args.out}")
    return 0
