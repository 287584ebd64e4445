"""Build progress in the status bar: what is happening, count, rate, time left, and Cancel."""

from __future__ import annotations

import logging
import time

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from .formatting import duration
from .widgets import ElidedLabel

log = logging.getLogger(__name__)


def describe_progress(phase: str, done: int, total: int, elapsed: float) -> str:
    """One line about a build: phase, count, rate and time left.

    The catalogue's name is not repeated: the status bar's catalogue label
    beside it says which catalogue is being built.

    Args:
        phase: the engine's phase ("start", "scan", "embed", "details", "index").
        done, total: progress within the phase.
        elapsed: seconds since the phase started.
    """
    if phase in ("start", "scan"):
        return "Looking for pictures…"
    if phase == "index":
        return f"Indexing {total:,} pictures…" if total else "Indexing…"
    if total == 0:
        return "Every picture is up to date; checking the index…"
    what = "Reading pictures again for search by detail and colour" if phase == "details" else "Reading pictures"
    text = f"{what}, {done:,} of {total:,}"
    if done > 0 and elapsed > 0.5:
        rate = done / elapsed
        text += f"  ·  {rate:,.0f} per second"
        if done < total:
            text += f"  ·  about {duration((total - done) / rate)} left"
    return text


class BuildProgress(QWidget):
    """A label, a slim bar and a Cancel button; hidden while nothing is built."""

    cancel_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = ElidedLabel(mode=Qt.ElideRight)  # the status bar can be narrow: never clip mid-word
        self.label.setMinimumWidth(160)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(120)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current pictures; what was read is kept and searchable")
        self.cancel_button.clicked.connect(self._on_cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.setSpacing(8)
        layout.addWidget(self.label, 1)  # the spare width goes to the words, not the button
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._name = ""
        self._phase = ""
        self._phase_started = 0.0
        self.hide()

    def start(self, name: str) -> None:
        self._name = name
        self._phase = ""
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.update_progress("start", 0, 0)
        self.show()

    def update_progress(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self._phase:
            self._phase, self._phase_started = phase, now
        if self.cancel_button.isEnabled():
            self.label.set_full_text(describe_progress(phase, done, total, now - self._phase_started))
        elif phase == "index":
            self.label.set_full_text(f"“{self._name}”: stopped; making the {total:,} pictures read so far searchable…")
        if phase in ("embed", "details") and total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        else:
            self.bar.setRange(0, 0)  # busy: no count to show

    def finish(self) -> None:
        self.hide()

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Stopping…")
        self.label.set_full_text(f"“{self._name}”: stopping; what was read is kept…")
        self.cancel_requested.emit()
