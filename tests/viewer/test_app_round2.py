"""The app's second round (issue 23): class-aware outputs, the "after BN +
activation" toggle, and one test per rough edge the issue lists, each of
which fails on the code before the fix."""
import itertools
import os

import numpy as np
import pytest

from .conftest import require_qt

require_qt()

from PyQt6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication, QToolBar  # noqa: E402

import cnnengine as ce  # noqa: E402
from cnnengine.viewer import atlas, session, style  # noqa: E402

LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def select(win, name):
    win.navigator.select(win.bundle.index[name])
    assert win.layer().name == name


def settle(qtbot, win, width, height):
    win.resize(width, height)
    QApplication.processEvents()
    qtbot.wait(300)       # the splitter's first proportions and the grid's re-layout are timers
    QApplication.processEvents()


@pytest.fixture(scope="session")
def labelled_model(tiny_files, tmp_path_factory):
    """The tiny network saved as a native file with ten class labels."""
    m = ce.load(tiny_files[0])
    m.graph.metadata["labels"] = list(LABELS)
    m._original.metadata["labels"] = list(LABELS)
    path = tmp_path_factory.mktemp("labelled") / "tiny.cnn"
    m.save(str(path))
    assert ce.load(str(path)).labels == LABELS
    return str(path)


@pytest.fixture
def lwindow(qtbot, labelled_model, tiny_files, settings):
    from cnnengine.viewer.app import MainWindow, make_app

    make_app()
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.ready, timeout=20000):
        win.open_model(labelled_model, image=tiny_files[1])
    yield win
    win.worker.wait(5000)


# ------------------------------------------------------------ class-aware outputs
def test_logits_are_a_sorted_chart_of_named_classes(lwindow, qtbot):
    win = lwindow
    select(win, "fc")
    grid = win.grid
    assert grid.is_chart() and grid.stack.currentWidget() is grid.chart
    values = win.result.acts["fc"].reshape(-1)
    order = list(np.argsort(-values, kind="stable"))
    assert list(grid.chart.bars.order) == order
    top = order[0]
    assert win.channel == top, "the top class is selected by default"
    assert win.channel_view.title.text().startswith(f"{top} {LABELS[top]} (1×1)")
    assert f"rank 1 of {len(LABELS)}" in win.channel_view.stats.text()
    # hover names the class: "3 three  =  1.234", not "channel 3"
    bars = grid.chart.bars
    k = order[2]
    y = 2 + 2 * 18 + 9
    from PyQt6.QtTest import QTest
    QTest.mouseMove(bars, QPoint(40, y))
    qtbot.waitUntil(lambda: grid.hover.text().strip() != "", timeout=2000)
    assert grid.hover.text() == f"{k} {LABELS[k]}  =  {float(values[k]):.5g}"
    qtbot.mouseClick(bars, Qt.MouseButton.LeftButton, pos=QPoint(40, y))
    assert win.channel == k and grid.chart.bars.selected == k
    # the pick of a class holds when leaving the layer and coming back
    select(win, "conv2")
    select(win, "fc")
    assert win.channel == k


def test_clicking_a_prediction_selects_its_unit(lwindow, qtbot):
    win = lwindow
    select(win, "conv1")
    pred = win.predictions
    second = pred.rows[1][0]
    qtbot.mouseClick(pred, Qt.MouseButton.LeftButton, pos=QPoint(60, 24 + 22 + 9))
    assert win.layer().name == "fc" and win.channel == second
    assert win.grid.chart.bars.selected == second
    # on the class layer already: just the unit
    qtbot.mouseClick(pred, Qt.MouseButton.LeftButton, pos=QPoint(60, 24 + 9))
    assert win.layer().name == "fc" and win.channel == pred.rows[0][0]


def test_unlabelled_logits_stay_a_grid(window):
    select(window, "fc")
    assert not window.grid.is_chart() and window.grid.stack.currentWidget() is window.grid.view


