"""The Occlusion tab: Zeiler & Fergus's occlusion experiment, interactive.

Run computes ce.occlusion in the background (its own one-thread pool, so a
long map never holds up the feature-map captures of the main worker); each
batch's progress callback sends a copy of the partial heatmap to the UI
thread, which draws it over the model input as it fills in, row by row.

A patch can also be dragged over the image: every move asks for one
occluded inference through the incremental engine (viewer/probe.py), and
moves that arrive while one is running only replace the pending position,
so probes never queue up behind a fast mouse. Each probe shows the occluded
input, its top-k, and for the layer selected in the main window the
occluded-minus-clean map of the selected channel with the region the patch
can reach outlined.
"""
import threading
import time

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QRectF, Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSlider,
                             QSpinBox, QSplitter, QVBoxLayout, QWidget)

from .. import atlas, session, style
from ..probe import Probe, parse_fill, patch_box
from ..worker import Worker
from .atlas_view import BG
from .input_view import _rect_item, _set_rect
from .predictions import Predictions

TARGETS = ("top-1 class", "class", "selected channel · sum", "selected channel · max")
MODES = ("incremental", "naive", "approximate")
CMAP = "coolwarm"          # diverging: red where the target drops, blue where it rises
PROGRESS_EVERY = 0.04      # seconds between partial maps sent to the UI (the last always goes)
PATCH_COLOR = "#ffd33d"


class _Relay(QObject):
    """Carries partial heatmaps from the worker thread to the UI thread (a
    queued connection: the receiver lives in the UI thread)."""
    progressed = pyqtSignal(int, int, int, object)      # run number, done, total, heatmap copy


