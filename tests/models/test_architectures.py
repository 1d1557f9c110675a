"""End-to-end: the seed notes' architectures, exported from PyTorch to ONNX, run
through cnnengine and compared with ONNX Runtime and PyTorch.

Each network in tests/models/archs.py is built with a fixed seed, given
well-scaled random weights and randomised BatchNorm statistics (so BN folding
is exercised), exported with the legacy TorchScript exporter at its opset
(9, 11, 13 or 17; some with a dynamic batch axis), and run on the same random
batch-2 input. Logits must agree within 1e-3 absolute (SPEC.md §6). The max
differences are printed (``pytest -s``) and recorded as JUnit properties.

Also here: ``Model.run(capture=True)`` against ONNX Runtime's intermediate
values and ``summary()``'s shapes, and ``summary()``'s parameter and MAC
totals on full-size ResNet-18/50, VGG-16 and MobileNetV2 against the published
figures (VGG-16 is slow — a 528 MB export — so it runs with CNNENGINE_SLOW_TESTS=1).
"""
import os
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402

from .archs import ARCHS, FULL, randomize  # noqa: E402

TOL = 1e-3
BATCH = 2
SLOW = os.environ.get("CNNENGINE_SLOW_TESTS") == "1"
slow = pytest.mark.skipif(not SLOW, reason="slow full-size model: set CNNENGINE_SLOW_TESTS=1")


def _seed(name):
    return zlib.crc32(name.encode())


def _export(model, input_shape, path, *, opset, dynamic_batch, batch=BATCH, torch_folds_bn=False):
    """Legacy (TorchScript) export. By default in TrainingMode.PRESERVE on the
    eval-mode model: BatchNormalization nodes stay in the file (EVAL mode would
    fold them into the convs inside torch, hiding them from the engine)."""
    mode = torch.onnx.TrainingMode.EVAL if torch_folds_bn else torch.onnx.TrainingMode.PRESERVE
    kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=opset,
                  do_constant_folding=True, dynamo=False, training=mode)
    model.eval()
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros((batch,) + tuple(input_shape)), str(path), **kwargs)
    return str(path)


def _ort_session(path_or_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def _max_abs(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b)))


