"""The desktop app on a tiny model: open, step with keys, click a channel and
a unit, receptive field against summary(), grid against Model.run(capture=...),
filters, exports, recent files, the headless screenshot command."""
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import require_qt

require_qt()

from PyQt6.QtCore import QPointF, Qt  # noqa: E402

import cnnengine as ce  # noqa: E402
from cnnengine.viewer import atlas, session  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reference(model_path, image_path, names):
    model = ce.load(model_path)
    img = session.open_image(image_path, session.preprocess_for(model))
    out, acts = model.run(img.x, capture=names)
    return model, img, out, acts


def click_view(qtbot, gview, vb, y, x):
    """Left-click the centre of view pixel (y, x) of a pyqtgraph ViewBox."""
    scene = vb.mapViewToScene(QPointF(x + 0.5, y + 0.5))
    pos = gview.mapFromScene(scene)
    qtbot.mouseClick(gview.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def select(qtbot, win, name):
    win.navigator.select(win.bundle.index[name])
    assert win.layer().name == name


def test_opens_model_and_image(window, tiny_files):
    model, img, out, _ = reference(*tiny_files, ["conv1"])
    assert [l.name for l in window.bundle.summary] == model.layers
    assert window.navigator.table.layer_count() == len(model.layers)
    assert window.row == 0 and window.grid.channel_count() == 8
    assert window.first_shown is not None
    # the input panel shows the photo and the model's input
    assert window.input_view.img_orig.image.shape == (40, 48, 3)
    assert window.input_view.img_in.image.shape == (32, 32, 3)
    # predictions: softmax of the logits
    probs = atlas.probabilities(out[0])
    top = [i for i, _, _ in window.predictions.rows]
    assert top == list(np.argsort(-probs, kind="stable")[:5])
    np.testing.assert_allclose([p for _, _, p in window.predictions.rows], np.sort(probs)[::-1][:5], rtol=1e-5)
    # the graph strip knows the residual branch and the merge
    add = window.bundle.index["add"]
    assert add in window.bundle.merges
    assert (window.bundle.index["pool1"], window.bundle.index["skip"]) in window.bundle.edges


def test_keyboard_stepping(window, qtbot):
    n = len(window.bundle.summary)
    nav = window.navigator
    qtbot.keyClick(nav, Qt.Key.Key_Down)
    assert window.row == 1
    qtbot.keyClick(nav, Qt.Key.Key_Right)
    assert window.row == 2
    qtbot.keyClick(nav, Qt.Key.Key_Up)
    assert window.row == 1
    qtbot.keyClick(nav, Qt.Key.Key_End)
    assert window.row == n - 1
    qtbot.keyClick(nav, Qt.Key.Key_Home)
    assert window.row == 0
    qtbot.keyClick(nav, Qt.Key.Key_PageDown)
    assert window.row == min(10, n - 1)
    qtbot.keyClick(nav, Qt.Key.Key_PageUp)
    assert window.row == 0
    # keys reach the navigator from elsewhere in the window too
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert window.row == 1
    assert window.strip.canvas.current == 1


@pytest.mark.parametrize("name", ["conv1", "relu1", "pool1", "add", "fc"])
def test_grid_matches_capture(window, qtbot, tiny_files, name):
    _, _, _, acts = reference(*tiny_files, [name])
    select(qtbot, window, name)
    ref = atlas.as_maps(acts[name])
    assert window.grid.channel_count() == ref.shape[0]
    assert window.grid.view.layout.count == ref.shape[0]
    # The app captures every layer (unfused plan) while `reference` captures one
    # (fused plan, where a 3x3 conv may run as Winograd): float tolerance.
    np.testing.assert_allclose(window.grid.maps, ref, rtol=1e-4, atol=1e-4)
    # the atlas pixel of every tile shows its channel's (normalised) map
    lay, img = window.grid.view.layout, window.grid.atlas
    norm = atlas.normalise(window.grid.maps, "channel")
    for k in range(lay.count):
        y0, x0 = lay.tile_origin(k)
        np.testing.assert_allclose(img[y0:y0 + lay.tile_h, x0:x0 + lay.tile_w], norm[lay.order[k]], atol=1e-6)


def test_click_channel_and_unit_receptive_field(window, qtbot, tiny_files):
    model, img, _, acts = reference(*tiny_files, ["conv2"])
    select(qtbot, window, "conv2")
    lay = window.grid.view.layout
    k = 5
    ty, tx = lay.tile_origin(k)
    click_view(qtbot, window.grid.view, window.grid.view.vb, ty + 2, tx + 3)
    ch = lay.order[k]
    assert window.channel == ch and window.channel_view.channel == ch
    m = acts["conv2"][0, ch]
    assert window.channel_view.stats.text().startswith(f"min {m.min():.4g}")
    assert f"zeros {100 * np.mean(m == 0):.1f}%" in window.channel_view.stats.text()

    cv = window.channel_view
    y, x = 1, 6
    click_view(qtbot, cv.glw, cv.vb, y, x)
    assert window.unit == (y, x)
    rf = {l.name: l for l in model.summary()}["conv2"].receptive_field
    # output unit i covers input pixels start + i*jump +- (size-1)/2, clipped to the image
    H, W = img.x.shape[2:]
    cy, cx = rf["start"][0] + y * rf["jump"][0], rf["start"][1] + x * rf["jump"][1]
    half_h, half_w = (rf["size"][0] - 1) / 2, (rf["size"][1] - 1) / 2
    want = (max(0, cy - half_h), max(0, cx - half_w), min(H, cy + half_h + 1), min(W, cx + half_w + 1))
    assert window.rf_box() == pytest.approx(want)
    r = window.input_view.rf_in.rect()
    assert (r.top(), r.left(), r.bottom(), r.right()) == pytest.approx(want)
    assert window.input_view.rf_in.isVisible()
    # conv2 after a 2x2 pool: 3x3 conv, 2x2 pool, 3x3 conv -> 8 px, jump 2
    assert rf["size"] == [8, 8] and rf["jump"] == [2, 2]


def test_strongest_unit_button(window, qtbot):
    select(qtbot, window, "relu2")
    window.select_channel(3)
    qtbot.mouseClick(window.channel_view.strongest, Qt.MouseButton.LeftButton)
    m = window.grid.maps[3]
    assert window.unit == atlas.strongest_unit(m) and m[window.unit] == m.max()


def test_sort_normalisation_and_colormap(window, qtbot):
    select(qtbot, window, "relu1")
    window.sort_box.setCurrentText("mean")
    maps = window.grid.maps
    assert list(window.grid.view.layout.order) == list(np.argsort(-maps.mean(axis=(1, 2)), kind="stable"))
    window.norm_box.setCurrentText("shared")
    np.testing.assert_allclose(np.nanmax(window.grid.atlas), 1.0)
    assert "shared" in window.grid.header.text()
    before = window.grid.view.image.image.copy()
    window.cmap_box.setCurrentText("gray")
    after = window.grid.view.image.image
    assert not np.array_equal(before, after)
    inside = ~np.isnan(window.grid.atlas)
    assert np.all(after[inside][:, 0] == after[inside][:, 1])   # grey: R == G


def test_filters_tab(window, qtbot):
    window.set_tab("filters")
    select(qtbot, window, "conv1")
    assert window.filters.info["kind"] == "rgb" and window.filters.view.layout.count == 8
    np.testing.assert_array_equal(window.filters.w, window.bundle.model.graph.weights[
        window.bundle.model.graph.node("conv1").inputs[1]])
    select(qtbot, window, "conv2")
    assert window.filters.info["kind"] == "kernels"
    assert (window.filters.view.layout.rows, window.filters.view.layout.cols) == (12, 8)
    select(qtbot, window, "skip")
    assert window.filters.info["kind"] == "matrix"
    select(qtbot, window, "relu2")
    assert window.filters.w is None and "no convolution weights" in window.filters.header.text()


def test_export_png_and_npy(window, qtbot, tmp_path, tiny_files):
    _, _, _, acts = reference(*tiny_files, ["pool1"])
    select(qtbot, window, "pool1")
    png, npy = tmp_path / "view.png", tmp_path / "pool1.npy"
    assert window.export_png(png)
    from PIL import Image
    with Image.open(png) as im:
        assert im.size[0] >= 1000 and np.asarray(im.convert("L")).std() > 10
    assert window.export_npy(npy)
    np.testing.assert_allclose(np.load(npy), acts["pool1"], rtol=1e-6)


def test_dropped_image_updates_predictions_and_recent(window, qtbot, tmp_path, tiny_files, settings):
    from .conftest import make_image
    other = make_image(tmp_path / "other.png", w=64, h=64)
    from PyQt6.QtCore import QMimeData, QUrl
    from PyQt6.QtGui import QDropEvent
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(other)])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.ready, timeout=20000):
        window.dropEvent(drop)          # dropping a photo on the window opens it
    assert window.image.path == other
    _, _, out, _ = reference(tiny_files[0], other, ["fc"])
    assert window.predictions.rows[0][0] == int(np.argmax(out))
    assert settings.value("recent/images")[0] == os.path.abspath(other)
    assert settings.value("recent/models")[0] == os.path.abspath(tiny_files[0])
    assert window.recent_images_menu.actions()[0].text() == os.path.abspath(other)


