"""Shape rules agree with the references: every node of the test suite's
models, run node by node through ops.evaluate, has the output shapes its
infer() predicts (from all inputs as constants, and from the weights alone,
where infer may only refuse with ShapeError)."""
import zlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402
from cnnengine import ops  # noqa: E402
from cnnengine.errors import ShapeError  # noqa: E402
from cnnengine.importers.onnx_import import load_onnx  # noqa: E402
from cnnengine.runtime import passes  # noqa: E402

from ..runtime.onnx_builders import residual_net  # noqa: E402


def check_graph(graph, feeds):
    """Walk the graph; assert infer == the reference's shapes at every node. Returns the op types seen."""
    env = dict(graph.weights)
    env.update(feeds)
    static = set(graph.weights)
    seen = set()
    for node in graph.nodes:
        ins = [env[i] if i else None for i in node.inputs]
        try:
            outs = ops.evaluate(node, ins)
        except ce.Error:
            continue     # a case the op refuses (conformance's listed ones): no shapes to compare
        seen.add(node.op)
        got = [tuple(np.shape(v)) for o, v in zip(node.outputs, outs) if o]
        shapes = [None if x is None else tuple(np.shape(x)) for x in ins]
        every = {k: x for k, x in enumerate(ins) if x is not None}
        want = [tuple(s) for o, s in zip(node.outputs, ops.infer(node, shapes, every)) if o]
        assert want == got, f"{node.name} ({node.op}): infer {want}, reference {got}"
        weights_only = {k: env[i] for k, i in enumerate(node.inputs) if i and i in static}
        try:
            want = [tuple(s) for o, s in zip(node.outputs, ops.infer(node, shapes, weights_only)) if o]
        except ShapeError as exc:
            assert "not known at plan time" in str(exc), f"{node.name} ({node.op}): {exc}"
        else:
            assert want == got, f"{node.name} ({node.op}) from weights: infer {want}, reference {got}"
        is_static = all((not i) or i in static for i in node.inputs) or node.op in ("Shape", "Size")
        for o, v in zip(node.outputs, outs):
            if o:
                env[o] = v
                if is_static:
                    static.add(o)
    return seen


def _conformance_cases():
    from ..importers.test_onnx_conformance import CASES, _array
    return [(name, model, [_array(v) for v in data[0]]) for name, model, data in CASES]


CONFORMANCE = _conformance_cases()


def test_conformance_cases_cover_the_supported_ops():
    seen = set()
    for name, model, inputs in CONFORMANCE:
        try:
            graph = load_onnx(model)
        except ce.Error:
            continue     # refused at import (listed out of scope by the conformance test)
        feeds = {v.name: x for v, x in zip(graph.inputs, inputs)}
        try:
            seen |= check_graph(graph, feeds)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    from ..importers.test_onnx_conformance import SUPPORTED
    missing = {o for o in SUPPORTED if ops.known(o)} - seen
    assert not missing, f"no conformance case reached {sorted(missing)}"


@pytest.mark.parametrize("opset", [9, 13])
def test_residual_net_raw_and_fused(opset):
    rng = np.random.default_rng(3)
    graph = load_onnx(residual_net(rng, batch=2, opset=opset))
    x = {"x": rng.standard_normal((2, 3, 12, 12)).astype(np.float32)}
    check_graph(graph, x)
    fused = passes.fuse(passes.remove_identities(passes.fold_constants(graph))[0])
    assert {n.op for n in fused.nodes} != {n.op for n in graph.nodes}
    check_graph(fused, x)


def test_bundled_lenet5():
    from cnnengine import zoo
    import os
    graph = load_onnx(os.path.join(os.path.dirname(zoo.__file__), "lenet5.onnx"))
    shape = tuple(d if isinstance(d, int) else 2 for d in graph.inputs[0].shape)
    x = {graph.inputs[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    assert {"Conv", "Gemm"} <= check_graph(graph, x)


def _archs():
    pytest.importorskip("torch")
    from ..models.archs import ARCHS
    return ARCHS


@pytest.mark.parametrize("name", ["alexnet", "googlenet", "inception_v3", "resnet_bottleneck", "se_resnet",
                                  "densenet", "squeezenet", "shufflenet_v2", "mobilenet_v2_opset9",
                                  "mobilenet_v3", "efficientnet", "convnext", "fcn_bilinear",
                                  "fcn_nearest_opset9", "dilated", "lenet5", "vgg_bn", "highway"])
def test_architectures(name, tmp_path):
    archs = _archs()
    from ..models.test_architectures import _build, _export
    arch, model = _build(name)
    path = _export(model, arch.input_shape, tmp_path / f"{name}.onnx", opset=arch.opset,
                   dynamic_batch=arch.dynamic_batch, torch_folds_bn=arch.torch_folds_bn)
    graph = load_onnx(path)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = {graph.inputs[0].name: rng.standard_normal((2,) + archs[name].input_shape).astype(np.float32)}
    check_graph(graph, x)
    fused = passes.fuse(passes.remove_identities(passes.fold_constants(graph))[0])
    check_graph(fused, x)