class OcclusionView(QWidget):
    """finished(result) fires when a run's map is on screen (whole or cut
    short by Cancel); probed(ProbeResult) when a probe's results are."""
    finished = pyqtSignal(object)
    probed = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = self.x = self.display = self.labels = self.preprocess = None
        self.layer = self.channel = None        # the selection in the main window
        self.result = None                      # the last finished OcclusionResult
        self.heat = None                        # the map on screen (NaN: not computed yet)
        self.geometry = None                    # (patch, stride) of the map on screen
        self.baseline = None
        self.probe_result = None
        self.first_rows_s = None                # seconds from Run to the first whole row on screen
        self.probe_log = []                     # (time shown, probe seconds) of the last probes shown
        self.probes_shown = 0
        self._run_no = 0
        self._run_t0 = 0.0
        self._cancel = None
        self._running = False
        self._probe = None
        self._gen = 0                           # bumped with each new model/image: stale probes are dropped
        self._probing = False
        self._want = None                       # the newest patch box not yet probed
        self._occ_shape = None
        self.batch = None                       # positions per batch (None: ce.occlusion's default)
        self.runner = Worker(self)              # heatmaps
        self.prober = Worker(self)              # probes, apart so a drag works while a map runs
        self.relay = _Relay()
        self.relay.progressed.connect(self._progress)
        self._build()

    # ================================================================ UI
    def _build(self):
        self.title = style.elastic(QLabel("Occlusion"))
        self.title.setObjectName("panelTitle")
        self.patch = self._spin(1, 512, 16, "Patch side in input pixels")
        self.stride = self._spin(1, 512, 8, "Step between patch positions")
        self.fill = QComboBox()
        self.fill.setEditable(True)
        self.fill.addItems(["mean", "zero", "blur"])
        self.fill.setToolTip("What covers the patch: each channel's mean, zero, the image blurred, or a number")
        self.target = QComboBox()
        self.target.addItems(TARGETS)
        self.target.setToolTip("The class whose probability drop is mapped (default the top-1), or the "
                               "channel selected in the main window as a unit (its summed or maximum activation)")
        self.cls = self._spin(0, 100000, 0, "Class index")
        self.cls.setEnabled(False)
        self.target.currentIndexChanged.connect(lambda i: self.cls.setEnabled(TARGETS[i] == "class"))
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip("naive: every occluded image whole; incremental: exact, each layer only where the "
                             "patch reaches; approximate: exact for a few layers, first order past them, "
                             "its error against naive measured on random positions")
        for box in (self.fill, self.target, self.mode):
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        # narrow enough for a 1,000 px window (the full text is in the open list)
        self.target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target.setMinimumContentsLength(10)
        self.cls.setMaximumWidth(76)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setFixedWidth(110)
        self.opacity.setToolTip("Heatmap opacity over the input")
        self.opacity.valueChanged.connect(lambda _: self._draw_heat())
        self.patch.valueChanged.connect(lambda _: self._patch_resized())

        # the heatmap over the input, its colour bar, and the occluded input
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(BG)
        self.glw.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label_heat = self.glw.addLabel("heatmap: drop in the target", row=0, col=0, color="#9aa4b2",
                                            size="9pt")
        self.label_occ = self.glw.addLabel("occluded input (drag the patch, or click a cell)", row=0, col=2,
                                           color="#9aa4b2", size="9pt")
        self.vb_heat = self.glw.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.vb_heat.setMouseEnabled(False, False)      # a drag moves the patch, not the view
        self.cbar = pg.ColorBarItem(values=(-1, 1), colorMap=style.colormap(CMAP), interactive=False, width=12)
        self.glw.addItem(self.cbar, row=1, col=1)
        self.vb_occ = self.glw.addViewBox(row=1, col=2, lockAspect=True, invertY=True, enableMenu=False)
        self.glw.ci.layout.setColumnStretchFactor(0, 3)      # the map larger than the occluded copy,
        self.glw.ci.layout.setColumnStretchFactor(2, 2)      # the colour bar only as wide as it needs
        self.img_in = pg.ImageItem(axisOrder="row-major")
        self.img_heat = pg.ImageItem(axisOrder="row-major")
        self.img_heat.setZValue(5)
        self.img_occ = pg.ImageItem(axisOrder="row-major")
        self.vb_heat.addItem(self.img_in)
        self.vb_heat.addItem(self.img_heat)
        self.vb_occ.addItem(self.img_occ)
        self.cell = _rect_item("#ffffff", 1.0, dashed=True)     # the hovered cell's patch
        self.vb_heat.addItem(self.cell)
        self.occ_box = _rect_item(PATCH_COLOR, 1.5, halo=True)
        self.vb_occ.addItem(self.occ_box)
        self.roi = None
        self.glw.scene().sigMouseMoved.connect(self._hovered)
        self.glw.scene().sigMouseClicked.connect(self._clicked)

        # the selected layer: occluded minus clean, the reachable region outlined
        self.glw_diff = pg.GraphicsLayoutWidget()
        self.glw_diff.setBackground(BG)
        self.glw_diff.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label_diff = self.glw_diff.addLabel("selected layer: occluded − clean", row=0, col=0,
                                                 color="#9aa4b2", size="9pt", colspan=2)
        self.vb_diff = self.glw_diff.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.img_diff = pg.ImageItem(axisOrder="row-major")
        self.vb_diff.addItem(self.img_diff)
        self.cbar_diff = pg.ColorBarItem(values=(-1, 1), colorMap=style.colormap(CMAP), interactive=False,
                                         width=12)
        self.cbar_diff.setImageItem(self.img_diff)
        self.glw_diff.addItem(self.cbar_diff, row=1, col=1)
        self.region = _rect_item(PATCH_COLOR, 1.5, halo=True)
        self.vb_diff.addItem(self.region)

        self.predictions = Predictions(k=5)
        self.predictions.clear("drag the patch")
        self.hover = style.elastic(QLabel(" "))
        self.hover.setObjectName("info")
        self.message = style.elastic(QLabel("Run maps how much the target drops as the patch covers each place."))
        self.message.setObjectName("info")
        self.message.setWordWrap(True)
        self.probe_info = style.elastic(QLabel(" "))
        self.probe_info.setObjectName("info")
        self.probe_info.setWordWrap(True)

        # the settings on two lines, so the tab fits a 1,000 px window beside the other panels
        row1 = QVBoxLayout()
        row1.setContentsMargins(0, 0, 0, 0)
        row1.setSpacing(2)
        for items in ((("Patch", self.patch), ("Stride", self.stride), ("Fill", self.fill)),
                      (("Target", self.target), (None, self.cls), ("Mode", self.mode))):
            row1.addLayout(style.labelled_line(items))
        row2 = QHBoxLayout()
        row2.setContentsMargins(0, 0, 0, 0)
        row2.addWidget(self.run_button)
        row2.addWidget(self.cancel_button)
        row2.addWidget(self.bar, 1)
        row2.addWidget(QLabel("Opacity"))
        row2.addWidget(self.opacity)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.setSpacing(2)
        tl.addWidget(self.glw, 1)
        tl.addWidget(self.hover)
        tl.addWidget(self.message)
        bottom = QWidget()
        bl = QHBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        # the predictions and the probe's numbers scroll in a short window rather than overlap
        side_box = QWidget()
        side = QVBoxLayout(side_box)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.predictions)
        side.addWidget(self.probe_info, 1)
        self.side_scroll = QScrollArea()
        self.side_scroll.setWidgetResizable(True)
        self.side_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.side_scroll.setWidget(side_box)
        bl.addWidget(self.glw_diff, 1)
        bl.addWidget(self.side_scroll, 1)
        # a splitter, not stretch factors: the graphics views' size hints would
        # otherwise hand the map the smaller share
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setChildrenCollapsible(False)
        split.setSizes([600, 330])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.title)
        lay.addLayout(row1)
        lay.addLayout(row2)
        lay.addWidget(split, 1)

    @staticmethod
    def _spin(lo, hi, value, tip):
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setValue(value)
        s.setToolTip(tip)
        s.setFocusPolicy(Qt.FocusPolicy.ClickFocus)   # arrow keys stay with the layer navigator
        return s

    # ============================================================ source
    def set_source(self, model, x, display, preprocess, labels=None):
        """A new model or image: stop what runs, forget the map and the probe engine."""
        self.cancel()
        self._gen += 1
        self.model, self.x, self.display, self.labels = model, x, display, labels
        self.preprocess = preprocess
        self._probe = Probe(model, x)
        self.result = self.heat = self.geometry = self.baseline = self.probe_result = None
        self._want = None
        h, w = x.shape[2:]
        self.patch.setMaximum(min(h, w))
        self.stride.setMaximum(max(h, w))
        if self.patch.value() > min(h, w):
            self.patch.setValue(max(1, min(h, w) // 4))
        self.img_in.setImage(display, autoLevels=False, levels=(0, 255))
        self.img_in.setRect(QRectF(0, 0, w, h))
        self.img_heat.clear()
        self.img_occ.clear()
        self.img_diff.clear()
        self.region.hide()
        self.occ_box.hide()
        self.cell.hide()
        self.bar.setValue(0)
        self.predictions.clear("drag the patch")
        self.message.setText("Run maps how much the target drops as the patch covers each place.")
        self.probe_info.setText(" ")
        if self.roi is not None:
            self.vb_heat.removeItem(self.roi)
        p = self.patch.value()
        self.roi = pg.ROI(((w - p) // 2, (h - p) // 2), (p, p), movable=True, rotatable=False, resizable=False,
                          translateSnap=True, maxBounds=QRectF(0, 0, w, h), pen=pg.mkPen(PATCH_COLOR, width=2),
                          hoverPen=pg.mkPen("#ffffff", width=2))
        self.roi.setZValue(20)
        self.roi.sigRegionChanged.connect(lambda _: self._patch_moved())
        self.vb_heat.addItem(self.roi)
        for vb in (self.vb_heat, self.vb_occ):
            vb.autoRange(padding=0.02)
        if self.isVisible():
            self._patch_moved()

    def set_selection(self, layer, channel):
        """The layer and channel selected in the main window: the unit target,
        and the layer whose change each probe reports."""
        changed = layer != self.layer
        self.layer, self.channel = layer, channel
        if changed and self.roi is not None and self.isVisible():
            self._patch_moved()          # a new layer needs a new probe
        elif self.probe_result is not None:
            self._draw_diff(self.probe_result)

    def showEvent(self, event):
        super().showEvent(event)
        if self.roi is not None and self.probe_result is None:
            self._patch_moved()          # something to look at as soon as the tab opens

    # =============================================================== run
    def settings(self):
        """The controls as ce.occlusion keywords (ValueError when one is not valid)."""
        target_name = self.target.currentText()
        kw = {"patch": self.patch.value(), "stride": self.stride.value(), "fill": parse_fill(self.fill.currentText()),
              "mode": self.mode.currentText(), "target": None, "reduce": "sum"}
        if target_name == "class":
            kw["target"] = self.cls.value()
        elif target_name.startswith("selected channel"):
            if self.layer is None or self.channel is None:
                raise ValueError("select a layer and a channel in the main window to use it as the target")
            kw["target"] = (self.layer, int(self.channel))
            kw["reduce"] = "max" if target_name.endswith("max") else "sum"
        if self.batch is not None:
            kw["batch"] = self.batch
        return kw

    def run(self):
        if self.model is None:
            return
        try:
            kw = self.settings()
        except ValueError as exc:
            self.message.setText(f"Error: {exc}")
            return
        self.cancel()                    # one map at a time: the old one stops at its next batch
        self._run_no += 1
        number, cancel = self._run_no, threading.Event()
        self._cancel, self._running = cancel, True
        h, w = self.x.shape[2:]
        rows = (h - kw["patch"]) // kw["stride"] + 1
        cols = (w - kw["patch"]) // kw["stride"] + 1
        self.heat, self.geometry, self.result, self.baseline = None, (kw["patch"], kw["stride"]), None, None
        self.first_rows_s = None
        self._cols = cols
        self.img_heat.clear()
        self.bar.setRange(0, rows * cols)
        self.bar.setValue(0)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        what = self._target_text(kw["target"], kw["reduce"])
        self.message.setText(f"Running {kw['mode']} occlusion: {rows}×{cols} positions, patch {kw['patch']}, "
                             f"stride {kw['stride']}, {what}…")
        model, x, relay = self.model, self.x, self.relay
        self._run_t0 = time.perf_counter()

        def job():
            import cnnengine as ce
            last = [0.0]

            def progress(done, total, heat):
                now = time.perf_counter()
                # throttled: a small model's batches take a millisecond and would flood the UI
                if now - last[0] >= PROGRESS_EVERY or done == total or done <= cols:
                    last[0] = now
                    relay.progressed.emit(number, done, total, np.array(heat))
                return not cancel.is_set()

            return ce.occlusion(model, x, progress=progress, cancel=cancel, **kw)

        self.runner.submit("occlusion", "occlusion", job, on_done=lambda r, s, n=number: self._done(n, r),
                           on_error=lambda m, tb, n=number: self._failed(n, m))

    def cancel(self):
        if self._cancel is not None:
            self._cancel.set()
        if self._running:
            self.cancel_button.setEnabled(False)
            self.message.setText("Cancelling at the end of this batch…")

    def is_idle(self):
        return self.runner.is_idle() and self.prober.is_idle() and not self._probing

    def shutdown(self):
        """Stop a running map and wait for the worker threads (the window is closing)."""
        self.cancel()
        self._want = None
        self.runner.wait(10000)
        self.prober.wait(10000)

    def _progress(self, number, done, total, heat):
        if number != self._run_no:
            return
        self.heat = heat
        self.bar.setValue(done)
        if self.first_rows_s is None and done >= self._cols:
            self.first_rows_s = time.perf_counter() - self._run_t0
        self._draw_heat()

    def _done(self, number, result):
        if number != self._run_no:
            return
        self._running = False
        self.result, self.heat, self.baseline = result, result.heatmap, result.baseline_prob
        self.geometry = (result.patch, result.stride)
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        done = int(np.isfinite(result.heatmap).sum())
        self.bar.setValue(done)
        if self.first_rows_s is None and done >= result.heatmap.shape[1]:
            self.first_rows_s = time.perf_counter() - self._run_t0
        self._draw_heat()
        t = result.timings
        what = self._target_text(result.target, "max" if self.target.currentText().endswith("max") else "sum")
        text = (f"{'Cancelled' if result.cancelled else 'Done'}: {done} of {result.heatmap.size} positions · "
                f"{what}, baseline {result.baseline_prob:.4g} · {result.mode} {result.seconds:.2f} s "
                f"({t.get('ms_per_position', 0):.1f} ms/position)")
        if self.first_rows_s is not None:
            text += f" · first row on screen after {self.first_rows_s:.2f} s"
        if result.error:
            corr = result.error.get("rank_corr")
            text += (f" · vs naive on {result.error['sampled_positions']} positions: max |error| "
                     f"{result.error['max_abs_error']:.3g}" + ("" if corr is None else f", rank corr {corr:.3f}"))
        self.message.setText(text)
        if self.probe_result is not None:
            self._draw_diff(self.probe_result)     # its line comparing the target clean and occluded
        self.finished.emit(result)

    def _failed(self, number, message):
        if number != self._run_no:
            return
        self._running = False
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.message.setText(f"Error: {message}")
        self.finished.emit(None)

    def _target_text(self, target, reduce):
        if isinstance(target, (tuple, list)):
            return f"unit {target[0]} · channel {target[1]} ({reduce})"
        if target is None:
            return "the top-1 class"
        label = self.labels[target] if self.labels is not None and target < len(self.labels) else None
        return f"class {target}" + (f" ({label})" if label else "")

    # =========================================================== heatmap
    def _heat_rect(self):
        """Cell (i, j) is drawn stride x stride, centred on its patch's centre,
        so the cells tile the image and a pixel names one position."""
        patch, stride = self.geometry
        rows, cols = self.heat.shape
        off = (patch - stride) / 2
        return QRectF(off, off, cols * stride, rows * stride)

    def heat_rgba(self):
        """The map as RGBA: a diverging colour per value, symmetric about zero,
        transparent where not computed yet; `opacity` elsewhere."""
        heat = np.asarray(self.heat, np.float64)
        finite = np.isfinite(heat)
        span = float(np.abs(heat[finite]).max()) if finite.any() else 0.0
        span = span if span > 0 else 1.0
        table = style.lut(CMAP)
        idx = np.clip(np.round((np.where(finite, heat, 0) / span + 1) / 2 * 255), 0, 255).astype(np.int64)
        rgba = table[idx].copy()
        rgba[..., 3] = np.where(finite, int(round(self.opacity.value() * 2.55)), 0)
        return rgba, span

    def _draw_heat(self):
        if self.heat is None or self.geometry is None:
            return
        rgba, span = self.heat_rgba()
        self.img_heat.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.img_heat.setRect(self._heat_rect())
        self.cbar.setLevels((-span, span))

    def cell_at(self, px, py):
        """(row, col) of the heatmap cell under input pixel (px, py), or None."""
        if self.heat is None or self.geometry is None:
            return None
        patch, stride = self.geometry
        off = (patch - stride) / 2
        i, j = int(np.floor((py - off) / stride)), int(np.floor((px - off) / stride))
        if 0 <= i < self.heat.shape[0] and 0 <= j < self.heat.shape[1]:
            return i, j
        return None

    def hover_text(self, i, j):
        patch, stride = self.geometry
        v = float(self.heat[i, j])
        where = f"cell ({i}, {j}): patch at y {i * stride}, x {j * stride}"
        if not np.isfinite(v):
            return f"{where} — not computed yet"
        text = f"{where}  drop {v:.5g}"
        if self.baseline is not None:
            text += f"  ({self.baseline:.4g} → {self.baseline - v:.4g})"
        return text

    def _hovered(self, pos):
        if self.x is None or not self.vb_heat.sceneBoundingRect().contains(pos):
            return
        p = self.vb_heat.mapSceneToView(pos)
        hit = self.cell_at(p.x(), p.y())
        if hit is None:
            self.hover.setText(" ")
            self.cell.hide()
            return
        i, j = hit
        patch, stride = self.geometry
        _set_rect(self.cell, QRectF(j * stride, i * stride, patch, patch))
        self.cell.show()
        self.hover.setText(self.hover_text(i, j))

    def _clicked(self, ev):
        if ev.button() != Qt.MouseButton.LeftButton or self.x is None or \
                not self.vb_heat.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = self.vb_heat.mapSceneToView(ev.scenePos())
        hit = self.cell_at(p.x(), p.y())
        if hit is not None:
            self.click_cell(*hit)

    def click_cell(self, i, j):
        """Show the occluded image of map cell (i, j) and its top-k: the patch
        moves there (and the probe follows)."""
        patch, stride = self.geometry
        if self.patch.value() != patch:
            self.patch.setValue(patch)
        if self.patch_box()[:2] == (i * stride, j * stride):
            self._patch_moved()          # already there: the ROI will not signal a move, show it anyway
        else:
            self.move_patch(i * stride, j * stride)

    # ============================================================= probe
    def move_patch(self, y, x):
        """Put the patch's top-left corner at input pixel (y, x) (a drag does the same)."""
        if self.roi is not None:
            self.roi.setPos((x, y))

    def patch_box(self):
        pos = self.roi.pos()
        return patch_box(round(pos.y()), round(pos.x()), self.patch.value(), self.x.shape[2:])

    def _patch_resized(self):
        if self.roi is None:
            return
        p = self.patch.value()
        t, l, _, _ = patch_box(round(self.roi.pos().y()), round(self.roi.pos().x()), p, self.x.shape[2:])
        self.roi.setPos((l, t), update=False)
        self.roi.setSize((p, p))

    def _patch_moved(self):
        """Coalesce: only the newest position waits; it goes when the running probe ends."""
        if self.roi is None:
            return
        self._want = self.patch_box()
        self._pump()

    def _pump(self):
        if self._probing or self._want is None or self._probe is None:
            return
        try:
            fill = parse_fill(self.fill.currentText())
        except ValueError as exc:
            self.probe_info.setText(f"Error: {exc}")
            self._want = None
            return
        box, self._want = self._want, None
        self._probing = True
        probe, layer, gen = self._probe, self.layer, self._gen
        self.prober.submit("probe", "probe", probe.probe, box, fill, layer,
                           on_done=lambda r, s, g=gen: self._probe_done(g, r),
                           on_error=lambda m, tb, g=gen: self._probe_failed(g, m))

    def _probe_done(self, gen, result):
        self._probing = False
        if gen == self._gen:
            self.show_probe(result)
        self._pump()

    def _probe_failed(self, gen, message):
        self._probing = False
        if gen == self._gen:
            self.probe_info.setText(f"Error: {message}")
        self._pump()

    def probe_rate(self, window=2.0):
        """Probes shown per second over the last `window` seconds."""
        if len(self.probe_log) < 2:
            return 0.0
        now = self.probe_log[-1][0]
        recent = [t for t, _ in self.probe_log if now - t <= window]
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def show_probe(self, r):
        self.probe_result = r
        self.probe_log = self.probe_log[-200:] + [(time.perf_counter(), r.seconds)]
        self.probes_shown += 1
        t, l, b, rr = r.box
        occ = session._display(r.occluded, self.preprocess)     # as the input panel shows the input
        self.img_occ.setImage(occ, autoLevels=False, levels=(0, 255))
        self.img_occ.setRect(QRectF(0, 0, occ.shape[1], occ.shape[0]))
        _set_rect(self.occ_box, QRectF(l, t, rr - l, b - t))
        self.occ_box.show()
        if self._occ_shape != occ.shape:      # frame it once per image size, not on every probe
            self._occ_shape = occ.shape
            self.vb_occ.autoRange(padding=0.02)
        top = atlas.top_k(r.probs, self.labels, k=self.predictions.k)
        self.predictions.set_top(top, f"occluded at y {t}, x {l}")
        self.label_occ.setText(f"occluded input: patch {b - t} at y {t}, x {l}")
        self._draw_diff(r)
        self.probed.emit(r)

    def _draw_diff(self, r):
        """The selected channel's occluded − clean, symmetric colours, the region outlined."""
        lines = [f"probe {r.seconds * 1e3:.0f} ms" + (f" · {self.probe_rate():.1f} updates/s"
                                                     if len(self.probe_log) > 2 else "")]
        if self.baseline is not None and isinstance(getattr(self.result, "target", None), (int, np.integer)):
            c = self.result.target
            lines.append(f"class {c}: {self.baseline:.4g} clean → {r.probs[c]:.4g} occluded")
        if r.delta is None:
            self.img_diff.clear()
            self.region.hide()
            self.label_diff.setText("select a layer to see how the occlusion spreads")
            self.probe_info.setText("\n".join(lines))
            return
        d = r.delta
        ch = self.channel if self.channel is not None and self.channel < d.shape[0] else 0
        if d.ndim == 1:             # a dense layer: every unit can change; shown as one row
            m = d[None, :]
            what = f"{r.layer}: {d.shape[0]} units (not spatial)"
        else:
            m = d[ch] if d.ndim == 3 else d.reshape(d.shape[0], -1)
            what = f"{r.layer} · channel {ch}"
        span = float(np.abs(m).max()) or 1e-6
        self.img_diff.setImage(np.asarray(m, np.float32), autoLevels=False)
        self.img_diff.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
        self.cbar_diff.setLevels((-span, span))
        self.vb_diff.autoRange(padding=0.02)
        self.label_diff.setText(f"{what}: occluded − clean")
        changed = int((np.abs(d.reshape(d.shape[0], -1)).max(axis=1) > 0).sum())
        lines.append(f"{what}: max |Δ| {float(np.abs(m).max()):.4g} · {changed} of {d.shape[0]} channels change")
        if r.region is not None and d.ndim == 3:
            y0, x0, y1, x1 = r.region
            _set_rect(self.region, QRectF(x0, y0, x1 - x0, y1 - y0))
            self.region.show()
            share = (y1 - y0) * (x1 - x0) / float(d.shape[1] * d.shape[2])
            lines.append(f"reachable region rows {y0}–{y1 - 1}, cols {x0}–{x1 - 1} "
                         f"({100 * share:.0f}% of the {d.shape[1]}×{d.shape[2]} map)")
        else:
            self.region.hide()
            if r.region is None and d.ndim == 3:
                lines.append("the patch cannot reach this layer's map here")
        self.probe_info.setText("\n".join(lines))
