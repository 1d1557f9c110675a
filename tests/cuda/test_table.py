"""The kernel table and the graph glue without a GPU: a recording driver
(conftest.fake_driver) stands in for the device, every conformance node
case and the test suite's residual net are planned and run through the
CUDA backend, and each launch is checked against the compiled kernel's
parameter layout (count and size of every argument) and the launch limits.
Nothing is executed, so values are not checked here (tests/cuda/test_gpu.py
does that on a GPU)."""
import os
from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402
from cnnengine.backend.cuda import CudaBackend, table  # noqa: E402
from cnnengine.errors import BackendUnavailableError  # noqa: E402
from cnnengine.importers.onnx_import import load_onnx  # noqa: E402
from cnnengine.model import Model  # noqa: E402

from ..runtime.onnx_builders import residual_net  # noqa: E402
from .cases import conformance, odd_cases  # noqa: E402

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def layouts():
    """{(source, kernel): [parameter sizes]} for sm_80."""
    from cnnengine.backend.cuda import nvrtc
    try:
        nvrtc.version()
    except BackendUnavailableError as exc:
        if IN_CI:
            pytest.fail(f"CI must compile the CUDA kernels, but: {exc}")
        pytest.skip(str(exc))
    out = {}
    for source in nvrtc.SOURCES:
        cubin, _ = nvrtc.compile_source(source, 80)
        for name, params in nvrtc.kernel_params(cubin).items():
            out[(source, name)] = [size for _, size in params]
    return out


def _check_launches(rec, layouts, what):
    for fn, grid, block, sizes in rec.launches:
        assert fn in layouts, f"{what}: launches unknown kernel {fn}"
        assert sizes == layouts[fn], f"{what}: {fn[1]} takes {layouts[fn]}, given {sizes}"
        assert all(g >= 1 for g in grid) and grid[1] <= 65535 and grid[2] <= 65535, f"{what}: grid {grid}"
        assert 1 <= block[0] * block[1] * block[2] <= 1024, f"{what}: block {block}"


def test_every_case_launches_kernels_with_the_right_arguments(fake_driver, layouts):
    kernels_seen, ops_on_device = set(), set()
    for precision in ("fp32", "tf32"):
        for name, model, inputs in conformance() + odd_cases():
            try:
                graph = load_onnx(model)
                m = Model(graph, backend=CudaBackend(precision=precision))
                feeds = {v.name: x for v, x in zip(graph.inputs, inputs)}
                m.run(feeds)            # plan (the reference) and compile
            except ce.Error:
                continue                # a case the engine refuses (the conformance test lists them)
            fake_driver.launches.clear()
            m.run(feeds)                # the device run: eager on a new slot
            m.run(feeds)                # captured into a graph
            _check_launches(fake_driver, layouts, name)
            kernels_seen |= {fn for fn, *_ in fake_driver.launches}
            plan = m._exec.plan_for(feeds)
            ops_on_device |= {st.node.op for st in plan.steps if st.runner is not None}
    # every kernel of every source is launched by some case, and the ops said to have kernels did
    assert set(layouts) - kernels_seen == set(), f"never launched: {sorted(set(layouts) - kernels_seen)}"
    missing = set(table.KERNEL_OPS) - ops_on_device - {"Identity", "Dropout", "Cast", "cnn.Silu"}
    assert not missing, f"ops with a kernel that no case ran on the device: {sorted(missing)}"


def test_residual_net_is_captured_once_per_slot_and_replayed(fake_driver, layouts, rng):
    m = Model(load_onnx(residual_net(rng)), backend=CudaBackend())
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    m.run(x)                                     # plan
    stats = m.backend.replayer.stats
    m.run(x)
    assert stats == {"eager": 1, "captured": 0, "replayed": 0}
    per_run = len(fake_driver.launches)
    assert per_run > 0
    m.run(x)
    assert stats["captured"] == 1 and fake_driver.graphs == 1
    allocs = fake_driver.allocs
    for _ in range(5):
        m.run(x)
    assert stats["replayed"] == 5
    assert fake_driver.allocs == allocs, "a replayed run allocated device memory"
    assert len(fake_driver.launches) == 2 * per_run, "a replay launched kernels one by one"
    _check_launches(fake_driver, layouts, "residual net")


def test_captures_and_host_steps_run_eagerly(fake_driver, rng):
    m = Model(load_onnx(residual_net(rng)), backend=CudaBackend())
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    m.run(x)
    before = dict(m.backend.replayer.stats)
    out, acts = m.run(x, capture=[m.layers[0]])
    assert set(acts) == {m.layers[0]} and isinstance(acts[m.layers[0]], np.ndarray)
    assert m.backend.replayer.stats == before       # a capture run is not replayed
    plan = m._exec.plan_for({m.inputs[0].name: x})
    plan.steps[0].runner, saved = None, plan.steps[0].runner   # a step without a kernel
    try:
        from cnnengine.backend.cuda.graphs import graphable
        assert not graphable(plan)
        m.run(x)
        assert m.backend.replayer.stats == before
    finally:
        plan.steps[0].runner = saved


def test_precision_is_checked(fake_driver):
    with pytest.raises(ce.InputError, match="precision"):
        CudaBackend(precision="fp16")


def test_occlusion_runs_through_the_device_kernels(fake_driver, rng):
    """naive occlusion batches through Model.run; incremental runs each step's
    window through compile_window's device runner (copy in, kernel, copy out)."""
    m = Model(load_onnx(residual_net(rng)), backend=CudaBackend())
    img = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    for mode in ("naive", "incremental"):
        fake_driver.launches.clear()
        res = ce.occlusion(m, img, patch=4, stride=4, mode=mode, target=0)
        assert res.heatmap.shape == (3, 3)
        assert fake_driver.launches, f"{mode}: nothing ran on the device"
        assert any(fn == ("conv", "conv2d_igemm") for fn, *_ in fake_driver.launches)
    stats = sum((r.stats for r in m._exec._region_runners.values()), start=Counter())
    assert any(how == "window" and n for (_, how), n in stats.items()), stats


def test_fused_epilogues_run_as_one_device_step(fake_driver):
    """The passes' fusions (residual + activation, SE gate, BN + activation,
    Gemm + Clip) reach the kernel table as one step with a device runner."""
    from .cases import fused_cases
    for name, model, inputs in fused_cases():
        m = Model(load_onnx(model), backend=CudaBackend())
        feeds = {m.inputs[0].name: inputs[0]}
        m.run(feeds)
        plan = m._exec.plan_for(feeds)
        assert all(st.runner is not None for st in plan.steps), name
        last = plan.steps[-1]
        if name == "fused_residual_relu":
            assert len(plan.steps) == 1 and last.node.inputs[3] and last.runner.kind == "igemm"
        if name == "fused_se_gate":
            assert len(last.node.inputs) == 5 and last.runner.kind == "1x1"
        if name in ("fused_conv_bn_hardswish", "fused_gemm_clip"):
            assert len(plan.steps) == 1 and ops_params(last.node).act, name


def ops_params(node):
    from cnnengine.ops import params_of
    return params_of(node)
