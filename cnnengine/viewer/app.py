"""The main window: opens a model and an image, runs inference in a worker
thread and wires the panels together."""
import os
import sys
import time

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QApplication, QComboBox, QFileDialog, QLabel, QMainWindow, QMessageBox,
                             QProgressBar, QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from . import atlas, session, style
from .widgets.channel_view import ChannelView
from .widgets.compute_view import ComputeView
from .widgets.deconv_view import DeconvView, project
from .widgets.filter_grid import FilterGrid
from .widgets.fmap_grid import FeatureGrid
from .widgets.graph_strip import GraphStrip
from .widgets.input_view import InputView
from .widgets.navigator import NAV_KEYS, Navigator, human
from .widgets.occlusion_view import OcclusionView
from .widgets.patches_view import PatchesView
from .widgets.predictions import Predictions
from .worker import Worker

RECENT_MAX = 8
MODEL_FILTER = "Models (*.onnx *.cnn *.safetensors *.pth *.pt);;All files (*)"
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"


class MainWindow(QMainWindow):
    """ready() fires each time the window has finished all pending work with a
    layer on screen; failed(message) when a load or run fails."""
    ready = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, settings=None, interactive=True, t0=None):
        super().__init__()
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
        self.strip = GraphStrip()
        self.strip.layerClicked.connect(self.navigator.select)
        self.grid = FeatureGrid()
        self.grid.channelClicked.connect(self.pick_channel)
        self.filters = FilterGrid()
        self.channel_view = ChannelView()
        self.channel_view.unitClicked.connect(self.select_unit)
        self.input_view = InputView()

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(6, 4, 2, 6)
        ll.setSpacing(6)
        self.model_label = style.elastic(QLabel("No model"))
        self.model_label.setObjectName("panelTitle")
        ll.addWidget(self.model_label)
        ll.addWidget(self.navigator, 1)
        ll.addWidget(self.predictions)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._padded(self.grid), "Feature maps")
        self.tabs.addTab(self._padded(self.filters), "Filters")
        self.tabs.currentChanged.connect(lambda _: self._update_filters())
        self.deconv = DeconvView()
        self.deconv.modeChanged.connect(lambda _: self._update_deconv())
        self.deconv_page = self._padded(self.deconv)
        self.tabs.addTab(self.deconv_page, "Deconvnet")
        self.tabs.currentChanged.connect(lambda _: self._update_deconv())
        self.occlusion = OcclusionView()
        self.occlusion_page = self._padded(self.occlusion)
        self.tabs.addTab(self.occlusion_page, "Occlusion")
        self._build_explainers()

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
        tb.addAction(self.act_open_model)
        tb.addAction(self.act_open_image)
        tb.addSeparator()
        self.cmap_box = self._combo(tb, "Colour map", style.COLORMAPS, self._options_changed)
        self.norm_box = self._combo(tb, "Scale", ["per channel", "shared"], self._options_changed)
        self.sort_box = self._combo(tb, "Sort", ["index", "mean", "max"], self._options_changed)
        tb.addSeparator()
        tb.addAction(self.act_png)
        tb.addAction(self.act_npy)

        sb = self.statusBar()
        self.status = style.elastic(QLabel("Ready"))
        self.timing = QLabel("")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setFixedWidth(110)
        self.busy_bar.hide()
        sb.addWidget(self.status, 1)
        sb.addPermanentWidget(self.timing)
        sb.addPermanentWidget(self.busy_bar)

    def _build_explainers(self):
        """The Patches and Compute tabs (their own worker threads), registered in self.pages by --tab name."""
        self.patches = PatchesView()
        self.patches.channelPicked.connect(self.pick_channel)
        self.compute = ComputeView()
        self.compute.unitPicked.connect(self._compute_unit)
        self.pages = {}
        for name, title, view in (("patches", "Patches", self.patches), ("compute", "Compute", self.compute)):
            self.pages[name] = self._padded(view)
            self.tabs.addTab(self.pages[name], title)

    def _compute_unit(self, ch, y, x):
        """A unit picked in the Compute tab: the same unit in the window's other panels."""
        if ch != self.channel:
            self.channel_pinned = True
            self.select_channel(ch)
        self.select_unit(y, x)

    def tab_pages(self):
        """`cnnengine view --tab` names -> the tab pages."""
        return {"maps": self.tabs.widget(0), "filters": self.tabs.widget(1), "deconvnet": self.deconv_page,
                "occlusion": self.occlusion_page, **self.pages}

    def set_tab(self, name):
        pages = self.tab_pages()
        if name not in pages:
            raise ValueError(f"no tab named {name!r} (choose from {', '.join(pages)})")
        self.tabs.setCurrentWidget(pages[name])

    @staticmethod
    def _padded(widget):
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(widget)
        return w

    def _combo(self, tb, label, items, slot):
        lab = QLabel(f" {label} ")
        lab.setStyleSheet("background: transparent; color: #9aa4b2;")
        tb.addWidget(lab)
        box = QComboBox()
        box.addItems(items)
        box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box.currentIndexChanged.connect(lambda _: slot())
        tb.addWidget(box)
        return box

    def _build_menus(self):
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open_model)
        m.addAction(self.act_open_image)
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
        total = max(self.width(), 600)
        self.split.setSizes([int(total * f) for f in (0.33, 0.37, 0.30)])

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
        self.pending_layer = layer
        self.worker.cancel_kind("run", "profile", "capture")
        self.worker.submit("model", f"Loading {os.path.basename(source)}…", session.open_model, source,
                           on_done=self._model_loaded, on_error=self._error)

    def open_image(self, path):
        self.image_path = str(path)
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
        self.grid.set_activation("", None)
        self.channel_view.clear()
        self.deconv.clear()
        self.input_view.clear_rf()
        self.predictions.clear()
        self.patches.set_model(bundle)
        self.compute.set_model(bundle)
        self.status.setText(f"Loaded {bundle.name} in {seconds:.2f} s")
        if os.path.exists(bundle.source) or bundle.source in session.zoo_names():
            self._remember("recent/models", os.path.abspath(bundle.source)
                           if os.path.exists(bundle.source) else bundle.source)
        if self.image_path is None:
            self.image_path = session.default_image()
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
            self.status.setText(f"{bundle.name}: first layer shown {self.first_shown:.2f} s after start")
        x = self.image.x
        self.worker.submit("profile", "Timing layers (Model.profile)…", session.layer_times, bundle, x,
                           on_done=lambda t, s, b=bundle: self._timed(b, t), on_error=self._profile_failed)

    def _timed(self, bundle, times):
        if bundle is self.bundle:
            bundle.times = times
            self.navigator.table.set_times(times)

    def _profile_failed(self, message, tb):
        self.status.setText(f"per-layer timing unavailable ({message}); Time shows each layer's share of MACs")

    def _error(self, message, tb):
        self.status.setText(f"Error: {message}")
        self.failed.emit(message)
        if self.interactive:
            QMessageBox.warning(self, "cnnengine view", message)

    def _busy(self, text):
        if text:
            self.status.setText(text)
            self.busy_bar.show()
        else:
            self.busy_bar.hide()
            if self.result is not None:
                if self.status.text().endswith("…"):
                    self.status.setText("Ready")
                QTimer.singleShot(0, self._maybe_ready)

    def _maybe_ready(self):
        if self.worker.is_idle() and self.result is not None and self.row >= 0:
            self.ready.emit()

    # ============================================================= layers
    def layer(self):
        return self.bundle.summary[self.row] if self.bundle and 0 <= self.row < len(self.bundle.summary) else None

    def activation(self, name=None):
        name = name or (self.layer().name if self.layer() else None)
        if self.result is None or name is None:
            return None
        return self.result.acts.get(name)

    def show_layer(self, row):
        if self.bundle is None or not 0 <= row < len(self.bundle.summary):
            return
        self.row = row
        self.strip.set_current(row)
        layer = self.bundle.summary[row]
        act = self.activation(layer.name)
        if act is None and self.result is not None:
            self.grid.set_activation(f"{layer.name} (capturing…)", None)
            self.worker.submit("capture", f"Capturing {layer.name}…", session.capture_layer, self.bundle,
                               self.image.x, layer.name,
                               on_done=lambda a, s, n=layer.name: self._captured(n, a), on_error=self._error)
        else:
            self._show_activation(layer, act)
        self._update_filters()

    def _captured(self, name, act):
        if self.result is not None:
            self.result.acts[name] = act
            if self.layer() is not None and self.layer().name == name:
                self._show_activation(self.layer(), act)

    def _show_activation(self, layer, act):
        self.grid.set_activation(layer.name, act)
        n = self.grid.channel_count()
        if n == 0:
            self.channel_view.clear("No activation")
            self.occlusion.set_selection(layer.name, None)
            return
        if self.channel_pinned and self.channel is not None and self.channel < n:
            ch = self.channel
        else:   # the channel with the most contrast until the user picks one
            ch = atlas.liveliest_channel(self.grid.maps)
        self.select_channel(ch)
        self.channel_view.jump_to_strongest()

    def step(self, how):
        self.navigator.step(how)

    # ============================================================ channel
    def pick_channel(self, ch):
        """A channel clicked by the user: shown now, and kept when stepping layers."""
        self.channel_pinned = True
        self.select_channel(ch)
        self.channel_view.jump_to_strongest()

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
        self.channel_view.set_channel(layer.name, ch, self.grid.maps[ch])
        self.occlusion.set_selection(layer.name, ch)
        self.patches.set_selection(layer.name, ch)
        self.compute.set_selection(layer.name, ch)
        self.input_view.clear_rf()
        self._update_deconv()

    def select_unit(self, y, x):
        layer = self.layer()
        if layer is None or self.image is None:
            return
        self.unit = (y, x)
        rf = layer.receptive_field
        box = atlas.receptive_box(rf, y, x, self.image.x.shape[2:])
        self.input_view.show_rf(box, atlas.receptive_centre(rf, y, x))
        t, l, b, r = box
        self.channel_view.hover.setText(
            f"unit ({y}, {x}) = {float(self.grid.maps[self.channel][y, x]):.4g} · RF {rf['size'][0]}×{rf['size'][1]}"
            f" px: rows {t:g}–{b - 1:g}, cols {l:g}–{r - 1:g}")
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
        if self.tabs.currentWidget() is None or self.tabs.currentIndex() != 1 or self.layer() is None:
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
        self.status.setText(f"Saved {path}" if ok else f"Could not write {path}")
        return ok

    def export_npy(self, path):
        act = self.activation()
        if act is None:
            self.status.setText("Nothing to save: no activation")
            return False
        np.save(str(path), np.asarray(act))
        self.status.setText(f"Saved {self.layer().name} activation {tuple(np.shape(act))} to {path}")
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
        self.worker.cancel_kind("model", "run", "profile", "capture", "deconv")
        self.occlusion.shutdown()
        self.patches.shutdown()
        self.compute.shutdown()
        self.worker.wait(10000)
        super().closeEvent(event)


