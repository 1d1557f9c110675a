"""The graph glue without a GPU: a recording driver (conftest.fake_driver)
stands in for the device: capture once per slot, replay without
allocations or per-step launches, eager runs for captures and host steps,
fused epilogues as one device step, occlusion through the device runners.
(Values: test_emulated.py; on a GPU: test_gpu.py.)"""
from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402
from cnnengine.backend.cuda import CudaBackend  # noqa: E402
from cnnengine.importers.onnx_import import load_onnx  # noqa: E402
from cnnengine.model import Model  # noqa: E402

from ..runtime.onnx_builders import residual_net  # noqa: E402
from .conftest import check_launches  # noqa: E402


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
    check_launches(fake_driver.launches, layouts, "residual net")


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
