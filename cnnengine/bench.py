"""Latency, throughput and memory of a model, optionally against ONNX Runtime.

Both engines run in this process, interleaved turn by turn, so machine noise
hits them alike; we report medians and minima. Peak memory is measured for
each engine in its own child process (ru_maxrss is per process), after the
same warm-up and runs.
"""
import json
import multiprocessing as mp
import os
import resource
import statistics
import time

import numpy as np


def input_for(model, batch):
    spec = model.inputs[0]
    pre = model.preprocess or {}
    size = pre.get("crop", 224)
    shape = []
    for axis, d in enumerate(spec.shape):
        if axis == 0:
            shape.append(batch)
        elif isinstance(d, int) and d > 0:
            shape.append(d)
        else:
            shape.append(3 if axis == 1 else size)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def onnx_bytes(source):
    """The ONNX form of a model for the peer: the file itself or the zoo's graph."""
    from . import zoo
    if isinstance(source, str) and source.lower().endswith(".onnx") and os.path.isfile(source):
        with open(source, "rb") as f:
            return f.read()
    if isinstance(source, str) and source in zoo.names():
        return zoo.build_onnx(source).SerializeToString()
    return None


def ort_session(data, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def interleaved(fns, runs, settle=0.2, warm=0.15, block=0.1, clocks=False):
    """Time each fn `runs` times, alternating between them round by round.

    Both runtimes keep worker threads spinning after a run (ONNX Runtime's
    for 20-100 ms on this machine), which would steal the cores from the other
    engine's measurement. So before each engine's turn we pause `settle`
    seconds, then run it untimed for `warm` seconds (at least once): after
    the pause and the other engines' runs the caches and the clock take
    ~0.1 s of this engine's own runs to settle. Each turn's sample is the
    median of a block of runs lasting `block` seconds (at least one run);
    warm=0, block=0 is one untimed and one timed run per turn.
    clocks=True: (wall, process CPU) lists per fn instead of wall only."""
    wall, cpu = [[] for _ in fns], [[] for _ in fns]
    for _ in range(runs):
        for fn, w, c in zip(fns, wall, cpu):
            if len(fns) > 1:
                time.sleep(settle)
            end = time.perf_counter() + warm
            fn()
            while time.perf_counter() < end:
                fn()
            bw, bc = [], []
            end = time.perf_counter() + block
            while not bw or time.perf_counter() < end:
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                bw.append(time.perf_counter() - t0)
                bc.append(time.process_time() - c0)
            w.append(statistics.median(bw))
            c.append(statistics.median(bc))
    return (wall, cpu) if clocks else wall


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(source, *, threads=None, batch=1, runs=20, warmup=3, compare=None, memory=True, backend="cpu"):
    import cnnengine as ce
    from .errors import BackendUnavailableError, InputError

    threads = threads or ce.num_cores()
    model = ce.load(source, threads=threads, backend=backend)
    x = input_for(model, batch)
    ours = lambda: model.run(x)  # noqa: E731
    peer = None
    if compare == "torch":
        peer = torch_peer(source, x)
    elif compare:
        if compare != "onnxruntime":
            raise InputError(f"--compare: unknown peer {compare!r} (supported: onnxruntime, torch)")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailableError("--compare onnxruntime: onnxruntime is not installed") from None
        data = onnx_bytes(source)
        if data is None:
            raise InputError("--compare needs an .onnx file or a bundled zoo name")
        sess = ort_session(data, threads)
        feed = {sess.get_inputs()[0].name: x}
        peer = lambda: sess.run(None, feed)  # noqa: E731
    for _ in range(warmup):
        ours()
        if peer:
            peer()
    # alone: run by run; against a peer: turns of warm-up and timed blocks
    times = interleaved([ours, peer], runs) if peer else interleaved([ours], runs, warm=0, block=0)
    t_ours, t_peer = times[0], (times[1] if peer else [])
    result = {
        "model": str(source), "threads": threads, "batch": batch, "runs": runs,
        "median_ms": statistics.median(t_ours) * 1e3, "min_ms": min(t_ours) * 1e3,
        "throughput_per_s": batch / statistics.median(t_ours),
        "peak_rss_mb": None, "compare": None,
    }
    result["backend"] = model.backend.name
    memory = memory and model.backend.name != "cuda"     # host RSS says little about a GPU run
    if memory:
        result["peak_rss_mb"] = peak_rss_mb(source, "cnnengine", threads, x.shape)
    if peer:
        med = statistics.median(t_peer) * 1e3
        result["compare"] = {"name": compare, "median_ms": med, "min_ms": min(t_peer) * 1e3,
                             "ratio": result["median_ms"] / med,
                             "peak_rss_mb": peak_rss_mb(source, compare, threads, x.shape)
                             if memory and compare != "torch" else None}
    return result


def torch_peer(source, x):
    """PyTorch eager on the GPU (cuDNN, benchmark mode) running the same
    architecture, found by name in torchvision from the model's file stem
    (resnet50.onnx, mobilenet_v2): a run is input copy in, forward, output
    copy out, as ours. Random weights: time does not depend on them."""
    from pathlib import Path

    from .errors import BackendUnavailableError, InputError
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError("--compare torch: PyTorch is not installed") from None
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"--compare torch: this PyTorch ({torch.__version__}) has no usable CUDA device")
    try:
        import torchvision
    except Exception as exc:      # not installed, or built for another torch (its ops fail to register)
        raise BackendUnavailableError(f"--compare torch: torchvision does not import ({exc})") from None
    arch = Path(str(source)).stem
    builder = getattr(torchvision.models, arch, None)
    if builder is None or not callable(builder):
        raise InputError(f"--compare torch: no torchvision architecture named {arch!r} (the model's file stem)")
    torch.backends.cudnn.benchmark = True
    net = builder(weights=None).eval().cuda()

    def run():
        with torch.no_grad():
            return net(torch.from_numpy(x).cuda()).cpu()
    return run


