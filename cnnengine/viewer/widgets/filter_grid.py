"""Convolution weights as a grid: the first layer in colour (one RGB tile per
filter), deeper layers one tile per (output, input) kernel, 1x1 convs as the
output x input matrix. Grey / white = 0; colours are symmetric per filter."""
import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .. import atlas, style
from .atlas_view import AtlasView


class FilterGrid(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.header = style.elastic(QLabel("Filters"))
        self.header.setObjectName("panelTitle")
        self.header.setWordWrap(True)       # a long title takes two lines rather than being cut
        self.view = AtlasView(self)
        self.hover = style.elastic(QLabel(" "))
        self.hover.setObjectName("info")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.header)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.hover)
        self.w = None
        self.info = None
        self.selected = None        # the output channel selected in the window: its filter is framed
        self.view.hovered.connect(self._hovered)
        self._args = None
        self._aspect = None
        self._relayout = QTimer(self, singleShot=True, interval=120)
        self._relayout.timeout.connect(self._maybe_relayout)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._relayout.start()

    def _maybe_relayout(self):
        if self.w is not None and self._aspect and abs(np.log(self.view.aspect() / self._aspect)) > 0.15:
            self.set_weights(*self._args)

    def set_weights(self, name, w, note=""):
        self._args = (name, w, note)
        if w is None:
            self.w, self.info = None, None
            self.view.clear()
            self.header.setText(note or "No convolution weights for this layer")
            self.hover.setText(" ")
            return
        self.w = np.asarray(w, dtype=np.float32)
        self._aspect = self.view.aspect()
        img, layout, info = atlas.filter_atlas(self.w, aspect=self._aspect)
        self.info = info
        if info["kind"] == "rgb":
            gaps = np.isnan(img[..., 0])
            rgba = np.empty(img.shape[:2] + (4,), np.uint8)
            rgba[..., :3] = np.clip(np.nan_to_num(img) * 255 + 0.5, 0, 255).astype(np.uint8)
            rgba[..., 3] = 255
            rgba[gaps] = atlas.BACKGROUND
        else:
            rgba = atlas.colorize(img, style.lut("coolwarm"))
        self.view.show_rgba(rgba, layout)
        o, i, kh, kw = self.w.shape if self.w.ndim == 4 else (self.w.shape[0], -1, 1, 1)
        what = {"rgb": "RGB, one tile per filter",
                "matrix": "1×1 kernels as an output × input matrix",
                "depthwise": "depthwise, one tile per filter",
                "kernels": "rows = outputs, columns = inputs"
                           + (f" (first {info['inputs']} of {i})" if info["inputs"] < i else "")}[info["kind"]]
        self.header.setText(f"{name} — weights {o}×{i}×{kh}×{kw}: {what}{note}")
        self.select(self.selected)

    def select(self, channel):
        """Frame the filter that makes output channel `channel` (its tile, its row
        of kernels, or its row of the 1x1 matrix); None or out of range: no frame."""
        self.selected = channel
        lay = self.view.layout
        if self.w is None or lay is None or channel is None or not 0 <= channel < self.w.shape[0]:
            self.view.mark_tile(None)
            return
        kind = self.info["kind"]
        if kind in ("rgb", "depthwise"):
            self.view.mark_tile(lay.tile_of_channel(channel))
        elif kind == "matrix":
            self.view.mark_rect(channel, 0, 1, lay.tile_w)
        else:                         # row `channel` of the (output, input) kernels
            y, _ = lay.tile_origin(channel * lay.cols)
            p = lay.pad / 2
            self.view.mark_rect(y - p, p, lay.tile_h + lay.pad, lay.cols * (lay.tile_w + lay.pad))

    def _hovered(self, hit):
        if hit is None or self.w is None:
            self.hover.setText(" ")
            return
        tile, y, x = hit
        kind = self.info["kind"]
        if kind == "depthwise":
            self.hover.setText(f"filter {tile}  ky {y}, kx {x}  =  {float(self.w[tile, 0, y, x]):.4g}")
        elif kind == "rgb":
            o = tile
            v = self.w[o, :, y, x]
            self.hover.setText(f"filter {o}  ky {y}, kx {x}  =  R {v[0]:.4g}  G {v[1]:.4g}  B {v[2]:.4g}")
        elif kind == "matrix":
            self.hover.setText(f"out {y}  in {x}  =  {float(self.w[y, x].reshape(-1)[0]):.4g}")
        else:
            n_in = self.info["inputs"]
            o, i = divmod(tile, n_in)
            self.hover.setText(f"out {o}  in {i}  ky {y}, kx {x}  =  {float(self.w[o, i, y, x]):.4g}")
