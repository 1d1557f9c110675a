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


def test_collecting_a_worker_mid_job_does_not_deadlock():
    """A window closed or collected while a Python job runs: the pool must not
    be destroyed by Python's collector (GIL held) while the job needs the GIL.
    In a child process, so that a regression fails instead of hanging the suite."""
    import os
    import subprocess
    import sys
    code = (
        "import time, gc\n"
        "from PyQt6.QtCore import QCoreApplication, QObject\n"
        "from cnnengine.viewer.worker import Worker\n"
        "app = QCoreApplication([])\n"
        "def job():\n"
        "    t = time.time()\n"
        "    while time.time() - t < 0.5:\n"
        "        sum(range(1000))\n"
        "    return 1\n"
        "parent = QObject()\n"
        "w = Worker(parent)\n"
        "w.submit('run', 'x', job)\n"
        "time.sleep(0.05)\n"
        "del w, parent\n"
        "gc.collect()\n"
        "print('collected')\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and "collected" in r.stdout, r.stderr[-2000:]


def test_shutdown_drops_queued_jobs_and_waits_for_the_running_one(qtbot):
    w = Worker()
    ran = []

    def job(k):
        time.sleep(0.2)
        ran.append(k)

    for k in range(5):
        w.submit("run", "x", job, k)
    time.sleep(0.05)
    assert w.shutdown(10000)
    assert ran == [0]
