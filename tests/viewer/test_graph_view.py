"""The Graph tab and the grouped layer list: click a node to select its layer,
zoom and pan, the boxes' text, DenseNet-121's graph, the block tree."""
import numpy as np
import pytest

from .conftest import require_qt

require_qt()

from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PyQt6.QtGui import QMouseEvent, QWheelEvent  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from cnnengine.viewer import session  # noqa: E402
from cnnengine.viewer.widgets.graph_view import INPUT, GraphView, NodeItem, node_sizes  # noqa: E402

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


def _mouse(widget, kind, pos, button, buttons):
    p = QPointF(pos)
    QApplication.sendEvent(widget, QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


def drag(widget, start, end, steps=5):
    _mouse(widget, QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
    for k in range(1, steps + 1):
        f = k / steps
        _mouse(widget, QEvent.Type.MouseMove, QPointF(start.x() + (end.x() - start.x()) * f,
                                                      start.y() + (end.y() - start.y()) * f), NONE, LEFT)
        QApplication.processEvents()
    _mouse(widget, QEvent.Type.MouseButtonRelease, end, LEFT, NONE)


def wheel(widget, pos, steps):
    ev = QWheelEvent(QPointF(pos), QPointF(widget.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120 * steps),
                     NONE, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def node_pos(graph, row):
    """Viewport position of a node's centre."""
    return graph.view.mapFromScene(graph.items[row].scenePos())


def laid_out(qtbot, win):
    win.set_tab("graph")
    qtbot.waitUntil(lambda: win.graph.layout is not None and bool(win.graph.items), timeout=20000)
    return win.graph


# ---------------------------------------------------------------- graph
def test_graph_nodes_edges_and_text(window, qtbot):
    g = laid_out(qtbot, window)
    b = window.bundle
    assert set(g.items) == {INPUT} | set(range(len(b.summary)))
    assert set(g.edge_items) == set(b.edges)
    lay = g.layout
    for u, v in b.edges:           # every edge runs downward, from its source's box to its target's
        pts = lay.paths[(u, v)]
        assert all(q[1] > p[1] for p, q in zip(pts, pts[1:]))
        assert lay.layer[v] > lay.layer[u]
    # the residual branch (skip) sits beside conv2's chain, on the rows between pool1 and add
    i = b.index
    assert lay.layer[i["skip"]] == lay.layer[i["conv2"]] and lay.pos[i["skip"]][0] != lay.pos[i["conv2"]][0]
    # a box shows op, kernel/stride/padding, output shape, params and MACs
    lines = g.items[i["conv1"]].lines
    conv1 = b.summary[i["conv1"]]
    assert lines[0] == "Conv" and lines[2] == "3×3 · pad 1"
    assert lines[3] == f"→ 8×32×32 · {conv1.params} params" and lines[4].startswith(f"{conv1.macs / 1e3:.3g}K MACs")
    assert g.items[i["pool1"]].lines[2] == "2×2 · stride 2"
    assert "channels" not in g.items[i["fc"]].lines[2] and g.items[i["fc"]].lines[2] == "768 → 10"
    # times arrive from Model.profile() and are written into the boxes
    qtbot.waitUntil(lambda: bool(b.times), timeout=20000)
    assert g.items[i["conv1"]].lines[4].endswith("s")


def test_graph_click_selects_layer_and_selection_follows(window, qtbot):
    g = laid_out(qtbot, window)
    row = window.bundle.index["conv2"]
    g.view.centerOn(g.items[row])
    qtbot.mouseClick(g.view.viewport(), LEFT, pos=node_pos(g, row))
    assert window.row == row and window.navigator.current() == row and window.layer().name == "conv2"
    assert g.current == row and g.frame.rect().contains(g.items[row].sceneBoundingRect())
    # the grid shows the clicked layer
    assert window.grid.name == "conv2"
    # selecting elsewhere (the list) moves the graph's selection
    window.navigator.select(window.bundle.index["fc"])
    assert g.current == window.bundle.index["fc"]
    # a click on the input box or on empty space changes nothing
    qtbot.mouseClick(g.view.viewport(), LEFT, pos=node_pos(g, INPUT))
    assert window.layer().name == "fc"


def test_graph_zoom_and_pan(window, qtbot):
    g = laid_out(qtbot, window)
    vp = g.view.viewport()
    s0 = g.scale_now()
    wheel(vp, QPoint(vp.width() // 2, vp.height() // 2), 3)
    assert g.scale_now() > s0 * 1.5
    for _ in range(40):            # far beyond the limits: clamped, never inverted or zero
        wheel(vp, QPoint(10, 10), -5)
    assert g.scale_now() == pytest.approx(0.02)
    for _ in range(40):
        wheel(vp, QPoint(10, 10), 5)
    assert g.scale_now() == pytest.approx(3.0)
    # a drag pans and does not select
    before = (g.view.horizontalScrollBar().value(), g.view.verticalScrollBar().value())
    row = window.row
    mid = QPointF(vp.width() / 2, vp.height() / 2)
    drag(vp, mid, mid + QPointF(-120, -90))
    after = (g.view.horizontalScrollBar().value(), g.view.verticalScrollBar().value())
    assert after != before and window.row == row
    g.fit()
    assert g.view.mapToScene(vp.rect()).boundingRect().contains(g.items[INPUT].sceneBoundingRect())
    vp.repaint()                   # far out: blocks, not text
    g.set_scale(1.0)
    vp.repaint()


@pytest.fixture(scope="module")
def densenet121(tmp_path_factory):
    """DenseNet-121's graph (blocks of 6, 12, 24 and 16 dense layers, 3 transitions):
    torchvision's, else the torch-only definition in tests/models/archs.py, both
    exported by torch (narrow widths keep it quick: the graph is what matters);
    without torch, the same topology written with onnx.helper."""
    path = str(tmp_path_factory.mktemp("dense") / "densenet121.onnx")
    try:
        import torch
        try:
            import torchvision
            net = torchvision.models.densenet121(weights=None, growth_rate=4, num_init_features=8)
        except Exception:   # torchvision missing or built for another torch
            from tests.models.archs import DenseNet
            net = DenseNet(growth=4, blocks=(6, 12, 24, 16), init=8, bn_size=2, num_classes=1000)
        torch.onnx.export(net.eval(), torch.randn(1, 3, 64, 64), path, opset_version=13, dynamo=False)
    except ImportError:
        make_dense_onnx(path)
    return path


def make_dense_onnx(path, blocks=(6, 12, 24, 16), k=4):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def conv(x, cin, cout, ksize, name, stride=1):
        w = numpy_helper.from_array((rng.standard_normal((cout, cin, ksize, ksize)) * 0.1).astype(np.float32),
                                    f"{name}.w")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [x, w.name], [name], name=name, kernel_shape=[ksize, ksize],
                                      strides=[stride] * 2, pads=[ksize // 2] * 4))
        return name

    def relu(x, name):
        nodes.append(helper.make_node("Relu", [x], [name], name=name))
        return name

    x, c = relu(conv("x", 3, 8, 7, "/features/conv0", 2), "/features/relu0"), 8
    for b, n in enumerate(blocks):
        feats = [x]
        for i in range(n):
            p = f"/features/denseblock{b + 1}/denselayer{i + 1}"
            cat = f"{p}/Concat"
            nodes.append(helper.make_node("Concat", list(feats), [cat], name=cat, axis=1))
            h = relu(conv(relu(cat, f"{p}/relu1"), c + i * k, 2 * k, 1, f"{p}/conv1"), f"{p}/relu2")
            feats.append(conv(h, 2 * k, k, 3, f"{p}/conv2"))
        x = f"/features/denseblock{b + 1}/Concat"
        nodes.append(helper.make_node("Concat", feats, [x], name=x, axis=1))
        c += n * k
        if b < len(blocks) - 1:
            x = conv(relu(x, f"/features/transition{b + 1}/relu"), c, c // 2, 1, f"/features/transition{b + 1}/conv")
            c //= 2
            nodes.append(helper.make_node("AveragePool", [x], [x + "/pool"], name=x + "/pool", kernel_shape=[2, 2],
                                          strides=[2, 2]))
            x = x + "/pool"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="/GlobalAveragePool"))
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("gap", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def test_densenet121_graph(densenet121, qtbot):
    bundle = session.open_model(densenet121)
    n = len(bundle.summary)
    assert n >= 360
    concats = [r for r, l in enumerate(bundle.summary) if l.op == "Concat"]
    assert len(concats) >= 58 + 4        # one per dense layer and one per block
    rows = [INPUT] + list(range(n))
    lay = session.graph_layout(bundle, node_sizes(rows))
    for u, v in bundle.edges:
        assert lay.layer[v] > lay.layer[u]
        assert all(q[1] > p[1] for p, q in zip(lay.paths[(u, v)], lay.paths[(u, v)][1:]))
    # no two boxes overlap (same level: apart by their widths)
    by_level = {}
    for r in rows:
        by_level.setdefault(lay.layer[r], []).append(lay.pos[r][0])
    for xs in by_level.values():
        xs.sort()
        assert all(b - a >= node_sizes([0])[0][0] for a, b in zip(xs, xs[1:]))
    # the 24-layer block's last concat gathers 25 inputs, all drawn into it
    big = max(concats, key=lambda r: sum(1 for _, v in bundle.edges if v == r))
    assert sum(1 for _, v in bundle.edges if v == big) == 25
    g = GraphView()
    qtbot.addWidget(g)
    g.resize(900, 700)
    g.show()
    g.set_graph(bundle.summary, bundle.edges, bundle.merges, bundle.model, lay)
    assert len([i for i in g.scene.items() if isinstance(i, NodeItem)]) == n + 1
    g.set_current(big)
    assert g.view.mapToScene(g.view.viewport().rect()).boundingRect().intersects(g.items[big].sceneBoundingRect())
    vp = g.view.viewport()
    for steps in (3, -2, -6, 4):
        wheel(vp, QPoint(vp.width() // 2, vp.height() // 3), steps)
        vp.repaint()
    drag(vp, QPointF(400, 400), QPointF(300, 100))
    g.fit()
    vp.repaint()
    assert g._far and all(w.isVisible() for p, w in g.edge_items.values() if w is not None)
    g.set_scale(1.0)
    assert not g._far


# -------------------------------------------------------------- layer tree
def test_layer_list_grouped_by_block(qtbot):
    from cnnengine.summary import LayerInfo
    from cnnengine.viewer.widgets.navigator import Navigator
    from .test_grouping import RESNET
    rf = {"size": [1, 1], "jump": [1, 1], "start": [0, 0]}
    layers = [LayerInfo(n, n.rsplit("/", 1)[-1].split("_")[0], [(1, 8, 4, 4)], (1, 8, 4, 4), 10, 100, rf)
              for n in RESNET]
    nav = Navigator()
    qtbot.addWidget(nav)
    nav.show()
    nav.set_layers(layers, merges={6, 11})
    model = nav.table
    assert model.layer_count() == len(RESNET) and model.rowCount() == 7     # 6 layers + the layer1 block
    block = model.index(3, 0)
    assert block.data() == "layer1" and model.rowCount(block) == 2
    assert not nav.isExpanded(block)
    seen = []
    nav.layerSelected.connect(seen.append)
    nav.select(9)                  # layer1.1/relu: its blocks open, the row is current
    assert nav.current() == 9 and seen == [9] and nav.isExpanded(block)
    idx = nav.currentIndex()
    assert idx.data() == "relu" and idx.parent().data() == "layer1.1"
    assert idx.data(Qt.ItemDataRole.ToolTipRole).startswith("9: /layer1/layer1.1/relu/Relu")
    # stepping follows execution order across blocks
    for _ in range(4):
        nav.step(1)
    assert seen[-4:] == [10, 11, 12, 13] and nav.currentIndex().data() == "/avgpool/GlobalAveragePool"[1:8]
    nav.step("home")
    assert nav.current() == 0
    # a click on a block selects no layer; a group shows the totals of its layers
    nav.select(5)
    nav.setCurrentIndex(block)
    assert seen[-1] == 5 and nav.current() == -1
    nav.step(1)                    # from a block row, stepping goes on from the last layer
    assert nav.current() == 6 and seen[-1] == 6
    assert model.index(3, 2).data() == "10 layers" and model.index(3, 4).data() == "100"
    # times: layers, and the sum per block
    model.set_times({l.name: 0.001 for l in layers})
    assert model.index(3, 6).data() == "10.0 ms"


def test_box_attributes_for_dilation_groups_and_auto_pad():
    from cnnengine.ir.graph import Node
    from cnnengine.summary import LayerInfo
    from cnnengine.viewer.widgets.graph_view import attr_text
    rf = {"size": [1, 1], "jump": [1, 1], "start": [0, 0]}

    def layer(cin, wshape):
        return LayerInfo("c", "Conv", [(1, cin, 9, 9), wshape], (1, 32, 9, 9), 0, 0, rf)

    dw = Node("c", "Conv", ["x", "w"], ["y"], {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2], "dilations": [2, 2],
                                              "group": 32, "strides": [1, 1]})
    assert attr_text(dw, layer(32, (32, 1, 3, 3))) == "3×3 · pad 2 · dil 2 · depthwise"
    grouped = Node("c", "Conv", ["x", "w"], ["y"], {"group": 4, "strides": [2, 1], "pads": [0, 1, 1, 0]})
    # no kernel_shape attribute: read from the weight's shape
    assert attr_text(grouped, layer(16, (32, 4, 1, 5))) == "1×5 · stride 2×1 · pad 0×1×1×0 · groups 4"
    same = Node("c", "Conv", ["x", "w"], ["y"], {"kernel_shape": [5, 5], "auto_pad": "SAME_UPPER"})
    assert attr_text(same, layer(3, (32, 3, 5, 5))) == "5×5 · same_upper"
    assert attr_text(Node("r", "Relu", ["x"], ["y"]), layer(3, ())) == ""
    assert attr_text(None, layer(3, ())) == ""
