"""All channels of one layer as one atlas image, with normalisation, colour
map and sort order; hover reports channel and value, click selects."""
import numpy as np
from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .. import atlas
from .. import style
from .atlas_view import AtlasView


class FeatureGrid(QWidget):
    channelClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = AtlasView(self)
        self.header = style.elastic(QLabel("No layer"))
        self.header.setObjectName("panelTitle")
        self.hover = style.elastic(QLabel(" "))
        self.hover.setObjectName("info")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.header)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.hover)
        self.maps = None
        self.name = ""
        self.norm, self.cmap, self.sort = "channel", "viridis", "index"
        self.order = None
        self.atlas = None
        self.selected = None
        self.view.hovered.connect(self._hovered)
        self.view.clicked.connect(lambda hit: self.channelClicked.emit(hit[0]))
        self._aspect = None
        self._relayout = QTimer(self, singleShot=True, interval=120)
        self._relayout.timeout.connect(self._maybe_relayout)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._relayout.start()

    def _maybe_relayout(self):
        """Re-pack the tiles when the panel's shape changed noticeably."""
        if self.maps is not None and self._aspect and abs(np.log(self.view.aspect() / self._aspect)) > 0.15:
            self.refresh()

    # --------------------------------------------------------------- state
    def set_activation(self, name, act, keep_view=False):
        self.name = name
        self.maps = None if act is None else atlas.as_maps(act)
        self.selected = None
        self.refresh(keep_view=keep_view)

    def set_options(self, norm=None, cmap=None, sort=None):
        resort = sort is not None and sort != self.sort
        self.norm = norm or self.norm
        self.cmap = cmap or self.cmap
        self.sort = sort or self.sort
        self.refresh(keep_view=not resort)

    def channel_count(self):
        return 0 if self.maps is None else self.maps.shape[0]

    def refresh(self, keep_view=False):
        if self.maps is None:
            self.view.clear()
            self.header.setText("No activation")
            return
        c, h, w = self.maps.shape
        self.order = atlas.channel_order(self.maps, self.sort)
        self._aspect = self.view.aspect()
        layout = atlas.make_layout(self.maps.shape, self.order, aspect=self._aspect)
        self.atlas = atlas.build_atlas(self.maps, layout, self.norm)
        rgba = atlas.colorize(self.atlas, style.lut(self.cmap))
        self.view.show_rgba(rgba, layout, keep_view=keep_view)
        norm = "shared" if (self.norm == "shared" or h * w == 1) else "per channel"
        sort = {"index": "", "mean": ", sorted by mean", "max": ", sorted by max"}[self.sort]
        self.header.setText(f"{self.name} — {c} channel{'s' if c != 1 else ''} of {h}×{w} "
                            f"({norm} scale{sort})")
        self.select(self.selected)

    def select(self, channel):
        self.selected = channel
        if channel is None or self.view.layout is None:
            self.view.mark_tile(None)
        else:
            self.view.mark_tile(self.view.layout.tile_of_channel(channel))

    def _hovered(self, hit):
        if hit is None or self.maps is None:
            self.hover.setText(" ")
            return
        ch, y, x = hit
        v = float(self.maps[ch, y, x])
        where = f"  y {y}, x {x}" if self.maps.shape[1] * self.maps.shape[2] > 1 else ""
        self.hover.setText(f"channel {ch}{where}  =  {v:.5g}")
