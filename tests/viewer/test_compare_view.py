"""The Compare tab: a second image's activations beside the first one's, their
difference against Model.run(capture=...) of each image, both top-k lists;
`cnnengine view MODEL IMAGE IMAGE2 --tab compare|graph` screenshots and an
unknown --tab."""
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import make_image, require_qt

require_qt()

import cnnengine as ce  # noqa: E402
from cnnengine.viewer import atlas, session  # noqa: E402
from cnnengine.viewer.widgets.compare_view import compare_maps  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def captures(model_path, image_path, names):
    model = ce.load(model_path)
    img = session.open_image(image_path, session.preprocess_for(model))
    out, acts = model.run(img.x, capture=names)
    return atlas.probabilities(out[0]), acts


@pytest.fixture
def second(tmp_path):
    # a different picture: stripes instead of the gradient
    from PIL import Image
    yy, xx = np.mgrid[0:36, 0:44]
    img = np.stack([(xx % 7) * 36, (yy % 5) * 50, (xx + yy) * 3], axis=-1).astype(np.uint8)
    path = tmp_path / "b.png"
    Image.fromarray(img).save(path)
    return str(path)


def open_second(qtbot, win, path):
    win.set_tab("compare")
    with qtbot.waitSignal(win.ready, timeout=20000):
        win.compare.open(path)
    qtbot.waitUntil(lambda: win.compare_view.d is not None, timeout=20000)


