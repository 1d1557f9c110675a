"""Background work: one QThreadPool thread runs jobs in submission order so
the UI thread never waits on the model. Results come back through queued
signals; a job superseded by a newer one of the same kind is dropped."""
import itertools
import time
import traceback

from PyQt6 import sip
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal


class _Signals(QObject):
    done = pyqtSignal(int, object, float)
    failed = pyqtSignal(int, str, str)


class _Job(QRunnable):
    def __init__(self, job_id, fn, args, signals):
        super().__init__()
        self.job_id, self.fn, self.args, self.signals = job_id, fn, args, signals
        self.setAutoDelete(True)

    def run(self):
        t0 = time.perf_counter()
        try:
            result = self.fn(*self.args)
        except Exception as exc:   # reported to the UI, never raised in the pool
            self.signals.failed.emit(self.job_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return
        self.signals.done.emit(self.job_id, result, time.perf_counter() - t0)


class Worker(QObject):
    """submit(kind, text, fn, *args, on_done=cb, on_error=cb) -> job id.

    `busy(text)` fires when a job starts waiting or running ("" when idle)."""
    busy = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        # Owned by C++, never by a Python parent: ~QThreadPool waits for a
        # running job, and when Python's collector ran it (the GIL held)
        # that job's Python code waited for the GIL: a deadlock on closing
        # or collecting a window mid-job. shutdown() drains it with the GIL released.
        self.pool = QThreadPool()
        sip.transferto(self.pool, None)
        self.pool.setMaxThreadCount(1)
        self._ids = itertools.count(1)
        self._jobs = {}          # id -> (kind, text, on_done, on_error)
        self._latest = {}        # kind -> newest id
        self._signals = _Signals()
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)

    def submit(self, kind, text, fn, *args, on_done=None, on_error=None):
        job_id = next(self._ids)
        self._jobs[job_id] = (kind, text, on_done, on_error)
        self._latest[kind] = job_id
        self.pool.start(_Job(job_id, fn, args, self._signals))
        self._announce()
        return job_id

    def cancel_kind(self, *kinds):
        """Forget pending results of these kinds (their jobs still finish, unseen)."""
        for k in kinds:
            self._latest[k] = next(self._ids)

    def pending(self):
        return len(self._jobs)

    def is_idle(self):
        return not self._jobs

    def wait(self, msecs=-1):
        return self.pool.waitForDone(msecs)

    def shutdown(self, msecs=-1):
        """Drop the queued jobs and wait for the running one (the GIL is
        released meanwhile); whether the pool is idle now."""
        self.pool.clear()
        return self.pool.waitForDone(msecs)

    def _finish(self, job_id):
        entry = self._jobs.pop(job_id, None)
        self._announce()
        if entry is None:
            return None
        kind = entry[0]
        return entry if self._latest.get(kind) == job_id else None

    def _on_done(self, job_id, result, seconds):
        entry = self._finish(job_id)
        if entry and entry[2]:
            entry[2](result, seconds)

    def _on_failed(self, job_id, message, tb):
        entry = self._finish(job_id)
        if entry and entry[3]:
            entry[3](message, tb)

    def _announce(self):
        texts = [t for (_, t, _, _) in self._jobs.values()]
        self.busy.emit(texts[0] if texts else "")
