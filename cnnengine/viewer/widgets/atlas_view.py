"""One pyqtgraph ImageItem showing a whole atlas, with hover and click
mapped back to (tile, y, x). Fast for thousands of tiles: a single texture."""
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPen
from PyQt6.QtWidgets import QGraphicsRectItem

BG = "#15171b"


class AtlasView(pg.GraphicsView):
    """hovered(tile_info or None, pixel (y, x)) and clicked(tile_info) carry
    layout.locate()'s (channel, y, x)."""
    hovered = pyqtSignal(object)
    clicked = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent, background=BG)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01)
        self.setCentralItem(self.vb)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.highlight = QGraphicsRectItem()
        pen = QPen(QColor("#ffffff"))
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self.highlight.setPen(pen)
        self.highlight.setZValue(10)
        self.highlight.hide()
        self.vb.addItem(self.highlight)
        self.layout = None
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self._last = None

    def aspect(self):
        w, h = max(self.width(), 50), max(self.height(), 50)
        return w / h

    def show_rgba(self, rgba, layout, keep_view=False):
        self.layout = layout
        self.image.setImage(rgba, autoLevels=False, levels=None if rgba.dtype == np.uint8 else (0, 1))
        self.image.setRect(QRectF(0, 0, rgba.shape[1], rgba.shape[0]))
        if not keep_view:
            self.vb.autoRange(padding=0.01)

    def clear(self):
        self.layout = None
        self.image.clear()
        self.highlight.hide()

    def mark_tile(self, k):
        if self.layout is None or k is None or k >= self.layout.count:
            self.highlight.hide()
            return
        y, x = self.layout.tile_origin(k)
        p = 0.5
        self.highlight.setRect(QRectF(x - p, y - p, self.layout.tile_w + 2 * p, self.layout.tile_h + 2 * p))
        self.highlight.show()

    def locate_scene(self, scene_pos):
        if self.layout is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.vb.mapSceneToView(scene_pos)
        return self.layout.locate(p.y(), p.x())

    def _moved(self, pos):
        hit = self.locate_scene(pos)
        if hit != self._last:
            self._last = hit
            self.hovered.emit(hit)

    def _clicked(self, ev):
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        hit = self.locate_scene(ev.scenePos())
        if hit is not None:
            self.clicked.emit(hit)
