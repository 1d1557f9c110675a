"""The Occlusion tab on LeNet-5 and the tiny residual network: a run in the
background equal to ce.occlusion, drawn row by row; cancel mid-run leaves a
partial map; hover and click; a dragged patch probed incrementally with moves
coalesced, its top-k and layer change equal to re-running the occluded image;
the Qt-free probe against Model.run; `cnnengine view --tab occlusion`; a
screenshot."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from .conftest import require_qt

require_qt()

from PyQt6.QtCore import QPointF, Qt  # noqa: E402

import cnnengine as ce  # noqa: E402
from cnnengine.viewer import atlas  # noqa: E402
from cnnengine.viewer.probe import Probe, parse_fill, patch_box  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def lenet_window(qtbot, settings):
    from cnnengine.viewer.app import MainWindow, make_app

    make_app()
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.ready, timeout=30000):
        win.open_model("lenet5", image=ce.sample_image("cat"))
    yield win
    win.occlusion.shutdown()
    win.worker.wait(5000)


def open_tab(qtbot, win):
    """The tab opens with a probe at the patch's starting place."""
    with qtbot.waitSignal(win.occlusion.probed, timeout=30000):
        win.set_tab("occlusion")
    return win.occlusion


def occluded(x, box, fill="mean"):
    t, l, b, r = box
    y = x.copy()
    y[:, :, t:b, l:r] = x.mean(axis=(2, 3), keepdims=True) if fill == "mean" else fill
    return y


def test_run_equals_api_and_fills_row_by_row(lenet_window, qtbot):
    win = lenet_window
    panel = open_tab(qtbot, win)
    panel.patch.setValue(8)
    panel.stride.setValue(4)
    panel.batch = 7                       # one row of the 7x7 map per batch
    seen = []
    panel.relay.progressed.connect(lambda n, done, total, heat: seen.append(heat))
    with qtbot.waitSignal(panel.finished, timeout=60000) as sig:
        panel.run()
        assert panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
        assert panel.result is None       # computed in the background, not here
    result = sig.args[0]
    model = ce.load("lenet5")
    want = ce.occlusion(model, win.image.x, patch=8, stride=4)
    assert result.target == want.target and result.heatmap.shape == (7, 7)
    np.testing.assert_allclose(panel.heat, want.heatmap, atol=1e-5)
    assert not result.cancelled and panel.bar.value() == 49 and panel.run_button.isEnabled()
    # partial maps reached the UI, each a prefix of whole rows in order
    partial = [h for h in seen if np.isnan(h).any()]
    assert partial, "no partial heatmap was sent"
    for h in partial:
        done = np.isfinite(h).reshape(-1)
        k = int(done.sum())
        assert k % 7 == 0 and done[:k].all() and not done[k:].any()
    assert panel.first_rows_s is not None
    # drawn: transparent nowhere once complete, the colour bar symmetric about zero
    rgba, span = panel.heat_rgba()
    assert rgba.shape == (7, 7, 4) and (rgba[..., 3] > 0).all()
    assert span == pytest.approx(float(np.abs(want.heatmap).max()), rel=1e-5)
    assert panel.cbar.levels() == pytest.approx((-span, span))
    panel.opacity.setValue(0)
    assert (panel.heat_rgba()[0][..., 3] == 0).all()

    # the selected channel as the unit target, by its maximum
    win.navigator.select(win.bundle.index["c3.tanh"])
    win.pick_channel(5)
    panel.target.setCurrentText("selected channel · max")
    with qtbot.waitSignal(panel.finished, timeout=60000) as sig:
        panel.run()
    want = ce.occlusion(model, win.image.x, patch=8, stride=4, target=("c3.tanh", 5), reduce="max")
    assert sig.args[0].target == ("c3.tanh", 5)
    np.testing.assert_allclose(sig.args[0].heatmap, want.heatmap, atol=1e-5)
    assert "unit c3.tanh · channel 5 (max)" in panel.message.text()


