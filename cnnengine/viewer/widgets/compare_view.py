"""Two images side by side: both inputs, both activations of the selected
layer and channel on one shared colour scale, their difference (B − A) on a
signed colour map with a symmetric range, and both top-k predictions.
Layers without spatial extent (pooled vectors, logits) show all their
channels as one grid, where a difference per unit is what one compares."""
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .. import atlas, style
from .atlas_view import BG
from .predictions import Predictions


def compare_maps(act_a, act_b, channel):
    """(a, b, b - a, what) for one channel of two activations of the same layer;
    vector-like layers (1x1 maps) give all channels as a near-square grid, NaN-padded."""
    ma, mb = atlas.as_maps(act_a), atlas.as_maps(act_b)
    if ma.shape != mb.shape:
        raise ValueError(f"the two activations differ in shape: {ma.shape} vs {mb.shape}")
    c, h, w = ma.shape
    if h * w == 1:
        cols = int(np.ceil(np.sqrt(c)))
        rows = int(np.ceil(c / cols))
        grid = np.full((2, rows * cols), np.nan, np.float32)
        grid[0, :c], grid[1, :c] = ma[:, 0, 0], mb[:, 0, 0]
        a, b = grid[0].reshape(rows, cols), grid[1].reshape(rows, cols)
        what = f"all {c} channels (unit k at row k // {cols}, column k % {cols})"
    else:
        ch = min(max(int(channel or 0), 0), c - 1)
        a, b = ma[ch].astype(np.float32), mb[ch].astype(np.float32)
        what = f"channel {ch} ({h}×{w})"
    return a, b, b - a, what


class _Panel:
    """A titled image in a GraphicsLayoutWidget cell."""

    def __init__(self, glw, row, col, title, colspan=1):
        self.label = glw.addLabel(title, row=row, col=col, colspan=colspan, color="#9aa4b2", size="9pt")
        self.vb = glw.addViewBox(row=row + 1, col=col, colspan=colspan, lockAspect=True, invertY=True,
                                 enableMenu=False)
        self.vb.setMouseEnabled(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)

    def show(self, img, levels=None, lut=None):
        if img is None:
            self.image.clear()
            return
        self.image.setImage(img, autoLevels=levels is None, levels=levels, lut=lut)
        self.vb.autoRange(padding=0.02)