def _build(name):
    arch = ARCHS[name]
    torch.manual_seed(_seed(name))
    return arch, randomize(arch.build(), seed=_seed(name), calib_shape=arch.input_shape)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (arch, torch model, onnx path); built once per module."""
    cache = {}
    root = tmp_path_factory.mktemp("archs")

    def get(name):
        if name not in cache:
            arch, model = _build(name)
            path = _export(model, arch.input_shape, root / f"{name}.onnx", opset=arch.opset,
                           dynamic_batch=arch.dynamic_batch, torch_folds_bn=arch.torch_folds_bn)
            cache[name] = (arch, model, path)
        return cache[name]
    return get


# ------------------------------------------------------------------ logits
@pytest.mark.parametrize("name", list(ARCHS))
def test_matches_onnxruntime_and_torch(name, exported, record_property):
    arch, model, path = exported(name)
    rng = np.random.default_rng(_seed(name))
    x = rng.standard_normal((BATCH,) + arch.input_shape).astype(np.float32)

    with torch.no_grad():
        ref_torch = model(torch.from_numpy(x)).numpy()
    ref_ort = _ort_session(path).run(None, {"input": x})[0]
    m = ce.load(path)
    y = m.run(x)
    n_bn = sum(1 for n in onnx.load(path).graph.node if n.op_type == "BatchNormalization")
    if not arch.torch_folds_bn and any(isinstance(mod, torch.nn.BatchNorm2d) for mod in model.modules()):
        assert n_bn > 0, "the export folded BatchNorm away; the engine's BN folding is not exercised"

    d_ort, d_torch = _max_abs(y, ref_ort), _max_abs(y, ref_torch)
    scale = float(np.max(np.abs(ref_ort)))
    record_property("max_abs_diff_ort", d_ort)
    record_property("max_abs_diff_torch", d_torch)
    print(f"\n{name:22s} opset {arch.opset:2d}  BN nodes {n_bn:3d}  |logits|max {scale:7.3f}  "
          f"vs ORT {d_ort:.2e}  vs torch {d_torch:.2e}")
    # the check is only meaningful if the logits are not vanishingly small
    assert scale > 0.1, f"{name}: degenerate logits (max {scale})"
    assert d_ort <= TOL, f"{name}: max abs diff vs ONNX Runtime {d_ort:.3g} > {TOL}"
    assert d_torch <= TOL, f"{name}: max abs diff vs PyTorch {d_torch:.3g} > {TOL}"


@pytest.mark.parametrize("name", [n for n, a in ARCHS.items() if a.dynamic_batch])
def test_dynamic_batch(name, exported):
    """Exports with a symbolic batch axis run at other batch sizes too."""
    arch, model, path = exported(name)
    m = ce.load(path)
    sess = _ort_session(path)
    rng = np.random.default_rng(_seed(name) + 1)
    for n in (1, 3):
        x = rng.standard_normal((n,) + arch.input_shape).astype(np.float32)
        d = _max_abs(m.run(x), sess.run(None, {"input": x})[0])
        assert d <= TOL, f"{name} batch {n}: max abs diff {d:.3g}"


def test_fixed_batch_export_runs_other_batches(exported):
    """A file exported with batch fixed at 2 still runs batch 4 (in chunks)."""
    name = "resnext"
    arch, model, path = exported(name)
    assert not arch.dynamic_batch
    x = np.random.default_rng(5).standard_normal((4,) + arch.input_shape).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert _max_abs(ce.load(path).run(x), ref) <= TOL


# ------------------------------------------------------------- C kernels
# Steps allowed outside C kernels, per architecture: op -> why (none today;
# an entry here is a known slow path, named).
KNOWN_OUTSIDE_C: dict[str, dict[str, str]] = {}


@pytest.mark.parametrize("name", list(ARCHS))
def test_every_step_runs_in_a_c_kernel(name, exported):
    """Model.kernels (what compile_step made for each plan step): every step
    moves data in a C kernel, or moves none (shape arithmetic, views)."""
    arch, _, path = exported(name)
    m = ce.load(path)
    steps = m.kernels(np.zeros((BATCH,) + arch.input_shape, np.float32))
    known = KNOWN_OUTSIDE_C.get(name, {})
    outside = [(n, op, k) for n, op, k in steps if k not in ("C", "shape") and op not in known]
    assert not outside, f"{name}: steps outside C kernels: {outside}"
    assert sum(k == "C" for _, _, k in steps) > 0


# ------------------------------------------------------------------ capture
def _with_all_outputs(path, names):
    """The ONNX model with the given values added as graph outputs (for ORT)."""
    proto = onnx.load(path)
    have = {o.name for o in proto.graph.output}
    for v in names:
        if v not in have:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(v))
            have.add(v)
    return proto.SerializeToString()


@pytest.mark.parametrize("name", ["googlenet", "mobilenet_v2"])
def test_capture_every_layer(name, exported):
    """capture=True gives one activation per layer, shaped as summary() says, and
    equal to ONNX Runtime's value of that node's output (unfused semantics)."""
    arch, model, path = exported(name)
    m = ce.load(path)
    x = np.random.default_rng(11).standard_normal((BATCH,) + arch.input_shape).astype(np.float32)
    y, acts = m.run(x, capture=True)
    assert list(acts) == m.layers
    assert _max_abs(y, m.run(x)) <= 1e-5

    summary = m.summary()
    assert [s.name for s in summary] == m.layers
    for info in summary:
        a = acts[info.name]
        assert isinstance(a, np.ndarray)
        assert info.output_shape[0] == 1, f"{info.name}: summary batch {info.output_shape}"
        assert a.shape == (BATCH,) + tuple(info.output_shape[1:]), \
            f"{info.name} ({info.op}): captured {a.shape}, summary says {info.output_shape}"

    proto = onnx.load(path)
    first_out = {n.name: n.output[0] for n in proto.graph.node}
    assert set(m.layers) <= set(first_out)
    sess = _ort_session(_with_all_outputs(path, [first_out[n] for n in m.layers]))
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": x})))
    worst = (0.0, None)
    for layer in m.layers:
        r = ref[first_out[layer]]
        if r.dtype != np.float32:
            continue
        d = _max_abs(acts[layer], r) / max(1.0, float(np.max(np.abs(r))))
        worst = max(worst, (d, layer))
        assert d <= TOL, f"{name}: layer {layer}: captured activation differs from ORT by {d:.3g} (relative)"
    print(f"\n{name}: {len(m.layers)} layers captured, worst relative diff {worst[0]:.2e} at {worst[1]}")


def test_capture_subset_and_summary_table(exported):
    arch, model, path = exported("resnet_basic")
    m = ce.load(path)
    x = np.random.default_rng(3).standard_normal((1,) + arch.input_shape).astype(np.float32)
    convs = [s.name for s in m.summary() if s.op == "Conv"]
    y, acts = m.run(x, capture=convs[:3])
    assert list(acts) == convs[:3]
    _, full = m.run(x, capture=True)
    for k in convs[:3]:
        assert _max_abs(acts[k], full[k]) <= 1e-5
    table = str(m)
    assert all(c in table for c in convs[:3])


# ------------------------------------------------------------------ published figures
def _totals(model, tmp_path, name):
    path = _export(model.eval(), (3, 224, 224), tmp_path / f"{name}.onnx", opset=13,
                   dynamic_batch=False, batch=1)
    info = ce.load(path).summary()
    return sum(i.params for i in info), sum(i.macs for i in info), info


@pytest.mark.parametrize("name", [
    "resnet18", "mobilenet_v2",
    "resnet50",
    pytest.param("vgg16", marks=slow),
])
def test_summary_matches_published_figures(name, tmp_path):
    build, published_params, published_gmacs = FULL[name]
    torch.manual_seed(0)
    model = build()
    torch_params = sum(p.numel() for p in model.parameters())
    assert torch_params == published_params, "the definition in archs.py drifted from torchvision's"
    params, macs, info = _totals(model, tmp_path, name)
    print(f"\n{name}: params {params:,} (published {published_params:,}), "
          f"MACs {macs / 1e9:.4f} G (published {published_gmacs} G)")
    assert params == published_params
    assert abs(macs / 1e9 - published_gmacs) <= 0.005 * published_gmacs
    first = info[0]
    assert first.op == "Conv" and first.output_shape[1:] in ((64, 112, 112), (32, 112, 112), (64, 224, 224))


# ------------------------------------------------------------------ torch's own LRN export
@pytest.mark.parametrize("opset", [
    9,    # torch traces it into a 5-D (N,1,C,H,W) AveragePool with kernel (size,1,1)
    13,   # torch traces it into an If on a shape-derived condition
])
def test_torch_native_local_response_norm(opset, tmp_path):
    """nn.LocalResponseNorm exported by torch itself (no ONNX LRN op: a decomposition)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                torch.nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0)).eval()
    path = _export(model, (3, 12, 12), tmp_path / "lrn.onnx", opset=opset, dynamic_batch=False)
    x = np.random.default_rng(0).standard_normal((BATCH, 3, 12, 12)).astype(np.float32)
    ref = _ort_session(path).run(None, {"input": x})[0]
    assert _max_abs(ce.load(path).run(x), ref) <= TOL


# ------------------------------------------------------------- backends
@pytest.mark.parametrize("name", list(ARCHS))
def test_reference_backend_matches_cpu(name, exported):
    """The reference backend (every op's definition on the unfused graph) and
    the CPU backend (fused, blocked C kernels) agree to 1e-4 of the logits' scale."""
    arch, _, path = exported(name)
    x = np.random.default_rng(_seed(name) + 2).standard_normal((BATCH,) + arch.input_shape).astype(np.float32)
    y_cpu = ce.load(path).run(x)
    y_ref = ce.load(path, backend="reference").run(x)
    scale = max(1.0, float(np.max(np.abs(y_ref))))
    assert _max_abs(y_cpu, y_ref) <= 1e-4 * scale
