"""Batch inference over many images, in one process or across a Dask cluster.

    import cnnengine as ce
    for r in ce.batch_run("lenet5", "digits/", batch=32):
        print(r["image"], r["top"][0]["label"])          # or r["error"]
    df = ce.to_dataframe(ce.batch_run(model, paths))     # needs pandas

One process: images are decoded (Pillow, the model's preprocessing) by a pool
of threads that runs a few batches ahead of inference, so decoding overlaps
the network. With ``client`` (a ``dask.distributed.Client``): the path list is
cut into partitions, each scored on a worker by the same pipeline; the model
travels as its pickled source (a path or zoo name and options, see
``Model.__reduce__``), once, as one task that every partition depends on, and
is built once per worker process (a module-level cache keyed by a digest of
that source). Results come back in input order. A worker lost mid-job loses
nothing: Dask reruns the partitions it was running or holding, and each
partition is gathered once, so each image appears exactly once.
"""
import glob
import hashlib
import os
import pickle
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import Error, InputError

__all__ = ["batch_run", "batch_occlusion", "to_dataframe", "expand_paths", "BatchRun", "ClusterError",
           "IMAGE_EXTS"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ClusterError(Error, RuntimeError):
    """Dask is missing, the scheduler cannot be reached, or the cluster failed a job."""


# ------------------------------------------------------------------ paths
def expand_paths(inputs):
    """Image paths from files, folders and glob patterns, in order, without duplicates.

    A folder is searched recursively for files with an image extension
    (IMAGE_EXTS, any case), skipping names that start with "."; a glob
    (``*``, ``?``, ``[..]``; ``**`` recurses) keeps the image files it
    matches; both are sorted. A file named explicitly is kept whatever its
    extension. A folder or glob with no images, or a missing file, is an
    InputError."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out, seen = [], set()
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [os.path.join(root, f) for f in files
                          if not f.startswith(".") and f.lower().endswith(IMAGE_EXTS)]
            if not found:
                raise InputError(f"{item}: no image files in this folder ({', '.join(IMAGE_EXTS)})")
            found.sort()
        elif os.path.isfile(item):
            found = [item]
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True)
                           if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTS))
            if not found:
                raise InputError(f"{item}: the pattern matches no image files")
        else:
            raise InputError(f"{item}: no such file or folder")
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def _is_many(item):
    item = os.fspath(item)
    return os.path.isdir(item) or (glob.has_magic(item) and not os.path.exists(item))


# ---------------------------------------------------------- preprocessing
def resolve_preprocess(model, preprocess=None):
    """The model's preprocessing (ImageNet conventions sized to its input when
    it has none), with the keys of `preprocess` overriding it."""
    from .preprocess import guess_preprocess
    from .preprocess import validate
    pre = dict(model.preprocess or {}) or guess_preprocess(model)
    if preprocess:
        pre.update({k: v for k, v in preprocess.items() if v is not None})
    if pre.get("crop") is not None and pre.get("resize") is None:
        pre["resize"] = pre["crop"] if isinstance(pre["crop"], int) else min(pre["crop"])
    return validate(pre)


def _paths(paths):
    """A list of image paths: folders and globs expanded (expand_paths)."""
    if isinstance(paths, (str, os.PathLike)):
        return expand_paths(paths)
    try:
        paths = [os.fspath(p) for p in paths]
    except TypeError:
        raise InputError("paths must be a path, a folder, a glob or an iterable of them") from None
    return expand_paths(paths) if any(_is_many(p) for p in paths) else paths


def _load(model):
    if isinstance(model, (str, os.PathLike)):
        from .model import load
        return load(model)
    from .model import Model
    if not isinstance(model, Model):
        raise InputError(f"batch_run: model must be a cnnengine Model or a path/zoo name, "
                         f"got {type(model).__name__}")
    return model


def _check(batch, top, workers):
    for name, v in (("batch", batch), ("top", top)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(f"batch_run: {name} must be a positive integer, got {v!r}")
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise InputError(f"batch_run: workers must be a positive integer or None, got {workers!r}")


# ------------------------------------------------------------- the scorer
class Stats:
    """Where the time went: decode (summed over decode threads), inference,
    images scored and failed, model loads (per worker process with Dask)."""

    def __init__(self):
        self.decode_s = self.infer_s = 0.0
        self.images = self.errors = self.batches = self.model_loads = 0
        self.wall_s = 0.0

    def add(self, d):
        for k in ("decode_s", "infer_s", "images", "errors", "batches", "model_loads"):
            setattr(self, k, getattr(self, k) + d[k])

    def as_dict(self):
        return {k: getattr(self, k) for k in ("decode_s", "infer_s", "images", "errors", "batches",
                                              "model_loads", "wall_s")}

    def __repr__(self):
        return f"Stats({self.as_dict()})"


def default_decode_threads():
    """Half the cores, 1 to 4: decoding shares the cores with the model's
    threads (on 2 loaded cores one decode thread beat two and four)."""
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def _decode(path, pre):
    from .preprocess import load_image
    t0 = time.perf_counter()
    try:
        x, err = load_image(path, pre), None
    except InputError as exc:
        x, err = None, " ".join(str(exc).split())
    except Exception as exc:   # a Pillow plugin's own failure: report it, keep going
        x, err = None, f"{path}: cannot read image ({type(exc).__name__}: {exc})"
    return x, err, time.perf_counter() - t0


def _top(row, labels, top):
    from .scores import probabilities          # the same numbers as `cnnengine run`
    probs = probabilities(np.asarray(row))
    order = np.argsort(-probs, kind="stable")[:top]
    use = labels if labels is not None and len(labels) == probs.size else None
    return [{"index": int(i), "label": use[i] if use else str(int(i)), "prob": float(probs[i])} for i in order]


def _score(model, paths, pre, labels, top, batch, workers, stats, prefetch=2):
    """Yield one result per path, in order: decode threads run `prefetch`
    batches ahead of inference."""
    if labels is None:
        labels = model.labels
    pool = ThreadPoolExecutor(max_workers=workers or default_decode_threads(),
                              thread_name_prefix="cnnengine-decode")
    pending, it = deque(), iter(paths)
    ahead = batch * (prefetch + 1)

    def fill():
        while len(pending) < ahead:
            p = next(it, None)
            if p is None:
                return
            pending.append((p, pool.submit(_decode, p, pre)))

    try:
        while True:
            fill()
            if not pending:
                return
            group = [pending.popleft() for _ in range(min(batch, len(pending)))]
            fill()                         # the next batches decode while this one runs
            decoded = [(p, *f.result()) for p, f in group]
            out = [None] * len(decoded)
            by_shape = {}
            for i, (p, x, err, dt) in enumerate(decoded):
                stats.decode_s += dt
                if x is None:
                    out[i] = {"image": p, "error": err}
                    stats.errors += 1
                else:
                    by_shape.setdefault(x.shape, []).append(i)
            for idx in by_shape.values():  # images of one size form one batch
                xb = np.concatenate([decoded[i][1] for i in idx]) if len(idx) > 1 else decoded[idx[0]][1]
                t0 = time.perf_counter()
                y = model.run(xb)
                dt = time.perf_counter() - t0
                if isinstance(y, dict):
                    y = next(iter(y.values()))
                y = np.asarray(y).reshape(len(idx), -1)
                stats.infer_s += dt
                stats.batches += 1
                ms = round(dt * 1e3 / len(idx), 3)
                for k, i in enumerate(idx):
                    out[i] = {"image": decoded[i][0], "top": _top(y[k], labels, top), "ms": ms}
                stats.images += len(idx)
            yield from out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------- the public iterator
class BatchRun:
    """The iterator batch_run returns: results in input order; `.total` images
    to score (after `skip`), `.skipped`, and `.stats` (a Stats, final once
    the iterator is exhausted)."""

    def __init__(self, gen, total, skipped, stats):
        self._gen, self.total, self.skipped, self.stats = gen, total, skipped, stats

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def __len__(self):
        return self.total

    def close(self):
        self._gen.close()


def batch_run(model, paths, *, batch=16, top=5, client=None, labels=None, preprocess=None, skip=(),
              workers=None, partition_size=None):
    """Score many images: an iterator of per-image results in input order.

    model: a Model, or a path / zoo name to load. paths: image paths, or a
    folder / glob / list of them (expanded by expand_paths). Each result is
    the ``results`` item of ``cnnengine run --json``: ``{"image", "top":
    [{"index", "label", "prob"}], "ms"}`` where ms is the batch's inference
    time divided by its images; an unreadable image gives ``{"image",
    "error"}`` instead and the run goes on. batch: images per model.run.
    top: classes per image. labels: class names (default: the model's).
    preprocess: keys overriding the model's preprocessing. skip: paths to
    leave out (already scored). workers: decode threads (default half the
    cores, 1 to 4). client: a dask.distributed.Client to spread the work over;
    partition_size: images per Dask task (default 4 * batch)."""
    _check(batch, top, workers)
    model = _load(model)
    paths = _paths(paths)
    skip = set(skip)
    todo = [p for p in paths if p not in skip]
    pre = resolve_preprocess(model, preprocess)
    stats = Stats()
    labels = list(labels) if labels is not None else None
    if client is None:
        gen = _timed(_score(model, todo, pre, labels, top, batch, workers, stats), stats)
    else:
        size = partition_size or 4 * batch
        parts = [todo[i:i + size] for i in range(0, len(todo), size)]
        gen = _timed(_dask_ordered(client, model, _score_partition, parts, stats,
                                   dict(pre=pre, labels=labels, top=top, batch=batch, decode_threads=workers)), stats)
    return BatchRun(gen, len(todo), len(paths) - len(todo), stats)


def _timed(gen, stats):
    t0 = time.perf_counter()
    try:
        yield from gen
    finally:
        stats.wall_s = time.perf_counter() - t0


# ------------------------------------------------------------------ Dask
_MODELS = {}                 # digest of the pickled model -> Model, one per worker process
_MODELS_LOCK = threading.Lock()


def _identity(x):
    return x


def _worker_model(digest, recipe):
    """The model for this worker process, built from its pickle on first use."""
    with _MODELS_LOCK:
        model = _MODELS.get(digest)
        if model is not None:
            return model, 0
        model = pickle.loads(recipe)
        _MODELS[digest] = model
        return model, 1


def _score_partition(paths, *, digest, recipe, pre, labels, top, batch, decode_threads):
    model, loaded = _worker_model(digest, recipe)
    stats = Stats()
    stats.model_loads = loaded
    results = list(_score(model, paths, pre, labels, top, batch, decode_threads, stats))
    return results, stats.as_dict()


def _dask_ordered(client, model, fn, parts, stats, kwargs):
    """Run fn(part, digest=, recipe=, **kwargs) for each partition on the
    cluster; yield the results of each partition in order."""
    try:
        from distributed import Client, KilledWorker
    except ImportError:
        raise ClusterError("client= needs dask.distributed: pip install 'cnnengine[dask]'") from None
    if not isinstance(client, Client):
        raise InputError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if not parts:
        return
    recipe = pickle.dumps(model)              # the model's source and options, not its weights
    digest = hashlib.blake2b(recipe, digest_size=16).hexdigest()
    # one task holds the recipe; Dask recomputes it if every copy is lost
    recipe_f = client.submit(_identity, recipe, key=f"cnnengine-model-{digest}", pure=False)
    futures = client.map(fn, parts, pure=False, digest=digest, recipe=recipe_f, **kwargs)
    done = 0
    try:
        for f in futures:
            try:
                results, part_stats = f.result()
            except KilledWorker as exc:
                raise ClusterError(f"a partition killed its Dask worker repeatedly ({exc}); giving up") from None
            except Error:
                raise
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"lost the Dask scheduler ({type(exc).__name__}: {exc})") from None
            except Exception as exc:    # e.g. a worker without cnnengine, or another version of it
                raise ClusterError(f"a Dask task failed on a worker ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())})") from exc
            f.release()
            done += 1
            stats.add(part_stats)
            yield from results
    finally:
        rest = futures[done:]
        if rest:
            client.cancel(rest)
        recipe_f.release()


# ------------------------------------------------------ occlusion, in bulk
def batch_occlusion(model, paths, *, client=None, preprocess=None, skip=(), png=True, **occlusion_kwargs):
    """ce.occlusion over many images: an iterator, in input order, of
    ``{"image", "result": OcclusionResult.to_json(), "png": bytes or None}``
    or ``{"image", "error"}`` for an image that could not be read or
    occluded. With a Dask client one image is one task, on workers that
    build the model once each; the PNG (heatmap over the image) is rendered
    there and returned as bytes."""
    model = _load(model)
    paths = _paths(paths)
    skip = set(skip)
    todo = [p for p in paths if p not in skip]
    pre = resolve_preprocess(model, preprocess)
    stats = Stats()
    kwargs = dict(pre=pre, png=png, occlusion_kwargs=occlusion_kwargs)
    if client is None:
        gen = (r for p in todo for r in _occlude_one(model, p, stats, **kwargs))
    else:
        gen = _dask_ordered(client, model, _occlude_partition, [[p] for p in todo], stats, kwargs)
    return BatchRun(_timed(gen, stats), len(todo), len(paths) - len(todo), stats)


def _occlude_one(model, path, stats, *, pre, png, occlusion_kwargs):
    from .occlusion import occlusion
    x, err, dt = _decode(path, pre)
    stats.decode_s += dt
    if x is None:
        stats.errors += 1
        yield {"image": path, "error": err}
        return
    t0 = time.perf_counter()
    try:
        r = occlusion(model, x, **occlusion_kwargs)
    except Error as exc:
        stats.errors += 1
        yield {"image": path, "error": f"{path}: " + " ".join(str(exc).split())}
        return
    stats.infer_s += time.perf_counter() - t0
    stats.images += 1
    data = None
    if png:
        import tempfile
        from .occlusion.render import overlay_png
        with tempfile.TemporaryDirectory() as tmp:
            f = os.path.join(tmp, "heat.png")
            overlay_png(f, x, pre, r)
            with open(f, "rb") as fh:
                data = fh.read()
    yield {"image": path, "result": r.to_json(), "png": data}


def _occlude_partition(paths, *, digest, recipe, **kwargs):
    model, loaded = _worker_model(digest, recipe)
    stats = Stats()
    stats.model_loads = loaded
    results = [r for p in paths for r in _occlude_one(model, p, stats, **kwargs)]
    return results, stats.as_dict()


# --------------------------------------------------------------- tables
def flatten(result, top):
    """One result as a flat row: image, ms, error, top1_index, top1_label, top1_prob, ..."""
    row = {"image": result["image"], "ms": result.get("ms"), "error": result.get("error")}
    entries = result.get("top") or []
    for k in range(top):
        t = entries[k] if k < len(entries) else {}
        row[f"top{k + 1}_index"] = t.get("index")
        row[f"top{k + 1}_label"] = t.get("label")
        row[f"top{k + 1}_prob"] = t.get("prob")
    return row


def to_dataframe(results):
    """A pandas DataFrame of batch_run results, one row per image: image, ms,
    error (None when scored), then top1_index, top1_label, top1_prob, ... for
    as many classes as the results hold."""
    try:
        import pandas as pd
    except ImportError:
        raise InputError("to_dataframe needs pandas (pip install pandas)") from None
    results = list(results)
    top = max((len(r.get("top") or []) for r in results), default=0)
    return pd.DataFrame([flatten(r, top) for r in results],
                        columns=["image", "ms", "error"] + [f"top{k + 1}_{c}" for k in range(top)
                                                            for c in ("index", "label", "prob")])
