"""The main window: opens a model and an image, runs inference in a worker
thread and wires the panels together."""
import os
import sys
import time

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox,
                             QProgressBar, QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from . import atlas, session, style
from .compare import SecondImage
from .widgets.channel_view import ChannelView
from .widgets.compare_view import CompareView
from .widgets.compute_view import ComputeView
from .widgets.deconv_view import DeconvView, project
from .widgets.elided import ElidedLabel
from .widgets.filter_grid import FilterGrid
from .widgets.fmap_grid import FUSED_TIP, FeatureGrid
from .widgets.graph_strip import GraphStrip
from .widgets.graph_view import GraphView, node_sizes
from .widgets.input_view import InputView
from .widgets.navigator import NAV_KEYS, Navigator, human
from .widgets.occlusion_view import OcclusionView
from .widgets.patches_view import PatchesView
from .widgets.predictions import Predictions
from .worker import Worker

RECENT_MAX = 8
SIDE_MIN = 170          # px: the narrowest the layer list and the channel panel get (an 800 px window)
MODEL_FILTER = "Models (*.onnx *.cnn *.safetensors *.pth *.pt);;All files (*)"
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"


class Tab:
    """A registered tab (MainWindow.register_tab): `cnnengine view --tab NAME` opens it."""

    def __init__(self, name, page, widget, on_show=None, prepare=None, settled=None):
        self.name, self.page, self.widget = name, page, widget
        self.on_show = on_show      # called whenever the tab comes on screen
        self.prepare = prepare      # --screenshot: called once the first layer is shown (start the tab's work)
        self.settled = settled      # --screenshot waits until this returns True (the tab's work is on screen)


