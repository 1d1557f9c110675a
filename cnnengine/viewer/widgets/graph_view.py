"""The network as a layered graph (layout from viewer.layered): one box per
layer with op, kernel/stride/padding/dilation/groups, output shape, params,
MACs and time, coloured by op; click selects the layer, the wheel zooms
around the cursor and a drag pans. Boxes are cached pixmaps and are drawn as
plain coloured blocks when zoomed far out, so 400-node graphs stay fluid."""
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import (QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView, QHBoxLayout,
                             QLabel, QPushButton, QStyleOptionGraphicsItem, QVBoxLayout, QWidget)

from .. import style
from ..grouping import short_name
from .navigator import SHORT_OPS, human

NODE_W, NODE_H = 200.0, 74.0
INPUT = -1                     # the graph input's node id (edges from -1 in ModelBundle.edges)
EDGE = QColor("#4b535e")
EDGE_MERGE = QColor("#b0618f")
EDGE_ON = QColor("#e6edf3")
MIN_SCALE, MAX_SCALE = 0.02, 3.0
EDGE_PIECE = 4                 # levels per edge item
FAR_SCALE = 0.2                # below this zoom, whole edges instead of pieces


def node_sizes(rows):
    return {r: (NODE_W, NODE_H if r != INPUT else 36.0) for r in rows}


def _ints(v):
    return "×".join(str(int(x)) for x in v)


def _sq(v):
    """(2, 2) -> '2', (1, 2) -> '1×2'."""
    v = [int(x) for x in v]
    return str(v[0]) if len(set(v)) == 1 else _ints(v)


def attr_text(node, layer):
    """Kernel, stride, padding, dilation and groups of a windowed op (what a Conv box shows)."""
    if node is None:
        return ""
    a = node.attrs
    parts = []
    if node.op in ("Conv", "ConvTranspose") or "Pool" in node.op and not node.op.startswith("Global"):
        k = a.get("kernel_shape")
        if k is None and len(layer.input_shapes) > 1 and len(layer.input_shapes[1]) == 4:
            k = layer.input_shapes[1][2:]
        if k:
            parts.append(_ints(k))
        s = a.get("strides")
        if s and any(x != 1 for x in s):
            parts.append(f"stride {_sq(s)}")
        p = a.get("pads")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            parts.append(str(a["auto_pad"]).lower())
        elif p and any(p):
            h = len(p) // 2
            parts.append(f"pad {_sq(p[:h])}" if p[:h] == p[h:] else f"pad {_ints(p)}")
        d = a.get("dilations")
        if d and any(x != 1 for x in d):
            parts.append(f"dil {_sq(d)}")
        g = a.get("group", 1)
        if g != 1:
            cin = layer.input_shapes[0][1] if layer.input_shapes and len(layer.input_shapes[0]) > 1 else None
            parts.append("depthwise" if cin == g else f"groups {g}")
    elif node.op in ("Concat", "Softmax", "Flatten", "Split", "Gather") and "axis" in a:
        parts.append(f"axis {a['axis']}")
    elif node.op == "Gemm":
        w = layer.input_shapes[1] if len(layer.input_shapes) > 1 else ()
        if len(w) == 2:
            parts.append(f"{w[1] if a.get('transB') else w[0]} → {w[0] if a.get('transB') else w[1]}")
    return " · ".join(parts)


