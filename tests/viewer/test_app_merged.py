"""The merged app (issue 23: app-a, app-b, app-c together): the Filters tab
frames the selected channel's filter, every tab shares a 1,000 px window with
the layer list and the channel panel, and the Graph tab sits beside the maps."""
import numpy as np

from .conftest import require_qt

require_qt()

from PyQt6.QtWidgets import QApplication  # noqa: E402


def select(win, name):
    win.navigator.select(win.bundle.index[name])
    assert win.layer().name == name


def frame(win):
    """The Filters tab's highlight as (y, x, h, w) in atlas pixels, or None when hidden."""
    h = win.filters.view.highlight
    if not h.isVisible():
        return None
    r = h.rect()
    return r.y(), r.x(), r.height(), r.width()


def test_selected_channel_frames_its_filter(window, qtbot):
    window.set_tab("filters")
    # conv1: one RGB tile per filter; the framed tile is the picked channel's
    select(window, "conv1")
    window.pick_channel(5)
    lay = window.filters.view.layout
    y, x = lay.tile_origin(lay.tile_of_channel(5))
    fy, fx, fh, fw = frame(window)
    assert fy <= y and fy + fh >= y + lay.tile_h and fx <= x and fx + fw >= x + lay.tile_w
    assert window.filters.view.layout.locate(fy + fh / 2, fx + fw / 2)[0] == 5
    # conv2: rows = outputs; channel 7's whole row of 8 kernels, nothing of rows 6 or 8
    select(window, "conv2")
    window.pick_channel(7)
    lay = window.filters.view.layout
    fy, fx, fh, fw = frame(window)
    for i in range(lay.cols):
        ty, tx = lay.tile_origin(7 * lay.cols + i)
        assert fy <= ty and ty + lay.tile_h <= fy + fh and fx <= tx and tx + lay.tile_w <= fx + fw
    for other in (6, 8):
        ty, _ = lay.tile_origin(other * lay.cols)
        assert ty + lay.tile_h <= fy or ty >= fy + fh
    # stepping to another conv keeps the picked channel, and its frame follows
    select(window, "skip")                  # 1x1: an output x input matrix, row 7
    assert window.channel == 7 and window.filters.info["kind"] == "matrix"
    assert frame(window) == (7, 0, 1, 8)
    # a layer without weights: no frame left over from the last one
    select(window, "relu2")
    assert frame(window) is None


def test_filter_frame_follows_a_click_while_the_maps_show(window, qtbot):
    select(window, "conv2")
    window.pick_channel(3)                  # picked on the maps tab: the Filters tab is not built yet
    window.set_tab("filters")
    lay = window.filters.view.layout
    ty, _ = lay.tile_origin(3 * lay.cols)
    fy, _, fh, _ = frame(window)
    assert fy <= ty < fy + fh and np.isclose(fh, lay.tile_h + lay.pad)


def test_graph_tab_beside_the_maps(window):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    names = list(window.tab_registry)
    assert names[:2] == ["maps", "graph"] and len(titles) == len(names)
    assert set(names) >= {"maps", "graph", "filters", "patches", "compute", "compare", "deconvnet", "occlusion"}


def test_every_tab_shares_a_1000_px_window(window, qtbot):
    width = 1000
    window.resize(width, 700)
    QApplication.processEvents()
    qtbot.wait(300)
    window._proportion()
    for name, tab in window.tab_registry.items():
        window.set_tab(name)
        if name == "occlusion":               # with its map and the probe's numbers on screen
            with qtbot.waitSignal(window.occlusion.finished, timeout=60000):
                window.occlusion.run()
        QApplication.processEvents()
        qtbot.wait(50)
        QApplication.processEvents()
        left, tabs, right = window.split.sizes()
        assert window.width() == width, f"{name}: the panels' minimum sizes widen the window"
        assert left >= 200 and tabs >= 400 and right >= 170, (name, window.split.sizes())
        assert tab.widget.width() >= 380, (name, tab.widget.width())
        bar = window.tabs.tabBar()
        assert bar.tabRect(bar.count() - 1).right() <= window.tabs.width(), "every tab title shows, no scrolling"
