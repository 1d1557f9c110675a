"""One pyqtgraph ImageItem showing a whole atlas, with hover and click
mapped back to (tile, y, x). Fast for thousands of tiles: a single texture."""
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPen
from PyQt6.QtWidgets import QGraphicsItem, QGraphicsRectItem

BG = "#15171b"


class TileLabels(QGraphicsItem):
    """Each tile's channel number in its corner (for sorted grids, where a
    tile's place no longer tells its channel); drawn only for the tiles in
    view and only once they are large enough on screen to read."""
    MIN_TILE_PX = 18

    def __init__(self):
        super().__init__()
        self.layout = None
        self.texts = []
        self.setZValue(8)

    def set_layout(self, layout):
        self.prepareGeometryChange()
        self.layout = layout
        self.texts = [str(c) for c in layout.order[:layout.count]] if layout is not None else []
        self.update()

    def boundingRect(self):
        if self.layout is None:
            return QRectF()
        h, w = self.layout.shape
        return QRectF(0, 0, w, h)

    def paint(self, p, option, widget=None):
        lay = self.layout
        if lay is None or widget is None:
            return
        t = p.transform()
        sx, sy = abs(t.m11()), abs(t.m22())
        if lay.tile_w * sx < self.MIN_TILE_PX or lay.tile_h * sy < 12:
            return
        inv, ok = t.inverted()
        if not ok:
            return
        vis = inv.mapRect(QRectF(widget.rect()))
        sh, sw = lay.tile_h + lay.pad, lay.tile_w + lay.pad
        r0, r1 = max(0, int(vis.top() // sh)), min(lay.rows, int(vis.bottom() // sh) + 1)
        c0, c1 = max(0, int(vis.left() // sw)), min(lay.cols, int(vis.right() // sw) + 1)
        px = int(max(8, min(12, lay.tile_h * sy * 0.3)))
        p.save()
        p.resetTransform()
        f = QFont()
        f.setPixelSize(px)
        p.setFont(f)
        for r in range(r0, r1):
            for c in range(c0, c1):
                k = r * lay.cols + c
                if k >= lay.count:
                    break
                y, x = lay.tile_origin(k)
                at = t.map(QPointF(x, y)) + QPointF(2, px)
                p.setPen(QColor(0, 0, 0, 200))
                p.drawText(at + QPointF(1, 1), self.texts[k])
                p.setPen(QColor("#ffffff"))
                p.drawText(at, self.texts[k])
        p.restore()


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
        self.tile_labels = TileLabels()
        self.tile_labels.hide()
        self.vb.addItem(self.tile_labels)
        self.layout = None
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self._last = None

    def aspect(self):
        w, h = max(self.width(), 50), max(self.height(), 50)
        return w / h

    def show_rgba(self, rgba, layout, keep_view=False, numbers=False):
        """numbers: draw each tile's channel number on it."""
        self.layout = layout
        self.tile_labels.set_layout(layout)
        self.tile_labels.setVisible(numbers)
        self._last = None
        self.image.setImage(rgba, autoLevels=False, levels=None if rgba.dtype == np.uint8 else (0, 1))
        self.image.setRect(QRectF(0, 0, rgba.shape[1], rgba.shape[0]))
        if not keep_view:
            self.vb.autoRange(padding=0.01)

    def clear(self):
        self.layout = None
        self.image.clear()
        self.highlight.hide()
        self.tile_labels.hide()
        self._last = None

    def mark_tile(self, k):
        if self.layout is None or k is None or k >= self.layout.count:
            self.highlight.hide()
            return
        y, x = self.layout.tile_origin(k)
        p = self.layout.pad / 2     # around the tile, on the gaps; none where tiles touch (1x1 maps)
        self.highlight.setRect(QRectF(x - p, y - p, self.layout.tile_w + 2 * p, self.layout.tile_h + 2 * p))
        self.highlight.show()

    def mark_rect(self, y, x, h, w):
        """Frame an atlas region of h x w pixels at (y, x) (e.g. one filter's row of kernels)."""
        self.highlight.setRect(QRectF(x, y, w, h))
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