# ------------------------------------------------------------ before / after fusion
def test_after_bn_and_activation_toggle(window, qtbot, tiny_files):
    win = window
    model = ce.load(tiny_files[0])
    img = session.open_image(tiny_files[1], session.preprocess_for(model))
    _, acts = model.run(img.x, capture=["conv1", "relu1"])
    select(win, "conv1")
    assert win.grid.fused_box.isEnabled()
    np.testing.assert_allclose(win.grid.maps, atlas.as_maps(acts["conv1"]), rtol=1e-4, atol=1e-4)
    win.pick_channel(5)
    win.grid.fused_box.setChecked(True)
    assert win.after_fusion and win.layer().name == "conv1"
    assert win.channel == 5, "toggling keeps the channel on screen"
    relu = atlas.as_maps(acts["relu1"])
    np.testing.assert_allclose(win.grid.maps, relu, rtol=1e-4, atol=1e-4)
    assert "after relu1" in win.grid.header.text()
    # strongest unit and sparsity use the block's output
    win.pick_channel(2)
    m = relu[2]
    assert f"zeros {100 * np.mean(m == 0):.1f}%" in win.channel_view.stats.text()
    assert np.isclose(m[win.unit], m.max(), atol=1e-4)
    # a row with nothing fused into it is unchanged; the box is off there
    select(win, "pool1")
    assert not win.grid.fused_box.isEnabled()
    win.grid.fused_box.setChecked(False)
    select(win, "conv1")
    np.testing.assert_allclose(win.grid.maps, atlas.as_maps(acts["conv1"]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["tiny", "lenet5"])
def test_fused_chains_match_the_engine(name, tiny_files):
    """The toggle's chains are what the engine's fusion pass folds into each conv
    (less a residual add, which has its own row)."""
    src = tiny_files[0] if name == "tiny" else name
    bundle = session.open_model(src)
    engine = {n.name: [f for f in n.fused if bundle.summary[bundle.index[f]].op not in session.MERGE_OPS]
              for n in bundle.model._fused.nodes if n.op == "Conv"}
    engine = {k: v for k, v in engine.items() if v}
    assert bundle.fused == engine and bundle.fused


# ------------------------------------------------------------ rough edges
def test_selection_frame_on_1x1_maps_is_the_tile(window, qtbot):
    select(window, "fc")        # ten 1x1 maps: tiles touch (no gaps)
    view = window.grid.view
    lay = view.layout
    assert lay.pad == 0 and lay.tile_h == lay.tile_w == 1
    for k in (0, 3, lay.count - 1):
        window.grid.select(lay.order[k])
        y, x = lay.tile_origin(k)
        r = view.highlight.rect()
        assert (r.x(), r.y(), r.width(), r.height()) == pytest.approx((x, y, 1, 1))
    # on padded tiles the frame sits on the gaps around the tile
    select(window, "conv2")
    lay = view.layout
    window.grid.select(lay.order[5])
    y, x = lay.tile_origin(5)
    r = view.highlight.rect()
    assert (r.x(), r.y(), r.width(), r.height()) == pytest.approx(
        (x - 0.5, y - 0.5, lay.tile_w + 1, lay.tile_h + 1))


def _fits(label):
    """The label shows its whole text, or an elided one ending in "…" with the whole text as its tooltip."""
    fm, rect = label.fontMetrics(), label.contentsRect()
    if label.wordWrap():
        return fm.boundingRect(rect, int(Qt.TextFlag.TextWordWrap), label.text()).height() <= rect.height()
    if fm.horizontalAdvance(label.text()) <= rect.width():
        return True
    shown = label.shown() if hasattr(label, "shown") else label.text()
    return "…" in shown and shown != label.text() and label.toolTip() == label.text()


def test_titles_elide_instead_of_being_cut(window, qtbot):
    settle(qtbot, window, 1000, 700)
    select(window, "conv2")
    window.pick_channel(11)
    window.select_unit(7, 2)
    labels = [window.model_label, window.grid.header, window.channel_view.title, window.channel_view.hover,
              window.channel_view.rf, window.filters.header, window.status]
    for lab in labels:
        if lab is window.filters.header:
            window.set_tab("filters")          # Filters: a long title
        lab.setText(lab.text() + " — and a long tail that no 1,000 px window has room for " * 2)
        QApplication.processEvents()
        assert _fits(lab), (lab.shown(), lab.width(), lab.toolTip())
    # what matters comes first: the channel and its size are never the part cut
    assert window.channel_view.title.shown().startswith("channel 11 (")


def test_panels_share_a_1000_px_window(window, qtbot):
    settle(qtbot, window, 1000, 700)
    assert window.width() == 1000, "the panels' minimum sizes widen the window"
    left, tabs, right = window.split.sizes()
    assert tabs >= 420 and tabs > left and tabs > right, window.split.sizes()
    nav = window.navigator
    assert nav.columnWidth(nav.table.COLUMNS.index("Layer")) >= 100, "the layer names keep room"
    for panel in (window.input_view, window.channel_view, window.predictions, window.grid):
        assert panel.minimumSizeHint().width() <= panel.width(), f"{type(panel).__name__} is cut off"
    settle(qtbot, window, 1800, 1000)
    window._proportion()            # what showing the window at this size does
    settle(qtbot, window, 1800, 1000)
    left, tabs, right = window.split.sizes()
    assert tabs >= 700 and left <= 560 and right <= 560
    assert not nav.isColumnHidden(nav.table.COLUMNS.index("MACs"))


def test_save_buttons_visible_at_800_px(window, qtbot):
    settle(qtbot, window, 800, 600)
    assert window.width() == 800, "the panels' minimum sizes widen the window"
    for panel in (window.input_view, window.channel_view, window.grid):
        assert panel.minimumSizeHint().width() <= panel.width(), f"{type(panel).__name__} is cut off"
    tb = window.findChild(QToolBar)
    for act in (window.act_open_model, window.act_open_image, window.act_png, window.act_npy):
        w = tb.widgetForAction(act)
        assert w is not None and w.isVisible(), act.text()


def test_hover_readouts_cleared_on_layer_change(window, qtbot):
    select(window, "conv2")
    view = window.grid.view
    ty, tx = view.layout.tile_origin(3)
    view._moved(view.vb.mapViewToScene(QPointF(tx + 1.5, ty + 1.5)))
    assert window.grid.hover.text().startswith("channel")
    window.channel_view._moved(window.channel_view.vb.mapViewToScene(QPointF(1.5, 1.5)))
    assert window.channel_view.hover.text().startswith("y 1, x 1")
    select(window, "relu2")
    assert window.grid.hover.text().strip() == ""
    # the channel view now reads the new layer's strongest unit, not the old hover
    y, x = window.unit
    assert window.channel_view.hover.text() == f"unit ({y}, {x}) = {float(window.grid.maps[window.channel][y, x]):.4g}"


def test_picked_channel_kept_noted_and_restored(window, qtbot):
    select(window, "conv2")          # 12 channels
    window.pick_channel(10)
    select(window, "conv1")          # 8 channels: cannot show 10
    assert window.channel != 10
    assert window.channel_view.note.isVisibleTo(window) and "channel 10" in window.channel_view.note.text()
    select(window, "relu2")          # 12 again: the pick comes back
    assert window.channel == 10
    assert not window.channel_view.note.isVisibleTo(window)


def test_error_leaves_the_status_bar_after_a_success(window, qtbot):
    assert not window.apply_channel(99)
    assert window.status.text().startswith("Error")
    select(window, "relu1")
    assert not window.status.text().startswith("Error")


def test_noisy_times_are_marked(window, qtbot):
    table = window.navigator.table
    qtbot.waitUntil(lambda: bool(window.bundle.spread), timeout=20000)
    lo, hi, n = window.bundle.spread["conv1"]
    assert n >= 2 and lo <= window.bundle.times["conv1"] <= hi     # a median of several profiles
    conv1, fc = window.bundle.summary[0], window.bundle.summary[window.bundle.index["fc"]]
    times = {l.name: 1e-4 for l in window.bundle.summary}
    spread = {l.name: (1e-4, 1e-4, 3) for l in window.bundle.summary}
    spread["conv1"] = (1e-4, 2e-3, 3)                   # the three profiles disagree
    times["fc"] = 0.012                                 # steady but far beyond its MACs
    spread["fc"] = (0.012, 0.012, 3)
    table.set_times(times, spread)
    col = table.COLUMNS.index("Time")
    for layer in (conv1, fc):
        row = window.bundle.index[layer.name]
        assert table.time_text(layer).startswith("~")
        idx = window.navigator.index_of(row)
        assert table.data(idx.siblingAtColumn(col), Qt.ItemDataRole.ForegroundRole).color().name() == "#d29922"
        assert "noisy" in table.data(idx.siblingAtColumn(col), Qt.ItemDataRole.ToolTipRole)
    pool = window.bundle.summary[window.bundle.index["pool1"]]
    assert not table.time_text(pool).startswith("~")


def test_lenet5_opens_on_the_digit_sample(qtbot, settings):
    from cnnengine.viewer.app import MainWindow
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.ready, timeout=30000):
        win.open_model("lenet5")
    assert os.path.basename(win.image.path) == session.DIGIT_SAMPLE
    assert win.predictions.rows[0][1] == "4"
    win.worker.wait(10000)