class CompareView(QWidget):
    """set_inputs(display_a, display_b, name_a, name_b); set_top(top_a, top_b);
    set_maps(layer, channel, act_a, act_b); openRequested() asks for a second image."""
    openRequested = pyqtSignal()
    sampleRequested = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.header = style.elastic(QLabel("Compare two images"))
        self.header.setObjectName("panelTitle")
        self.open_button = QPushButton("Second image…")
        self.open_button.setToolTip("Open the image to compare with (File ▸ Open second image, Ctrl+Shift+I)")
        self.open_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.open_button.clicked.connect(self.openRequested)
        self.sample_button = QPushButton("")
        self.sample_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.sample_button.hide()
        self.sample_button.clicked.connect(lambda: self.sampleRequested.emit(self.sample_button.property("path")))

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(BG)
        self.glw.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.in_a = _Panel(self.glw, 0, 0, "image A")
        self.in_b = _Panel(self.glw, 0, 1, "image B")
        self.map_a = _Panel(self.glw, 2, 0, "A")
        self.map_b = _Panel(self.glw, 2, 1, "B")
        self.cbar = pg.ColorBarItem(colorMap=style.colormap("viridis"), interactive=False, width=10)
        self.cbar.setImageItem([self.map_a.image, self.map_b.image])
        self.glw.addItem(self.cbar, row=3, col=2)
        self.diff = _Panel(self.glw, 4, 0, "B − A", colspan=2)
        self.dbar = pg.ColorBarItem(colorMap=style.colormap("coolwarm"), interactive=False, width=10)
        self.dbar.setImageItem(self.diff.image)
        self.glw.addItem(self.dbar, row=5, col=2)
        for r, s in ((1, 2), (3, 3), (5, 4)):
            self.glw.ci.layout.setRowStretchFactor(r, s)

        self.stats = style.elastic(QLabel(" "))
        self.stats.setObjectName("info")
        self.stats.setWordWrap(True)
        self.top_a, self.top_b = Predictions(k=5), Predictions(k=5)
        self.top_a.clear("A: no image")
        self.top_b.clear("B: open a second image")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.header, 1)
        bar.addWidget(self.sample_button)
        bar.addWidget(self.open_button)
        preds = QGridLayout()
        preds.setContentsMargins(0, 0, 0, 0)
        preds.addWidget(self.top_a, 0, 0)
        preds.addWidget(self.top_b, 0, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        lay.addLayout(bar)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.stats)
        lay.addLayout(preds)
        self.a = self.b = self.d = None
        self.cmap = "viridis"
        self.key = None

    def offer_sample(self, path):
        """A bundled photo to compare with when no second image is open (None hides the button)."""
        import os
        self.sample_button.setVisible(bool(path))
        if path:
            self.sample_button.setText(f"Use {os.path.basename(path)}")
            self.sample_button.setProperty("path", path)

    def set_cmap(self, name):
        self.cmap = name
        self.cbar.setColorMap(style.colormap(name))
        self._draw()

    def set_inputs(self, display_a, display_b, name_a="", name_b=""):
        self.in_a.label.setText(f"A: {name_a}" if name_a else "image A")
        self.in_b.label.setText(f"B: {name_b}" if name_b else "image B — open a second image")
        self.in_a.show(display_a, levels=(0, 255))
        self.in_b.show(display_b, levels=(0, 255))

    def set_top(self, top_a, top_b, name_a="", name_b=""):
        for w, top, name, none in ((self.top_a, top_a, name_a, "A: no image"),
                                   (self.top_b, top_b, name_b, "B: open a second image")):
            w.set_top(top, name) if top is not None else w.clear(none)

    def clear_maps(self, message):
        self.a = self.b = self.d = None
        self.key = None
        for p in (self.map_a, self.map_b, self.diff):
            p.show(None)
        self.stats.setText(message)

    def set_maps(self, layer, channel, act_a, act_b):
        self.a, self.b, self.d, what = compare_maps(act_a, act_b, channel)
        self.key = (layer, channel)
        self.header.setText(f"{what} · {layer}")      # the channel first: the panel is often narrow
        self._draw()
        d = self.d
        if np.all(np.isnan(d)):
            return
        k = np.nanargmax(np.abs(d))
        y, x = np.unravel_index(k, d.shape)
        self.stats.setText(f"mean |B−A| {np.nanmean(np.abs(d)):.4g} · max |B−A| {abs(d[y, x]):.4g} at "
                           f"({y}, {x}) · mean A {np.nanmean(self.a):.4g}, B {np.nanmean(self.b):.4g}")

    def _draw(self):
        if self.a is None:
            return
        lo = float(np.nanmin([np.nanmin(self.a), np.nanmin(self.b)]))
        hi = float(np.nanmax([np.nanmax(self.a), np.nanmax(self.b)]))
        hi = hi if hi > lo else lo + 1e-6
        m = float(np.nanmax(np.abs(self.d))) or 1e-6     # symmetric: white is "no change"
        lut = style.lut(self.cmap)
        self.map_a.show(self.a, (lo, hi), lut)
        self.map_b.show(self.b, (lo, hi), lut)
        self.diff.show(self.d, (-m, m), style.lut("coolwarm"))
        self.cbar.setLevels((lo, hi))
        self.dbar.setLevels((-m, m))
        self.map_a.label.setText("A")
        self.map_b.label.setText("B (same scale as A)")
        self.diff.label.setText(f"B − A  (±{m:.3g})")
