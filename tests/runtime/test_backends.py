"""Backends: what ce.backends() says, load(backend=...), the reference backend
as the CPU backend's oracle, pickling a Model, and the pass pipeline."""
import pickle
import re

import numpy as np
import pytest

import cnnengine as ce
from cnnengine.backend.base import Backend
from cnnengine.runtime.executor import Executor

from ..conftest import assert_close
from .onnx_builders import ort_run, residual_net


def test_backends_lists_every_known_backend_with_reasons():
    infos = {b.name: b for b in ce.backends()}
    assert {"cpu", "reference", "cuda"} <= set(infos)
    assert infos["cpu"].available and infos["reference"].available
    for b in infos.values():
        assert b.available or b.reason, f"{b.name} is unavailable without saying why"


def test_unavailable_and_unknown_backends_raise_saying_why(rng):
    net = residual_net(rng)
    for b in ce.backends():
        if not b.available:
            with pytest.raises(ce.BackendUnavailableError, match=re.escape(b.reason[:20])):
                ce.load(net, backend=b.name)
    with pytest.raises(ce.BackendUnavailableError, match="unknown backend 'tpu'"):
        ce.load(net, backend="tpu")


def test_reference_backend_matches_cpu_and_onnxruntime(rng):
    net = residual_net(rng)
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    ref = ce.load(net, backend="reference")
    assert ref.backend.name == "reference"
    assert_close(ref.run(x), ort_run(net, x), atol=1e-5)
    assert_close(ref.run(x), ce.load(net).run(x), atol=1e-5)
    # captures on the reference backend: the source graph's values
    _, acts = ref.run(x, capture=True)
    _, acts_cpu = ce.load(net).run(x, capture=True)
    for k in acts:
        assert_close(acts[k], acts_cpu[k], atol=1e-5, what=k)


def test_a_backend_is_a_kernel_table_and_an_allocator(rng):
    """A backend written from nothing but compile() and empty() runs a graph:
    here every Relu goes through its own runner, everything else through the
    reference, and every buffer is counted."""
    class Counting(Backend):
        name = "counting"

        def __init__(self):
            self.allocated, self.compiled = 0, []

        def compile(self, node, in_shapes, in_dtypes, out_shapes, static):
            if node.op != "Relu":
                return None
            self.compiled.append(node.name)

            def run(ins, out, t):
                y = out if out is not None else np.empty(out_shapes[0], np.float32)
                np.maximum(ins[0], 0, out=y)
                return y
            return run

        def empty(self, count):
            self.allocated += count
            return np.full(count, np.nan, np.float32)

    net = residual_net(rng)
    model = ce.load(net, backend="reference")
    be = Counting()
    ex = Executor(model.graph, be)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    feeds = {model.inputs[0].name: x}
    ex.run(feeds)                       # makes the plan
    y = ex.run(feeds)[model.outputs[0].name]
    assert be.compiled and be.allocated > 0
    assert_close(y, ort_run(net, x), atol=1e-5)


def test_model_pickles_as_its_source(rng, tmp_path):
    net = residual_net(rng)
    path = tmp_path / "net.onnx"
    path.write_bytes(net.SerializeToString())
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    for source in (str(path), net):
        m = ce.load(source, threads=1)
        blob = pickle.dumps(m)
        assert len(blob) < len(net.SerializeToString()) + 4096   # the source, not the plans
        m2 = pickle.loads(blob)
        assert m2.threads == 1 and m2.backend.name == "cpu"
        assert_close(m2.run(x), m.run(x), atol=0)
    ref = pickle.loads(pickle.dumps(ce.load(str(path), backend="reference")))
    assert ref.backend.name == "reference"


def test_model_built_in_memory_pickles_as_native_bytes(rng):
    from cnnengine.importers.onnx_import import load_onnx
    net = residual_net(rng)
    m = ce.Model(load_onnx(net))
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    assert_close(pickle.loads(pickle.dumps(m)).run(x), m.run(x), atol=0)


def test_pipeline_reports_each_pass(rng):
    m = ce.load(residual_net(rng))
    names = [r.name for r in m.passes]
    assert names[:2] == ["fold_constants", "remove_identities"]
    assert "fold_batchnorm" in names and "fuse_activation" in names
    bn = next(r for r in m.passes if r.name == "fold_batchnorm")
    assert "BatchNormalization" in bn.change
    assert m.layout_report().name == "layout (cpu)"
    assert [r.name for r in ce.load(residual_net(rng), backend="reference").passes] == \
        ["fold_constants", "remove_identities"]


def test_sample_image():
    import os
    assert os.path.isfile(ce.sample_image()) and ce.sample_image("coffee").endswith("coffee.jpg")
    with pytest.raises(ce.InputError):
        ce.sample_image("dog")
