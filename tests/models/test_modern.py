"""The modern families end to end: ConvNeXt-like blocks in torchvision's
form (7x7 depthwise, LayerNorm over the channels-last axis, pointwise
Linears with exact or tanh GELU, layer scale after the permute, residual;
the stem's and the head's LayerNorm2d) and a MobileNetV3-like net
(hard-swish, hard-sigmoid SE gates), exported from PyTorch and checked
against ONNX Runtime to 1e-4 of the logits' scale; and the plan: no
Transpose, MatMul, Erf or NumPy-level step left in a ConvNeXt block."""
import collections

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import torch.nn as nn  # noqa: E402

import cnnengine as ce  # noqa: E402
from cnnengine import ops as registry  # noqa: E402
from cnnengine.backend.cpu import layout  # noqa: E402

from .archs import MobileNetV3Mini, randomize  # noqa: E402


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerNormCF(nn.Module):
    """The official ConvNeXt's LayerNorm, data_format="channels_first", written out."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(1 + torch.rand(c)), nn.Parameter(torch.rand(c)), eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class CNBlock(nn.Module):
    """torchvision.models.convnext.CNBlock (stochastic depth is identity here)."""

    def __init__(self, dim, k=7, approximate="none"):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim), Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(approximate=approximate),
            nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(0.5 + torch.rand(dim, 1, 1))

    def forward(self, x):
        return self.layer_scale * self.block(x) + x


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class ConvNeXtLike(nn.Module):
    """Stem 4x4/4 + LayerNorm2d, blocks, LayerNorm2d + 2x2/2 downsampling,
    pooled LayerNorm2d head: torchvision's layout at small widths (20 and
    36 channels: partial blocks in the blocked layout)."""

    def __init__(self, dims=(20, 36), k=7, approximate="none", classes=10, norm=LayerNorm2d):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), norm(dims[0], eps=1e-6)),
            CNBlock(dims[0], k, approximate), CNBlock(dims[0], k, approximate),
            nn.Sequential(norm(dims[0], eps=1e-6), nn.Conv2d(dims[0], dims[1], 2, 2)),
            CNBlock(dims[1], k, approximate))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(norm(dims[1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(dims[1], classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def _export(model, shape, path, opset):
    model.eval()
    torch.onnx.export(model, torch.zeros((2,) + shape), str(path), opset_version=opset, dynamo=False,
                      input_names=["input"], output_names=["logits"])
    return path


CASES = {
    "convnext_erf": (lambda: ConvNeXtLike(), (3, 64, 64), 17),
    "convnext_tanh": (lambda: ConvNeXtLike(approximate="tanh"), (3, 64, 64), 17),
    "convnext_gelu_op": (lambda: ConvNeXtLike(k=9), (3, 48, 48), 20),     # ONNX Gelu, 9x9 depthwise
    "convnext_channels_first": (lambda: ConvNeXtLike(norm=LayerNormCF), (3, 64, 64), 18),
    "mobilenet_v3": (MobileNetV3Mini, (3, 64, 64), 13),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root, cache = tmp_path_factory.mktemp("modern"), {}

    def get(name):
        if name not in cache:
            make, shape, opset = CASES[name]
            torch.manual_seed(7)
            model = make()
            randomize(model) if name == "mobilenet_v3" else None
            cache[name] = (model, shape, _export(model, shape, root / f"{name}.onnx", opset))
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(CASES))
def test_logits_match_onnxruntime(name, exported):
    model, shape, path = exported(name)
    x = np.random.default_rng(3).standard_normal((2,) + shape).astype(np.float32)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    y = ce.load(path).run(x)
    scale = float(np.abs(ref).max())
    assert scale > 0.1
    err = float(np.abs(y - ref).max())
    assert err <= 1e-4 * scale, f"{name}: max abs diff {err:.3g} vs logits scale {scale:.3g}"
    with torch.no_grad():
        ref_t = model(torch.from_numpy(x)).numpy()
    assert float(np.abs(y - ref_t).max()) <= 1e-4 * scale


def _plan_ops(model, x):
    plan = model._exec.plan_for({model.graph.inputs[0].name: x})
    return collections.Counter(s.node.op for s in plan.steps)


@pytest.mark.parametrize("name", ["convnext_erf", "convnext_tanh", "convnext_gelu_op", "convnext_channels_first"])
def test_convnext_plan_is_blocked(name, exported):
    _, shape, path = exported(name)
    m = ce.load(path)
    ops = _plan_ops(m, np.zeros((2,) + shape, np.float32))
    for gone in ("Transpose", "MatMul", "Erf", "Gelu", "Tanh", "LayerNormalization", "Div", "ReduceMean",
                 "Sqrt", "Pow"):
        assert ops[gone] == 0, f"{gone} left in the plan: {dict(ops)}"
    if layout.available() and ops["cnn.ConvNCHWc"]:
        assert ops["cnn.ChannelNormNCHWc"] == 6, dict(ops)
        assert ops["cnn.ToNCHWc"] == 0, dict(ops)       # the stem reads the image, all else blocked
    else:
        assert ops["cnn.ChannelNorm"] == 6, dict(ops)


def test_gelu_fused_into_the_expanding_conv(exported):
    """The first pointwise conv of each block carries GELU in its epilogue
    and the layer scale folded into the second one: 3 blocks x 2 convs
    + depthwise, stem and downsampling."""
    _, shape, path = exported("convnext_erf")
    fused = ce.load(path)._fused
    convs = [n for n in fused.nodes if n.op == "Conv"]
    assert sum(registry.params_of(n).act == "gelu" for n in convs) == 3
    assert not [n for n in fused.nodes if n.op in ("Mul", "Transpose", "Erf")]
    assert sum(len(n.inputs) > 3 and bool(n.inputs[3]) for n in convs) == 3   # residuals fused


def test_mobilenet_v3_gates_in_c(exported):
    """Hard-swish fused into the conv epilogues and the hard-sigmoid SE
    gates folded into the projections: no standalone activation steps."""
    _, shape, path = exported("mobilenet_v3")
    ops = _plan_ops(ce.load(path), np.zeros((2,) + shape, np.float32))
    assert ops["HardSwish"] + ops["HardSigmoid"] + ops["Mul"] <= 1, dict(ops)
