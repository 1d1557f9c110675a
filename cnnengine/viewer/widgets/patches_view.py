"""The Patches tab: for each channel of the selected layer, the image crops
from a folder that excite it most (Deep Visualization Toolbox).

Choosing a folder runs its images through the model in the background
(viewer/patches.py, its own one-thread pool, progress and Cancel), or reads
the cached result. The selected channel's top-9 crops are shown large;
below, a scrollable overview of every channel (its 3x3 mosaic), painted only
where it is visible; clicking a mosaic selects that channel in the window.
"""
import os
import threading
import time

import numpy as np
from PyQt6.QtCore import QObject, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                             QSplitter, QVBoxLayout, QWidget)

from .. import atlas, patches, style
from ..worker import Worker

BG = QColor("#15171b")
FRAME = QColor("#2a2e35")
TEXT = QColor("#9aa4b2")
SELECTED = QColor("#58a6ff")
THUMB = 22            # px of one crop in the overview's 3x3 mosaics
CAPTION = 15          # px under each mosaic for its text (two lines of it under a large crop)


def fit(crop, size):
    """crop (h, w, 3) uint8 scaled to fit a size x size square (aspect kept, centred on the background)."""
    from PIL import Image

    h, w = crop.shape[:2]
    out = np.empty((size, size, 3), np.uint8)
    out[:] = (24, 26, 30)
    if h == 0 or w == 0:
        return out
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    im = Image.fromarray(np.ascontiguousarray(crop)).resize((nw, nh), Image.BILINEAR if s < 1 else Image.NEAREST)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = np.asarray(im)
    return out


def qimage(rgb):
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class _Relay(QObject):
    """Progress from the worker thread to the UI thread (queued)."""
    progressed = pyqtSignal(int, int, int)     # job number, images done, total


