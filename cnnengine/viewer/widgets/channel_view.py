"""One channel large: colour bar, histogram, min/max/mean, zero fraction.
Clicking a unit asks for its receptive field; a button jumps to the strongest."""
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                             QWidget)

from .. import atlas, style
from .atlas_view import BG
from .elided import ElidedLabel
from .input_view import RF_COLOR, _rect_item, _set_rect


class ChannelView(QWidget):
    unitClicked = pyqtSignal(int, int)      # y, x in the map

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = ElidedLabel("Channel")
        self.title.setObjectName("panelTitle")
        self.strongest = QPushButton("Strongest")
        self.strongest.setToolTip("Select the unit with the largest activation in this channel")
        self.strongest.setEnabled(False)
        self.strongest.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.strongest.clicked.connect(self.jump_to_strongest)

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(BG)
        self.glw.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.vb = self.glw.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.cbar = pg.ColorBarItem(colorMap=style.colormap("viridis"), interactive=False, width=12)
        self.cbar.setImageItem(self.image)
        self.glw.addItem(self.cbar, row=0, col=1)
        self.hist = self.glw.addPlot(row=1, col=0, colspan=2)
        self.hist.setMenuEnabled(False)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.hideButtons()
        self.hist.getAxis("left").setStyle(showValues=False)
        self.hist.getAxis("left").setWidth(8)
        self.hist.setMaximumHeight(95)
        self.hist_curve = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(88, 166, 255, 120),
                                          pen=pg.mkPen("#58a6ff", width=1))
        self.hist.addItem(self.hist_curve)
        self.hist_mark = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffd33d", width=1.5))
        self.hist_mark.hide()
        self.hist.addItem(self.hist_mark)
        self.glw.ci.layout.setRowStretchFactor(0, 4)
        self.glw.ci.layout.setRowStretchFactor(1, 1)

        self.marker = _rect_item(RF_COLOR, 2.0, halo=True)
        self.vb.addItem(self.marker)

        self.stats = style.elastic(QLabel(" "))
        self.stats.setObjectName("info")
        self.stats.setWordWrap(True)
        self.hover = ElidedLabel(" ")
        self.hover.setObjectName("info")
        self.rf = style.elastic(QLabel(" "))    # the clicked unit's receptive field: two lines if need be
        self.rf.setObjectName("info")
        self.rf.setWordWrap(True)
        self.note = QLabel("")              # e.g. the picked channel is not in this layer
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #d29922; font-size: 9pt;")
        self.note.hide()

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(self.strongest)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.note)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.stats)
        lay.addWidget(self.hover)
        lay.addWidget(self.rf)

        self.map = None
        self.channel = None
        self.unit = None
        self.glw.scene().sigMouseClicked.connect(self._clicked)
        self.glw.scene().sigMouseMoved.connect(self._moved)

    def set_cmap(self, name):
        self.cbar.setColorMap(style.colormap(name))

    def clear(self, text="Click a channel in the grid"):
        self.map, self.channel, self.unit = None, None, None
        self.image.clear()
        self.hist_curve.setData([], [])
        self.marker.hide()
        self.hist_mark.hide()
        self.title.setText("Channel")
        for item in (self.vb, self.cbar):
            item.setMaximumHeight(16777215)
            item.setVisible(True)
        self.hist.setMaximumHeight(95)
        self.stats.setText(text)
        self.hover.setText(" ")
        self.rf.setText(" ")
        self.set_note("")
        self.strongest.setEnabled(False)

    def set_note(self, text):
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def set_channel(self, layer, channel, m, name=None, layer_values=None, extra=""):
        """name: how to call the unit ("channel 5", "281 tabby"); layer_values:
        every channel's value of a layer of 1x1 maps (the histogram shows those,
        this one marked); extra: a line added to the statistics."""
        m = np.asarray(m, dtype=np.float32)
        self.map, self.channel, self.unit = m, channel, None
        self.marker.hide()
        self.hover.setText(" ")
        self.rf.setText(" ")
        name = name or f"channel {channel}"
        s = atlas.channel_stats(m)
        lo, hi = s["min"], s["max"]
        if not hi > lo:                     # a constant map: give the bar some range
            pad = max(abs(lo), 1.0) * 1e-3
            lo, hi = lo - pad, hi + pad
        self.image.setImage(m, autoLevels=False)
        self.image.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
        self.cbar.setLevels((lo, hi))
        self.vb.autoRange(padding=0.02)
        extra = f"\n{extra}" if extra else ""
        one = m.size == 1 and layer_values is not None and np.size(layer_values) > 1
        # one value: a flat square says nothing; the layer's histogram (this value marked) takes its place
        for item in (self.vb, self.cbar):
            item.setMaximumHeight(0 if one else 16777215)
            item.setVisible(not one)
        self.hist.setMaximumHeight(16777215 if one else 95)
        if one:
            lv = np.asarray(layer_values, np.float32).reshape(-1)
            counts, edges = np.histogram(lv, bins=int(min(64, max(8, 2 * np.sqrt(lv.size)))))
            self.hist_curve.setData(edges, counts)
            self.hist_mark.setValue(float(m.reshape(-1)[0]))
            self.hist_mark.show()
            rank = int(np.count_nonzero(lv > m.reshape(-1)[0])) + 1
            self.stats.setText(f"value {s['max']:.5g}   rank {rank} of {lv.size}{extra}")
            self.hist.setToolTip(f"All {lv.size} values of the layer; the line marks this one")
        else:
            self.hist_mark.hide()
            self.hist.setToolTip("Values of this channel")
            counts, edges = np.histogram(m, bins=min(64, max(8, int(np.sqrt(m.size)))), range=(lo, hi))
            self.hist_curve.setData(edges, counts)
            self.stats.setText(f"min {s['min']:.4g}   max {s['max']:.4g}   mean {s['mean']:.4g}   "
                               f"std {s['std']:.4g}\nzeros {100 * s['zeros']:.1f}% (sparsity){extra}")
        # the unit and the map's size first: a narrow panel elides the layer name
        self.title.setText(f"{name} ({m.shape[0]}×{m.shape[1]}) · {layer}")
        self.strongest.setEnabled(True)
        self.strongest.setVisible(m.size > 1)      # one unit: nothing to look for

    def mark_unit(self, y, x):
        self.unit = (y, x)
        _set_rect(self.marker, QRectF(x, y, 1, 1))
        self.marker.show()

    def jump_to_strongest(self):
        if self.map is not None and self.map.size > 1:
            y, x = atlas.strongest_unit(self.map)
            self.click_unit(y, x)

    def click_unit(self, y, x):
        self.mark_unit(y, x)
        self.unitClicked.emit(y, x)

    def _unit_at(self, scene_pos):
        if self.map is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.vb.mapSceneToView(scene_pos)
        y, x = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= y < self.map.shape[0] and 0 <= x < self.map.shape[1]:
            return y, x
        return None

    def _clicked(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            hit = self._unit_at(ev.scenePos())
            if hit is not None:
                self.click_unit(*hit)

    def _moved(self, pos):
        hit = self._unit_at(pos)
        if hit is None:
            self.hover.setText(" ")
        else:
            self.hover.setText(f"y {hit[0]}, x {hit[1]}  =  {float(self.map[hit]):.5g}")
