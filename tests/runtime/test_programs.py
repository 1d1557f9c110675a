"""Programs (runtime/programs.py): runs of compiled steps bound once per
arena and run by one C call give the same bits as the step-by-step path
(CNNENGINE_PROGRAM=0), check sizes when binding, name the node of a step
that fails inside a program, and keep concurrent runs apart."""
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402
from cnnengine import _kernels as K  # noqa: E402
from cnnengine.errors import ShapeError  # noqa: E402

from ..models.archs import ARCHS  # noqa: E402
from ..models.test_architectures import _build, _export  # noqa: E402

pytestmark = pytest.mark.skipif(K.active_isa() == "scalar", reason="the blocked layout needs AVX2")

# each brings step kinds the others lack: fused blocks, pooled and gated
# convs, gathers, concats, pooling, affine, channel norm, Gemm, binary ops
# and activations outside convs
NAMES = ["mobilenet_v2", "mobilenet_v3", "efficientnet", "shufflenet_v2", "squeezenet",
         "densenet", "convnext", "highway"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("programs")
    out = {}
    for name in NAMES:
        arch, model = _build(name)
        out[name] = _export(model, arch.input_shape, root / f"{name}.onnx", opset=arch.opset,
                            dynamic_batch=arch.dynamic_batch, torch_folds_bn=arch.torch_folds_bn)
    return out


def _input(name, batch=2, seed=0):
    shape = (batch,) + tuple(ARCHS[name].input_shape)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _plan(model):
    (plan,) = model._exec._plans.values()
    return plan


def _covered(plan):
    """Steps a fresh arena runs inside programs, and all steps."""
    arena = plan.acquire()
    try:
        schedule = arena.schedule or []
        return sum(hi - lo for p, lo, hi in schedule if p is not None), len(plan.steps)
    finally:
        plan.release(arena)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_programs_match_step_by_step(name, threads, paths, monkeypatch):
    x = _input(name)
    fast = ce.load(paths[name], threads=threads)
    got = [fast.run(x) for _ in range(2)]
    monkeypatch.setenv("CNNENGINE_PROGRAM", "0")
    slow = ce.load(paths[name], threads=threads)
    want = [slow.run(x) for _ in range(2)]
    assert _plan(slow).acquire().schedule is None
    monkeypatch.delenv("CNNENGINE_PROGRAM")
    inside, total = _covered(_plan(fast))
    # the graph input's step and the per-run graph output stay outside
    assert inside >= total - 4, f"{inside} of {total} steps in programs"
    # the first run at a new signature and the steady ones, each with its twin
    for y, w in zip(got, want):
        np.testing.assert_array_equal(y, w)
    # a profiled run (its programs' steps timed in C) gives the same result and times every step
    prof = {}
    np.testing.assert_array_equal(fast._exec.run({fast.inputs[0].name: x}, profile=prof)
                                  [fast.outputs[0].name], want[1])
    assert len(prof) == total


def test_bind_checks_sizes():
    pk = K.ConvNCHWc(np.ones(16 * 8 * 9, np.float32), None, (1, 8, 6, 6, 16, 3, 3, 1, 1, 1, 1,
                                                             1, 1, 1, 1, 1, 6, 6))
    x = np.zeros((1, 1, 6, 6, 8), np.float32)
    y = np.zeros((1, 2, 6, 6, 8), np.float32)
    K.bind_conv(pk, x, None, y)
    with pytest.raises(ShapeError, match="y"):
        K.bind_conv(pk, x, None, y[:, :1])
    with pytest.raises(ShapeError, match="positive multiple"):
        K.bind_conv(pk, x[..., :7], None, y)
    with pytest.raises(ShapeError, match="residual"):
        K.bind_conv(pk, x, x, y)
    with pytest.raises(ShapeError, match="s:"):
        K.bind_conv(pk, x, None, y, s=np.zeros(4, np.float32))
    with pytest.raises(ShapeError, match="pool"):
        K.bind_conv(pk, x, None, y, pool=np.zeros(8, np.float32))
    with pytest.raises(ShapeError, match="C-contiguous float32"):
        K.bind_layout(True, x.astype(np.float64), y, 1, 8, 36)
    with pytest.raises(ShapeError, match="x"):
        K.bind_concat([x, x[..., :4]], [1, 1], y, 1, 36 * 8)
    with pytest.raises(ShapeError, match="names no input channel"):
        K.bind_gather([x], np.array([8], np.int64), np.zeros(8, np.int32),
                      np.arange(1, 9, dtype=np.int64), y[:, :1], 1, 36)
    with pytest.raises(ShapeError, match="b"):       # broadcast strides reach past b
        K.bind_binary(0, (2, 8), (8, 1), (1, 0), np.zeros(16, np.float32), np.zeros(1, np.float32),
                      np.zeros(16, np.float32))
    with pytest.raises(ShapeError, match="activation"):
        K.bind_activation(1, 0.0, 0.0, np.zeros(16, np.float32), np.zeros(15, np.float32))
    with pytest.raises(ShapeError, match="w"):
        K.bind_linear(np.zeros(8, np.float32), np.zeros(15, np.float32), None,
                      np.zeros(2, np.float32), 1, 8, 2)


def test_timed_program_times_each_step():
    """run_timed (Model.profile's path) runs the steps as run() does and
    leaves each one's wall time; a short seconds array is refused."""
    a = np.linspace(-1, 1, 4099, dtype=np.float32)
    y1, y2 = np.full_like(a, np.nan), np.full_like(a, np.nan)
    prog = K.Program([K.bind_activation(1, 0.0, 0.0, a, y1),             # relu
                      K.bind_activation(2, -0.25, 0.5, y1, y2)])        # clip
    secs = np.full(2, -1.0)
    prog.run_timed(2, secs)
    assert (secs >= 0).all() and (secs < 10).all()
    np.testing.assert_array_equal(y2, np.clip(np.maximum(a, 0), -0.25, 0.5))
    with pytest.raises(ShapeError, match="seconds"):
        prog.run_timed(1, np.zeros(1))


def test_error_inside_a_program_names_the_node(paths):
    """A kernel that rejects its arguments inside a program raises as the
    step-by-step path does: the node's name, its op and its input shapes."""
    m = ce.load(paths["squeezenet"], threads=1)
    x = _input("squeezenet")
    m.run(x)
    plan = _plan(m)
    k, step = next((k, s) for k, s in enumerate(plan.steps) if s.node.op == "cnn.PoolNCHWc")
    good = step.runner.bind
    n, _, h, w, _ = plan.shapes[step.node.inputs[0]]
    c = step.node.params.channels
    oh, ow = plan.shapes[step.node.outputs[0]][2:4]
    # strides that leave the later windows without an input element: CNN_ERR_SHAPE from C
    step.runner.bind = lambda ins, out: (K.bind_pool(ins[0], out, (n, c, h, w), (3, 3), (h, w), (1, 1),
                                                     (0, 0, 0, 0), (oh, ow), True, False), out)
    try:
        plan._arenas.clear()      # the pooled arenas were bound before: drop them
        with pytest.raises(ShapeError) as info:
            m.run(x)
    finally:
        step.runner.bind = good
        plan._arenas.clear()
    msg = str(info.value)
    assert repr(step.node.name) in msg and "cnn.PoolNCHWc" in msg and "C kernel" in msg
    assert str((n, (c + 7) // 8, h, w, 8)) in msg
    np.testing.assert_array_equal(m.run(x), ce.load(paths["squeezenet"], threads=1).run(x))
    assert k > 0


def test_concurrent_runs_stay_apart(paths):
    m = ce.load(paths["efficientnet"], threads=1)
    xs = [_input("efficientnet", seed=s) for s in range(2)]
    want = [m.run(x) for x in xs]
    errors = []

    def work(i):
        try:
            for _ in range(15):
                np.testing.assert_array_equal(m.run(xs[i]), want[i])
        except Exception as exc:      # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(_plan(m)._arenas) >= 1
