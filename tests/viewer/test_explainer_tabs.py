"""The Patches and Compute tabs in the window, offscreen: a folder run with
progress, the selected channel's crops and the overview, a click selecting
a channel, Cancel, the cache read on reopening; a click on a unit in the
Compute tab and its sum against the layer's own output; the CLI."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from .conftest import require_qt

require_qt()

from PyQt6.QtCore import QPoint, Qt  # noqa: E402

from cnnengine.viewer import patches  # noqa: E402

from .test_app import ROOT, reference, select  # noqa: E402
from .test_patches import make_folder  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cnnengine" / "patches"


def run_folder(qtbot, win, folder):
    with qtbot.waitSignal(win.patches.finished, timeout=30000) as sig:
        win.patches.set_folder(folder)
    return sig.args[0]


def test_patches_tab_runs_shows_and_reopens_from_the_cache(window, qtbot, tmp_path, tiny_files, cache, settings):
    from cnnengine.viewer.app import MainWindow

    folder = make_folder(tmp_path / "imgs", n=6)
    window.set_tab("patches")
    select(qtbot, window, "conv2")
    steps = []
    window.patches.relay.progressed.connect(lambda n, d, t: steps.append((d, t)))
    ps = run_folder(qtbot, window, folder)
    assert ps is not None and not ps.from_cache and len(ps.files) == 6
    assert steps[-1] == (6, 6) and window.patches.bar.value() == window.patches.bar.maximum()
    # every layer was kept in the one pass (the tiny model fits), so any layer shows at once
    assert set(ps.layers) == set(window.bundle.index)
    ch = window.channel
    assert len(window.patches.top.items) == 6          # fewer images than 9: all of them, best first
    top = ps.layers["conv2"].entries(ch)
    rf = window.patches.rf
    crop, _ = ps.crop(rf, patches.layer_value(window.bundle.model, "conv2"), top[0])
    img = window.patches.top.items[0][0]
    assert (img.height(), img.width()) == crop.shape[:2]
    assert f"{top[0][0]:.4g}" in window.patches.top.items[0][1]
    assert window.patches.overview.count == 12 and window.patches.overview.selected == ch
    # the best image of the channel is the image whose capture has the largest maximum
    model, _, _, _ = reference(tiny_files[0], tiny_files[1], ["conv2"])
    pre = window.bundle.preprocess
    best = max(range(6), key=lambda i: model.run(patches.session.open_image(ps.files[i], pre).x,
                                                 capture=["conv2"])[1]["conv2"][0, ch].max())
    assert top[0][1] == best
    # clicking a mosaic in the overview selects that channel in the window
    target = (ch + 3) % 12
    ov = window.patches.overview
    qtbot.mouseClick(ov, Qt.MouseButton.LeftButton, pos=ov.rect_of(target).center())
    assert window.channel == target and ov.selected == target
    assert "channel %d" % target in window.patches.title.text()
    # another layer is there without running again
    select(qtbot, window, "pool1")
    assert window.patches.overview.count == 8 and window.patches.is_idle()
    assert len(os.listdir(cache)) == 1

    # a new window on the same model and folder: read from the cache
    win2 = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win2)
    win2.show()
    win2.set_tab("patches")
    with qtbot.waitSignal(win2.ready, timeout=20000):
        win2.open_model(tiny_files[0], image=tiny_files[1])
    again = run_folder(qtbot, win2, folder)
    assert again.from_cache and "from the cache" in win2.patches.folder_label.text()
    for name in ps.layers:
        np.testing.assert_array_equal(again.layers[name].values, ps.layers[name].values)
    win2.close()


def test_patches_cancel_leaves_nothing_cached(window, qtbot, tmp_path, cache, monkeypatch):
    folder = make_folder(tmp_path / "imgs", n=6)
    started, go = threading.Event(), threading.Event()
    real = patches.session.open_image

    def slow(path, pre):      # the second image waits until the test has pressed Cancel
        if path.endswith("im1.png"):
            started.set()
            go.wait(10)
        return real(path, pre)

    monkeypatch.setattr(patches.session, "open_image", slow)
    window.set_tab("patches")
    window.patches.set_folder(folder)
    qtbot.waitUntil(started.is_set, timeout=10000)
    assert window.patches.cancel_button.isEnabled()
    with qtbot.waitSignal(window.patches.finished, timeout=20000) as sig:
        qtbot.mouseClick(window.patches.cancel_button, Qt.MouseButton.LeftButton)
        go.set()
    assert sig.args[0] is None
    assert "Cancelled after 2 of 6 images" in window.patches.message.text()
    assert not window.patches.cancel_button.isEnabled()
    assert not cache.exists() or not os.listdir(cache)


def test_patches_bad_folder_reports(window, qtbot, tmp_path):
    window.set_tab("patches")
    with qtbot.waitSignal(window.patches.finished, timeout=10000) as sig:
        window.patches.set_folder(tmp_path)
    assert sig.args[0] is None and "no images" in window.patches.message.text()


def test_compute_tab_click_explains_the_unit(window, qtbot, tiny_files):
    comp = window.compute
    select(qtbot, window, "conv2")
    with qtbot.waitSignal(comp.finished, timeout=20000) as sig:
        window.set_tab("compute")
    e = sig.args[0]
    ch = window.channel
    _, _, _, acts = reference(*tiny_files, ["conv2"])
    y, x = np.unravel_index(np.argmax(acts["conv2"][0, ch]), acts["conv2"].shape[2:])
    assert (e.channel, e.y, e.x) == (ch, y, x)           # the strongest unit until one is clicked
    # click unit (3, 5) of the map
    rect, s = comp.map.target()
    pos = QPoint(int(rect.x() + 5.5 * s), int(rect.y() + 3.5 * s))
    with qtbot.waitSignal(comp.finished, timeout=5000) as sig:
        qtbot.mouseClick(comp.map, Qt.MouseButton.LeftButton, pos=pos)
    e = sig.args[0]
    assert (e.channel, e.y, e.x) == (ch, 3, 5)
    assert abs(e.total - acts["conv2"][0, ch, 3, 5]) < 1e-4 and abs(e.output - acts["conv2"][0, ch, 3, 5]) < 1e-5
    assert window.unit == (3, 5)                          # the window follows
    assert (comp.y_spin.value(), comp.x_spin.value()) == (3, 5)
    assert comp.grid.count() == 4 * 6                     # 4 input channels: caption + 5 cells each
    assert "Relu (relu2)" in comp.header.text() and "pool1" in comp.header.text()
    assert f"{e.output:.6g}" in comp.total.text()
    # the spin boxes pick a unit too; a non-conv layer says so
    with qtbot.waitSignal(comp.finished, timeout=5000) as sig:
        comp.x_spin.setValue(0)
    assert sig.args[0].x == 0 and abs(sig.args[0].total - acts["conv2"][0, ch, 3, 0]) < 1e-4
    with qtbot.waitSignal(comp.finished, timeout=10000) as sig:
        select(qtbot, window, "relu1")
    assert sig.args[0] is None and "not a convolution" in comp.header.text()


def cli(cache_home, *args):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.run([sys.executable, "-m", "cnnengine", "view", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_screenshot_of_the_patches_tab(tiny_files, tmp_path):
    folder = make_folder(tmp_path / "imgs", n=3)
    out = tmp_path / "patches.png"
    r = cli(tmp_path / "cache", tiny_files[0], tiny_files[1], "--layer", "conv2", "--tab", "patches",
            "--patches-from", folder, "--screenshot", str(out))
    assert r.returncode == 0, r.stderr
    from PIL import Image
    with Image.open(out) as im:
        assert im.size[0] >= 1000 and np.asarray(im.convert("L")).std() > 10
    assert len(os.listdir(tmp_path / "cache" / "cnnengine" / "patches")) == 1
    r = cli(tmp_path / "cache", tiny_files[0], "--tab", "patches", "--patches-from", str(tmp_path / "missing"),
            "--screenshot", str(out))
    assert r.returncode == 2 and r.stderr.strip().endswith("is not a folder") and len(r.stderr.splitlines()) == 1
