"""`cnnengine view`: open the window on a tab, or render it headless to a PNG."""
import sys

from PyQt6.QtCore import QTimer

from . import session
from .app import MainWindow, make_app


def run(model=None, image=None, layer=None, screenshot=None, t0=None, tab=None, channel=None, size=None,
        image2=None, patches_from=None):
    """Open the window on `tab` with `channel` of `layer` selected (and `image2`
    in the compare tab); with `screenshot`, save it once everything is shown (once
    the tab's own work, e.g. the occlusion map, is done) and return 0 (2 on an
    error). `size`: (width, height) of the window."""
    app = make_app()
    win = MainWindow(interactive=screenshot is None, t0=t0, patches_from=patches_from)
    code = {"rc": 0}
    if tab is not None and tab not in win.tab_registry:
        print(f"cnnengine: error: no tab named {tab!r} in this build "
              f"(choose from {', '.join(win.tab_registry)})", file=sys.stderr)
        win.deleteLater()
        return 2
    chosen = win.tab_registry.get(tab)

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
        """Everything asked for is on screen: the worker and the occlusion map and probe are idle,
        and the chosen tab says its own work is shown."""
        return win.worker.is_idle() and win.occlusion.is_idle() and \
            (chosen is None or chosen.settled is None or chosen.settled())

    def maybe_save():
        if screenshot is not None and code.get("applied") and not code.get("saving") and settled():
            code["saving"] = True
            QTimer.singleShot(200, save)

    def on_ready():
        # the first time the layer is on screen: apply --channel and start the tab's work;
        # both may start more work, whose end (ready, or the poll below) comes back here
        if not code.get("applied"):
            code["applied"] = True
            if channel is not None and not win.apply_channel(channel):
                return
            if chosen is not None and chosen.prepare is not None and screenshot is not None:
                chosen.prepare()
        maybe_save()

    win.ready.connect(on_ready)
    win.occlusion.finished.connect(lambda r: QTimer.singleShot(0, maybe_save) if r is not None else
                                   fail(f"occlusion: {win.occlusion.message.text()}"))
    win.failed.connect(fail)
    for view in (win.patches, win.compute):
        view.finished.connect(lambda _: QTimer.singleShot(0, maybe_save))
    if screenshot is not None:
        QTimer.singleShot(300_000, lambda: fail("timed out waiting for the model"))
        poll = QTimer(win, interval=250)       # tabs with work of their own (not the window's worker)
        poll.timeout.connect(maybe_save)
        poll.start()
    if tab is not None:
        win.set_tab(tab)
    if size is not None:
        win.resize(*size)
    if image2 is not None:
        win.compare.open(image2)
    win.show()
    win.open_model(model or session.DEFAULT_MODEL, image=image, layer=layer)
    app.exec()
    win.occlusion.shutdown()
    win.patches.shutdown()
    win.worker.wait(10000)
    return code["rc"]
