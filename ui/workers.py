"""The thin Qt adapter over the engine's long work: a Worker on a QThread (house style 6-10).

A `Worker` turns the engine's plain callbacks into signals: `progress_changed`,
`result_ready(object)`, `failed(str)` and a bare `finished()` that always
comes last and quits its thread. Exceptions never die silently in a thread:
known ones become one plain sentence, unknown ones are logged with their
traceback and get a generic message. `Job` runs one worker on its own QThread;
`JobRunner` runs one job at a time, cancelling and disconnecting the previous
one when a new one starts.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable

from PyQt5 import sip
from PyQt5.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot

from swimsearch.errors import Cancelled

from .errors import KNOWN_ERRORS, plain_message

log = logging.getLogger(__name__)

#: Every QThread started by a Job, until it has finished (tests check none outlives them).
_threads: set[QThread] = set()


def running_threads() -> list[QThread]:
    """The worker threads that are still running."""
    return [t for t in list(_threads) if not sip.isdeleted(t) and t.isRunning()]


def name_this_thread() -> None:
    """Give the running QThread's name to Python's view of it, so log lines say which worker wrote them."""
    name = QThread.currentThread().objectName()
    if name:
        threading.current_thread().name = name


class Outbox(QObject):
    """Hands Python objects from any thread to the GUI thread, where its signals are sent.

    A queued signal whose arguments are Python objects has Qt copy them while it
    holds one of its shared connection locks, and the copy needs Python's GIL:
    if the GUI thread holds the GIL while Qt takes that lock (Qt connects
    objects inside many calls, e.g. for its accessibility cache), both threads
    wait for ever (a window test hung this way, 2 of ~6 full runs). So other
    threads `post` the objects here and send only a bare signal across; the
    GUI thread then sends the real one. Subclasses declare the signals; an
    outbox must be made in the GUI thread.
    """

    _wake = pyqtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._mail: deque[tuple[str, tuple]] = deque()
        self._wake.connect(self._deliver, Qt.QueuedConnection)

    def post(self, signal: str, *args: Any) -> None:
        """Send this outbox's `signal` with `args` in the GUI thread (callable from any thread)."""
        with self._lock:
            self._mail.append((signal, args))
        self._wake.emit()

    @pyqtSlot()
    def _deliver(self) -> None:
        while True:
            with self._lock:
                if not self._mail:
                    return
                signal, args = self._mail.popleft()
            getattr(self, signal).emit(*args)


class WorkerOutbox(Outbox):
    """What a worker hands the GUI thread: its result."""

    result_ready = pyqtSignal(object)