class NodeItem(QGraphicsItem):
    def __init__(self, row, lines, color, tooltip, w, h):
        super().__init__()
        self.row, self.lines, self.color = row, lines, QColor(color)
        self.w, self.h = w, h
        self.setToolTip(tooltip)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(False)

    def boundingRect(self):
        return QRectF(-self.w / 2, -self.h / 2, self.w, self.h)

    def set_line(self, k, text):
        if self.lines[k] != text:
            self.lines[k] = text
            self.update()

    def paint(self, p, option, widget=None):
        r = self.boundingRect()
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(p.worldTransform())
        if lod < 0.35:               # far out: a coloured block is all one can see
            p.fillRect(r, self.color)
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(self.color.darker(140), 1.0))
        p.setBrush(QColor("#1d2026"))
        p.drawRoundedRect(r.adjusted(0.5, 0.5, -0.5, -0.5), 5, 5)
        p.fillRect(QRectF(r.left() + 1, r.top() + 1, 5, r.height() - 2), self.color)
        f = QFont("DejaVu Sans")
        f.setPixelSize(12)
        f.setBold(True)
        p.setFont(f)
        x0, w = r.left() + 12, r.width() - 18
        fm = p.fontMetrics()
        op, name = self.lines[0], self.lines[1]
        p.setPen(self.color.lighter(115))
        p.drawText(QRectF(x0, r.top() + 3, w, 16), Qt.AlignmentFlag.AlignVCenter, op)
        f.setBold(False)
        f.setPixelSize(11)
        p.setFont(f)
        opw = fm.horizontalAdvance(op) + 8
        p.setPen(QColor("#c9d1d9"))
        fm = p.fontMetrics()
        p.drawText(QRectF(x0 + opw, r.top() + 3, w - opw, 16), Qt.AlignmentFlag.AlignVCenter,
                   fm.elidedText(name, Qt.TextElideMode.ElideLeft, int(w - opw)))
        p.setPen(QColor("#9aa4b2"))
        for k, text in enumerate([t for t in self.lines[2:] if t]):
            p.drawText(QRectF(x0, r.top() + 19 + 13 * k, w, 13), Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(text, Qt.TextElideMode.ElideRight, int(w)))