class TopCrops(QWidget):
    """The selected channel's crops, large, in a 3x3 grid with value and file under each."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items = []        # [(QImage, caption)]
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_items(self, items):
        self.items = [(qimage(c), text) for c, text in items]
        self.update()

    def cell_rects(self):
        rows = max(1, -(-len(self.items) // 3))      # fewer than 9 crops (a small folder): larger cells
        side = max(20, min((self.width() - 8) // 3, (self.height() - 8) // rows - 2 * CAPTION - 4))
        x0 = (self.width() - 3 * side - 8) // 2
        return [QRect(x0 + (k % 3) * (side + 4), 2 + (k // 3) * (side + 2 * CAPTION + 4), side, side) for k in range(9)]

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), BG)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        f = QFont(p.font())
        f.setPointSizeF(8)
        p.setFont(f)
        for rect, (img, text) in zip(self.cell_rects(), self.items):
            s = min(rect.width() / img.width(), rect.height() / img.height())
            w, h = img.width() * s, img.height() * s
            target = QRectF(rect.x() + (rect.width() - w) / 2, rect.y() + (rect.height() - h) / 2, w, h)
            p.drawImage(target, img)
            p.setPen(FRAME)
            p.drawRect(rect.adjusted(0, 0, -1, -1))
            p.setPen(TEXT)
            for i, line in enumerate(text.split("\n")[:2]):
                p.drawText(QRect(rect.x(), rect.bottom() + 1 + i * CAPTION, rect.width(), CAPTION),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           p.fontMetrics().elidedText(line, Qt.TextElideMode.ElideMiddle, rect.width()))
        p.end()


class Overview(QWidget):
    """Every channel's 3x3 mosaic, in rows as many as fit the width; only
    the visible ones are built (and kept) as images."""
    channelClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.count = 0
        self.mosaic = None         # channel -> (3*THUMB, 3*THUMB, 3) uint8
        self.selected = None
        self._images = {}
        self.cell = QSize(3 * THUMB + 8, 3 * THUMB + CAPTION + 6)

    def set_channels(self, count, mosaic):
        self.count, self.mosaic, self._images = count, mosaic, {}
        self._relayout()
        self.update()

    def select(self, ch):
        self.selected = ch
        self.update()

    def cols(self):
        return max(1, self.width() // self.cell.width())

    def rect_of(self, ch):
        r, c = divmod(ch, self.cols())
        return QRect(c * self.cell.width(), r * self.cell.height(), self.cell.width(), self.cell.height())

    def _relayout(self):
        rows = -(-self.count // self.cols()) if self.count else 0
        self.setMinimumHeight(rows * self.cell.height())

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._relayout()

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(event.rect(), BG)
        if not self.count:
            p.end()
            return
        f = QFont(p.font())
        f.setPointSizeF(7.5)
        p.setFont(f)
        cols, ch_w, ch_h = self.cols(), self.cell.width(), self.cell.height()
        r0, r1 = event.rect().top() // ch_h, event.rect().bottom() // ch_h
        for r in range(r0, r1 + 1):
            for c in range(cols):
                k = r * cols + c
                if k >= self.count:
                    break
                if k not in self._images:
                    self._images[k] = qimage(self.mosaic(k))
                rect = self.rect_of(k)
                p.drawImage(rect.x() + 4, rect.y() + 2, self._images[k])
                pen = QPen(SELECTED if k == self.selected else FRAME)
                pen.setWidth(2 if k == self.selected else 1)
                p.setPen(pen)
                p.drawRect(rect.x() + 3, rect.y() + 1, 3 * THUMB + 1, 3 * THUMB + 1)
                p.setPen(SELECTED if k == self.selected else TEXT)
                p.drawText(QRect(rect.x(), rect.y() + 3 * THUMB + 4, ch_w, CAPTION), Qt.AlignmentFlag.AlignCenter,
                           f"ch {k}")
        p.end()

    def channel_at(self, pos):
        c, r = pos.x() // self.cell.width(), pos.y() // self.cell.height()
        k = r * self.cols() + c
        return k if c < self.cols() and 0 <= k < self.count else None

    def mousePressEvent(self, event):
        k = self.channel_at(event.position().toPoint())
        if k is not None and event.button() == Qt.MouseButton.LeftButton:
            self.channelClicked.emit(k)


class PatchesView(QWidget):
    """channelPicked(c): a mosaic was clicked. finished(PatchSet or None): a
    run (or cache read) is over, or failed / was cancelled (None)."""
    channelPicked = pyqtSignal(int)
    finished = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bundle = None
        self.folder = None
        self.result = None         # the PatchSet on screen
        self.rf = None             # patches.ReceptiveField of the model (None: the summary's fields)
        self.layer = self.channel = None
        self.seconds = None
        self._job = 0
        self._cancel = None
        self.runner = Worker(self)
        self.relay = _Relay()
        self.relay.progressed.connect(self._progress)
        self._build()

    def _build(self):
        self.title = style.elastic(QLabel("Top activating patches"))
        self.title.setObjectName("panelTitle")
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Choose a folder of images to find what excites each channel")
        self.folder_button.clicked.connect(self.ask_folder)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.folder_label = style.elastic(QLabel("no folder"))
        self.folder_label.setObjectName("info")
        self.message = style.elastic(QLabel("Choose a folder of images: each channel's top-9 crops (the receptive "
                                            "field around its strongest unit) appear here."))
        self.message.setObjectName("info")
        self.message.setWordWrap(True)
        self.top = TopCrops()
        self.overview = Overview()
        self.overview.channelClicked.connect(self.channelPicked)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.overview)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.overview_title = style.elastic(QLabel("All channels"))
        self.overview_title.setObjectName("panelTitle")
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(2)
        ll.addWidget(self.overview_title)
        ll.addWidget(self.scroll, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.top)
        split.addWidget(lower)
        split.setChildrenCollapsible(False)
        split.setSizes([520, 300])
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.folder_button, self.run_button, self.cancel_button):
            row.addWidget(w)
        row.addWidget(self.bar, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.title)
        lay.addLayout(row)
        lay.addWidget(self.folder_label)
        lay.addWidget(self.message)
        lay.addWidget(split, 1)

    # ============================================================ inputs
    def set_model(self, bundle):
        """A new model: its patches come once a layer is selected (set_selection)."""
        self.cancel()
        self.bundle, self.result, self.rf, self.layer = bundle, None, None, None
        self._show()

    def set_folder(self, folder, run=True):
        self.folder = str(folder)
        self.folder_label.setText(f"folder: {self.folder}")
        if run and self.bundle is not None and self.layer is not None:
            self.start()

    def ask_folder(self):
        folder = QFileDialog.getExistingDirectory(self, "Folder of images", self.folder or "")
        if folder:
            self.set_folder(folder)

    def set_selection(self, layer, channel):
        self.layer, self.channel = layer, channel
        if self._needs_run() and self.is_idle() and (self.result is None or self.isVisible()):
            self.start()     # the first layer of a model, or one a too-large model did not keep
        self._show()

    def showEvent(self, event):
        super().showEvent(event)
        if self._needs_run() and self.is_idle():
            self.start()

    def prepare(self):
        """`view --tab patches --screenshot`: start the run the selection needs, if not already under way."""
        if self._needs_run() and self.is_idle():
            self.start()

    def _needs_run(self):
        return self.bundle is not None and self.folder is not None and self.layer is not None and \
            (self.result is None or self.layer not in self.result.layers)

    # =============================================================== run
    def start(self):
        """Read the cache or collect the folder for the selected layer (all layers when they fit)."""
        if self.bundle is None or self.folder is None:
            self.message.setText("Choose a folder of images first (Folder…).")
            return
        self.cancel()
        layer = self.layer or self.bundle.summary[0].name
        layers = patches.patch_layers(self.bundle, layer)
        self._job += 1
        number, cancel, bundle, folder = self._job, threading.Event(), self.bundle, self.folder
        self._cancel = cancel
        relay = self.relay

        def job():
            t0 = time.perf_counter()
            ps = patches.find_or_collect(bundle.model, bundle.source, folder, bundle.preprocess, layers,
                                         progress=lambda d, t: relay.progressed.emit(number, d, t), cancel=cancel)
            return ps, _receptive_field(bundle, ps), time.perf_counter() - t0

        self.bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.message.setText(f"Reading {os.path.basename(folder)}…")
        self.runner.submit("patches", f"Patches from {folder}…", job,
                           on_done=lambda r, s, b=bundle: self._done(b, *r),
                           on_error=lambda m, tb: self._failed(m))

    def cancel(self):
        if self._cancel is not None:
            self._cancel.set()

    def is_idle(self):
        return self.runner.is_idle()

    def shutdown(self):
        self.cancel()
        self.runner.wait(10000)

    def _progress(self, number, done, total):
        if number == self._job:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            self.message.setText(f"Running the model on {done} of {total} images…")

    def _done(self, bundle, ps, rf, seconds):
        self._cancel = None
        self.cancel_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        if bundle is not self.bundle:
            return
        self.result, self.rf, self.seconds = ps, rf, seconds
        how = f"read from the cache in {seconds:.2f} s" if ps.from_cache else f"collected in {seconds:.1f} s"
        skipped = f" · {len(ps.skipped)} unreadable file(s) skipped" if ps.skipped else ""
        self.folder_label.setText(f"folder: {self.folder} · {len(ps.files)} images, {how}{skipped}")
        self._show()
        self.finished.emit(ps)

    def _failed(self, message):
        self._cancel = None
        self.cancel_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        cancelled = message.startswith("Cancelled: ")
        self.message.setText(message[len("Cancelled: "):].capitalize() + " (nothing cached)" if cancelled
                             else f"Error: {message}")
        self.finished.emit(None)

    # ============================================================== show
    def _show(self):
        ps, layer = self.result, self.layer
        if ps is None or layer is None:
            self.top.set_items([])
            self.overview.set_channels(0, None)
            return
        top = ps.layers.get(layer)
        if top is None:
            self.top.set_items([])
            self.overview.set_channels(0, None)
            self.message.setText(f"{layer} was not collected (this model is too large to keep every layer): "
                                 f"press Run for it")
            return
        ch = min(self.channel or 0, top.channels - 1)
        entries = top.entries(ch)
        value = patches.layer_value(self.bundle.model, layer) if self.rf is not None else None
        items = []
        for rank, e in enumerate(entries):
            crop, _ = self._crop(value, e)
            items.append((crop, f"#{rank + 1}  {e[0]:.4g}\n{os.path.basename(ps.files[e[1]])} @{e[2]},{e[3]}"))
        self.top.set_items(items)
        size = self._crop(value, entries[0])[1] if entries else None
        rf = f", up to {size[2] - size[0]}×{size[3] - size[1]} px" if size else ""
        if size is not None and (size[0], size[1], size[2], size[3]) == (0, 0) + tuple(ps.displays.shape[1:3]):
            rf = ": here the whole image, which the field covers"
        self.title.setText(f"Top activating patches — {layer} · channel {ch}")
        self.message.setText(f"The {len(entries)} of {len(ps.files)} images whose maximum of channel {ch} is largest; "
                             f"each crop is the receptive field of that maximum{rf} (under it: value, file @unit y,x)")
        self.overview_title.setText(f"All {top.channels} channels (click to select)")
        if self.overview.count != top.channels or getattr(self, "_overview_of", None) != (id(ps), layer):
            self._overview_of = (id(ps), layer)
            self.overview.set_channels(top.channels, lambda c: self._mosaic(value, top, c))
        self.overview.select(ch)
        self.scroll.ensureVisible(*self._centre(ch), 10, self.overview.cell.height())

    def _centre(self, ch):
        r = self.overview.rect_of(ch)
        return r.center().x(), r.center().y()

    def _crop(self, value, entry):
        ps = self.result
        if self.rf is not None:
            return ps.crop(self.rf, value, entry)
        layer = self.bundle.summary[self.bundle.index[self.layer]]
        t, l, b, r = (int(v) for v in atlas.receptive_box(layer.receptive_field, entry[2], entry[3],
                                                          ps.displays.shape[1:3]))
        return ps.displays[entry[1], t:b, l:r], (t, l, b, r)

    def _mosaic(self, value, top, ch):
        out = np.empty((3 * THUMB, 3 * THUMB, 3), np.uint8)
        out[:] = (24, 26, 30)
        for k, e in enumerate(top.entries(ch)):
            r, c = divmod(k, 3)
            out[r * THUMB:(r + 1) * THUMB, c * THUMB:(c + 1) * THUMB] = fit(self._crop(value, e)[0], THUMB)
        return out


def _receptive_field(bundle, ps):
    """The model's ReceptiveField at the input size of the images, or None
    when the ops' shape rules cannot be followed (the summary's fields are used)."""
    try:
        shape = bundle.model.inputs[0].shape
        c = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
        return patches.ReceptiveField(bundle.model.graph, (1, c) + tuple(ps.displays.shape[1:3]))
    except Exception:   # an op without a shape rule here: fall back, never fail the tab
        return None