def test_cancel_mid_run_leaves_a_partial_map(lenet_window, qtbot):
    win = lenet_window
    panel = open_tab(qtbot, win)
    panel.patch.setValue(4)
    panel.stride.setValue(2)              # 15x15 positions
    panel.mode.setCurrentText("naive")
    panel.batch = 1
    # slow each batch down in the worker thread (a direct connection runs there)
    panel.relay.progressed.connect(lambda *a: time.sleep(0.03), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(panel.relay.progressed, timeout=30000):
        panel.run()
    # the patch can be dragged while the map runs: probes have their own thread
    with qtbot.waitSignal(panel.probed, timeout=30000) as probe:
        panel.move_patch(3, 17)
    assert panel._running and probe.args[0].box == (3, 17, 7, 21)
    want = atlas.probabilities(ce.load("lenet5").run(occluded(win.image.x, (3, 17, 7, 21)))[0])
    np.testing.assert_allclose(probe.args[0].probs, want, atol=1e-6)
    with qtbot.waitSignal(panel.finished, timeout=30000) as sig:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    r = sig.args[0]
    done = np.isfinite(r.heatmap)
    assert r.cancelled and 0 < done.sum() < r.heatmap.size
    assert "Cancelled" in panel.message.text() and panel.run_button.isEnabled()
    assert np.isnan(panel.heat).any() and panel.bar.value() == done.sum()
    want = ce.occlusion(ce.load("lenet5"), win.image.x, patch=4, stride=2, mode="naive")
    np.testing.assert_allclose(r.heatmap[done], want.heatmap[done], atol=1e-5)
    # cells not computed are transparent
    assert (panel.heat_rgba()[0][..., 3][~done] == 0).all()


def test_hover_and_click_a_cell(lenet_window, qtbot):
    win = lenet_window
    panel = open_tab(qtbot, win)
    panel.patch.setValue(8)
    panel.stride.setValue(4)
    with qtbot.waitSignal(panel.finished, timeout=60000):
        panel.run()
    i, j = 2, 5
    # cell (i, j) is drawn centred on its patch: (patch - stride) / 2 + stride * index
    cx, cy = 2 + 4 * j + 2, 2 + 4 * i + 2
    assert panel.cell_at(cx, cy) == (i, j)
    panel._hovered(panel.vb_heat.mapViewToScene(QPointF(cx, cy)))
    v = float(panel.heat[i, j])
    assert f"cell ({i}, {j})" in panel.hover.text() and f"drop {v:.5g}" in panel.hover.text()
    with qtbot.waitSignal(panel.probed, timeout=30000) as sig:
        panel.click_cell(i, j)
    r = sig.args[0]
    assert r.box == (4 * i, 4 * j, 4 * i + 8, 4 * j + 8)
    model = ce.load("lenet5")
    probs = atlas.probabilities(model.run(occluded(win.image.x, r.box))[0])
    np.testing.assert_allclose(r.probs, probs, atol=1e-6)
    # the occluded image's probability of the target is the baseline minus the map's drop
    assert r.probs[panel.result.target] == pytest.approx(panel.baseline - v, abs=1e-5)
    assert [c for c, _, _ in panel.predictions.rows] == list(np.argsort(-probs, kind="stable")[:5])
    assert panel.img_occ.image.shape == (32, 32, 3)


def test_drag_updates_top_k_coalescing_moves(window, qtbot):
    """The tiny residual network: moves made while a probe runs only replace
    the pending one; the last position is always probed."""
    win = window
    win.navigator.select(win.bundle.index["relu2"])
    win.pick_channel(3)
    panel = open_tab(qtbot, win)
    panel.patch.setValue(6)
    qtbot.waitUntil(panel.is_idle, timeout=30000)
    shown = []
    panel.probed.connect(shown.append)
    path = [(y, 2 * y % 26) for y in range(0, 26, 2)]
    for y, x in path:                     # a quick drag: no events processed between moves
        panel.move_patch(y, x)
    qtbot.waitUntil(lambda: panel.is_idle() and shown and shown[-1].box[:2] == path[-1], timeout=30000)
    assert len(shown) == 2, "the moves in between should have been coalesced"
    r = shown[-1]
    t, l, b, rr = r.box
    assert (b - t, rr - l) == (6, 6)
    model = ce.load(win.bundle.source)
    out, acts = model.run(occluded(win.image.x, r.box), capture=["relu2"])
    _, clean = model.run(win.image.x, capture=["relu2"])
    probs = atlas.probabilities(out[0])
    np.testing.assert_allclose(r.probs, probs, atol=1e-6)
    assert [c for c, _, _ in panel.predictions.rows] == list(np.argsort(-probs, kind="stable")[:5])
    delta = acts["relu2"][0] - clean["relu2"][0]
    np.testing.assert_allclose(r.delta, delta, atol=1e-4)   # window kernels vs whole: float rounding
    # the outlined region holds every change
    y0, x0, y1, x1 = r.region
    outside = np.ones(delta.shape[1:], bool)
    outside[y0:y1, x0:x1] = False
    assert np.abs(delta[:, outside]).max() < 1e-4 and np.abs(delta).max() > 0
    assert panel.region.isVisible() and "relu2 · channel 3" in panel.label_diff.text
    np.testing.assert_allclose(panel.img_diff.image, delta[3], atol=1e-4)

    # a real mouse drag of the patch: press on it, move, release
    gv = panel.glw
    p0 = panel.patch_box()
    start = gv.mapFromScene(panel.vb_heat.mapViewToScene(QPointF(p0[1] + 3, p0[0] + 3)))
    end = gv.mapFromScene(panel.vb_heat.mapViewToScene(QPointF(p0[1] + 3 + 5, p0[0] + 3 + 4)))
    shown.clear()
    _drag(gv.viewport(), start, end)
    qtbot.waitUntil(lambda: panel.is_idle() and shown and shown[-1].box == panel.patch_box(), timeout=30000)
    assert panel.patch_box() != p0


def _drag(widget, start, end, steps=6):
    from PyQt6.QtCore import QEvent, QPointF as P
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QApplication

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(kind, pos, button, buttons):
        p = P(pos)
        ev = QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, ev)

    send(QEvent.Type.MouseButtonPress, start, left, left)
    for k in range(1, steps + 1):
        f = k / steps
        pos = P(start.x() + (end.x() - start.x()) * f, start.y() + (end.y() - start.y()) * f)
        send(QEvent.Type.MouseMove, pos, none, left)
        QApplication.processEvents()
    send(QEvent.Type.MouseButtonRelease, end, left, none)


