"""`cnnengine run` over folders and globs, and `cnnengine occlude` over many images.

A run is a batch run when an image argument is a folder or a glob, or when
--batch, --out or --dask is given; otherwise `run` behaves as it always has.
Folders are searched recursively for files with an image extension; globs
are expanded here too (quote them to skip the shell: "photos/**/*.jpg").

Exit codes: 0 when every image was scored (this run or an earlier one
recorded in --out); 1 when the run finished but some images could not be read
(listed on stderr, then a count); 2 for errors that stop the run (bad model,
flag, --out file, no images found, cluster failures), as everywhere else.
"""
import json
import logging
import os
import sys

EXIT_SOME_FAILED = 1


def add_run_flags(p):
    g = p.add_argument_group("many images (folders, globs, result files, Dask)",
                             "A folder is searched recursively for image files. Exit code 0: every image was "
                             "scored; 1: some could not be read (listed on stderr); 2: the run could not go on.")
    g.add_argument("--batch", type=int, default=None, help="images per inference batch (default 16)")
    g.add_argument("--out", metavar="RESULTS", help="write one row per image to .jsonl, .csv or .parquet; "
                   "an existing file is resumed (its images are skipped)")
    g.add_argument("--dask", metavar="ADDRESS|local:N", help="spread the images over a Dask cluster: a "
                   "scheduler address (tcp://host:8786) or local:N for a LocalCluster of N worker processes")
    g.add_argument("--decode-threads", type=int, default=None,
                   help="threads decoding images ahead of inference (default half the cores, 1 to 4)")


def add_occlude_flags(p):
    p.add_argument("--out-dir", metavar="DIR", help="many images: write IMAGE.heat.png and IMAGE.heat.json per "
                   "image under DIR (mirroring the folders); images whose .json exists are skipped")
    p.add_argument("--dask", metavar="ADDRESS|local:N", help="spread the images over a Dask cluster "
                   "(scheduler address or local:N)")


def _is_many(item):
    from .batch import _is_many
    return item is not None and _is_many(item)


def is_batch_run(args):
    return bool(args.batch is not None or args.out or args.dask or
                any(_is_many(x) for x in [args.model] + list(args.images)))


def is_batch_occlude(args):
    return bool(len(args.image) > 1 or args.out_dir or args.dask or any(_is_many(x) for x in args.image))


# ---------------------------------------------------------------- Dask
def connect(spec):
    """(client, cluster) for --dask: local:N starts a LocalCluster of N processes."""
    from .batch import ClusterError
    from .errors import InputError
    if not spec:
        return None, None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("--dask needs dask.distributed: pip install 'cnnengine[dask]'") from None
    if spec.startswith("local:") or spec == "local":
        n = spec.partition(":")[2] or str(os.cpu_count() or 1)
        if not n.isdigit() or not 1 <= int(n) <= 512:
            raise InputError(f"--dask {spec}: expected local:N with N a number of workers from 1 to 512")
        try:
            cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
        except Exception as exc:     # spawning processes can fail in many ways
            raise ClusterError(f"--dask {spec}: cannot start a LocalCluster ({type(exc).__name__}: {exc})") from None
        return Client(cluster), cluster
    try:
        return Client(spec, timeout="10s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"--dask {spec}: cannot reach the Dask scheduler ({' '.join(str(exc).split())})") from None


def _local_workers(spec):
    if spec and (spec.startswith("local:") or spec == "local"):
        n = spec.partition(":")[2]
        return int(n) if n.isdigit() and int(n) > 0 else (os.cpu_count() or 1)
    return None


def _close(client, cluster):
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception:    # closing a cluster that is already gone
                pass


def _split(args, default_model, default_image):
    from .batch import IMAGE_EXTS
    model, images = args.model, list(args.images) if hasattr(args, "images") else list(args.image)
    if model is not None and (model.lower().endswith(IMAGE_EXTS) or _is_many(model)):
        images.insert(0, model)
        model = None
    return model or default_model, images or [default_image]


def _bar(total, desc):
    from tqdm import tqdm
    return tqdm(total=total, unit="img", file=sys.stderr, desc=desc, mininterval=0.5, leave=False,
                dynamic_ncols=True)


def _report_failures(errors, total, what="could not be read"):
    for e in errors:
        print(f"  {e['error']}", file=sys.stderr)
    print(f"cnnengine: {len(errors)} of {total} images {what} (listed above)", file=sys.stderr)
    return EXIT_SOME_FAILED


def _check_counts(args):
    from .errors import InputError
    if args.top < 1:
        raise InputError("--top must be at least 1")
    for flag, v in (("--batch", args.batch), ("--threads", args.threads),
                    ("--decode-threads", getattr(args, "decode_threads", None))):
        if v is not None and v < 1:
            raise InputError(f"{flag} must be at least 1")


# ----------------------------------------------------------------- run
def cmd_run_batch(args, split_model_and_images, preprocess_from, labels_of, default_model, default_image):
    import time

    import cnnengine as ce
    from .batch import expand_paths
    from .batch_out import Sink

    _check_counts(args)
    model_name, images = _split(args, default_model, default_image)
    paths = expand_paths(images)
    n_local = _local_workers(args.dask)
    threads = args.threads if args.threads is not None or not n_local else max(1, ce.num_cores() // n_local)
    model = ce.load(model_name, backend=args.backend, threads=threads)
    pre = preprocess_from(args, model)
    labels = labels_of(args, model, -1) if args.labels else None
    sink = Sink(args.out, args.top) if args.out else None
    skip = set(sink.done) if sink else set()
    client = cluster = bar = None
    results, errors, shown = [], [], 0
    t0 = time.perf_counter()
    try:
        client, cluster = connect(args.dask)
        run = ce.batch_run(model, paths, batch=args.batch or 16, top=args.top, client=client, labels=labels,
                           preprocess=pre, skip=skip, workers=args.decode_threads)
        bar = _bar(run.total, "run" if not run.skipped else f"run ({run.skipped} done before)")
        threads_shown = model.threads or ce.num_cores()
        for r in run:
            if "error" in r:
                errors.append(r)
                bar.set_postfix(unreadable=len(errors), refresh=False)
            elif sink is not None:
                sink.write(r)
            if args.json:
                if "error" not in r:
                    results.append(r)
            elif sink is None and "error" not in r:
                lines = [f"{r['image']}  ({model_name}, {r['ms']:.1f} ms, {threads_shown} threads)"]
                lines += [f"  {t['prob'] * 100:6.2f}%  {t['label']}  [{t['index']}]" for t in r["top"]]
                bar.write("\n".join(lines), file=sys.stdout)
            shown += 1
            bar.update(1)
            if sink is not None and shown % (args.batch or 16) == 0:
                sink.flush()
    finally:
        if bar is not None:
            bar.close()
        try:
            if sink is not None:
                sink.close()
        finally:
            _close(client, cluster)
    secs = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"model": model_name, "backend": args.backend, "threads": model.threads or ce.num_cores(),
                          "results": results, "errors": errors, "resumed": run.skipped, "out": args.out,
                          "dask": args.dask}))
    scored = shown - len(errors)
    note = f"; {run.skipped} already in {args.out}" if run.skipped else ""
    print(f"cnnengine: scored {scored} images in {secs:.1f} s ({scored / max(secs, 1e-9):.1f} images/s){note}"
          + (f"; wrote {args.out}" if args.out else ""), file=sys.stderr)
    if errors:
        return _report_failures(errors, len(paths))
    return 0


