"""The command line's side of the terminal: a progress bar, Ctrl-C as "stop", and names shown safely.

The engine takes plain `progress` and `should_stop` callbacks; these are the
terminal's, as the window's workers are Qt's. File names are whatever a
folder holds, escape sequences included (a name can clear the screen or set
the window title), so every name printed as text goes through `shown`; the
JSON and CSV outputs keep the true names.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)

#: Characters a terminal acts on instead of showing: C0 and C1 controls, DEL, the
#: bidirectional overrides that make a name read backwards, and undecodable bytes.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def shown(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape (ESC as \\x1b)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


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