def _vm_hwm_kb():
    """This process image's peak RSS. Not ru_maxrss: Linux carries that over
    from the parent across fork+exec, so a child of a big parent reads big."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_child(source, engine, threads, shape, conn):
    try:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        if engine == "cnnengine":
            import cnnengine as ce
            model = ce.load(source, threads=threads)
            run = lambda: model.run(x)  # noqa: E731
        else:
            import onnxruntime  # noqa: F401
            sess = ort_session(onnx_bytes(source), threads)
            feed = {sess.get_inputs()[0].name: x}
            run = lambda: sess.run(None, feed)  # noqa: E731
        for _ in range(3):
            run()
        conn.send(_vm_hwm_kb())
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(exc)


def peak_rss_mb(source, engine, threads, shape):
    """Peak resident memory (MB) of a fresh process that loads the model and runs it 3 times.

    The child imports only the engine it measures, so the figure is that
    engine's whole footprint (interpreter and libraries included)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_rss_child, args=(source, engine, threads, tuple(shape), child))
    p.start()
    msg = parent.recv() if parent.poll(600) else None
    p.join()
    return msg / 1024.0 if isinstance(msg, (int, float)) else None


def format_result(r):
    lines = [f"{r['model']}: batch {r['batch']}, {r['threads']} threads, {r['runs']} runs",
             f"  cnnengine    median {r['median_ms']:8.2f} ms   min {r['min_ms']:8.2f} ms   "
             f"{r['throughput_per_s']:8.1f} img/s   peak RSS {_mb(r['peak_rss_mb'])}"]
    c = r.get("compare")
    if c:
        lines.append(f"  {c['name']:<12} median {c['median_ms']:8.2f} ms   min {c['min_ms']:8.2f} ms   "
                     f"{'':>14}   peak RSS {_mb(c.get('peak_rss_mb'))}")
        lines.append(f"  ratio (ours / {c['name']}): {c['ratio']:.3f}")
    return "\n".join(lines)


def _mb(v):
    return "n/a" if v is None else f"{v:.0f} MB"


def format_layers(profile, top=None, kernels=None):
    """profile: [(step, op, seconds)]; kernels: {step: "C" | "shape" | "numpy"}
    (Model.kernels), a column that marks the steps outside C kernels."""
    total = sum(t for _, _, t in profile) or 1.0
    rows = sorted(profile, key=lambda r: -r[2])[:top] if top else profile
    kernels = kernels or {}
    out = [f"{'step':<40} {'op':<20} {'kernel':<7} {'ms':>8} {'share':>6}"]
    for name, op, t in rows:
        k = kernels.get(name, "?")
        mark = "" if k in ("C", "shape", "?") else "  <- outside C"
        out.append(f"{name[:40]:<40} {op[:20]:<20} {k:<7} {t * 1e3:8.3f} {t / total * 100:5.1f}%{mark}")
    out.append(f"{'total (sum of steps)':<69} {total * 1e3:8.3f}")
    outside = [(n, t) for n, _, t in profile if kernels.get(n, "C") not in ("C", "shape")]
    if kernels:
        out.append(f"steps outside C kernels (not shape arithmetic): {len(outside)} of {len(profile)}, "
                   f"{sum(t for _, t in outside) * 1e3:.3f} ms")
    return "\n".join(out)


def to_json(r):
    return json.dumps(r)