class MainWindow(QMainWindow):
    """ready() fires each time the window has finished all pending work with a
    layer on screen; failed(message) when a load or run fails."""
    ready = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, settings=None, interactive=True, t0=None, patches_from=None):
        super().__init__()
        self.patches_from = patches_from   # `view --patches-from FOLDER`, for the patches tab
        self.tab_registry = {}             # --tab name -> Tab
        self.t0 = t0 if t0 is not None else time.perf_counter()
        self.interactive = interactive
        self.settings = settings if settings is not None else QSettings("cnnengine", "viewer")
        self.bundle = None          # session.ModelBundle
        self.image = None           # session.ImageBundle
        self.result = None          # session.Inference
        self.image_path = None
        self.row = -1
        self.channel = None
        self.unit = None
        self.channel_pinned = False  # True once the user picked a channel: keep its index across layers
        self.picked = None          # the channel the user picked; restored on layers that have it
        self.picked_class = None    # the class the user picked on a class-shaped layer
        self.after_fusion = False   # conv rows show the output after their BatchNorm and activation
        self._auto_image = False    # the image is the bundled sample chosen for the model, not the user's
        self._status_error = False  # the status bar shows an error (cleared by the next success)
        self._keep_channel = None   # (row, channel) to keep when that row is shown again (fusion toggle)
        self.pending_layer = None
        self._deconv_asked = None     # (run number, layer, channel, unit) of the last projection asked for
        self._runs = 0                # counts inference results, so a new image asks for a new projection
        self._deconv_latest = [0]     # a projection job whose number is no longer this one skips its work
        self.first_shown = None     # seconds from start to the first feature maps
        self.worker = Worker(self)
        self.worker.busy.connect(self._busy)

        self.setWindowTitle("cnnengine view")
        self.resize(1500, 950)
        self.setAcceptDrops(True)
        self._build()
        self._build_menus()

    # ================================================================ UI
    def _build(self):
        self.navigator = Navigator()
        self.navigator.layerSelected.connect(self.show_layer)
        self.predictions = Predictions(k=5)
        self.predictions.classClicked.connect(self.show_class)
        self.strip = GraphStrip()
        self.strip.layerClicked.connect(self.navigator.select)
        self.grid = FeatureGrid()
        self.grid.channelClicked.connect(self.pick_channel)
        self.grid.fusedToggled.connect(self.set_after_fusion)
        self.filters = FilterGrid()
        self.channel_view = ChannelView()
        self.channel_view.unitClicked.connect(self.select_unit)
        self.input_view = InputView()

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(6, 4, 2, 6)
        ll.setSpacing(6)
        self.model_label = ElidedLabel("No model")
        self.model_label.setObjectName("panelTitle")
        ll.addWidget(self.model_label)
        ll.addWidget(self.navigator, 1)
        ll.addWidget(self.predictions)

        self.tabs = QTabWidget()
        self.tabs.currentChanged.connect(self._tab_changed)
        # short titles: all eight fit the tab bar of a 1,000 px window (the full names are tooltips)
        self.register_tab("maps", "Maps", self.grid, tip="Feature maps: the selected layer's activations")
        self.graph = GraphView()
        self.graph.layerClicked.connect(self.navigator.select)
        self.register_tab("graph", "Graph", self.graph)
        self.register_tab("filters", "Filters", self.filters, on_show=self._update_filters)
        self._build_explainers()
        self.compare_view = CompareView()
        self.compare = SecondImage(self, self.compare_view)
        self.register_tab("compare", "Compare", self.compare_view, on_show=self.compare.refresh)
        self.deconv = DeconvView()
        self.deconv.modeChanged.connect(lambda _: self._update_deconv())
        self.deconv_page = self.register_tab("deconvnet", "Deconv", self.deconv, on_show=self._update_deconv,
                                             tip="Deconvnet: what in the input drives the selection")
        self.occlusion = OcclusionView()
        self.occlusion_page = self.register_tab(
            "occlusion", "Occlusion", self.occlusion, prepare=self.occlusion.run,
            settled=lambda: self.occlusion.result is not None and self.occlusion.is_idle())

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self._padded(self.input_view))
        right.addWidget(self._padded(self.channel_view))
        right.setSizes([330, 560])

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.addWidget(right)
        for i, stretch in enumerate((0, 1, 0)):
            split.setStretchFactor(i, stretch)
        left.setMinimumWidth(SIDE_MIN)      # the sides may narrow; the tabs keep the largest share
        right.setMinimumWidth(SIDE_MIN)
        split.setSizes([520, 570, 410])
        self.split = split
        split.setChildrenCollapsible(False)

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.strip)
        cl.addWidget(split, 1)
        self.setCentralWidget(central)

        tb = QToolBar("Main")
        tb.setMovable(False)
        tb.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addToolBar(tb)
        self.act_open_model = QAction("Open model…", self)
        self.act_open_model.setShortcut(QKeySequence.StandardKey.Open)
        self.act_open_model.triggered.connect(self.ask_model)
        self.act_open_image = QAction("Open image…", self)
        self.act_open_image.setShortcut(QKeySequence("Ctrl+I"))
        self.act_open_image.triggered.connect(self.ask_image)
        self.act_png = QAction("Save PNG…", self)
        self.act_png.setShortcut(QKeySequence("Ctrl+S"))
        self.act_png.triggered.connect(self.ask_export_png)
        self.act_npy = QAction("Save .npy…", self)
        self.act_npy.setShortcut(QKeySequence("Ctrl+E"))
        self.act_npy.triggered.connect(self.ask_export_npy)
        self.act_open_image2 = QAction("Open second image…", self)
        self.act_open_image2.setShortcut(QKeySequence("Ctrl+Shift+I"))
        self.act_open_image2.triggered.connect(self.compare.ask)
        tb.addAction(self.act_open_model)
        tb.addAction(self.act_open_image)
        tb.addSeparator()
        # the feature maps' display options live above the grid, so the toolbar fits 800 px
        self.cmap_box, self.norm_box, self.sort_box = self.grid.cmap_box, self.grid.norm_box, self.grid.sort_box
        for box in (self.cmap_box, self.norm_box, self.sort_box):
            box.currentIndexChanged.connect(lambda _: self._options_changed())
        tb.addAction(self.act_png)
        tb.addAction(self.act_npy)

        sb = self.statusBar()
        self.status = ElidedLabel("Ready")
        self.timing = QLabel("")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setFixedWidth(110)
        self.busy_bar.hide()
        sb.addWidget(self.status, 1)
        sb.addPermanentWidget(self.timing)
        sb.addPermanentWidget(self.busy_bar)

    def register_tab(self, name, title, widget, on_show=None, prepare=None, settled=None, tip=None):
        """Add `widget` as a tab that `cnnengine view --tab NAME` opens (see Tab); returns its page."""
        page = self._padded(widget)
        self.tab_registry[name] = Tab(name, page, widget, on_show, prepare, settled)
        index = self.tabs.addTab(page, title)
        if tip:
            self.tabs.setTabToolTip(index, tip)
        return page

    def _build_explainers(self):
        """The Patches and Compute tabs (each with its own worker thread)."""
        self.patches = PatchesView()
        self.patches.channelPicked.connect(self.pick_channel)
        if self.patches_from is not None:
            self.patches.set_folder(self.patches_from)
        self.register_tab("patches", "Patches", self.patches, prepare=self.patches.prepare,
                          settled=self.patches.is_idle)
        self.compute = ComputeView()
        self.compute.unitPicked.connect(self._compute_unit)
        self.register_tab("compute", "Compute", self.compute, prepare=self.compute.prepare,
                          settled=self.compute.is_idle)

    def _compute_unit(self, ch, y, x):
        """A unit picked in the Compute tab: the same unit in the window's other panels."""
        if ch != self.channel:
            self.channel_pinned = True
            self.select_channel(ch)
        self.select_unit(y, x)

    def set_tab(self, name):
        if name not in self.tab_registry:
            from ..errors import InputError
            raise InputError(f"no tab named {name!r} in this build (choose from {', '.join(self.tab_registry)})")
        self.tabs.setCurrentWidget(self.tab_registry[name].page)

    def tab_showing(self, name):
        tab = self.tab_registry.get(name)
        return tab is not None and self.tabs.currentWidget() is tab.page

    def _tab_changed(self, _):
        for tab in self.tab_registry.values():
            if tab.on_show is not None and self.tabs.currentWidget() is tab.page:
                tab.on_show()

    @staticmethod
    def _padded(widget):
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(widget)
        return w

    def _build_menus(self):
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open_model)
        m.addAction(self.act_open_image)
        m.addAction(self.act_open_image2)
        self.zoo_menu = m.addMenu("Bundled models")
        self.sample_menu = m.addMenu("Sample images")
        self.recent_models_menu = m.addMenu("Recent models")
        self.recent_images_menu = m.addMenu("Recent images")
        m.addSeparator()
        m.addAction(self.act_png)
        m.addAction(self.act_npy)
        m.addSeparator()
        quit_ = QAction("Quit", self)
        quit_.setShortcut(QKeySequence.StandardKey.Quit)
        quit_.triggered.connect(self.close)
        m.addAction(quit_)
        h = mb.addMenu("&Help")
        keys = QAction("Keys", self)
        keys.triggered.connect(lambda: QMessageBox.information(
            self, "Keys", "↑ ↓ ← →  previous / next layer\nPage Up / Page Down  10 layers\n"
                          "Home / End  first / last layer\nClick a channel: large view\n"
                          "Click a unit: receptive field on the input\nDrop a model or image file to open it"))
        h.addAction(keys)
        self._fill_menus()

    def _fill_menus(self):
        self.zoo_menu.clear()
        for name in session.zoo_names() or []:
            self.zoo_menu.addAction(name, lambda n=name: self.open_model(n))
        self.zoo_menu.setEnabled(bool(self.zoo_menu.actions()))
        self.sample_menu.clear()
        for path in session.sample_images():
            self.sample_menu.addAction(os.path.basename(path), lambda p=path: self.open_image(p))
        self.sample_menu.setEnabled(bool(self.sample_menu.actions()))
        for menu, key, fn in ((self.recent_models_menu, "recent/models", self.open_model),
                              (self.recent_images_menu, "recent/images", self.open_image)):
            menu.clear()
            for item in self._recent(key):
                menu.addAction(item, lambda p=item, f=fn: f(p))
            menu.setEnabled(bool(menu.actions()))

    def _recent(self, key):
        v = self.settings.value(key, [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def _remember(self, key, item):
        items = [item] + [x for x in self._recent(key) if x != item]
        self.settings.setValue(key, items[:RECENT_MAX])
        self.settings.sync()
        self._fill_menus()

    def showEvent(self, event):
        super().showEvent(event)
        if not getattr(self, "_sized", False):      # proportions of the actual width, once
            self._sized = True
            QTimer.singleShot(0, self._proportion)

    def _proportion(self):
        """The layer list 30 % and the channel panel 26 % of a wide window (at least
        SIDE_MIN), 22 % and 20 % at 1,000 px so the tabs' titles fit; the tabs the rest."""
        total = max(self.split.width(), 600)
        wide = min(1.0, max(0.0, (total - 1000) / 500))
        left = int(min(540, max(SIDE_MIN, (0.22 + 0.08 * wide) * total)))
        right = int(min(480, max(SIDE_MIN, (0.20 + 0.06 * wide) * total)))
        self.split.setSizes([left, total - left - right, right])

    # ============================================================ opening
    def ask_model(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTER)
        if path:
            self.open_model(path)

    def ask_image(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open image", os.path.dirname(self.image_path or ""),
                                              IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_model(self, source, image=None, layer=None):
        source = str(source)
        if image is not None:
            self.image_path = str(image)
            self._auto_image = False
        self.pending_layer = layer
        self.worker.cancel_kind("run", "profile", "capture")
        self.worker.submit("model", f"Loading {os.path.basename(source)}…", session.open_model, source,
                           on_done=self._model_loaded, on_error=self._error)

    def open_image(self, path):
        self.image_path = str(path)
        self._auto_image = False
        if self.bundle is not None:
            self._run()

    def _model_loaded(self, bundle, seconds):
        self.bundle = bundle
        self.result = None
        self.row = -1
        self.model_label.setText(f"{bundle.name} — {len(bundle.summary)} layers, "
                                 f"{human(sum(l.params for l in bundle.summary))} params, "
                                 f"{human(sum(l.macs for l in bundle.summary))} MACs")
        self.setWindowTitle(f"cnnengine view — {bundle.name}")
        self.navigator.set_layers(bundle.summary, bundle.merges)
        self.strip.set_graph(bundle.summary, bundle.edges, bundle.merges)
        self.graph.clear("Laying out the graph…")
        self.compare.model_changed()
        self.grid.set_activation("", None)
        self.picked = self.picked_class = None     # channel numbers mean nothing in another model
        self.channel_pinned = False
        self.channel_view.clear()
        self.deconv.clear()
        self.input_view.clear_rf()
        self.predictions.clear()
        self.patches.set_model(bundle)
        self.compute.set_model(bundle)
        self._say(f"Loaded {bundle.name} in {seconds:.2f} s")
        if os.path.exists(bundle.source) or bundle.source in session.zoo_names():
            self._remember("recent/models", os.path.abspath(bundle.source)
                           if os.path.exists(bundle.source) else bundle.source)
        if self.image_path is None or self._auto_image:     # the bundled sample that suits this model
            self.image_path = session.default_image(bundle)
            self._auto_image = True
        if self.image_path is None:
            self._error("no image: open one (File ▸ Open image)", "")
            return
        self._run()

    def _run(self):
        bundle, path = self.bundle, self.image_path
        self.worker.cancel_kind("profile", "capture")

        def job():
            img = session.open_image(path, bundle.preprocess)
            return img, session.infer(bundle, img.x)

        self.worker.submit("run", f"Running {bundle.name} on {os.path.basename(path)}…", job,
                           on_done=lambda r, s, b=bundle: self._ran(b, r, s), on_error=self._error)

    def _ran(self, bundle, result, seconds):
        if bundle is not self.bundle:
            return
        self.image, self.result = result
        self._runs += 1
        self._remember("recent/images", os.path.abspath(self.image.path))
        self.input_view.set_images(self.image.original, self.image.display, self.image.crop_box,
                                   os.path.basename(self.image.path))
        self.deconv.set_input(self.image.display)
        self.occlusion.set_source(bundle.model, self.image.x, self.image.display, bundle.preprocess, bundle.labels)
        self.compute.set_image(self.image.x)
        top = atlas.top_k(self.result.probs, bundle.labels, k=self.predictions.k)
        self.predictions.set_top(top, os.path.basename(self.image.path))
        self.timing.setText(f"load {bundle.load_seconds:.2f} s · run (capture all) "
                            f"{self.result.seconds * 1e3:.0f} ms")
        row = self.row if self.row >= 0 else 0
        if self.pending_layer is not None:
            if self.pending_layer in bundle.index:
                row = bundle.index[self.pending_layer]
            else:
                self._error(f"no layer named {self.pending_layer!r} in {bundle.name}", "")
            self.pending_layer = None
        if row == self.navigator.current():
            self.show_layer(row)
        else:
            self.navigator.select(row)
        self.navigator.setFocus()
        if self.first_shown is None:
            self.first_shown = time.perf_counter() - self.t0
            self._say(f"{bundle.name}: first layer shown {self.first_shown:.2f} s after start")
        # one worker thread: what the tab on screen needs first, the graph layout (once per model) last
        if self.graph.bundle is not bundle and self.tab_showing("graph"):
            self._lay_out(bundle)
        self.compare.first_changed()
        x = self.image.x
        self.worker.submit("profile", "Timing layers (Model.profile, 3 × 3 runs)…", session.profile_layers,
                           bundle, x, on_done=lambda t, s, b=bundle: self._timed(b, *t),
                           on_error=self._profile_failed)
        if self.graph.bundle is not bundle:
            self._lay_out(bundle)

    def _timed(self, bundle, times, spread=None):
        if bundle is self.bundle:
            bundle.times, bundle.spread = times, spread or {}
            self.navigator.table.set_times(times, bundle.spread)
            self.graph.set_times(times)

    def _lay_out(self, bundle):
        """The graph tab's layout: computed once per model, in the worker."""
        rows = ([-1] if any(u < 0 for u, _ in bundle.edges) else []) + list(range(len(bundle.summary)))
        self.graph.bundle = bundle
        self.worker.submit("layout", "Laying out the graph…", session.graph_layout, bundle, node_sizes(rows),
                           on_done=lambda lay, s, b=bundle: self._laid_out(b, lay), on_error=self._error)

    def _laid_out(self, bundle, layout):
        if bundle is self.bundle:
            self.graph.set_graph(bundle.summary, bundle.edges, bundle.merges, bundle.model, layout, bundle.times)
            self.graph.set_current(self.row)

    def _profile_failed(self, message, tb):
        self._say(f"per-layer timing unavailable ({message}); Time shows each layer's share of MACs")

    def _say(self, text):
        """A message that is not an error: it also replaces an error shown earlier."""
        self._status_error = False
        self.status.setText(text)

    def _error(self, message, tb):
        self.status.setText(f"Error: {message}")
        self._status_error = True
        self.failed.emit(message)
        if self.interactive:
            QMessageBox.warning(self, "cnnengine view", message)

    def _busy(self, text):
        if text:
            self._say(text)
            self.busy_bar.show()
        else:
            self.busy_bar.hide()
            if self.result is not None:
                if self.status.text().endswith("…"):
                    self._say("Ready")
                QTimer.singleShot(0, self._maybe_ready)

    def _maybe_ready(self):
        if self.worker.is_idle() and self.result is not None and self.row >= 0:
            self.ready.emit()

    # ============================================================= layers
    def layer(self):
        return self.bundle.summary[self.row] if self.bundle and 0 <= self.row < len(self.bundle.summary) else None

    def shown_name(self, layer=None):
        """The layer whose values are on screen for `layer`'s row: with "after BN
        + act" on, a conv row shows the last layer fused into it."""
        layer = layer or self.layer()
        if layer is None:
            return None
        chain = self.bundle.fused.get(layer.name) if self.after_fusion else None
        return chain[-1] if chain else layer.name

    def activation(self, name=None):
        name = name or self.shown_name()
        if self.result is None or name is None:
            return None
        return self.result.acts.get(name)

    def show_layer(self, row):
        if self.bundle is None or not 0 <= row < len(self.bundle.summary):
            return
        self.row = row
        self.strip.set_current(row)
        self.graph.set_current(row)
        layer = self.bundle.summary[row]
        chain = self.bundle.fused.get(layer.name)
        self.grid.fused_box.setEnabled(bool(chain))
        self.grid.fused_box.setToolTip(FUSED_TIP + (f"\n{layer.name} → {' → '.join(chain)}" if chain else
                                                    "\n(this row has no BatchNorm or activation fused into it)"))
        name = self.shown_name(layer)
        act = self.activation(name)
        if act is None and self.result is not None:
            self.grid.set_activation(f"{layer.name} (capturing…)", None)
            self.worker.submit("capture", f"Capturing {name}…", session.capture_layer, self.bundle,
                               self.image.x, name,
                               on_done=lambda a, s, n=name: self._captured(n, a), on_error=self._error)
        else:
            self._show_activation(layer, act)
        self._update_filters()

    def _captured(self, name, act):
        if self.result is not None:
            self.result.acts[name] = act
            if self.layer() is not None and self.shown_name() == name:
                self._show_activation(self.layer(), act)

    def _show_activation(self, layer, act):
        name = self.shown_name(layer)
        note = f"after {', '.join(self.bundle.fused[layer.name])} (fused)" if name != layer.name else ""
        self.grid.set_activation(layer.name, act, labels=self.bundle.labels, note=note)
        n = self.grid.channel_count()
        if n == 0:
            self.channel_view.clear("No activation")
            self.occlusion.set_selection(layer.name, None)
            return
        if self._status_error:
            self._say("Ready")
        clamped = ""
        keep, self._keep_channel = self._keep_channel, None
        if self.grid.is_chart():    # the class the user picked, else the top class
            values = self.grid.maps[:, 0, 0]
            ch = self.picked_class if self.picked_class is not None and self.picked_class < n else \
                int(np.argmax(values))
        elif keep is not None and keep[0] == self.row and keep[1] < n:     # same row, before/after fusion
            ch = keep[1]
        elif self.channel_pinned and self.picked is not None and self.picked < n:
            ch = self.picked
        else:   # the channel with the most contrast until the user picks one (kept for layers that have it)
            ch = atlas.liveliest_channel(self.grid.maps)
            if self.channel_pinned and self.picked is not None:
                clamped = (f"channel {self.picked} (your pick) is not in this layer ({n} channels): showing "
                           f"channel {ch}; it comes back on layers that have it")
        self.select_channel(ch)
        self.channel_view.set_note(clamped)
        self.channel_view.jump_to_strongest()

    def step(self, how):
        self.navigator.step(how)

    def set_after_fusion(self, on):
        """Conv rows show their output after the BatchNorm and activation fused into them (or before)."""
        self.after_fusion = bool(on)
        if self.grid.fused_box.isChecked() != self.after_fusion:
            self.grid.fused_box.setChecked(self.after_fusion)
        if self.row >= 0:
            self._keep_channel = (self.row, self.channel) if self.channel is not None else None
            self.show_layer(self.row)

    # ============================================================ channel
    def pick_channel(self, ch):
        """A channel clicked by the user: shown now, and kept when stepping layers."""
        if self.grid.is_chart():
            self.picked_class = ch
        else:
            self.channel_pinned = True
            self.picked = ch
        self.select_channel(ch)
        self.channel_view.set_note("")
        self.channel_view.jump_to_strongest()

    def show_class(self, k):
        """A class clicked in the predictions: its unit in the class layer on screen, or in the last one."""
        if self.bundle is None:
            return
        self.picked_class = k
        rows = session.class_rows(self.bundle)
        if self.row in rows:
            self.pick_channel(k)
        elif rows:
            self.navigator.select(rows[-1])      # shows it with picked_class selected

    def apply_channel(self, ch):
        """--channel: pick channel ch of the layer on screen; False (and an error) when it has no such channel."""
        n = self.grid.channel_count()
        if not 0 <= ch < n:
            layer = self.layer()
            self._error(f"layer {layer.name if layer else '?'} has {n} channels; no channel {ch}", "")
            return False
        self.pick_channel(ch)
        return True

    def select_channel(self, ch):
        layer = self.layer()
        if layer is None or self.grid.maps is None:
            return
        self.channel = ch
        self.unit = None
        self.grid.select(ch)
        self.filters.select(ch)
        maps = self.grid.maps
        extra = ""
        if self.grid.is_chart() and self.result is not None and self.row == len(self.bundle.summary) - 1:
            extra = f"probability {100 * float(self.result.probs[ch]):.1f}% (softmax of the output)"
        shown = self.shown_name(layer)
        where = layer.name if shown == layer.name else f"{layer.name} → {shown}"
        self.channel_view.set_channel(where, ch, maps[ch], name=self.grid.unit_name(ch),
                                      layer_values=maps[:, 0, 0] if maps.shape[1] * maps.shape[2] == 1 else None,
                                      extra=extra)
        self.occlusion.set_selection(layer.name, ch)
        self.patches.set_selection(layer.name, ch)
        self.compute.set_selection(layer.name, ch)
        self.input_view.clear_rf()
        self._update_deconv()
        self.compare.refresh()

    def select_unit(self, y, x):
        layer = self.layer()
        if layer is None or self.image is None:
            return
        self.unit = (y, x)
        rf = layer.receptive_field
        box = atlas.receptive_box(rf, y, x, self.image.x.shape[2:])
        self.input_view.show_rf(box, atlas.receptive_centre(rf, y, x))
        t, l, b, r = box
        self.channel_view.hover.setText(f"unit ({y}, {x}) = {float(self.grid.maps[self.channel][y, x]):.4g}")
        self.channel_view.rf.setText(f"RF {rf['size'][0]}×{rf['size'][1]} px · rows {t:g}–{b - 1:g} · "
                                     f"cols {l:g}–{r - 1:g}")
        if self.compute.unit != (y, x) or self.compute.layer != layer.name:
            self.compute.set_selection(layer.name, self.channel, (y, x))
        self._update_deconv()

    def rf_box(self):
        return self.input_view.rf_box

    # ============================================================ filters
    def conv_weights(self, name):
        """(weights, note) of a Conv layer, from model.graph.weights[node.inputs[1]]."""
        graph = getattr(self.bundle.model, "graph", None)
        node = next((n for n in getattr(graph, "nodes", []) if n.name == name), None)
        if node is None or node.op not in ("Conv", "ConvTranspose") or len(node.inputs) < 2:
            return None, ""
        w = graph.weights.get(node.inputs[1])
        if w is None:
            return None, " (weights are computed, not stored)"
        if node.op == "ConvTranspose":
            w = np.swapaxes(w, 0, 1)
        return w, ""

    def _update_filters(self):
        if not self.tab_showing("filters") or self.layer() is None:
            return
        layer = self.layer()
        w, note = self.conv_weights(layer.name)
        if w is None:
            self.filters.set_weights(layer.name, None,
                                     note=f"{layer.name} ({layer.op}) has no convolution weights{note} — "
                                          f"select a Conv layer")
        else:
            self.filters.set_weights(layer.name, w, note)

    # ========================================================== deconvnet
    def _update_deconv(self):
        """Ask the worker for the projection of what is selected, when the Deconvnet tab is showing."""
        layer = self.layer()
        if self.tabs.currentWidget() is not self.deconv_page or layer is None or self.image is None \
                or self.channel is None:
            return
        act = self.activation(layer.name)
        spatial = act is not None and np.ndim(act) == 4
        unit = self.unit if self.deconv.mode() == "selected unit" and spatial else None
        key = (layer.name, self.channel, unit)
        if self._deconv_asked == (self._runs,) + key:
            return
        self._deconv_asked = (self._runs,) + key
        box = atlas.receptive_box(layer.receptive_field, *unit, self.image.x.shape[2:]) if unit else None
        self._deconv_latest[0] += 1
        number, latest = self._deconv_latest[0], self._deconv_latest
        model, x = self.bundle.model, self.image.x

        def job():   # skipped when a newer selection has been asked for meanwhile
            return project(model, x, *key) if latest[0] == number else None

        self.deconv.working(f"Projecting {layer.name} · channel {self.channel}…")
        self.worker.submit("deconv", f"Deconvnet: projecting {layer.name} · channel {self.channel}…", job,
                           on_done=lambda r, s: r and self.deconv.show_projection(key, *r, s, box),
                           on_error=lambda message, tb: self.deconv.show_message(key, message))

    # ============================================================ options
    def _options_changed(self):
        norm = "channel" if self.norm_box.currentIndex() == 0 else "shared"
        cmap = self.cmap_box.currentText()
        self.grid.set_options(norm=norm, cmap=cmap, sort=self.sort_box.currentText())
        self.channel_view.set_cmap(cmap)
        self.compare_view.set_cmap(cmap)

    # ============================================================= export
    def ask_export_png(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save view as PNG", "cnnengine-view.png", "PNG (*.png)")
        if path:
            self.export_png(path)

    def ask_export_npy(self):
        layer = self.layer()
        if layer is None:
            return
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer.name)
        path, _ = QFileDialog.getSaveFileName(self, "Save activations", f"{safe}.npy", "NumPy (*.npy)")
        if path:
            self.export_npy(path)

    def export_png(self, path):
        ok = self.grab().save(str(path), "PNG")
        if ok:
            self._say(f"Saved {path}")
        else:
            self.status.setText(f"Could not write {path}")
        return ok

    def export_npy(self, path):
        act = self.activation()
        if act is None:
            self.status.setText("Nothing to save: no activation")
            return False
        np.save(str(path), np.asarray(act))
        self._say(f"Saved {self.shown_name()} activation {tuple(np.shape(act))} to {path}")
        return True

    # ============================================================== input
    def keyPressEvent(self, event):
        how = NAV_KEYS.get(event.key())
        if how is not None and self.bundle is not None:
            self.step(how)
            event.accept()
            return
        super().keyPressEvent(event)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.open_paths(paths)
        event.acceptProposedAction()

    def open_paths(self, paths):
        images = [p for p in paths if session.is_image_path(p)]
        models = [p for p in paths if not session.is_image_path(p)]
        if images:
            self.image_path = images[0]
        if models:
            self.open_model(models[0])
        elif images:
            self.open_image(images[0])

    def closeEvent(self, event):
        self.worker.cancel_kind("model", "run", "profile", "capture", "deconv", "layout", "run2", "capture2")
        self.occlusion.shutdown()
        self.patches.shutdown()
        self.compute.shutdown()
        self.worker.shutdown(10000)
        super().closeEvent(event)


# ================================================================= entry
def make_app(argv=None):
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("cnnengine view")
    app.setStyleSheet(style.STYLESHEET)
    style.install_message_filter()
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    return app

