"""Whole-model latency and memory against ONNX Runtime and OpenVINO, side by side (not a test).

    python benchmarks/models.py [--runs R] [--threads 1 2] [--models resnet18 ...] [--quick]
                                [--passes P] [--no-openvino] [--no-memory] [--gflops] [--cpu-time]
                                [--json FILE]

Exports torchvision definitions (random weights, seed 0; batch 1, 3x224x224,
Inception-v3 3x299x299) to ONNX with torch (benchmark-only dependency:
`pip install torch==2.13.0` and `pip install --no-deps torchvision==0.28.0`),
cached in benchmarks/.cache/. Each model is measured in a worker process of
its own (python benchmarks/models.py --worker time MODEL), which loads
cnnengine, ONNX Runtime and, when it is installed, OpenVINO (a fresh Core,
CPU plugin, INFERENCE_PRECISION_HINT=f32, one stream, INFERENCE_NUM_THREADS
= the thread count), checks both engines' outputs against ONNX Runtime's,
then for each thread count times the engines interleaved turn by turn
(cnnengine.bench.interleaved: before each engine's turn a 0.2 s pause, so
that the other runtimes' spinning workers stop, and --warm seconds of its
untimed runs; the turn's sample is the median of --block seconds of timed
runs). Printed: medians over the turns, the ratio of cnnengine to the faster
peer and the geometric mean of those ratios.

Peak memory (--no-memory skips it): each engine loads and runs the model
3 times in a fresh process of its own that imports only that engine; the
figure is that process's VmHWM (whole footprint: interpreter and libraries
included), at the largest thread count.

--passes P: the whole list P times over, each model in a fresh worker per
pass; a model's figures are the medians over passes, its passes minutes
apart, so that one burst of a shared host's noise moves one pass of a model
rather than all its turns.
--quick: three small models, 3 runs, 1 thread, no memory: a smoke test.
--gflops: also the GFLOP/s of the largest 3x3 convolutions against the FMA peak.
--cpu-time: also a table of the process CPU time of the same timed runs, at
1 thread. On a shared, loaded host (load above the core count) the wall time
of a run is mostly time spent waiting for a core, and its median moves by
0.2x or more from one run of this script to the next; the CPU time leaves
that wait out (not cache and memory contention). At 2 threads and more it
would count the runtimes' spinning workers, so it is not printed there.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
TUNED = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg16"]
FAMILIES = ["convnext_tiny", "efficientnet_v2_s", "regnet_y_400mf", "regnet_x_400mf", "wide_resnet50_2",
            "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "resnet152", "vgg19_bn",
            "inception_v3", "googlenet", "shufflenet_v2_x1_0", "squeezenet1_1", "densenet121", "alexnet",
            "resnext50_32x4d"]
MODELS = TUNED + FAMILIES
QUICK = ["resnet18", "mobilenet_v3_small", "squeezenet1_1"]
SIZE = {"inception_v3": 299}
TOL = 1e-3      # max |diff| / max |reference| accepted before timing


def input_shape(name):
    s = SIZE.get(name, 224)
    return (1, 3, s, s)


def export(name):
    path = os.path.join(CACHE, f"{name}.onnx")
    if os.path.exists(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_registrations"))
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs = {"init_weights": True} if name in ("inception_v3", "googlenet") else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = torch.randn(*input_shape(name))
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, input_names=["input"], output_names=["logits"],
                          opset_version=13, dynamo=False)
    os.replace(tmp, path)
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


def have_openvino():
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------- engines
def ov_compiled(core, path, threads):
    return core.compile_model(core.read_model(path), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY"})


def runner(engine, path, threads, x, core=None):
    """A zero-argument function that runs the model once on x and returns its first output."""
    if engine == "cnnengine":
        import cnnengine as ce
        model = ce.load(path, threads=threads)
        return lambda: model.run(x)
    if engine == "onnxruntime":
        from cnnengine.bench import ort_session
        with open(path, "rb") as f:
            sess = ort_session(f.read(), threads)
        feed = {sess.get_inputs()[0].name: x}
        return lambda: sess.run(None, feed)[0]
    if engine == "openvino":
        if core is None:
            import openvino as ov
            core = ov.Core()
        req = ov_compiled(core, path, threads).create_infer_request()

        def run():
            req.infer({0: x})
            return req.get_output_tensor(0).data
        return run
    raise ValueError(engine)


def _rel_diff(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(a - ref)) / max(1e-12, np.max(np.abs(ref))))


def worker_time(name, threads_list, runs, engines, warmup=3, warm=0.15, block=0.1):
    from cnnengine.bench import interleaved
    """One model, every engine and thread count: {threads: {engine: median s}}
    (wall; "cpu": the same runs' process CPU time) and the checks."""
    path = export(name)
    x = np.random.default_rng(0).standard_normal(input_shape(name)).astype(np.float32)
    core = None
    if "openvino" in engines:
        import openvino as ov
        core = ov.Core()      # fresh per model: this process measures one model
    out = {"model": name, "threads": {}, "diff": {}}
    for threads in threads_list:
        fns = {e: runner(e, path, threads, x, core) for e in engines}
        ref = np.array(fns["onnxruntime"]())
        for e in engines:
            if e != "onnxruntime":
                d = _rel_diff(fns[e](), ref)
                out["diff"][e] = max(out["diff"].get(e, 0.0), d)
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        trip = _round_trip() if threads > 1 else None
        times, cpu = interleaved(list(fns.values()), runs, warm=warm, block=block, clocks=True)
        if trip is not None:
            # the cores' cache-line round trip before and after: on a shared
            # guest whether the two vCPUs share an L3 moves every 2-thread time
            out.setdefault("round_trip_ns", {})[threads] = [trip, _round_trip()]
        out["threads"][threads] = {e: statistics.median(t) for e, t in zip(fns, times)}
        out.setdefault("cpu", {})[threads] = {e: statistics.median(t) for e, t in zip(fns, cpu)}
        del fns
    return out


def _round_trip():
    from cnnengine import _kernels as K
    return K.core_round_trip_ns()


def worker_mem(name, engine, threads):
    """Peak RSS (MB) of this process after loading the model in one engine and running it 3 times."""
    from cnnengine.bench import _vm_hwm_kb
    x = np.random.default_rng(0).standard_normal(input_shape(name)).astype(np.float32)
    fn = runner(engine, export(name), threads, x)
    for _ in range(3):
        fn()
    return _vm_hwm_kb() / 1024.0


def _child(args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker"] + args,
                       capture_output=True, text=True, env=env)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        return {"error": " / ".join(tail) or f"exit {p.returncode}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------- report
def _geo(xs):
    xs = [x for x in xs if x and np.isfinite(x)]
    return float(np.exp(np.mean(np.log(xs)))) if xs else float("nan")


def _trips(r, threads):
    """Each pass's round trips before/after its timed runs, e.g. "62/64, 371/380"."""
    runs = [p.get("round_trip_ns", {}).get(str(threads)) for p in r.get("passes", [r])]
    return ", ".join("/".join("-" if v is None else f"{v:.0f}" for v in t) for t in runs if t) or "n/a"


def print_tables(results, threads_list, engines, memory, cpu_time=False):
    peers = [e for e in engines if e != "cnnengine"]
    tables = [(t, "threads", "medians of interleaved runs") for t in threads_list]
    if cpu_time and 1 in threads_list:
        tables.append((1, "cpu", "process CPU time of the same runs, medians"))
    for threads, key, what in tables:
        print(f"\n## {threads} thread(s), batch 1, {what}\n")
        trips = threads > 1 and key == "threads"
        head = "| model | cnnengine ms | " + " | ".join(f"{p} ms" for p in peers) + \
            " | ratio to faster peer | max rel diff (ours, " + ", ".join(peers[1:] or ["-"]) + ") |" + \
            (" cores' round trip ns |" if trips else "")
        print(head)
        print("|---|---:|" + "---:|" * len(peers) + "---:|---:|" + ("---|" if trips else ""))
        ratios = []
        for r in results:
            if "error" in r:
                print(f"| {r['model']} | error: {r['error'][:120]} |")
                continue
            t = r[key][str(threads)]
            best = min(t[p] for p in peers)
            ratio = t["cnnengine"] / best
            ratios.append(ratio)
            flag = "" if max(r["diff"].values()) <= TOL else " MISMATCH"
            diffs = ", ".join(f"{r['diff'][e]:.1e}" for e in engines if e in r["diff"])
            print(f"| {r['model']} | {t['cnnengine'] * 1e3:.2f} | " +
                  " | ".join(f"{t[p] * 1e3:.2f}" for p in peers) +
                  f" | {ratio:.3f} | {diffs}{flag} |" + (f" {_trips(r, threads)} |" if trips else ""),
                  flush=True)
        print(f"| **geometric mean** | | " + "| " * len(peers) + f"**{_geo(ratios):.3f}** | |")
    if memory:
        mt = max(threads_list)
        print(f"\n## Peak RSS (MB, VmHWM of a fresh process per engine), {mt} thread(s)\n")
        print("| model | " + " | ".join(engines) + " | ours / lower peer |")
        print("|---|" + "---:|" * (len(engines) + 1))
        for r in results:
            m = r.get("mem")
            if not m:
                continue
            vals = [m.get(e) for e in engines]
            low = min((m[p] for p in peers if m.get(p)), default=None)
            ratio = f"{m['cnnengine'] / low:.2f}" if low and m.get("cnnengine") else "n/a"
            print(f"| {r['model']} | " + " | ".join("n/a" if v is None else f"{v:.0f}" for v in vals) +
                  f" | {ratio} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--passes", type=int, default=1, help="the list this many times; medians over passes")
    ap.add_argument("--quick", action="store_true", help="smoke: 3 small models, 3 runs, 1 thread, no memory")
    ap.add_argument("--no-openvino", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--gflops", action="store_true", help="also the big 3x3 convs against the FMA peak")
    ap.add_argument("--cpu-time", action="store_true",
                    help="also the process CPU time of the timed runs at 1 thread (robust to a loaded host)")
    ap.add_argument("--warm", type=float, default=0.15,
                    help="seconds of untimed runs before each engine's turn (at least one run)")
    ap.add_argument("--block", type=float, default=0.1,
                    help="seconds of timed runs per turn, their median the turn's sample "
                         "(at least one run; --warm 0 --block 0: one untimed and one timed run)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    engines = ["cnnengine", "onnxruntime"] + ([] if args.no_openvino or not have_openvino() else ["openvino"])
    if args.worker:
        kind, name = args.worker[0], args.worker[1]
        if kind == "time":
            res = worker_time(name, args.threads, args.runs, engines, warm=args.warm, block=args.block)
        else:     # mem:ENGINE
            res = {"mb": worker_mem(name, kind.split(":", 1)[1], args.threads[0])}
        print(json.dumps(res))
        return
    if args.quick:
        args.models = args.models or QUICK
        args.runs, args.threads, args.no_memory = 3, [1], True
    models = args.models or MODELS
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import cnnengine as ce
    import onnxruntime
    versions = f"onnxruntime {onnxruntime.__version__}"
    if "openvino" in engines:
        import openvino
        versions += f", openvino {openvino.get_version()} (f32)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, {ce.num_cores()} cores, "
          f"load average {load:.2f}, cnnengine {ce.__version__} ({ce.active_isa()}), {versions}")
    print(f"# {args.runs} interleaved turns per engine and thread count (a 0.2 s pause, {args.warm} s of "
          f"untimed runs, the median of {args.block} s of timed runs), one worker process per model"
          + (f"; {args.passes} passes over the list, medians over passes" if args.passes > 1 else ""))
    passes = {name: [] for name in models}
    for ps in range(max(1, args.passes)):
        for name in models:
            export(name)
            r = _child(["time", name, "--runs", str(args.runs), "--warm", str(args.warm),
                        "--block", str(args.block), "--threads"] + [str(t) for t in args.threads] +
                       (["--no-openvino"] if "openvino" not in engines else []))
            r.setdefault("model", name)
            if ps == 0 and not args.no_memory and "error" not in r:
                r["mem"] = {e: _child([f"mem:{e}", name, "--threads", str(max(args.threads))]).get("mb")
                            for e in engines}
            passes[name].append(r)
            print(f"# done {name} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
    results = [merge_passes(passes[name]) for name in models]
    print_tables(results, args.threads, engines, not args.no_memory, args.cpu_time)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"engines": engines, "threads": args.threads, "runs": args.runs,
                       "passes": max(1, args.passes), "load": load,
                       "cpu": cpu_model(), "results": results}, f, indent=1)
    if args.gflops:
        for threads in args.threads:
            peak, rows = conv_gflops(threads)
            print(f"\nFMA peak ({threads} thread(s)): {peak:.1f} GFLOP/s")
            print("| layer | GEMM path ms | GFLOP/s | % of peak | blocked direct ms | GFLOP/s "
                  "| % of peak | engine algo | engine ms | effective GFLOP/s |")
            print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
            for name, ms, g, pct, dms, dg, dpct, algo, ems, eg in rows:
                print(f"| {name} | {ms:.3f} | {g:.1f} | {pct:.0f}% | {dms:.3f} | {dg:.1f} | "
                      f"{dpct:.0f}% | {algo} | {ems:.3f} | {eg:.1f} |")


def merge_passes(rs):
    """One model's passes as one result: each time the median over the passes
    that measured it (the first pass's other fields; every pass under "passes")."""
    ok = [r for r in rs if "error" not in r]
    if len(rs) == 1 or not ok:
        return rs[0]
    out = dict(ok[0], passes=rs)
    for key in ("threads", "cpu"):
        if key not in ok[0]:
            continue
        out[key] = {t: {e: float(np.median([r[key][t][e] for r in ok if e in r[key].get(t, {})]))
                        for e in ok[0][key][t]} for t in ok[0][key]}
    return out


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


if __name__ == "__main__":
    main()
