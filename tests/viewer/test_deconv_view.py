"""The Deconvnet tab: the projection of the selected channel or unit of
LeNet-5, computed by the worker, equal to ce.deconvnet; the message where the
network is not a chain; a screenshot."""
import numpy as np
import pytest

from .conftest import require_qt

require_qt()

import cnnengine as ce  # noqa: E402
from cnnengine.viewer.widgets.deconv_view import to_rgb  # noqa: E402


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
    win.worker.wait(5000)


def _open_tab(qtbot, win):
    with qtbot.waitSignal(win.deconv.shown, timeout=30000):
        win.tabs.setCurrentWidget(win.deconv_page)
        assert win.deconv.projection is None    # not computed on the UI thread: the worker's result comes later


def test_lenet5_channel_and_unit(lenet_window, qtbot, tmp_path):
    win = lenet_window
    win.navigator.select(win.bundle.index["c3.tanh"])
    win.pick_channel(5)
    _open_tab(qtbot, win)
    model = ce.load("lenet5")
    want = ce.deconvnet(model, win.image.x, "c3.tanh", 5)
    assert win.deconv.key == ("c3.tanh", 5, None)
    np.testing.assert_allclose(win.deconv.projection, want, rtol=1e-5, atol=1e-6)
    shown = win.deconv.img_proj.image
    assert shown.shape == (32, 32, 3) and shown.min() == 0 and shown.max() == 255
    assert "c3.tanh · channel 5" in win.deconv.title.text()
    assert not win.deconv.rf_proj.isVisible()

    # the selected unit only, with its receptive field outlined
    with qtbot.waitSignal(win.deconv.shown, timeout=30000):
        win.deconv.set_mode("selected unit")
    unit = win.unit
    assert unit is not None and win.deconv.key == ("c3.tanh", 5, unit)
    np.testing.assert_allclose(win.deconv.projection, ce.deconvnet(model, win.image.x, "c3.tanh", 5, unit=unit),
                               rtol=1e-5, atol=1e-6)
    assert win.deconv.rf_proj.isVisible()
    # another unit clicked in the channel view: a new projection
    other = (0, 0) if unit != (0, 0) else (1, 1)
    with qtbot.waitSignal(win.deconv.shown, timeout=30000):
        win.channel_view.click_unit(*other)
    assert win.deconv.key == ("c3.tanh", 5, other)

    # a dense layer: its channels project (no unit there)
    win.deconv.set_mode("whole channel")
    with qtbot.waitSignal(win.deconv.shown, timeout=30000):
        win.navigator.select(win.bundle.index["output"])
    assert win.deconv.key[0] == "output" and win.deconv.projection.shape == (1, 1, 32, 32)
    assert np.abs(win.deconv.projection).max() > 0

    with qtbot.waitSignal(win.deconv.shown, timeout=30000):
        win.navigator.select(win.bundle.index["c1.tanh"])
    shot = tmp_path / "deconvnet.png"
    assert win.export_png(shot)
    assert shot.stat().st_size > 10_000


def test_residual_network_shows_the_reason(window, qtbot):
    """The tiny model has a residual add: past it the tab says why, before it it projects."""
    win = window
    win.navigator.select(win.bundle.index["pool2"])
    _open_tab(qtbot, win)
    assert win.deconv.projection is None
    text = win.deconv.message.text()
    assert "UnsupportedOpError" in text and "'add' (Add)" in text and "chain" in text
    with qtbot.waitSignal(win.deconv.shown, timeout=30000):
        win.navigator.select(win.bundle.index["relu1"])
    assert win.deconv.projection is not None and win.deconv.projection.shape == (1, 3, 32, 32)


def test_to_rgb_stretches_each_channel():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((1, 3, 5, 7)) * np.array([1, 10, 100]).reshape(1, 3, 1, 1)
    rgb = to_rgb(p)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert (rgb.reshape(-1, 3).min(axis=0) == 0).all() and (rgb.reshape(-1, 3).max(axis=0) == 255).all()
    grey = to_rgb(np.zeros((1, 1, 4, 4)))
    assert grey.shape == (4, 4, 3) and (grey == 128).all()