class Worker(QObject):
    """Base of the app's workers: signals, cancellation, and errors turned into plain words.

    Subclasses implement `work()`; `run()` calls it on the worker's thread.
    Signals carrying Python objects live on `outbox` (made in the GUI thread
    with the worker) and are sent with `outbox.post` from the worker's thread.
    """

    progress_changed = pyqtSignal(str, int, int)  # phase, done, total
    failed = pyqtSignal(str)
    finished = pyqtSignal()

    outbox_type: type[WorkerOutbox] = WorkerOutbox

    #: What the worker does, for the generic error message ("building the catalogue").
    doing = "working"

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()
        self.outbox = self.outbox_type()  # not a child: children move to the worker's thread with it

    @property
    def result_ready(self) -> Any:
        """The result of `work()`, sent in the GUI thread."""
        return self.outbox.result_ready

    def cancel(self) -> None:
        """Ask the work to stop at its next check (thread-safe)."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def work(self) -> Any:
        raise NotImplementedError

    @pyqtSlot()
    def run(self) -> None:
        """Do the work once; `finished` always comes last."""
        name_this_thread()
        try:
            self.guarded(self._work_and_emit)
        finally:
            self.finished.emit()

    def _work_and_emit(self) -> None:
        self.outbox.post("result_ready", self.work())

    def guarded(
        self, action: Callable[[], None], doing: str | None = None, on_error: Callable[[str], None] | None = None
    ) -> bool:
        """Run `action`; swallow Cancelled and turn any error into one plain message.

        The message goes to `on_error`, or by default out through `failed`.
        Returns True when the action succeeded.
        """
        report = on_error or self.failed.emit
        try:
            action()
            return True
        except Cancelled:
            log.info("%s cancelled", type(self).__name__)
        except KNOWN_ERRORS as exc:
            message = plain_message(exc, doing or self.doing)
            log.warning("%s", message)
            report(message)
        except Exception as exc:  # noqa: BLE001 - the last line of defence in a thread
            report(plain_message(exc, doing or self.doing))
        return False


class Job:
    """One worker on its own QThread.

    The worker's `finished` quits the thread (a direct connection, so it works
    while the GUI thread is blocked waiting for it). The worker and the QThread
    are owned by Python, and only Python deletes them: a worker deleted by Qt
    in its own thread (`deleteLater`) tears down the connections into it
    without Python's GIL held, and telling a Python-made sender (the QThread's
    `started`) takes the GIL while Qt holds its connection lock, the opposite
    order to the GUI thread's, which can hold the GIL and wait for that lock
    (a label's `setText` connects objects): both wait for ever (a window test
    hung this way in CI). Deleted by Python, with the GIL taken first, the
    order is the same in every thread.
    """

    def __init__(self, worker: Worker, name: str, *, start: Callable[[], None] | None = None):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.started.connect(start or worker.run)
        worker.finished.connect(self.thread.quit, Qt.DirectConnection)
        self.thread.finished.connect(self._on_thread_finished)
        _threads.add(self.thread)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.worker.cancel()

    def is_running(self) -> bool:
        return not sip.isdeleted(self.thread) and self.thread.isRunning()

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the thread has stopped (True) or `msecs` have passed (False)."""
        if sip.isdeleted(self.thread):
            return True
        return self.thread.wait(msecs)

    def stop(self, msecs: int = 30_000) -> bool:
        """Cancel, then wait for the thread."""
        self.cancel()
        stopped = self.wait(msecs)
        if not stopped:
            log.error("the %s thread did not stop within %d ms", self.thread.objectName(), msecs)
        return stopped

    def _on_thread_finished(self) -> None:
        self.thread.wait()  # `finished` is sent just before the thread really ends
        _threads.discard(self.thread)


class JobRunner(QObject):
    """Runs one job at a time (builds): a new job cancels and disconnects the previous one.

    The new job starts as soon as the previous thread has stopped, so two
    builds never write one catalogue at once.
    """

    idle_changed = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.job: Job | None = None
        self._pending: Job | None = None
        self._stopped = False  # `stop` was called: the window is closing, no job starts any more

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.is_running() or self._pending is not None

    @property
    def has_pending(self) -> bool:
        """A job waits for the current one to stop."""
        return self._pending is not None

    def start(self, job: Job) -> None:
        if self._stopped:  # e.g. an update the closing window's last events ask for: it would outlive the window
            log.info("the %s job is not started: the window is closing", job.thread.objectName())
            return
        previous = self.job
        if previous is not None and previous.is_running():
            _disconnect_outputs(previous.worker)
            previous.cancel()
            self._pending = job
            previous.thread.finished.connect(self._start_pending)
            if not previous.is_running():
                # it ended between the check and the connection, so its `finished` may never reach
                # `_start_pending` (a window test waited for ever on a "remove them" build this way)
                self._start_pending()
        else:
            self._launch(job)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending = None
        if self.job is not None:
            self.job.cancel()

    def stop(self, msecs: int = 30_000) -> None:
        """Cancel everything and wait for the thread (closing the window); no job starts after it."""
        self._stopped = True
        self._pending = None
        if self.job is not None:
            self.job.stop(msecs)

    def _start_pending(self) -> None:
        job, self._pending = self._pending, None
        if job is not None:
            self._launch(job)

    def _launch(self, job: Job) -> None:
        self.job = job
        job.thread.finished.connect(self._on_finished)
        self.idle_changed.emit(False)
        job.start()

    def _on_finished(self) -> None:
        if self._pending is None and (self.job is None or not self.job.is_running()):
            self.idle_changed.emit(True)


def _disconnect_outputs(worker: Worker) -> None:
    """Disconnect a superseded worker's progress, result and failure signals (not `finished`)."""
    for name in ("progress_changed", "result_ready", "failed", "damaged"):
        try:
            getattr(worker, name).disconnect()
        except (TypeError, RuntimeError, AttributeError):  # nothing connected, the worker gone, or no such signal
            pass
