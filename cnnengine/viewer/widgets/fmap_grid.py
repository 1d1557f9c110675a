"""All channels of one layer as one atlas image, with normalisation, colour
map and sort order; hover reports channel and value, click selects. A
class-shaped layer (one 1x1 value per class label) is a sorted bar chart of
named classes instead."""
import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from .. import atlas
from .. import style
from .atlas_view import AtlasView
from .class_chart import ClassChart, class_name, is_class_shaped
from .elided import ElidedLabel

FUSED_TIP = ("Show a Conv row's output after the BatchNorm and activation that follow it and that the engine "
             "fuses into it:\nthe block's real output. Strongest unit and sparsity then use those values.")


class FeatureGrid(QWidget):
    """channelClicked(c); fusedToggled(bool) from the "after BN + activation" box."""
    channelClicked = pyqtSignal(int)
    fusedToggled = pyqtSignal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = AtlasView(self)
        self.chart = ClassChart(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.chart)
        self.header = ElidedLabel("No layer")
        self.header.setObjectName("panelTitle")
        self.hover = ElidedLabel(" ")
        self.hover.setObjectName("info")

        # display options (here rather than in the toolbar, which must fit an 800 px window)
        self.cmap_box = self._combo(style.COLORMAPS, "Colour map of the feature maps and the channel view")
        self.norm_box = self._combo(["per channel", "shared"], "Scale each channel to its own range, "
                                                               "or all channels to the layer's range")
        self.sort_box = self._combo(["index", "mean", "max"], "Order of the tiles (sorted tiles carry "
                                                              "their channel numbers)")
        self.fused_box = QCheckBox("after BN + act")
        self.fused_box.setToolTip(FUSED_TIP)
        self.fused_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.fused_box.toggled.connect(self.fusedToggled)
        opts = QHBoxLayout()
        opts.setContentsMargins(0, 0, 0, 0)
        opts.setSpacing(4)
        for text, box in ((None, self.cmap_box), ("Scale", self.norm_box), ("Sort", self.sort_box)):
            if text:        # a colour map names itself
                lab = QLabel(text)
                lab.setStyleSheet("color: #9aa4b2;")
                opts.addWidget(lab)
            opts.addWidget(box)
            opts.addSpacing(4)
        opts.addStretch(1)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.header, 1)
        head.addWidget(self.fused_box)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(opts)
        lay.addLayout(head)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.hover)
        self.maps = None
        self.name = ""
        self.note = ""
        self.labels = None
        self.norm, self.cmap, self.sort = "channel", "viridis", "index"
        self.order = None
        self.atlas = None
        self.selected = None
        self.view.hovered.connect(self._hovered)
        self.view.clicked.connect(lambda hit: self.channelClicked.emit(hit[0]))
        self.chart.hovered.connect(lambda k: self._hovered(None if k is None else (k, 0, 0)))
        self.chart.clicked.connect(self.channelClicked)
        self._aspect = None
        self._relayout = QTimer(self, singleShot=True, interval=120)
        self._relayout.timeout.connect(self._maybe_relayout)

    @staticmethod
    def _combo(items, tip):
        box = QComboBox()
        box.addItems(items)
        box.setToolTip(tip)
        box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return box

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._relayout.start()

    def _maybe_relayout(self):
        """Re-pack the tiles when the panel's shape changed noticeably."""
        if self.maps is not None and not self.is_chart() and self._aspect and \
                abs(np.log(self.view.aspect() / self._aspect)) > 0.15:
            self.refresh()

    # --------------------------------------------------------------- state
    def set_activation(self, name, act, keep_view=False, labels=None, note=""):
        """labels: the model's class labels (a layer of one 1x1 value per label
        becomes a bar chart); note: appended to the title (e.g. what is shown)."""
        self.name = name
        self.note = note
        self.labels = labels
        self.maps = None if act is None else atlas.as_maps(act)
        self.selected = None
        self.hover.setText(" ")         # the readout belonged to the previous layer
        self.refresh(keep_view=keep_view)

    def set_options(self, norm=None, cmap=None, sort=None):
        resort = sort is not None and sort != self.sort
        self.norm = norm or self.norm
        self.cmap = cmap or self.cmap
        self.sort = sort or self.sort
        self.refresh(keep_view=not resort)

    def channel_count(self):
        return 0 if self.maps is None else self.maps.shape[0]

    def is_chart(self):
        return is_class_shaped(self.maps, self.labels)

    def refresh(self, keep_view=False):
        if self.maps is None:
            self.view.clear()
            self.chart.set_values([], None)
            self.stack.setCurrentWidget(self.view)
            self.header.setText(f"{self.name} — no activation" if self.name else "No activation")
            return
        c, h, w = self.maps.shape
        note = f" · {self.note}" if self.note else ""
        if self.is_chart():
            self.stack.setCurrentWidget(self.chart)
            self.chart.set_values(self.maps[:, 0, 0], self.labels)
            self.header.setText(f"{self.name} — {c} classes, largest first{note}")
            self.select(self.selected)
            return
        self.stack.setCurrentWidget(self.view)
        self.order = atlas.channel_order(self.maps, self.sort)
        self._aspect = self.view.aspect()
        layout = atlas.make_layout(self.maps.shape, self.order, aspect=self._aspect)
        self.atlas = atlas.build_atlas(self.maps, layout, self.norm)
        rgba = atlas.colorize(self.atlas, style.lut(self.cmap))
        self.view.show_rgba(rgba, layout, keep_view=keep_view, numbers=self.sort != "index")
        norm = "shared" if (self.norm == "shared" or h * w == 1) else "per channel"
        sort = {"index": "", "mean": ", sorted by mean", "max": ", sorted by max"}[self.sort]
        self.header.setText(f"{self.name} — {c} channel{'s' if c != 1 else ''} of {h}×{w} "
                            f"({norm} scale{sort}){note}")
        self.select(self.selected)

    def select(self, channel):
        self.selected = channel
        if self.is_chart():
            self.chart.select(channel)
        elif channel is None or self.view.layout is None:
            self.view.mark_tile(None)
        else:
            self.view.mark_tile(self.view.layout.tile_of_channel(channel))

    def unit_name(self, ch):
        """"281 tabby" on a class-shaped layer, "channel 5" elsewhere."""
        return class_name(self.labels, ch) if self.is_chart() else f"channel {ch}"

    def _hovered(self, hit):
        if hit is None or self.maps is None:
            self.hover.setText(" ")
            return
        ch, y, x = hit
        v = float(self.maps[ch, y, x])
        where = f"  y {y}, x {x}" if self.maps.shape[1] * self.maps.shape[2] > 1 else ""
        self.hover.setText(f"{self.unit_name(ch)}{where}  =  {v:.5g}")
