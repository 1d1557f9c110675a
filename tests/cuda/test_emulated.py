"""The CUDA backend end to end on the NumPy emulator (emulator.py): every
op case and the fused graphs against the CPU backend, through the plan
run, the eager device run, the captured graph and its replay on a new
input; a captured layer; occlusion. What this proves and what it does not:
see emulator.py."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402
from cnnengine.backend.cuda import CudaBackend, table  # noqa: E402
from cnnengine.importers.onnx_import import load_onnx  # noqa: E402
from cnnengine.model import Model  # noqa: E402

from ..runtime.onnx_builders import residual_net  # noqa: E402
from . import emulator  # noqa: E402
from .cases import conformance, odd_cases  # noqa: E402
from .conftest import check_launches  # noqa: E402


@pytest.fixture
def emu(monkeypatch):
    return emulator.install(monkeypatch)


def _compare(got, want, what):
    outs = got if isinstance(got, dict) else {"y": got}
    refs = want if isinstance(want, dict) else {"y": want}
    for k in refs:
        a, b = np.asarray(outs[k]), np.asarray(refs[k])
        assert a.shape == b.shape, f"{what} {k}: shape {a.shape} != {b.shape}"
        if b.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, equal_nan=True, err_msg=f"{what} {k}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{what} {k}")


def test_every_case_matches_the_cpu_backend(emu, layouts):
    """Plan, eager, captured and replayed runs equal the CPU backend's (the
    emulator computes the TF32 kernels in FP32: their launches are what tf32 checks); every
    launch's arguments have the compiled kernel's layout; every kernel and
    every op said to have one is reached."""
    checked, kernels, on_device = 0, set(), set()
    for precision, cases in (("fp32", conformance() + odd_cases()), ("tf32", odd_cases())):
        for name, model, inputs in cases:
            try:
                cpu = ce.load(model)
                feeds = {v.name: x for v, x in zip(cpu.graph.inputs, inputs)}
                want = cpu.run(feeds)
            except ce.Error:
                continue
            m = Model(load_onnx(model), backend=CudaBackend(precision=precision))
            emu.launches.clear()
            for run in ("plan", "eager", "captured"):
                _compare(m.run(feeds), want, f"{name} ({run}, {precision})")
            x0 = next(iter(feeds))
            if feeds[x0].dtype == np.float32 and feeds[x0].size:
                feeds2 = dict(feeds)
                feeds2[x0] = (feeds[x0] * 0.5 + 0.25).astype(np.float32)
                try:
                    want2 = cpu.run(feeds2)
                except ce.Error:
                    want2 = None
                if want2 is not None:
                    _compare(m.run(feeds2), want2, f"{name} (replayed, new input, {precision})")
            check_launches(emu.launches, layouts, name)
            kernels |= {fn for fn, *_ in emu.launches}
            on_device |= {st.node.op for st in m._exec.plan_for(feeds).steps if st.runner is not None}
            checked += 1
    assert checked > 300
    assert set(layouts) - kernels == set(), f"never launched: {sorted(set(layouts) - kernels)}"
    missing = set(table.KERNEL_OPS) - on_device - {"Identity", "Dropout", "Cast", "cnn.Silu"}
    assert not missing, f"ops with a kernel that no case ran on the device: {sorted(missing)}"


def test_residual_net_capture_and_batches(emu, rng):
    net = residual_net(rng)
    cpu = ce.load(net)
    m = Model(load_onnx(net), backend=CudaBackend())
    for batch in (1, 3, 1):
        x = rng.standard_normal((batch, 3, 12, 12)).astype(np.float32)
        for _ in range(3):
            _compare(m.run(x), cpu.run(x), f"batch {batch}")
    out, acts = m.run(x, capture=True)
    out_cpu, acts_cpu = cpu.run(x, capture=True)
    _compare(out, out_cpu, "capture output")
    assert set(acts) == set(acts_cpu)
    for k in acts:
        _compare(acts[k], acts_cpu[k], f"layer {k}")


def test_occlusion_matches_cpu(emu, rng):
    net = residual_net(rng)
    img = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    want = ce.occlusion(ce.load(net), img, patch=4, stride=2, mode="naive").heatmap
    m = Model(load_onnx(net), backend=CudaBackend())
    for mode in ("naive", "incremental"):
        got = ce.occlusion(m, img, patch=4, stride=2, mode=mode).heatmap
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=mode)
