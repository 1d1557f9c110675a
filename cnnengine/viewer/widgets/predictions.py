"""Top-k classes as labelled probability bars; clicking one emits its class."""
from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget


class Predictions(QWidget):
    classClicked = pyqtSignal(int)

    def __init__(self, k=5, parent=None):
        super().__init__(parent)
        self.k = k
        self.rows = []          # [(index, label, prob)]
        self.note = "no prediction yet"
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(self.sizeHint().height())
        self.setMouseTracking(True)

    def row_at(self, y):
        r = int((y - 24) // 22)
        return r if 0 <= r < min(self.k, len(self.rows)) and (y - 24) % 22 < 18 else None

    def mousePressEvent(self, ev):
        r = self.row_at(ev.position().y())
        if r is not None and ev.button() == Qt.MouseButton.LeftButton:
            self.classClicked.emit(self.rows[r][0])

    def mouseMoveEvent(self, ev):
        r = self.row_at(ev.position().y())
        self.setCursor(Qt.CursorShape.PointingHandCursor if r is not None else Qt.CursorShape.ArrowCursor)
        self.setToolTip(f"class {self.rows[r][0]} {self.rows[r][1]}: click to select its unit in the "
                        f"class layer" if r is not None else "")

    def sizeHint(self):
        return QSize(320, 22 * self.k + 26)

    def set_top(self, rows, note=""):
        self.rows = list(rows)
        self.note = note
        self.update()

    def clear(self, note="no prediction yet"):
        self.rows, self.note = [], note
        self.update()

    def paintEvent(self, event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#15171b"))
        f = QFont(self.font())
        f.setPointSizeF(9)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("#9aa4b2"))
        p.drawText(QRectF(4, 2, self.width() - 8, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText("Predictions" + (f" · {self.note}" if self.note else ""),
                                              Qt.TextElideMode.ElideRight, self.width() - 8))
        f.setBold(False)
        f.setPointSizeF(9.5)
        p.setFont(f)
        w = self.width() - 8
        for r, (idx, label, prob) in enumerate(self.rows[: self.k]):
            y = 24 + r * 22
            bar = QRectF(4, y, w * max(prob, 0.0), 18)
            p.fillRect(QRectF(4, y, w, 18), QColor("#1f2329"))
            p.fillRect(bar, QColor("#2f5b8f" if r else "#3a7bd5"))
            p.setPen(QColor("#e6edf3"))
            p.drawText(QRectF(10, y, w - 80, 18), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       p.fontMetrics().elidedText(f"{label}", Qt.TextElideMode.ElideRight, int(w - 90)))
            p.drawText(QRectF(4, y, w - 6, 18), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       f"{prob * 100:.1f}%")
        p.end()