def test_new_image_resets_and_screenshot(lenet_window, qtbot, tmp_path):
    win = lenet_window
    panel = open_tab(qtbot, win)
    with qtbot.waitSignal(panel.finished, timeout=60000):
        panel.run()
    with qtbot.waitSignal(panel.probed, timeout=30000):
        panel.click_cell(1, 1)
    shot = tmp_path / "occlusion.png"
    assert win.export_png(shot) and shot.stat().st_size > 10_000
    # another image: the map is forgotten, the probe engine rebuilt
    with qtbot.waitSignal(panel.probed, timeout=30000):
        win.open_image(ce.sample_image("coffee"))
    assert panel.result is None and panel.heat is None and panel.x is win.image.x


def test_approximate_reports_its_error(window, qtbot):
    panel = open_tab(qtbot, window)
    panel.patch.setValue(8)
    panel.stride.setValue(4)
    panel.mode.setCurrentText("approximate")
    panel.fill.setEditText("blur")
    with qtbot.waitSignal(panel.finished, timeout=60000) as sig:
        panel.run()
    r = sig.args[0]
    assert r.mode == "approximate" and r.error is not None and np.isfinite(r.heatmap).all()
    assert "vs naive on" in panel.message.text() and "rank corr" in panel.message.text()


def test_bad_fill_and_missing_unit_are_reported(window, qtbot):
    panel = open_tab(qtbot, window)
    panel.fill.setEditText("grey")
    panel.run()
    assert "fill must be" in panel.message.text() and panel.result is None
    panel.fill.setEditText("0.5")
    panel.layer = None
    panel.target.setCurrentText("selected channel · sum")
    panel.run()
    assert "select a layer" in panel.message.text()


# ---------------------------------------------------------------- Qt-free
def test_probe_against_model_run(tiny_files):
    model = ce.load(tiny_files[0])
    from cnnengine.viewer import session
    x = session.open_image(tiny_files[1], session.preprocess_for(model)).x
    probe = Probe(model, x)
    for layer in model.layers:
        r = probe.probe((3, 20, 13, 30), 0.0, layer)
        out, acts = model.run(occluded(x, r.box, 0.0), capture=[layer])
        _, clean = model.run(x, capture=[layer])
        np.testing.assert_allclose(r.probs, atlas.probabilities(out[0]), atol=1e-6)
        d = (acts[layer] - clean[layer])[0]
        np.testing.assert_allclose(r.delta, d, atol=1e-4, err_msg=layer)
        if d.ndim == 3:
            y0, x0, y1, x1 = r.region
            mask = np.ones(d.shape[1:], bool)
            mask[y0:y1, x0:x1] = False
            assert np.abs(d[:, mask]).max(initial=0) < 1e-4, layer
    # a box past the border is pulled inside
    assert probe.probe((28, 28, 38, 38)).box == (22, 22, 32, 32)
    with pytest.raises(ValueError):
        probe.probe((0, 0, 40, 40))


def test_parse_fill_and_patch_box():
    assert parse_fill(" Mean ") == "mean" and parse_fill("blur") == "blur" and parse_fill("-0.5") == -0.5
    for bad in ("grey", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_fill(bad)
    assert patch_box(-3, 30, 8, (32, 32)) == (0, 24, 8, 32)


def test_view_tab_occlusion_screenshot(tiny_files, tmp_path):
    out = tmp_path / "occ.png"
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    r = subprocess.run([sys.executable, "-m", "cnnengine", "view", *tiny_files, "--layer", "relu2", "--channel",
                        "4", "--tab", "occlusion", "--screenshot", str(out)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    from PIL import Image
    with Image.open(out) as im:
        a = np.asarray(im.convert("RGB"))
    assert a.shape[0] >= 800 and a.std() > 10
    r = subprocess.run([sys.executable, "-m", "cnnengine", "view", *tiny_files, "--layer", "relu2", "--channel",
                        "99", "--screenshot", str(tmp_path / "x.png")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "no channel 99" in r.stderr