# ------------------------------------------------------------- occlude
def _heat_names(paths, out_dir):
    """IMAGE -> OUT_DIR/IMAGE.heat (.png, .json): the image's path relative to the
    current folder (absolute paths outside it: without the leading /), so the
    same image maps to the same files whatever else a run is given."""
    cwd = os.getcwd()
    names = {}
    for p in paths:
        a = os.path.abspath(p)
        rel = os.path.relpath(a, cwd)
        if rel == ".." or rel.startswith(".." + os.sep):
            rel = os.path.splitdrive(a)[1].lstrip(os.sep)
        names[p] = os.path.join(out_dir, rel + ".heat")
    return names


def _write_atomic(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def cmd_occlude_batch(args, preprocess_from, labels_of, parse_target, check_patch_and_fill):
    import cnnengine as ce
    from .batch import expand_paths
    from .errors import InputError

    fill = check_patch_and_fill(args)
    if args.out:
        raise InputError("--out names one PNG; for many images use --out-dir DIR")
    if not args.out_dir:
        raise InputError("occlude over many images needs --out-dir DIR (one .heat.png and .heat.json per image)")
    target = parse_target(args.target, labels_of)
    paths = expand_paths(args.image)
    names = _heat_names(paths, args.out_dir)
    skip = {p for p in paths if os.path.exists(names[p] + ".json")}
    n_local = _local_workers(args.dask)
    threads = args.threads if args.threads is not None or not n_local else max(1, ce.num_cores() // n_local)
    model = ce.load(args.model, backend=args.backend, threads=threads)
    pre = preprocess_from(args, model)
    client = cluster = bar = None
    done, errors = [], []
    try:
        client, cluster = connect(args.dask)
        run = ce.batch_occlusion(model, paths, client=client, preprocess=pre, skip=skip, patch=args.patch,
                                 stride=args.stride, fill=fill, target=target, mode=args.mode, batch=args.batch)
        bar = _bar(run.total, "occlude" if not skip else f"occlude ({len(skip)} done before)")
        for r in run:
            if "error" in r:
                errors.append(r)
                bar.set_postfix(failed=len(errors), refresh=False)
            else:
                base = names[r["image"]]
                doc = dict(r["result"], image=r["image"], model=args.model, backend=args.backend)
                try:
                    _write_atomic(base + ".png", r["png"])
                    _write_atomic(base + ".json", json.dumps(doc).encode())
                except OSError as exc:
                    raise InputError(f"{base}.json: cannot write ({exc.strerror or exc})") from None
                done.append({"image": r["image"], "target": doc["target"], "baseline_prob": doc["baseline_prob"],
                             "png": base + ".png", "json": base + ".json"})
                if not args.json:
                    bar.write(f"{r['image']}: target {doc['target']}, probability {doc['baseline_prob']:.4f} "
                              f"-> {base}.png", file=sys.stdout)
            bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        _close(client, cluster)
    if args.json:
        print(json.dumps({"model": args.model, "results": done, "errors": errors, "resumed": len(skip),
                          "out_dir": args.out_dir}))
    else:
        print(f"cnnengine: {len(done)} heatmaps written under {args.out_dir}"
              + (f"; {len(skip)} were there already" if skip else ""), file=sys.stderr)
    if errors:
        return _report_failures(errors, len(paths), "could not be read or occluded")
    return 0
