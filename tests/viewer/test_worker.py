"""The inference worker: jobs run off the UI thread, in order, the event loop
keeps turning meanwhile, superseded results are dropped, errors come back."""
import threading
import time


from .conftest import require_qt

require_qt()

from PyQt6.QtCore import QTimer  # noqa: E402

from cnnengine.viewer.worker import Worker  # noqa: E402


def test_jobs_run_off_the_ui_thread_and_ui_keeps_running(qtbot):
    w = Worker()
    ui = threading.get_ident()
    got, ticks = [], []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)

    def slow():
        time.sleep(0.3)
        return threading.get_ident()

    busy = []
    w.busy.connect(busy.append)
    w.submit("run", "Running…", slow, on_done=lambda r, s: got.append((r, s)))
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    timer.stop()
    assert got[0][0] != ui and got[0][1] >= 0.25
    assert len(ticks) >= 5          # the event loop was not blocked
    assert busy[0] == "Running…" and busy[-1] == ""
    assert w.is_idle()


def test_superseded_results_are_dropped_and_errors_reported(qtbot):
    w = Worker()
    seen, errors = [], []
    w.submit("run", "a", lambda: (time.sleep(0.1), "old")[1], on_done=lambda r, s: seen.append(r))
    w.submit("run", "b", lambda: "new", on_done=lambda r, s: seen.append(r))
    w.submit("other", "c", lambda: 1 / 0, on_error=lambda m, tb: errors.append(m))
    qtbot.waitUntil(w.is_idle, timeout=5000)
    assert seen == ["new"]
    assert errors and errors[0].startswith("ZeroDivisionError")
