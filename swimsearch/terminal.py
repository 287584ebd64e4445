"""The command line's side of long work: a progress bar on the terminal, and Ctrl-C as "stop".

The engine takes plain `progress` and `should_stop` callbacks; these are the
terminal's, as the window's workers are Qt's.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


class TerminalProgress:
    """A one-line progress bar with rate and time left, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = 0.0
        self._phase = ""
        self._started = time.monotonic()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self._phase:
            self._phase, self._started = phase, now
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        width = 30
        filled = int(width * done / total) if total else width
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 and total else 0
        eta = f"{int(left // 60)}:{int(left % 60):02d} left" if done and done < total else ""
        self.stream.write(
            f"\r{phase:6s} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {rate:6.1f}/s  {eta:12s}"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class StopOnInterrupt:
    """First Ctrl-C asks the build to stop after its current batch; a second one aborts."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after the current batch (Ctrl-C again to abort)...", file=sys.stderr)

    def __call__(self) -> bool:
        return self.requested
