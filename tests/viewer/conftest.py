"""Fixtures for the app's tests: a tiny ONNX network (conv, relu, maxpool,
a residual add, gemm) built with onnx.helper and a synthetic photo, so every
test runs in well under a second. Every Qt test module starts with
require_qt(), so without the viewer extra (PyQt6, pyqtgraph) they are skipped."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest


def require_qt():
    """Skip the calling test module when the viewer extra or pytest-qt is missing
    (module level, so the directory skips cleanly; the NumPy-only atlas tests still run)."""
    pytest.importorskip("PyQt6.QtWidgets", reason="the viewer extra (PyQt6) is not installed")
    pytest.importorskip("pyqtgraph", reason="the viewer extra (pyqtgraph) is not installed")
    pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

SIZE = 32


def make_tiny_onnx(path, seed=0):
    """x (1,3,32,32) -> conv1 3x3 (8) -> relu1 -> pool1 2x2 -> conv2 3x3 (12) -> relu2 -> add
                                          pool1 -> skip 1x1 (12) ----------------> add
       add -> pool2 2x2 -> flatten -> fc (10)"""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def t(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [t("w1", 8, 3, 3, 3), t("b1", 8, scale=0.1), t("w2", 12, 8, 3, 3), t("b2", 12, scale=0.1),
             t("ws", 12, 8, 1, 1), t("wf", 10, 12 * 8 * 8, scale=0.05), t("bf", 10, scale=0.1)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["p1", "ws"], ["s"], name="skip", kernel_shape=[1, 1]),
        helper.make_node("Add", ["r2", "s"], ["a"], name="add"),
        helper.make_node("MaxPool", ["a"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def make_image(path, w=48, h=40):
    from PIL import Image

    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, ((xx // 6 + yy // 6) % 2) * 255], axis=-1).astype(np.uint8)
    Image.fromarray(img).save(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("viewer")
    return make_tiny_onnx(d / "tiny.onnx"), make_image(d / "photo.png")


@pytest.fixture
def settings(tmp_path):
    from PyQt6.QtCore import QSettings
    return QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, tiny_files, settings):
    """A MainWindow with the tiny model and photo loaded and the first layer shown."""
    from cnnengine.viewer.app import MainWindow, make_app

    make_app()
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    win.show()
    model, image = tiny_files
    with qtbot.waitSignal(win.ready, timeout=20000):
        win.open_model(model, image=image)
    yield win
    win.worker.wait(5000)
