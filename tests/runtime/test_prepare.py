"""ce.load prepares the fast plan for the declared input shape (Model._prepare,
Executor.prepare): the first run at that shape makes no plan and gives the
same outputs and captures as an unprepared model; shapes load cannot know
(dynamic spatial dimensions, integer inputs), the reference backend and
prepare=False leave the plan to the first run; a prepared plan that the
first run does not use is dropped."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce
from cnnengine.errors import ShapeError
from cnnengine.runtime.executor import Executor
from tests.conftest import assert_close
from tests.runtime.onnx_builders import init, ort_run, residual_net


def _no_new_plans(monkeypatch):
    def refuse(self, feeds, keep):
        raise AssertionError("a run made a plan")
    monkeypatch.setattr(Executor, "_make_plan", refuse)


def _batches(m):
    """The batch of each plan of a one-input model (a plan key ends with (name, shape, dtype))."""
    return sorted(key[-1][1][0] for key in m._exec._plans)


@pytest.mark.parametrize("batch", [1, 2, "N"])
def test_load_prepares_the_declared_shape_and_the_first_run_makes_no_plan(batch, rng, monkeypatch):
    net = residual_net(rng, batch=batch)
    n = 1 if batch == "N" else batch
    x = rng.standard_normal((n, 3, 12, 12)).astype(np.float32)
    want = ce.load(net, prepare=False).run(x)
    m = ce.load(net)
    assert _batches(m) == [n]
    plan = next(iter(m._exec._plans.values()))
    assert len(plan._arenas) == 1          # its arena, made (and faulted in) at load
    _no_new_plans(monkeypatch)
    got = m.run(x)
    assert np.array_equal(got, want)
    assert_close(got, ort_run(net, x))
    assert len(plan._arenas) == 1          # the first run took that arena and gave it back
    assert np.array_equal(m.run(x), want)


def test_prepare_false_and_the_reference_backend_leave_it_to_the_first_run(rng):
    net = residual_net(rng, batch=1)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    lazy, ref = ce.load(net, prepare=False), ce.load(net, backend="reference")
    assert not lazy._exec._plans and not ref._exec._plans
    assert_close(lazy.run(x), ref.run(x))
    assert len(lazy._exec._plans) == 1


def test_a_dynamic_batch_run_at_another_batch_drops_the_unused_plan(rng):
    net = residual_net(rng, batch="N")
    m, lazy = ce.load(net), ce.load(net, prepare=False)
    x3 = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    assert np.array_equal(m.run(x3), lazy.run(x3))
    assert _batches(m) == [3]               # the batch-1 plan (and its packs) went
    x1 = x3[:1].copy()
    assert np.array_equal(m.run(x1), lazy.run(x1))
    assert _batches(m) == [1, 3]            # made again when asked for, and both kept


def test_a_used_prepared_plan_stays(rng):
    m = ce.load(residual_net(rng, batch="N"))
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    m.run(x)
    m.run(np.concatenate([x, x]))
    assert _batches(m) == [1, 2]


def test_capture_on_the_first_run_matches_an_unprepared_model(rng, monkeypatch):
    net = residual_net(rng, batch=1)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    names = ["conv1", "bn1", "add", "fc"]
    want, want_acts = ce.load(net, prepare=False).run(x, capture=names)
    m = ce.load(net)
    got, acts = m.run(x, capture=names)
    assert np.array_equal(got, want)
    assert set(acts) == set(names)
    for k in names:
        assert np.array_equal(acts[k], want_acts[k]), k
    _, every = m.run(x, capture=True)
    assert len(every) == len(m.layers)


def test_dynamic_spatial_dimensions_are_not_prepared(rng):
    net = residual_net(rng, batch=1)
    for axis, name in ((2, "H"), (3, "W")):
        net.graph.input[0].type.tensor_type.shape.dim[axis].dim_param = name
    m = ce.load(net)
    assert not m._exec._plans
    x = rng.standard_normal((1, 3, 10, 14)).astype(np.float32)
    assert_close(m.run(x), ort_run(net, x))


def _two_inputs(rng, shape_b):
    nodes = [
        helper.make_node("Conv", ["a", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "b"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="relu"),
    ]
    g = helper.make_graph(nodes, "two", [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 5, 9, 7]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, shape_b)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 9, 7])], [init(rng, "w", 16, 5, 3, 3)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_several_inputs(rng, monkeypatch):
    net = _two_inputs(rng, [1, 16, 9, 7])
    feeds = {"a": rng.standard_normal((1, 5, 9, 7)).astype(np.float32),
             "b": rng.standard_normal((1, 16, 9, 7)).astype(np.float32)}
    want = ce.load(net, prepare=False).run(feeds)
    assert_close(want, ort_run_feeds(net, feeds))
    m = ce.load(net)
    assert len(m._exec._plans) == 1
    _no_new_plans(monkeypatch)
    assert np.array_equal(m.run(feeds), want)


def test_an_integer_input_is_not_prepared(rng):
    nodes = [helper.make_node("Cast", ["i"], ["f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["x", "f"], ["y"], name="add")]
    g = helper.make_graph(nodes, "int", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
        helper.make_tensor_value_info("i", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = ce.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    assert not m._exec._plans
    y = m.run({"x": np.ones((1, 4), np.float32), "i": np.arange(4, dtype=np.int64).reshape(1, 4)})
    assert np.array_equal(y, [[1, 2, 3, 4]])


def test_a_broadcast_residual_add_after_a_conv(rng, monkeypatch):
    # the residual fusion takes the Add; the blocked conv adds only same-shape
    # residuals, so this conv stays plain (it raised a ShapeError before)
    net = _two_inputs(rng, [1, 16, 1, 7])
    feeds = {"a": rng.standard_normal((1, 5, 9, 7)).astype(np.float32),
             "b": rng.standard_normal((1, 16, 1, 7)).astype(np.float32)}
    want = ort_run_feeds(net, feeds)
    for m in (ce.load(net), ce.load(net, prepare=False)):
        assert_close(m.run(feeds), want)


def ort_run_feeds(model, feeds):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def test_a_model_that_cannot_run_still_loads_and_its_run_names_the_node(rng):
    # 36 values cannot be 5 rows: shape inference fails, so load prepares
    # nothing and the first run raises as it did before
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [5, -1])
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")], "bad",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, -1])], [shape])
    m = ce.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    assert not m._exec._plans
    with pytest.raises(ShapeError, match="reshape"):
        m.run(np.zeros((1, 4, 3, 3), np.float32))


def test_cli_run_prepares_and_info_and_convert_do_not(rng, tmp_path, monkeypatch, capsys):
    from cnnengine.cli import main
    from cnnengine.model import Model
    path = str(tmp_path / "m.onnx")
    with open(path, "wb") as f:
        f.write(residual_net(rng, batch=1).SerializeToString())
    prepared = []
    real = Model._prepare
    monkeypatch.setattr(Model, "_prepare", lambda self: prepared.append(real(self)) or prepared[-1])
    assert main(["info", path]) == 0
    assert main(["convert", path, str(tmp_path / "m.cnn")]) == 0
    assert prepared == []
    _no_new_plans(monkeypatch)
    assert main(["run", "--top", "1"]) == 0       # the bundled model and photo
    assert prepared == [True]
    assert "%" in capsys.readouterr().out