@pytest.mark.parametrize("name,channel", [("conv2", 5), ("relu1", 0), ("add", 11)])
def test_difference_equals_difference_of_captures(window, qtbot, tiny_files, second, name, channel):
    open_second(qtbot, window, second)
    window.navigator.select(window.bundle.index[name])
    window.pick_channel(channel)
    view = window.compare_view
    _, acts_a = captures(tiny_files[0], tiny_files[1], [name])
    _, acts_b = captures(tiny_files[0], second, [name])
    a, b = acts_a[name][0, channel], acts_b[name][0, channel]
    # the app captures with the unfused plan, the references with the fused one: float tolerance
    np.testing.assert_allclose(view.a, a, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(view.b, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(view.d, b - a, rtol=1e-4, atol=2e-4)
    np.testing.assert_array_equal(view.d, view.b - view.a)
    # shown: A and B on one scale, the difference on a symmetric one
    m = float(np.max(np.abs(view.d)))
    assert view.diff.image.levels == pytest.approx([-m, m])
    lo, hi = min(view.a.min(), view.b.min()), max(view.a.max(), view.b.max())
    assert view.map_a.image.levels == pytest.approx([lo, hi]) and view.map_b.image.levels == pytest.approx([lo, hi])
    assert f"channel {channel}" in view.header.text()


def test_vector_layer_and_both_predictions(window, qtbot, tiny_files, second):
    open_second(qtbot, window, second)
    window.navigator.select(window.bundle.index["fc"])
    view = window.compare_view
    probs_a, acts_a = captures(tiny_files[0], tiny_files[1], ["fc"])
    probs_b, acts_b = captures(tiny_files[0], second, ["fc"])
    # 10 logits as a 3x4 grid, units in order, the rest empty
    assert view.d.shape == (3, 4)
    want = np.full(12, np.nan, np.float32)
    want[:10] = (acts_b["fc"] - acts_a["fc"])[0]
    np.testing.assert_allclose(view.d.ravel(), want, rtol=1e-4, atol=1e-4)
    assert "all 10 channels" in view.header.text()
    for shown, probs in ((view.top_a.rows, probs_a), (view.top_b.rows, probs_b)):
        assert [i for i, _, _ in shown] == list(np.argsort(-probs, kind="stable")[:5])
        np.testing.assert_allclose([p for _, _, p in shown], np.sort(probs)[::-1][:5], rtol=1e-5)
    assert view.top_a.rows != view.top_b.rows


def test_new_first_image_and_layer_by_layer_capture(window, qtbot, tiny_files, second, tmp_path, monkeypatch):
    open_second(qtbot, window, second)
    # image B is kept when image A changes; the difference follows
    other = make_image(tmp_path / "a2.png", w=40, h=64)
    with qtbot.waitSignal(window.ready, timeout=20000):
        window.open_image(other)
    qtbot.waitUntil(lambda: window.worker.is_idle(), timeout=20000)
    window.navigator.select(window.bundle.index["conv1"])
    window.pick_channel(2)
    _, acts_a = captures(tiny_files[0], other, ["conv1"])
    _, acts_b = captures(tiny_files[0], second, ["conv1"])
    np.testing.assert_allclose(window.compare_view.d, (acts_b["conv1"] - acts_a["conv1"])[0, 2], atol=2e-4)
    # a model too big to capture whole: image B's layer is captured when asked for
    monkeypatch.setattr(session, "CAPTURE_ALL_LIMIT", 0)
    with qtbot.waitSignal(window.ready, timeout=20000):
        window.open_model(tiny_files[0], image=tiny_files[1])
    qtbot.waitUntil(lambda: window.compare.result is not None and window.worker.is_idle(), timeout=20000)
    window.navigator.select(window.bundle.index["pool1"])
    qtbot.waitUntil(lambda: window.compare_view.key == ("pool1", window.channel), timeout=20000)
    assert set(window.compare.result.acts) >= {"pool1"}
    _, acts_a = captures(*tiny_files, ["pool1"])
    _, acts_b = captures(tiny_files[0], second, ["pool1"])
    ch = window.channel
    np.testing.assert_allclose(window.compare_view.d, (acts_b["pool1"] - acts_a["pool1"])[0, ch], atol=2e-4)


def test_compare_maps_rejects_mismatched_shapes():
    a = np.zeros((1, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="differ in shape"):
        compare_maps(a, np.zeros((1, 3, 5, 4), np.float32), 0)
    a2, b2, d, what = compare_maps(a, a + 1, 9)           # a channel past the end: the last one
    assert "channel 2" in what and np.all(d == 1)


def _env():
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _shot(args, out):
    r = subprocess.run([sys.executable, "-m", "cnnengine", "view", *args, "--screenshot", str(out)], env=_env(),
                       capture_output=True, text=True, timeout=180)
    return r


@pytest.mark.parametrize("tab", ["graph", "compare"])
def test_view_tab_screenshots(tiny_files, second, tmp_path, tab):
    out = tmp_path / f"{tab}.png"
    r = _shot([*tiny_files, second, "--layer", "conv2", "--channel", "3", "--tab", tab], out)
    assert r.returncode == 0, r.stderr
    from PIL import Image
    with Image.open(out) as im:
        a = np.asarray(im.convert("RGB"))
    assert a.shape[0] >= 800 and a.shape[1] >= 1200
    assert a.std() > 10 and len(np.unique(a.reshape(-1, 3), axis=0)) > 300


def test_view_unknown_tab_is_one_line_error(tiny_files, tmp_path):
    r = _shot([*tiny_files, "--tab", "nope"], tmp_path / "x.png")
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith("cnnengine")]
    assert len(lines) == 1 and "no tab named 'nope'" in lines[0] and "graph" in lines[0]
    assert not (tmp_path / "x.png").exists()
    r = _shot([*tiny_files, "--patches-from", str(tmp_path / "missing")], tmp_path / "y.png")
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_sample_button_opens_a_bundled_photo_as_b(window, qtbot):
    from PyQt6.QtCore import Qt
    samples = session.sample_images()
    if not samples:
        pytest.skip("no bundled sample photos on this branch")
    view = window.compare_view
    window.set_tab("compare")
    assert view.d is None and view.sample_button.isVisible()
    path = view.sample_button.property("path")
    assert path == samples[0]
    with qtbot.waitSignal(window.ready, timeout=20000):
        qtbot.mouseClick(view.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.d is not None, timeout=20000)
    assert window.compare.image.path == path and not view.sample_button.isVisible()
    assert view.in_b.image.image.shape == window.compare.image.display.shape
