"""The Compute tab: how one output value of a conv is computed (CNN Explainer).

Left, the selected channel's output map: click a unit (or use the spin
boxes). Right, for the input channels that contribute most (by |sum over
the window of w * x|): the input window the kernel reads, the kernel, their
element-wise products and the sum; then the rest, the bias and the total,
which is the layer's own output at that unit. The model is run once per
layer and image (viewer/explain.py, ConvProbe, in this tab's own thread);
every click after that is answered from the captured input.
"""
import numpy as np
from PyQt6.QtCore import QEvent, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter, QPen
from PyQt6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                             QSplitter, QToolTip, QVBoxLayout, QWidget)

from .. import explain, style
from ..worker import Worker
from .elided import ElidedLabel
from .patches_view import BG, FRAME, qimage

UNIT = QColor("#ffd33d")
PAD = QColor("#22262c")
CMAP = "coolwarm"


class MatrixView(QWidget):
    """A small matrix as coloured cells (diverging, centred on 0), with its
    numbers when the cells are large enough; padding taps greyed."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.values = None
        self.inside = None
        self.cell = 30
        self._lut = style.lut(CMAP)

    def set_matrix(self, values, inside=None, vmax=None):
        self.values = np.asarray(values, np.float32)
        self.inside = inside
        kh, kw = self.values.shape
        self.cell = int(max(9, min(34, 140 // max(kh, kw))))
        m = float(np.abs(self.values).max()) if vmax is None else float(vmax)
        self.vmax = m if m > 0 else 1.0
        self.setFixedSize(QSize(kw * self.cell + 1, kh * self.cell + 1))
        self.update()

    def event(self, e):
        if e.type() == QEvent.Type.ToolTip and self.values is not None:   # the number of a cell too small to print it
            i, j = int(e.pos().y() // self.cell), int(e.pos().x() // self.cell)
            if 0 <= i < self.values.shape[0] and 0 <= j < self.values.shape[1]:
                pad = self.inside is not None and not self.inside[i, j]
                text = "padding (0)" if pad else f"{self.values[i, j]:.6g}"
                QToolTip.showText(e.globalPos(), f"[{i}, {j}] = {text}", self)
            return True
        return super().event(e)

    def paintEvent(self, event):
        if self.values is None:
            return
        p = QPainter(self)
        f = QFont(p.font())
        f.setPointSizeF(7 if self.cell < 36 else 7.5)
        p.setFont(f)
        kh, kw = self.values.shape
        idx = np.clip(((self.values / self.vmax + 1) / 2 * 255).round(), 0, 255).astype(int)
        numbers = self.cell >= 28
        for i in range(kh):
            for j in range(kw):
                rect = QRect(j * self.cell, i * self.cell, self.cell, self.cell)
                if self.inside is not None and not self.inside[i, j]:
                    p.fillRect(rect, PAD)
                    p.setPen(QColor("#5c636e"))
                    if numbers:
                        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "pad")
                else:
                    r, g, b, _ = self._lut[idx[i, j]]
                    p.fillRect(rect, QColor(int(r), int(g), int(b)))
                    if numbers:
                        p.setPen(QColor("#111111"))
                        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, _short(self.values[i, j]))
                p.setPen(FRAME)
                p.drawRect(rect)
        p.end()


def _short(v):
    v = float(v)
    if v == 0:
        return "0"
    return f"{v:.2f}" if abs(v) >= 0.01 else f"{v:.0e}"


class OutputMap(QWidget):
    """One output channel as an image (aspect kept); unitClicked(y, x)."""
    unitClicked = pyqtSignal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.map = None
        self.unit = None
        self._img = None
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_map(self, m, unit):
        self.map = np.asarray(m, np.float32)
        lo, hi = float(self.map.min()), float(self.map.max())
        norm = (self.map - lo) / (hi - lo) if hi > lo else np.zeros_like(self.map)
        self._img = qimage(style.lut("viridis")[np.clip((norm * 255).round(), 0, 255).astype(int)][..., :3])
        self.unit = unit
        self.update()

    def target(self):
        h, w = self.map.shape
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s), s

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), BG)
        if self._img is not None:
            rect, s = self.target()
            p.drawImage(rect, self._img)
            if self.unit is not None:
                y, x = self.unit
                pen = QPen(UNIT)
                pen.setWidthF(2)
                p.setPen(pen)
                p.drawRect(QRectF(rect.x() + x * s, rect.y() + y * s, s, s).adjusted(-1, -1, 1, 1))
        p.end()

    def unit_at(self, pos):
        if self.map is None:
            return None
        rect, s = self.target()
        y, x = int((pos.y() - rect.y()) // s), int((pos.x() - rect.x()) // s)
        h, w = self.map.shape
        return (y, x) if 0 <= y < h and 0 <= x < w else None

    def mousePressEvent(self, event):
        hit = self.unit_at(event.position())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.unitClicked.emit(*hit)


class ComputeView(QWidget):
    """unitPicked(c, y, x): a unit chosen in this tab. finished(Explanation or
    None): what is on screen changed (None: no conv selected or an error)."""
    unitPicked = pyqtSignal(int, int, int)
    finished = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bundle = None
        self.x = None
        self.layer = None
        self.channel = 0
        self.unit = None
        self.probe = None           # explain.ConvProbe of (layer, image)
        self.explanation = None
        self.message_text = ""
        self._probe_key = None
        self._asked = None
        self.runner = Worker(self)
        self._build()

    def _build(self):
        self.title = style.elastic(QLabel("How a value is computed"))
        self.title.setObjectName("panelTitle")
        self.c_spin, self.y_spin, self.x_spin = (self._spin(t) for t in ("Output channel", "Row", "Column"))
        self.top_spin = self._spin("Input channels shown (those that contribute most)")
        self.top_spin.setRange(1, 64)
        self.top_spin.setValue(4)
        for s in (self.c_spin, self.y_spin, self.x_spin):
            s.valueChanged.connect(lambda _: self._spun())
        self.top_spin.valueChanged.connect(lambda _: self._render())
        self.strongest = QPushButton("Strongest unit")
        self.strongest.clicked.connect(self._to_strongest)
        # the unit on one line, what to show on the next: the tab fits beside the list at 800 px
        row = QVBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        for items in ((("Channel", self.c_spin), ("y", self.y_spin), ("x", self.x_spin)),
                      (("Show", self.top_spin), (None, self.strongest))):
            row.addLayout(style.labelled_line(items))
        self.header = style.elastic(QLabel(" "))
        self.header.setObjectName("info")
        self.header.setWordWrap(True)
        self.map = OutputMap()
        self.map.unitClicked.connect(self._clicked)
        self.map_title = ElidedLabel("output channel")
        self.map_title.setObjectName("panelTitle")
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.map_title)
        ll.addWidget(self.map, 1)
        self.rows = QWidget()
        self.grid = QGridLayout(self.rows)
        self.grid.setContentsMargins(4, 4, 4, 4)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(2)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.rows)
        self.total = style.elastic(QLabel(" "))
        self.total.setObjectName("info")
        self.total.setWordWrap(True)
        self.total.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        top = QWidget()
        tl = QHBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(left, 1)
        tl.addWidget(self.total, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.scroll)
        split.setChildrenCollapsible(False)
        split.setSizes([250, 600])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.title)
        lay.addLayout(row)
        lay.addWidget(self.header)
        lay.addWidget(split, 1)

    @staticmethod
    def _spin(tip):
        s = QSpinBox()
        s.setToolTip(tip)
        s.setFocusPolicy(Qt.FocusPolicy.ClickFocus)   # arrow keys stay with the layer navigator
        s.setKeyboardTracking(False)
        return s

    # ============================================================ inputs
    def set_model(self, bundle):
        self.bundle, self.x, self.probe, self._probe_key, self.explanation = bundle, None, None, None, None

    def set_image(self, x):
        self.x, self.probe, self._probe_key = x, None, None
        self._update()

    def set_selection(self, layer, channel, unit=None):
        self.layer, self.channel, self.unit = layer, channel or 0, unit
        self._update()

    def showEvent(self, event):
        super().showEvent(event)
        self._update()

    def prepare(self):
        """`view --tab compute --screenshot`: explain the selected unit (capturing first when needed)."""
        self._update()

    def is_idle(self):
        return self.runner.is_idle()

    def shutdown(self):
        self.runner.wait(10000)

    # ============================================================== work
    def _update(self):
        """Capture the layer's input and output when needed (background), then explain the unit."""
        if not self.isVisible() or self.bundle is None or self.x is None or self.layer is None:
            return
        key = (id(self.bundle), id(self.x), self.layer)
        if self._probe_key == key and self.probe is not None:
            self._explain()
            return
        if self._asked == key:
            return
        self._asked = key
        bundle, x, layer = self.bundle, self.x, self.layer
        self._message(f"Capturing {layer}'s input and output…")
        self.runner.submit("probe", f"Capturing {layer}…", explain.ConvProbe, bundle.model, layer, x,
                           on_done=lambda p, s, k=key: self._probed(k, p),
                           on_error=lambda m, tb, k=key: self._probe_failed(k, m))

    def _probed(self, key, probe):
        self._asked = None
        if key != (id(self.bundle), id(self.x), self.layer):
            self._update()
            return
        self.probe, self._probe_key = probe, key
        self._explain()

    def _probe_failed(self, key, message):
        self._asked = None
        self.probe, self._probe_key, self.explanation = None, None, None
        self._clear_rows()
        self.map.map = self.map._img = None
        self.map.update()
        self._message(message.split(": ", 1)[-1] if message.startswith("InputError") else f"Error: {message}")
        self.finished.emit(None)

    def _explain(self):
        p = self.probe
        _, m, h, w = p.output.shape
        c = min(max(self.channel, 0), m - 1)
        y, x = self.unit if self.unit is not None and self.unit[0] < h and self.unit[1] < w else p.strongest(c)
        for s, hi, v in ((self.c_spin, m - 1, c), (self.y_spin, h - 1, y), (self.x_spin, w - 1, x)):
            s.blockSignals(True)
            s.setRange(0, hi)
            s.setValue(v)
            s.blockSignals(False)
        self.explanation = p.explain(c, y, x)
        self.map.set_map(p.output[0, c], (y, x))
        self.map_title.setText(f"channel {c} ({h}×{w}): click a unit")
        self._render()
        self.finished.emit(self.explanation)

    def _clicked(self, y, x):
        self.unit = (y, x)
        self.unitPicked.emit(self.channel, y, x)
        if self.probe is not None:
            self._explain()

    def _spun(self):
        if self.probe is None:
            return
        self.channel, self.unit = self.c_spin.value(), (self.y_spin.value(), self.x_spin.value())
        self.unitPicked.emit(self.channel, *self.unit)
        self._explain()

    def _to_strongest(self):
        if self.probe is not None:
            self.unit = self.probe.strongest(self.channel)
            self.unitPicked.emit(self.channel, *self.unit)
            self._explain()

    # ============================================================ render
    def _message(self, text):
        self.message_text = text
        self.header.setText(text)
        self.total.setText(" ")

    def _clear_rows(self):
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()

    def _render(self):
        e = self.explanation
        if e is None:
            return
        n = self.top_spin.value()
        kh, kw = e.kernel
        src = e.input_name or "the model input"
        pads = "·".join(str(v) for v in e.pads)
        after = " → ".join(f"{op} ({name})" for name, op in e.followed_by)
        follows = f"Then {after}: not included here — this is the conv's own output, before them." if after else \
            "No BatchNormalization or activation follows this conv directly."
        self.header.setText(
            f"{e.layer}: kernel {kh}×{kw}, stride {e.strides[0]}×{e.strides[1]}, dilation "
            f"{e.dilations[0]}×{e.dilations[1]}, pads {pads} (top·left·bottom·right), groups {e.group}. "
            f"Unit (channel {e.channel}, y {e.y}, x {e.x}) reads rows {e.rows[0]}…{e.rows[-1]}, cols "
            f"{e.cols[0]}…{e.cols[-1]} of {src} in {len(e.contributions)} input channel(s). {follows}")
        self.title.setText(f"How a value is computed — {e.layer} [{e.channel}, {e.y}, {e.x}] = {e.output:.5g}")
        self._clear_rows()
        top = e.top(n)
        vmax_p = max((float(np.abs(t.products).max()) for t in top), default=1.0)
        for i, t in enumerate(top):
            cap = QLabel(f"input channel {t.channel}:  window  ×  kernel  =  products,  Σ = {t.total:+.5g}")
            cap.setObjectName("panelTitle")
            self.grid.addWidget(cap, 2 * i, 0, 1, 6)
            views = []
            for values, inside, vmax in ((t.window, t.inside, None), (t.kernel, None, None),
                                         (t.products, t.inside, vmax_p)):
                mv = MatrixView()
                mv.set_matrix(values, inside, vmax)
                views.append(mv)
            for j, w in enumerate((views[0], _mono("×"), views[1], _mono("="), views[2])):
                self.grid.addWidget(w, 2 * i + 1, j, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.grid.setColumnStretch(5, 1)
        self.grid.setRowStretch(2 * len(top), 1)
        shown = sum(t.total for t in top)
        rest = len(e.contributions) - len(top)
        self.total.setText(
            f"Σ of the {len(top)} channel(s) below  {shown:+.6g}\n+ Σ of the other {rest}  {e.rest(len(top)):+.6g}\n"
            f"+ bias  {e.bias:+.6g}\n= {e.total:.6g}\n\nthe layer's output at this unit: {e.output:.6g}\n"
            f"(difference {abs(e.total - e.output):.1e})")


def _mono(text):
    lab = QLabel(text)
    lab.setObjectName("info")
    return lab
