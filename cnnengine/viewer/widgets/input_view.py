"""The photo as read and the model's input as preprocessed, side by side;
the receptive field of the selected unit is drawn on both."""
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QPen
from PyQt6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem

from .atlas_view import BG

RF_COLOR = "#ffffff"


def _rect_item(color, width=2.0, dashed=False, halo=False):
    """A rectangle outline; with `halo`, a dark border under it keeps it
    visible on any picture."""
    item = QGraphicsRectItem()
    pen = QPen(QColor(color))
    pen.setCosmetic(True)
    pen.setWidthF(width)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    item.setPen(pen)
    item.setZValue(10)
    item.hide()
    if halo:
        under = QGraphicsRectItem(item)
        hp = QPen(QColor(0, 0, 0, 190))
        hp.setCosmetic(True)
        hp.setWidthF(width + 2.5)
        under.setPen(hp)
        under.setFlag(under.GraphicsItemFlag.ItemStacksBehindParent)
        item.halo = under
    return item


def _set_rect(item, rect):
    item.setRect(rect)
    if hasattr(item, "halo"):
        item.halo.setRect(rect)


class InputView(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(BG)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.title_orig = self.addLabel("original", row=0, col=0, color="#9aa4b2", size="9pt")
        self.title_in = self.addLabel("model input", row=0, col=1, color="#9aa4b2", size="9pt")
        self.vb_orig = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.vb_in = self.addViewBox(row=1, col=1, lockAspect=True, invertY=True, enableMenu=False)
        self.img_orig = pg.ImageItem(axisOrder="row-major")
        self.img_in = pg.ImageItem(axisOrder="row-major")
        self.vb_orig.addItem(self.img_orig)
        self.vb_in.addItem(self.img_in)
        self.crop = _rect_item("#e6edf3", 1.0, dashed=True)
        self.vb_orig.addItem(self.crop)
        self.rf_orig = _rect_item(RF_COLOR, 2.0, halo=True)
        self.rf_in = _rect_item(RF_COLOR, 2.0, halo=True)
        self.vb_orig.addItem(self.rf_orig)
        self.vb_in.addItem(self.rf_in)
        self.centre = QGraphicsEllipseItem()
        self.centre.setPen(pg.mkPen("#000000", width=1))
        self.centre.setBrush(pg.mkBrush(RF_COLOR))
        self.centre.setZValue(11)
        self.centre.hide()
        self.vb_in.addItem(self.centre)
        self.input_hw = None
        self._sizes = None
        self.crop_box = None
        self.rf_box = None

    def set_images(self, original, display, crop_box, name=""):
        self.img_orig.setImage(original, autoLevels=False, levels=(0, 255))
        self.img_orig.setRect(QRectF(0, 0, original.shape[1], original.shape[0]))
        self.img_in.setImage(display, autoLevels=False, levels=(0, 255))
        self.img_in.setRect(QRectF(0, 0, display.shape[1], display.shape[0]))
        self.input_hw = display.shape[:2]
        self.crop_box = crop_box
        t, l, b, r = crop_box
        self.crop.setRect(QRectF(l, t, r - l, b - t))
        self.crop.setVisible((t, l, b, r) != (0, 0, original.shape[0], original.shape[1]))
        self._sizes = (f"{original.shape[1]}×{original.shape[0]}", f"{display.shape[1]}×{display.shape[0]}")
        self._titles()
        self.setToolTip((f"{name}: " if name else "") + "the photo as read (the model's crop dashed), and the "
                        "model's input after preprocessing")
        self.clear_rf()
        self.vb_orig.autoRange(padding=0.02)
        self.vb_in.autoRange(padding=0.02)

    WORDS_MIN = 240     # px: narrower, the titles are the sizes alone (the tooltip says which is which)

    def _titles(self):
        if getattr(self, "_sizes", None) is None:     # also called during pyqtgraph's construction
            return
        (orig, inp), words = self._sizes, self.width() >= self.WORDS_MIN
        self.title_orig.setText(f"original {orig}" if words else orig)
        self.title_in.setText(f"input {inp}" if words else f"→ {inp}")

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._titles()

    def clear_rf(self):
        self.rf_box = None
        self.rf_in.hide()
        self.rf_orig.hide()
        self.centre.hide()

    def show_rf(self, box, centre=None):
        """box = (top, left, bottom, right) in model-input pixels."""
        self.rf_box = box
        t, l, b, r = box
        _set_rect(self.rf_in, QRectF(l, t, r - l, b - t))
        self.rf_in.show()
        if centre is not None:
            cy, cx = centre
            rad = max(1.0, (self.input_hw[0] if self.input_hw else 224) / 120)
            self.centre.setRect(QRectF(cx - rad, cy - rad, 2 * rad, 2 * rad))
            self.centre.show()
        if self.crop_box is not None and self.input_hw is not None:
            ct, cl, cb, cr = self.crop_box
            sy, sx = (cb - ct) / self.input_hw[0], (cr - cl) / self.input_hw[1]
            _set_rect(self.rf_orig, QRectF(cl + l * sx, ct + t * sy, (r - l) * sx, (b - t) * sy))
            self.rf_orig.show()