# ================================================================= entry
def make_app(argv=None):
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("cnnengine view")
    app.setStyleSheet(style.STYLESHEET)
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    return app


def run(model=None, image=None, layer=None, screenshot=None, t0=None, tab=None, channel=None, patches_from=None):
    """Open the window on `tab` with `channel` of `layer` selected; with
    `screenshot`, save it once everything is shown (on the occlusion tab, once
    the map has run) and return 0 (2 on a load error)."""
    app = make_app()
    win = MainWindow(interactive=screenshot is None, t0=t0)
    code = {"rc": 0}

    def save():
        if win.export_png(screenshot):
            print(f"saved {screenshot}", file=sys.stderr)
        else:
            print(f"cnnengine: error: cannot write {screenshot}", file=sys.stderr)
            code["rc"] = 2
        app.quit()

    def fail(message):
        if screenshot is not None:
            print(f"cnnengine: error: {message}", file=sys.stderr)
            code["rc"] = 2
            app.quit()

    def settled():
        """Everything asked for is on screen: the main worker, the occlusion map and its probe are idle."""
        return win.worker.is_idle() and win.occlusion.is_idle() and \
            (tab != "occlusion" or win.occlusion.result is not None) and \
            win.patches.is_idle() and win.compute.is_idle()

    def maybe_save():
        if screenshot is not None and not code.get("saving") and settled():
            code["saving"] = True
            QTimer.singleShot(200, save)

    def on_ready():
        # the first time the layer is on screen: apply --channel and start the map;
        # both may start more work, whose end (ready or finished) comes back here
        if not code.get("applied"):
            code["applied"] = True
            if channel is not None and not win.apply_channel(channel):
                return
            if tab == "occlusion" and screenshot is not None:
                win.occlusion.run()
        maybe_save()

    win.ready.connect(on_ready)
    win.occlusion.finished.connect(lambda r: QTimer.singleShot(0, maybe_save) if r is not None else
                                   fail(f"occlusion: {win.occlusion.message.text()}"))
    win.occlusion.probed.connect(lambda _: QTimer.singleShot(0, maybe_save))
    win.failed.connect(fail)
    for view in (win.patches, win.compute):
        view.finished.connect(lambda _: QTimer.singleShot(0, maybe_save))
    if patches_from is not None:
        win.patches.set_folder(patches_from)
    if screenshot is not None:
        QTimer.singleShot(300_000, lambda: fail("timed out waiting for the model"))
    if tab is not None:
        win.set_tab(tab)
    win.show()
    win.open_model(model or session.DEFAULT_MODEL, image=image, layer=layer)
    app.exec()
    win.occlusion.shutdown()
    win.patches.shutdown()
    win.worker.wait(10000)
    return code["rc"]