def test_layer_times_from_profile(window, qtbot):
    qtbot.waitUntil(lambda: bool(window.bundle.times), timeout=20000)
    times = window.bundle.times
    assert set(times) == set(window.bundle.index)
    assert isinstance(times["conv1"], float) and times["conv1"] > 0
    text = window.navigator.table.time_text(window.bundle.summary[0])
    assert text.endswith("ms") or text.endswith("µs")


def test_bad_model_reports_error(qtbot, tmp_path, settings):
    from cnnengine.viewer.app import MainWindow
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.failed, timeout=10000) as sig:
        win.open_model(str(bad))
    assert "bad.onnx" in sig.args[0]
    assert win.bundle is None


def test_screenshot_command(tiny_files, tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    r = subprocess.run([sys.executable, "-m", "cnnengine", "view", *tiny_files, "--layer", "conv2",
                        "--screenshot", str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "propagateSizeHints" not in r.stderr      # the offscreen platform's warning is filtered
    from PIL import Image
    with Image.open(out) as im:
        a = np.asarray(im.convert("RGB"))
    assert a.shape[0] >= 800 and a.shape[1] >= 1200
    assert a.std() > 10 and len(np.unique(a.reshape(-1, 3), axis=0)) > 500   # not blank
    r = subprocess.run([sys.executable, "-m", "cnnengine", "view", *tiny_files, "--layer", "nope",
                        "--screenshot", str(tmp_path / "x.png")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "nope" in r.stderr


def test_bundled_efficientnet_lite0(qtbot, settings):
    """The default model and photo: every layer listed, first layer's maps, a cat."""
    try:
        from cnnengine import zoo
        names = zoo.names()
    except ImportError:
        names = []
    if "efficientnet_lite0" not in names or session.default_image() is None:
        pytest.skip("the bundled zoo (efficientnet_lite0 and cat.jpg) is not on this branch")
    from cnnengine.viewer.app import MainWindow
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.ready, timeout=120000):
        win.open_model(session.DEFAULT_MODEL)
    model = win.bundle.model
    assert [l.name for l in win.bundle.summary] == model.layers
    first = win.bundle.summary[0]
    assert win.grid.channel_count() == first.output_shape[1]
    assert win.bundle.merges, "EfficientNet-Lite0 has residual adds"
    top = win.predictions.rows[0]
    assert 281 <= top[0] <= 285, f"expected a cat class, got {top}"
    # the logits: a chart of named classes, the top one selected
    win.navigator.select(win.bundle.index["_fc"])
    assert win.grid.is_chart() and win.channel == top[0]
    assert win.channel_view.title.text().startswith(f"{top[0]} {win.bundle.labels[top[0]]} (1×1)")
    # a deep layer's maps equal the engine's capture of it
    name = win.bundle.summary[len(win.bundle.summary) // 2].name
    win.navigator.select(win.bundle.index[name])
    _, acts = model.run(win.image.x, capture=[name])
    np.testing.assert_allclose(win.grid.maps, atlas.as_maps(acts[name]), rtol=1e-5, atol=1e-5)
    win.worker.wait(30000)


def test_layer_by_layer_capture_for_large_models(qtbot, tiny_files, settings, monkeypatch):
    """Above CAPTURE_ALL_LIMIT the app captures only the layer on screen."""
    from cnnengine.viewer.app import MainWindow
    monkeypatch.setattr(session, "CAPTURE_ALL_LIMIT", 0)
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.ready, timeout=20000):
        win.open_model(tiny_files[0], image=tiny_files[1])
    assert not win.bundle.capture_all and set(win.result.acts) == {"conv1"}
    _, _, _, acts = reference(*tiny_files, ["relu2"])
    win.navigator.select(win.bundle.index["relu2"])
    qtbot.waitUntil(lambda: win.grid.name == "relu2" and win.grid.maps is not None, timeout=10000)
    np.testing.assert_allclose(win.grid.maps, atlas.as_maps(acts["relu2"]), rtol=1e-4, atol=1e-4)
    win.worker.wait(5000)


def test_hover_reports_channel_and_value(window, qtbot):
    select(qtbot, window, "conv2")
    view = window.grid.view
    k = 7
    ty, tx = view.layout.tile_origin(k)
    scene = view.vb.mapViewToScene(QPointF(tx + 4.5, ty + 2.5))
    view._moved(scene)             # what the scene's sigMouseMoved delivers
    ch = view.layout.order[k]
    assert window.grid.hover.text() == f"channel {ch}  y 2, x 4  =  {float(window.grid.maps[ch, 2, 4]):.5g}"
