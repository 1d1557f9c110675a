"""Batch throughput: ce.batch_run in one process vs a Dask LocalCluster, with
decode and inference time split (not a test).

    python benchmarks/batch.py [--model efficientnet_lite0] [--images 96] [--batch 16]
                               [--workers 2] [--size 640x480] [--decode-threads T] [--json]

Makes --images JPEGs (smooth gradients plus noise, --size, quality 90) in a
temporary folder, then measures:

- decode only: every image through load_image (Pillow decode, resize, crop,
  normalise) on one thread, one after another;
- inference only: the decoded images through Model.run in batches of --batch,
  with the model's threads (all cores);
- one process: ce.batch_run (decode threads overlapping inference), with the
  model on all cores, then on cores // workers threads (what each worker gets);
- LocalCluster(--workers): ce.batch_run(client=...) on worker processes of one
  thread each, the model's threads set to cores // workers; the cluster's
  start is timed apart, and a first warm-up job (each worker builds the model)
  is left out.

For batch_run it reports wall images/s and the decode and inference seconds
summed over threads / workers (so they can exceed the wall time when they
overlap). The load average is printed with the numbers: on a shared machine
the figures move with it.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def make_images(folder, n, size, seed=0):
    from PIL import Image
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for i in range(n):
        base = np.stack([(xx * (i % 7 + 1) / w * 255), (yy * (i % 5 + 1) / h * 255),
                         ((xx + yy) * 128 / (w + h) + i * 13)], -1) % 256
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        p = os.path.join(folder, f"img{i:05d}.jpg")
        Image.fromarray(img).save(p, quality=90)
        paths.append(p)
    return paths


def load_avg():
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        return None


def bench(args):
    import cnnengine as ce
    from cnnengine.batch import resolve_preprocess
    from cnnengine.preprocess import load_image

    w, h = (int(v) for v in args.size.split("x"))
    from cnnengine.batch import default_decode_threads
    out = {"model": args.model, "images": args.images, "batch": args.batch, "size": [w, h],
           "decode_threads": args.decode_threads or default_decode_threads(),
           "cores": ce.num_cores(), "load_before": load_avg()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(tmp, args.images, (w, h))
        model = ce.load(args.model)
        pre = resolve_preprocess(model)

        t0 = time.perf_counter()
        xs = [load_image(p, pre) for p in paths]
        out["decode_only_s"] = time.perf_counter() - t0
        model.run(np.concatenate(xs[:args.batch]))                       # warm the plans
        t0 = time.perf_counter()
        for i in range(0, len(xs), args.batch):
            model.run(np.concatenate(xs[i:i + args.batch]))
        out["infer_only_s"] = time.perf_counter() - t0

        per_worker = max(1, ce.num_cores() // args.workers)
        for key, m in (("one_process", model),
                       ("one_process_worker_threads", ce.load(args.model, threads=per_worker))):
            list(ce.batch_run(m, paths[:args.batch], batch=args.batch))      # warm
            run = ce.batch_run(m, paths, batch=args.batch, workers=args.decode_threads)
            list(run)
            s = run.stats
            out[key] = {"wall_s": s.wall_s, "images_per_s": s.images / s.wall_s,
                        "decode_s": s.decode_s, "infer_s": s.infer_s, "model_threads": m.threads or ce.num_cores()}

        from distributed import Client, LocalCluster
        import logging
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
        out["cluster_start_s"] = time.perf_counter() - t0
        try:
            wmodel = ce.load(args.model, threads=max(1, ce.num_cores() // args.workers))
            warm = ce.batch_run(wmodel, paths[:args.batch * args.workers], batch=args.batch, client=client,
                                partition_size=args.batch)
            list(warm)
            out["cluster_warmup_s"] = warm.stats.wall_s
            run = ce.batch_run(wmodel, paths, batch=args.batch, client=client, partition_size=args.batch * 2,
                               workers=args.decode_threads)
            list(run)
            s = run.stats
            out[f"local_cluster_{args.workers}"] = {"wall_s": s.wall_s, "images_per_s": s.images / s.wall_s,
                                                    "decode_s": s.decode_s, "infer_s": s.infer_s,
                                                    "model_loads": s.model_loads + warm.stats.model_loads}
        finally:
            client.close()
            cluster.close()
    out["load_after"] = load_avg()
    return out


def report(r, workers):
    n = r["images"]
    print(f"{r['model']}, {n} JPEGs {r['size'][0]}x{r['size'][1]}, batch {r['batch']}, {r['cores']} cores, "
          f"{r['decode_threads']} decode thread(s) per process; "
          f"load average {r['load_before']} before, {r['load_after']} after")
    print(f"  decode only (1 thread)        {r['decode_only_s']:7.2f} s  {n / r['decode_only_s']:7.1f} images/s")
    print(f"  inference only (all cores)    {r['infer_only_s']:7.2f} s  {n / r['infer_only_s']:7.1f} images/s")
    for key, name in (("one_process", f"batch_run, 1 process, {r['one_process']['model_threads']} thr"),
                      ("one_process_worker_threads",
                       f"batch_run, 1 process, {r['one_process_worker_threads']['model_threads']} thr"),
                      (f"local_cluster_{workers}", f"batch_run, LocalCluster({workers})")):
        s = r[key]
        print(f"  {name:<29} {s['wall_s']:7.2f} s  {s['images_per_s']:7.1f} images/s   "
              f"(decode {s['decode_s']:.2f} s + inference {s['infer_s']:.2f} s, summed)")
    print(f"  cluster start {r['cluster_start_s']:.2f} s, first job (models built) {r['cluster_warmup_s']:.2f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--decode-threads", type=int, default=None, help="per process (default: half the cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = bench(args)
    if args.json:
        print(json.dumps(r))
    else:
        report(r, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
