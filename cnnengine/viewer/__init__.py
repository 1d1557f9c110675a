"""cnnengine view: a desktop app to step through a network's layers and look
at every feature map, filter, receptive field and prediction.

Needs the `viewer` extra (PyQt6, pyqtgraph): pip install ".[viewer]".
Start it with `cnnengine view [MODEL [IMAGE [IMAGE2]]]` or `cnnengine.viewer.main()`.
"""
import os
import time


def _has_display():
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt" or \
        os.uname().sysname == "Darwin"


def main(model=None, image=None, layer=None, screenshot=None, tab=None, channel=None, size=None, image2=None,
         patches_from=None):
    """Open the app (blocks until it is closed). With `screenshot`, render
    offscreen when there is no display, save the window to that PNG and return."""
    t0 = time.perf_counter()
    if screenshot is not None and not _has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if screenshot is None and not _has_display() and not os.environ.get("QT_QPA_PLATFORM"):
        from ..errors import InputError
        raise InputError("cnnengine view: no display found (DISPLAY is not set); "
                         "use --screenshot OUT.png to render without a screen")
    try:
        from . import launch
    except ImportError as exc:
        from ..errors import BackendUnavailableError
        raise BackendUnavailableError(f"the viewer needs PyQt6 and pyqtgraph ({exc}); "
                                      f"install them with: pip install \"cnnengine[viewer]\"") from None
    return launch.run(model=model, image=image, layer=layer, screenshot=screenshot, t0=t0, tab=tab, channel=channel,
                      size=size, image2=image2, patches_from=patches_from)


__all__ = ["main"]
