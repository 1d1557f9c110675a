"""ZFNet's deconvnet projection of the selected channel (or unit) back to
pixel space, beside the model input; the worker computes it (project() is
Qt-free), this view only shows it or the reason it cannot be computed."""
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .. import style
from .atlas_view import BG
from .input_view import RF_COLOR, _rect_item, _set_rect

MODES = ("whole channel", "selected unit")


# ------------------------------------------------------------ Qt-free
def project(model, x, layer, channel, unit=None):
    """ce.deconvnet -> (projection (1, C, H, W), its RGB picture H x W x 3 uint8)."""
    import cnnengine as ce

    p = ce.deconvnet(model, x, layer, channel, unit=unit)
    return p, to_rgb(p)


def to_rgb(p):
    """Each channel stretched to [0, 1] on its own, as ZFNet's figures show
    projections; one channel becomes grey. A constant channel maps to 0.5."""
    a = np.asarray(p, np.float64)[0]
    lo = a.min(axis=(1, 2), keepdims=True)
    span = a.max(axis=(1, 2), keepdims=True) - lo
    a = np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), 0.5)
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    elif a.shape[0] != 3:
        a = np.repeat(a.mean(axis=0, keepdims=True), 3, axis=0)   # no colour order to show: grey
    return np.ascontiguousarray((a.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8))


# ------------------------------------------------------------ widget
class DeconvView(QWidget):
    """shown() fires when a projection or a message has been put on screen;
    modeChanged(str) when the user switches between channel and unit."""
    shown = pyqtSignal()
    modeChanged = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = style.elastic(QLabel("Deconvnet"))
        self.title.setObjectName("panelTitle")
        self.mode_box = QComboBox()
        self.mode_box.addItems(MODES)
        self.mode_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.mode_box.setToolTip("Project the whole channel, or only the unit selected in the channel view")
        self.mode_box.currentTextChanged.connect(self.modeChanged.emit)

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(BG)
        self.glw.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label_proj = self.glw.addLabel("projection", row=0, col=0, color="#9aa4b2", size="9pt")
        self.label_in = self.glw.addLabel("model input", row=0, col=1, color="#9aa4b2", size="9pt")
        self.vb_proj = self.glw.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.vb_in = self.glw.addViewBox(row=1, col=1, lockAspect=True, invertY=True, enableMenu=False)
        self.vb_in.setXLink(self.vb_proj)
        self.vb_in.setYLink(self.vb_proj)
        self.img_proj = pg.ImageItem(axisOrder="row-major")
        self.img_in = pg.ImageItem(axisOrder="row-major")
        self.vb_proj.addItem(self.img_proj)
        self.vb_in.addItem(self.img_in)
        self.rf_proj = _rect_item(RF_COLOR, 1.5, halo=True)
        self.rf_in = _rect_item(RF_COLOR, 1.5, halo=True)
        self.vb_proj.addItem(self.rf_proj)
        self.vb_in.addItem(self.rf_in)

        self.message = style.elastic(QLabel(" "))
        self.message.setObjectName("info")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        note = QLabel("Zeiler & Fergus 2014: the activation walked back through transposed convolutions, "
                      "max-unpooling with the forward switches and ReLU; each colour channel stretched to [0, 1].")
        note.setObjectName("info")
        note.setWordWrap(True)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(QLabel("Project"))
        top.addWidget(self.mode_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.message)
        lay.addWidget(note)

        self.projection = None   # the last (1, C, H, W) array shown
        self.rgb = None
        self.key = None          # what it shows: (layer, channel, unit)

    def mode(self):
        return self.mode_box.currentText()

    def set_mode(self, mode):
        self.mode_box.setCurrentText(mode)

    def set_input(self, display):
        self.img_in.setImage(display, autoLevels=False, levels=(0, 255))
        self.img_in.setRect(QRectF(0, 0, display.shape[1], display.shape[0]))
        self.label_in.setText(f"model input {display.shape[1]}×{display.shape[0]}")
        self.vb_in.autoRange(padding=0.02)

    def working(self, text):
        self.message.setText(text)

    def show_projection(self, key, projection, rgb, seconds, box=None):
        """Put a projection on screen; box = the unit's receptive field (top, left, bottom, right)."""
        self.key, self.projection, self.rgb = key, projection, rgb
        layer, channel, unit = key
        self.img_proj.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.img_proj.setRect(QRectF(0, 0, rgb.shape[1], rgb.shape[0]))
        self.img_proj.show()
        self.vb_proj.autoRange(padding=0.02)
        what = f"{layer} · channel {channel}" + (f" · unit ({unit[0]}, {unit[1]})" if unit else "")
        self.title.setText(f"Deconvnet — {what}")
        self.label_proj.setText(f"projection {rgb.shape[1]}×{rgb.shape[0]}")
        peak = float(np.abs(projection).max())
        if peak == 0:
            self.message.setText(f"{what}: the projection is zero — this channel is not active on this image "
                                 f"(or nothing of it survives the ReLUs on the way back)")
        else:
            self.message.setText(f"{what}: |projection| up to {peak:.4g} · {seconds * 1e3:.0f} ms")
        self._box(box)
        self.shown.emit()

    def show_message(self, key, text):
        """The projection is not defined here (e.g. past a residual Add): say why, show no picture."""
        self.key, self.projection, self.rgb = key, None, None
        self.img_proj.clear()
        self.img_proj.hide()
        self._box(None)
        self.vb_in.autoRange(padding=0.02)   # the views are linked: frame the input, not the empty projection
        layer, channel, unit = key
        self.title.setText(f"Deconvnet — {layer} · channel {channel}")
        self.label_proj.setText("no projection here: see the message below")
        self.message.setText(text)
        self.shown.emit()

    def clear(self, text=" "):
        self.key, self.projection, self.rgb = None, None, None
        self.img_proj.clear()
        self._box(None)
        self.message.setText(text)

    def _box(self, box):
        for item in (self.rf_proj, self.rf_in):
            if box is None:
                item.hide()
            else:
                t, l, b, r = box
                _set_rect(item, QRectF(l, t, r - l, b - t))
                item.show()
