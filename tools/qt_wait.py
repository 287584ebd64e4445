"""Waiting on a live Qt window from a driver script (the screenshot tool, the GUI benchmark)."""

from __future__ import annotations

import time


def wait_until(predicate, what: str, *, timeout: float, step_ms: int = 5) -> None:
    """Run the event loop in `step_ms` slices until `predicate()` holds; TimeoutError after `timeout` s."""
    from PyQt5.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        loop = QEventLoop()
        QTimer.singleShot(step_ms, loop.quit)
        loop.exec_()