class _View(QGraphicsView):
    clicked = pyqtSignal(int)
    zoomed = pyqtSignal(float)

    def __init__(self, scene):
        super().__init__(scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setBackgroundBrush(QBrush(QColor("#15171b")))
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setStyleSheet("QGraphicsView { border: none; }")
        self._press = None
        self.far = False
        # while zooming or panning, draw without antialiasing (half the time per frame on
        # DenseNet-121); the smooth picture comes back once the motion stops
        self._smooth = QTimer(self, singleShot=True, interval=180)
        self._smooth.timeout.connect(self._settle_smooth)

    def moving(self):
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self._smooth.start()

    def _settle_smooth(self):
        self.setRenderHint(QPainter.RenderHint.Antialiasing, not self.far)
        self.viewport().update()

    def scrollContentsBy(self, dx, dy):
        if self._press is not None:
            self.moving()
        super().scrollContentsBy(dx, dy)

    def scale_now(self):
        return self.transform().m11()

    def zoom(self, factor):
        s = self.scale_now()
        factor = max(MIN_SCALE / s, min(MAX_SCALE / s, factor))
        self.scale(factor, factor)
        self.zoomed.emit(self.scale_now())

    def wheelEvent(self, ev):
        dy = ev.angleDelta().y() or ev.pixelDelta().y()
        if dy:
            self.moving()
            self.zoom(1.0015 ** dy)
        ev.accept()

    def mousePressEvent(self, ev):
        self._press = ev.position()
        super().mousePressEvent(ev)

    def mouseReleaseEvent(self, ev):
        super().mouseReleaseEvent(ev)
        if self._press is not None and (ev.position() - self._press).manhattanLength() < 5 \
                and ev.button() == Qt.MouseButton.LeftButton:
            item = self.itemAt(ev.position().toPoint())
            while item is not None and not isinstance(item, NodeItem):
                item = item.parentItem()
            if item is not None and item.row >= 0:
                self.clicked.emit(item.row)
        self._press = None


class GraphView(QWidget):
    """set_graph(layers, edges, merges, model, layout); set_current(row); layerClicked(row)."""
    layerClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scene = QGraphicsScene(self)
        self.scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.view = _View(self.scene)
        self.view.clicked.connect(self.layerClicked)
        self.view.zoomed.connect(lambda s: self._level_of_detail(s))
        self._far = None
        self.header = style.elastic(QLabel("No graph"))
        self.header.setObjectName("panelTitle")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Show the whole graph")
        self.one_button = QPushButton("1:1")
        self.one_button.setToolTip("Actual size, centred on the selected layer")
        for b in (self.fit_button, self.one_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.fit_button.clicked.connect(self.fit)
        self.one_button.clicked.connect(lambda: self.set_scale(1.0))
        legend = style.elastic(QLabel(" ".join(f'<span style="color:{style.OP_COLORS[k]}">■</span>&nbsp;{k}'
                                 for k in ("conv", "norm", "act", "pool", "merge", "dense", "other"))))
        legend.setStyleSheet("color: #9aa4b2; font-size: 8pt;")
        self.hint = style.elastic(QLabel("wheel: zoom · drag: pan · click: select"))
        self.hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.hint.setStyleSheet("color: #7d8590; font-size: 8pt;")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.header, 1)
        top.addWidget(self.fit_button)
        top.addWidget(self.one_button)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(legend, 3)
        bottom.addWidget(self.hint, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addLayout(bottom)
        self.items, self.edge_items, self.touching, self.merges = {}, {}, {}, set()
        self.layers = []
        self.layout = None
        self.bundle = None         # the model whose layout is shown or being computed (set by the window)
        self.current = -1
        self.frame = None
        self._placed = False

    # ------------------------------------------------------------ building
    def clear(self, text="No graph"):
        self.scene.clear()
        self.items, self.edge_items, self.layers, self.layout, self.frame = {}, {}, [], None, None
        self.touching, self.merges = {}, set()
        self.header.setText(text)

    def set_graph(self, layers, edges, merges, model, layout, times=None):
        """Build the scene from a finished layout (viewer.layered.layout of the rows and edges)."""
        self.clear()
        self.layers, self.layout, self.merges = list(layers), layout, set(merges)
        graph = getattr(model, "graph", None)
        nodes = {n.name: n for n in getattr(graph, "nodes", [])}
        in_shape = model.inputs[0].shape if getattr(model, "inputs", None) else ()
        for row, (x, y) in layout.pos.items():
            w, h = layout.size[row]
            if row == INPUT:
                item = NodeItem(INPUT, ["Input", "", "→ " + _ints(d for d in in_shape if isinstance(d, int))],
                                "#8b949e", f"graph input {in_shape}", w, h)
            else:
                l = layers[row]
                item = NodeItem(row, self._lines(l, nodes.get(l.name), (times or {}).get(l.name, "?")),
                                style.op_color(l.op), self._tooltip(row, l, nodes.get(l.name), row in merges), w, h)
            item.setPos(x, y)
            item.setZValue(2)
            self.scene.addItem(item)
            self.items[row] = item
        for (u, v), pts in layout.paths.items():
            pen = QPen(EDGE_MERGE if v in merges else EDGE, 1.4)
            # long edges in pieces of a few levels, so that close up only the pieces in view are drawn;
            # far out, one item per edge is cheaper
            pieces = [self._edge_item(pts[k:k + EDGE_PIECE + 1], pen) for k in range(0, len(pts) - 1, EDGE_PIECE)]
            whole = self._edge_item(pts, pen) if len(pieces) > 1 else None
            self.edge_items[(u, v)] = (pieces, whole)
            self.touching.setdefault(u, []).append((u, v))
            self.touching.setdefault(v, []).append((u, v))
        self._far = None
        self._level_of_detail(self.view.scale_now())
        self.scene.setSceneRect(QRectF(-40, -40, layout.width + 80, layout.height + 80))
        self.header.setText(f"Graph — {len(layers)} layers, {len(layout.paths)} edges, "
                            f"{len(layout.order)} levels")
        self._placed = False
        self.set_current(self.current)

    def _edge_item(self, pts, pen):
        path = QPainterPath(QPointF(*pts[0]))
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            dy = (y1 - y0) / 2
            path.cubicTo(QPointF(x0, y0 + dy), QPointF(x1, y1 - dy), QPointF(x1, y1))
        e = QGraphicsPathItem(path)
        e.setPen(pen)
        e.setZValue(1)
        self.scene.addItem(e)
        return e

    def _level_of_detail(self, scale):
        far = scale < FAR_SCALE
        if far == self._far:
            return
        self._far = self.view.far = far
        if not self.view._smooth.isActive():
            self.view.setRenderHint(QPainter.RenderHint.Antialiasing, not far)
        for pieces, whole in self.edge_items.values():
            if whole is not None:
                whole.setVisible(far)
                for e in pieces:
                    e.setVisible(not far)

    @staticmethod
    def _lines(l, node, t):
        """op, name, attributes, output shape and params, MACs and time."""
        shape = _ints(l.output_shape[1:]) if len(l.output_shape) > 1 else _ints(l.output_shape)
        cost = [f"{human(l.macs)} MACs" if l.macs else "", _time(t)]
        return [SHORT_OPS.get(l.op, l.op), short_name(l.name, 40, op=l.op), attr_text(node, l),
                f"→ {shape}" + (f" · {human(l.params)} params" if l.params else ""),
                " · ".join(x for x in cost if x)]

    @staticmethod
    def _tooltip(row, l, node, merge):
        attrs = {k: v for k, v in (node.attrs.items() if node else ()) if not k.startswith("_")}
        return (f"{row}: {l.name}\n{l.op}" + (f"  {attrs}" if attrs else "") +
                f"\ninputs: {', '.join(_ints(s) for s in l.input_shapes)}\noutput: {_ints(l.output_shape)}"
                f"\nparams {l.params:,} · MACs {l.macs:,}" + ("\nmerges branches" if merge else ""))

    def set_times(self, times):
        for row, item in self.items.items():
            if row >= 0:
                item.set_line(4, self._lines(self.layers[row], None, times.get(self.layers[row].name, "?"))[4])

    # ----------------------------------------------------------- selection
    def set_current(self, row):
        if self.current in self.items:
            self._mark(self.current, False)
        self.current = row
        if row not in self.items:
            return
        self._mark(row, True)
        item = self.items[row]
        if self.frame is None:
            self.frame = self.scene.addRect(QRectF(), QPen(QColor("#ffffff"), 2.5))
            self.frame.setZValue(3)
        self.frame.setRect(item.sceneBoundingRect().adjusted(-4, -4, 4, 4))
        if self.isVisible():
            self._show_current()

    def _mark(self, row, on):
        for u, v in self.touching.get(row, ()):
            pen = QPen(EDGE_ON if on else EDGE_MERGE if v in self.merges else EDGE, 2.2 if on else 1.4)
            pieces, whole = self.edge_items[(u, v)]
            for e in pieces + ([whole] if whole is not None else []):
                e.setPen(pen)
                e.setZValue(1.5 if on else 1)

    def _show_current(self):
        if not self._placed and self.layout is not None:
            self._placed = True
            vw = max(self.view.viewport().width(), 100)
            self.set_scale(max(0.85, min(1.0, vw / (self.layout.width + 80))))   # text stays readable
        if self.current in self.items:
            self.view.ensureVisible(self.items[self.current].sceneBoundingRect(), 60, 80)

    def showEvent(self, event):
        super().showEvent(event)
        self._show_current()

    # --------------------------------------------------------------- zooming
    def scale_now(self):
        return self.view.scale_now()

    def set_scale(self, s):
        self.view.zoom(s / self.view.scale_now())
        if self.current in self.items:
            self.view.centerOn(self.items[self.current])

    def fit(self):
        self.view.fitInView(self.scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.view.zoom(1.0)        # clamps and reports


def _time(t):
    if t == "?" or t is None:
        return ""
    if isinstance(t, str):
        return "fused"
    return f"{t * 1e6:.0f} µs" if t < 1e-4 else f"{t * 1e3:.2f} ms"