def test_op_colours_are_distinct():
    def lab(hexcolor):
        c = np.array([int(hexcolor[i:i + 2], 16) for i in (1, 3, 5)]) / 255
        c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
        xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
        f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    kinds = [k for k in style.OP_COLORS if k != "other"]      # "other" shares the shape grey on purpose
    for a, b in itertools.combinations(kinds, 2):
        d = np.linalg.norm(lab(style.OP_COLORS[a]) - lab(style.OP_COLORS[b]))
        assert d > 30, f"{a} and {b} look alike (ΔE {d:.0f})"


def test_sorted_grid_shows_channel_numbers(window, qtbot):
    select(window, "relu1")            # 8 tiles of 32x32: large enough to label
    window.sort_box.setCurrentText("mean")
    labels = window.grid.view.tile_labels
    assert labels.isVisible()
    assert labels.texts == [str(c) for c in window.grid.view.layout.order]
    QApplication.processEvents()
    shown = window.grid.view.grab().toImage()
    labels.hide()
    QApplication.processEvents()
    assert shown != window.grid.view.grab().toImage(), "the numbers are drawn"
    window.sort_box.setCurrentText("index")
    assert not labels.isVisible()


def test_window_size_option():
    import argparse
    from cnnengine.cli import _window_size
    assert _window_size("1000x700") == (1000, 700)
    for bad in ("1000", "x", "10x10"):
        with pytest.raises(argparse.ArgumentTypeError):
            _window_size(bad)
