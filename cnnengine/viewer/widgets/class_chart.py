"""A class-shaped layer (logits, class scores) as a sorted horizontal bar
chart with class names, in place of a grid of 1x1 squares. Hover reports
"281 tabby = 8.55"; click selects that class's unit."""
import numpy as np
from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter, QPen
from PyQt6.QtWidgets import QScrollArea, QWidget

ROW = 18
POS, NEG, SEL = QColor("#3a7bd5"), QColor("#b9543f"), QColor("#2f4a6e")


def is_class_shaped(maps, labels):
    """(C, H, W) maps with one value per class label: C == len(labels), 1x1."""
    return maps is not None and labels is not None and len(labels) > 1 and \
        maps.shape[0] == len(labels) and maps.shape[1] * maps.shape[2] == 1


def class_name(labels, k):
    """"281 tabby" (or "281" without labels, or when the label is the number: LeNet's "4")."""
    if labels is None or not 0 <= k < len(labels) or str(labels[k]) == str(k):
        return str(k)
    return f"{k} {labels[k]}"


class _Bars(QWidget):
    hovered = pyqtSignal(object)     # class index or None
    clicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.values = np.zeros(0, np.float32)
        self.labels = None
        self.order = np.zeros(0, np.intp)
        self.rank = np.zeros(0, np.intp)
        self.selected = None
        self.setMouseTracking(True)

    def set_values(self, values, labels):
        self.values = np.asarray(values, np.float32).reshape(-1)
        self.labels = labels
        self.order = np.argsort(-self.values, kind="stable")
        self.rank = np.empty_like(self.order)
        self.rank[self.order] = np.arange(len(self.order))
        self.setFixedHeight(max(ROW * len(self.values) + 4, 10))
        self.update()

    def sizeHint(self):
        return QSize(300, ROW * len(self.values) + 4)

    def class_at(self, y):
        r = int((y - 2) // ROW)
        return int(self.order[r]) if 0 <= r < len(self.order) else None

    def row_of(self, k):
        return int(self.rank[k]) if 0 <= k < len(self.rank) else None

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(event.rect(), QColor("#15171b"))
        if not len(self.values):
            p.end()
            return
        f = QFont(self.font())
        f.setPointSizeF(9)
        p.setFont(f)
        fm = p.fontMetrics()
        w = self.width()
        lo, hi = min(0.0, float(self.values.min())), max(0.0, float(self.values.max()))
        span = (hi - lo) or 1.0
        name_w = min(int(w * 0.45), 260)
        val_w = fm.horizontalAdvance("-00.000") + 6
        bar_x0, bar_w = name_w + 6, max(w - name_w - val_w - 12, 10)
        zero = bar_x0 + bar_w * (-lo / span)
        first = max(0, int((event.rect().top() - 2) // ROW))
        last = min(len(self.order), int(event.rect().bottom() // ROW) + 2)
        for r in range(first, last):
            k = int(self.order[r])
            v = float(self.values[k])
            y = 2 + r * ROW
            if k == self.selected:
                p.fillRect(QRectF(0, y, w, ROW), SEL)
            x1 = bar_x0 + bar_w * ((v - lo) / span)
            p.fillRect(QRectF(min(zero, x1), y + 3, abs(x1 - zero), ROW - 6), POS if v >= 0 else NEG)
            p.setPen(QColor("#e6edf3" if k == self.selected else "#c9d1d9"))
            p.drawText(QRectF(4, y, name_w, ROW), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(class_name(self.labels, k), Qt.TextElideMode.ElideRight, name_w))
            p.drawText(QRectF(w - val_w - 4, y, val_w, ROW),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{v:.4g}")
        p.setPen(QPen(QColor("#6e7681"), 1))
        p.drawLine(int(zero), event.rect().top(), int(zero), event.rect().bottom())
        p.end()

    def mouseMoveEvent(self, ev):
        self.hovered.emit(self.class_at(ev.position().y()))

    def leaveEvent(self, ev):
        self.hovered.emit(None)

    def mousePressEvent(self, ev):
        k = self.class_at(ev.position().y())
        if k is not None and ev.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(k)


class ClassChart(QScrollArea):
    """All classes sorted by value, largest first, in a scrollable list of bars."""
    hovered = pyqtSignal(object)
    clicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bars = _Bars()
        self.setWidget(self.bars)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setStyleSheet("QScrollArea { border: none; }")
        self.bars.hovered.connect(self.hovered)
        self.bars.clicked.connect(self.clicked)

    def set_values(self, values, labels):
        self.bars.selected = None
        self.bars.set_values(values, labels)
        self.verticalScrollBar().setValue(0)

    def select(self, k):
        self.bars.selected = k
        self.bars.update()
        r = self.bars.row_of(k) if k is not None else None
        if r is not None:
            self.ensureVisible(0, 2 + r * ROW + ROW // 2, 0, ROW * 2)
