"""A compact strip of the whole network: one mark per layer in execution
order, coloured by op, with arcs for connections that skip ahead (residuals,
branches) and diamonds where paths merge; the current layer is highlighted."""
from PyQt6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPainterPath, QPen, QPolygonF
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolTip, QWidget

from ..style import OP_COLORS, op_color

MIN_STEP, MAX_STEP = 13, 28
MARK = 8
BASE = 46


class _Canvas(QWidget):
    clicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layers, self.edges, self.merges = [], [], set()
        self.current = -1
        self.step = MIN_STEP
        self.setMouseTracking(True)
        self.setMinimumHeight(BASE + 16)

    def sizeHint(self):
        return QSize(max(int(self.step * (len(self.layers) + 2)), 100), BASE + 16)

    def set_graph(self, layers, edges, merges, width=0):
        self.layers, self.edges, self.merges = list(layers), list(edges), set(merges)
        self.current = -1
        self.fit(width)

    def fit(self, width):
        """Spread the marks over `width` pixels when there are few layers."""
        n = len(self.layers) + 2
        self.step = max(MIN_STEP, min(MAX_STEP, (width - 4) / n)) if width else MIN_STEP
        self.setFixedWidth(self.sizeHint().width())
        self.update()

    def x_of(self, row):
        return self.step * (row + 1) + self.step / 2

    def row_at(self, x):
        row = int(round((x - self.step / 2) / self.step)) - 1
        return row if 0 <= row < len(self.layers) else None

    def paintEvent(self, event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#15171b"))
        if not self.layers:
            p.end()
            return
        lo = max(0, self.row_at(event.rect().left() - 400) or 0)
        # chain and skips
        for a, b in self.edges:
            xa = self.x_of(a) if a >= 0 else self.step / 2
            xb = self.x_of(b)
            if b == a + 1 or a < 0 and b == 0:
                pen = QPen(QColor("#3b424c"), 1.5)
                p.setPen(pen)
                p.drawLine(QPointF(xa, BASE), QPointF(xb, BASE))
                continue
            if max(a, b) < lo:
                continue
            span = abs(xb - xa)
            h = min(BASE - 8, 10 + span * 0.12)
            path = QPainterPath(QPointF(xa, BASE - MARK / 2))
            path.cubicTo(QPointF(xa, BASE - h), QPointF(xb, BASE - h), QPointF(xb, BASE - MARK / 2))
            pen = QPen(QColor("#f778ba" if b in self.merges else "#6e7681"), 1.3)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
        # marks
        for row, layer in enumerate(self.layers):
            x = self.x_of(row)
            col = QColor(op_color(layer.op))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(col)
            if row in self.merges:
                r = MARK / 2 + 1
                p.drawPolygon(QPolygonF([QPointF(x, BASE - r), QPointF(x + r, BASE), QPointF(x, BASE + r),
                                         QPointF(x - r, BASE)]))
            else:
                size = MARK if layer.op in ("Conv", "ConvTranspose", "Gemm", "MatMul") else MARK - 3
                p.drawRoundedRect(QRectF(x - size / 2, BASE - size / 2, size, size), 1.5, 1.5)
        if 0 <= self.current < len(self.layers):
            x = self.x_of(self.current)
            p.setPen(QPen(QColor("#ffffff"), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(x - MARK / 2 - 3, BASE - MARK / 2 - 3, MARK + 6, MARK + 6), 3, 3)
            p.setPen(QColor("#e6edf3"))
            p.drawLine(QPointF(x, BASE + MARK / 2 + 4), QPointF(x, BASE + MARK / 2 + 9))
        p.end()

    def mousePressEvent(self, ev):
        row = self.row_at(ev.position().x())
        if row is not None:
            self.clicked.emit(row)

    def mouseMoveEvent(self, ev):
        row = self.row_at(ev.position().x())
        if row is not None:
            l = self.layers[row]
            QToolTip.showText(ev.globalPosition().toPoint(),
                              f"{row}: {l.name} ({l.op}) → {'×'.join(map(str, l.output_shape))}", self)


class GraphStrip(QWidget):
    """The scrollable strip plus a colour legend."""
    layerClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = _Canvas()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.canvas)
        self.scroll.setWidgetResizable(False)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.scroll.setStyleSheet("QScrollArea { border: none; }")
        self.scroll.viewport().installEventFilter(self)
        legend = QLabel(" ".join(
            f'<span style="color:{OP_COLORS[k]}">{"◆" if k == "merge" else "■"}</span>&nbsp;{t}'
            for k, t in (("conv", "conv"), ("act", "activation"), ("pool", "pool"), ("norm", "norm"),
                         ("merge", "merge"), ("dense", "dense"), ("other", "other"))) +
            '<br><span style="color:#f778ba">⌒</span>&nbsp;residual / branch')
        legend.setStyleSheet("color: #9aa4b2; font-size: 8pt; padding: 0 8px;")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(legend)
        self.setFixedHeight(BASE + 16 + 14)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setObjectName("graphStrip")
        self.setStyleSheet("#graphStrip { border-bottom: 1px solid #2a2e35; }")
        self.canvas.clicked.connect(self.layerClicked)

    def set_graph(self, layers, edges, merges):
        self.canvas.set_graph(layers, edges, merges, self.scroll.viewport().width())
        self.canvas.setFixedHeight(BASE + 16)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Resize:
            self.canvas.fit(self.scroll.viewport().width())
        return False

    def set_current(self, row):
        self.canvas.current = row
        self.canvas.update()
        if row >= 0:
            self.scroll.ensureVisible(int(self.canvas.x_of(row)), BASE, self.scroll.viewport().width() // 3, 0)
