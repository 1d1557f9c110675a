"""The Compare tab's controller: a second image, run through the same model
in the window's worker, compared with the first one at the layer and channel
selected in the window (widgets.compare_view shows it)."""
import os

from PyQt6.QtWidgets import QFileDialog

from . import atlas, session


class SecondImage:
    def __init__(self, win, view):
        self.win, self.view = win, view
        self.path = None
        self.image = None            # session.ImageBundle
        self.result = None           # session.Inference
        self.result_bundle = None    # the model that result came from
        view.openRequested.connect(self.ask)
        view.sampleRequested.connect(self.open)
        self.view.clear_maps("Open a second image to compare (the button above, or File ▸ Open second image)")

    def ask(self):
        images = f"Images ({' '.join('*' + e for e in session.IMAGE_EXTS)});;All files (*)"
        path, _ = QFileDialog.getOpenFileName(self.win, "Open second image",
                                              os.path.dirname(self.path or self.win.image_path or ""), images)
        if path:
            self.open(path)

    def open(self, path):
        self.path = str(path)
        self.run()

    def model_changed(self):
        self.image = self.result = None
        self.view.clear_maps("Running…" if self.path else "Open a second image to compare")

    def first_changed(self):
        """Image A (or the model) changed: run B again with this model, offer a sample when there is no B."""
        self._show_inputs()
        if self.path is None:
            others = [p for p in session.sample_images()
                      if os.path.abspath(p) != os.path.abspath(self.win.image.path)]
            self.view.offer_sample(others[0] if others else None)
        if self.path is not None and (self.result is None or self.result_bundle is not self.win.bundle):
            self.run()
        else:
            self.refresh()

    def run(self):
        win, path = self.win, self.path
        bundle = win.bundle
        if bundle is None or path is None:
            return
        layer = win.layer()
        layers = None if bundle.capture_all else [layer.name if layer else bundle.summary[0].name]

        def job():
            img = session.open_image(path, bundle.preprocess)
            return img, session.infer(bundle, img.x, layers)

        win.worker.submit("run2", f"Running {bundle.name} on {os.path.basename(path)}…", job,
                          on_done=lambda r, s, b=bundle: self._ran(b, r), on_error=win._error)

    def _ran(self, bundle, result):
        if bundle is not self.win.bundle:
            return
        self.image, self.result = result
        self.result_bundle = bundle
        self.view.offer_sample(None)
        self._show_inputs()
        self.refresh(force=True)

    def _show_inputs(self):
        win = self.win
        a, b = win.image, self.image
        self.view.set_inputs(a.display if a else None, b.display if b else None,
                             os.path.basename(a.path) if a else "", os.path.basename(b.path) if b else "")
        labels = win.bundle.labels if win.bundle else None
        top = lambda res: atlas.top_k(res.probs, labels, k=5) if res is not None else None  # noqa: E731
        self.view.set_top(top(win.result), top(self.result), f"A: {os.path.basename(a.path)}" if a else "A",
                          f"B: {os.path.basename(b.path)}" if b else "B")

    def refresh(self, force=False):
        """Show the selected layer and channel for both images (only while the tab is on screen)."""
        win = self.win
        if not force and not win.tab_showing("compare"):
            return
        layer = win.layer()
        if layer is None or win.result is None:
            return
        if self.result is None:
            self.view.clear_maps("Open a second image to compare" if self.path is None else "Running…")
            return
        a, b = win.activation(layer.name), self.result.acts.get(layer.name)
        if b is None:
            bundle, x, name = win.bundle, self.image.x, layer.name
            self.view.clear_maps(f"Capturing {name} for image B…")
            win.worker.submit("capture2", f"Capturing {name} (image B)…", session.capture_layer, bundle, x, name,
                              on_done=lambda act, s, n=name, r=self.result: self._captured(r, n, act),
                              on_error=win._error)
            return
        if a is None:
            self.view.clear_maps(f"Capturing {layer.name}…")
            return
        self.view.set_maps(layer.name, win.channel, a, b)

    def _captured(self, result, name, act):
        if result is self.result:
            result.acts[name] = act
            self.refresh(force=True)
