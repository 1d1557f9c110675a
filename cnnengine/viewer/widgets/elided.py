"""A one-line label that ends in "…" when its panel is too narrow (a plain
QLabel just cuts the text off) and shows the whole text as its tooltip."""
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    def __init__(self, text="", middle=False, parent=None):
        super().__init__(parent)
        self._full = str(text)
        self._mode = Qt.TextElideMode.ElideMiddle if middle else Qt.TextElideMode.ElideRight
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(10)
        self._apply()

    def setText(self, text):
        self._full = str(text)
        self._apply()

    def text(self):
        return self._full

    def shown(self):
        """The text as drawn: whole, or elided with "…"."""
        return QLabel.text(self)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._apply()

    def changeEvent(self, event):     # font or style sheet changes alter the metrics
        super().changeEvent(event)
        self._apply()

    def _apply(self):
        width = self.contentsRect().width() - 2 * self.margin() - 2
        shown = self.fontMetrics().elidedText(self._full, self._mode, width) if width > 0 else self._full
        if shown != QLabel.text(self):
            QLabel.setText(self, shown)
        self.setToolTip(self._full if shown != self._full else "")
