"""Real exporter output loads and matches ONNX Runtime.

The legacy TorchScript exporter (dynamo=False) writes shape arithmetic for
`x.view(x.size(0), -1)` and `F.interpolate` (Shape -> Gather -> Unsqueeze ->
Concat -> Reshape, Cast/Floor/Mul for scales, Constant nodes everywhere);
with dynamic batch these stay in the graph and the engine folds them per
input signature. The dynamo exporter needs onnxscript and is skipped where it
is not installed. External-data files are covered at the end.
"""
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn

import cnnengine as ce  # noqa: E402

TOL = 1e-4


class SmallCNN(nn.Module):
    """Conv-BN-ReLU, a stride-2 conv, an upsample, a pool, a view-flatten and a Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(12, 8, 1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = torch.relu(self.c2(x))                                    # 8x8
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")   # 16x16
        x = self.pool(torch.relu(self.c3(x)))                         # 8x8
        x = nn.functional.avg_pool2d(x, 2)                            # 4x4
        x = x.view(x.size(0), -1)
        return torch.softmax(self.fc(x), dim=1)


def _model():
    torch.manual_seed(0)
    m = SmallCNN().eval()
    with torch.no_grad():   # non-trivial BN statistics
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m


def _export(model, **kw):
    f = io.BytesIO()
    x = torch.randn(1, 3, 16, 16)
    torch.onnx.export(model, (x,), f, input_names=["x"], output_names=["y"], **kw)
    return onnx.load_model_from_string(f.getvalue())


def _check(proto, batches=(1, 3)):
    m = ce.load(proto)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for n in batches:
        x = rng.standard_normal((n, 3, 16, 16)).astype(np.float32)
        fixed = proto.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")
        want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(n)]) if fixed \
            else sess.run(None, {"x": x})[0]
        got = m.run(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("opset", [9, 11, 13])
@pytest.mark.parametrize("fold", [False, True])
def test_torchscript_export(opset, fold):
    proto = _export(_model(), dynamo=False, opset_version=opset, do_constant_folding=fold,
                    dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    ops = {n.op_type for n in proto.graph.node}
    assert {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= ops   # the messy shape chain
    _check(proto)


def test_torchscript_export_fixed_batch():
    """Batch fixed to 1 in the file: the shape chain folds at load; batch 3 runs in chunks."""
    proto = _export(_model(), dynamo=False, opset_version=11)
    _check(proto)


def test_dynamo_export():
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    proto = _export(_model(), dynamo=True, dynamic_shapes=({0: torch.export.Dim("N")},))
    _check(proto)


def test_external_data(tmp_path):
    proto = _export(_model(), dynamo=False, opset_version=13, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    path = tmp_path / "model.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=0)
    assert (tmp_path / "model.onnx.data").stat().st_size > 0
    assert path.stat().st_size < 4096          # the weights really are outside
    m = ce.load(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(m.run(x), sess.run(None, {"x": x})[0], rtol=TOL, atol=TOL)


def test_external_data_missing_file(tmp_path):
    proto = _export(_model(), dynamo=False, opset_version=13)
    path = tmp_path / "model.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0)
    (tmp_path / "w.bin").unlink()
    with pytest.raises(ce.ModelFormatError, match="w.bin"):
        ce.load(str(path))


def test_torchscript_export_native_roundtrip(tmp_path):
    """The 0-d Gather indices of the shape chain survive Model.save / load."""
    proto = _export(_model(), dynamo=False, opset_version=11, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    m = ce.load(proto)
    m.save(tmp_path / "m.cnn")
    m2 = ce.load(tmp_path / "m.cnn")
    x = np.random.default_rng(2).standard_normal((3, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(m2.run(x), m.run(x), rtol=1e-6, atol=1e-7)
