"""The list of files a catalogue could not read, with the reason for each.

Opened from the status bar's "2 unreadable files" link or Catalogue ▸
Unreadable files…. The list is read by a short worker that opens the
catalogue read-only in its own thread (the search thread keeps its own
connection), so a catalogue of a million files never blocks the window.
"""

from __future__ import annotations

import logging
import os

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from swimsearch.catalogue import Catalogue

from . import desktop
from .formatting import count_of
from .workers import Job, Worker

log = logging.getLogger(__name__)


class UnreadableWorker(Worker):
    """Reads (relative path, reason) of every unreadable file of one catalogue, and its folder."""

    doing = "reading the list of unreadable files"

    def __init__(self, catalogue_path: str):
        super().__init__()
        self._path = catalogue_path

    def work(self) -> tuple[str, list[tuple[str, str]]]:
        with Catalogue.open(self._path, readonly=True) as catalogue:
            return str(catalogue.root), catalogue.unreadable()


class UnreadableDialog(QDialog):
    """A table of unreadable files and why, with Copy list and Show in folder."""

    def __init__(self, catalogue_path: str, name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("unreadableDialog")
        self.setWindowTitle(f"Unreadable files — {name}")
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.resize(720, 420)
        self.root = ""
        self.files: list[tuple[str, str]] = []
        self.summary = QLabel("Reading the list…")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Why it cannot be read"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 300)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setWordWrap(False)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.copy_button = QPushButton("Copy list")
        self.reveal_button = QPushButton("Show in folder")
        buttons.addButton(self.copy_button, QDialogButtonBox.ActionRole)
        buttons.addButton(self.reveal_button, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.close)
        self.copy_button.clicked.connect(self.copy_list)
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.table.doubleClicked.connect(self.reveal_selected)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        for button in (self.copy_button, self.reveal_button):
            button.setEnabled(False)
        worker = UnreadableWorker(catalogue_path)
        worker.result_ready.connect(self._on_result_ready)
        worker.failed.connect(self.summary.setText)
        self._job = Job(worker, "unreadable")
        self._job.start()

    def _on_result_ready(self, answer: tuple[str, list[tuple[str, str]]]) -> None:
        self.root, self.files = answer
        self.table.setRowCount(len(self.files))
        for row, (relpath, reason) in enumerate(self.files):
            item = QTableWidgetItem(relpath)
            item.setToolTip(os.path.join(self.root, relpath))
            self.table.setItem(row, 0, item)
            why = QTableWidgetItem(reason)
            why.setToolTip(reason)
            self.table.setItem(row, 1, why)
        if self.files:
            n = len(self.files)
            self.summary.setText(
                f"{count_of(n, 'file')} in {self.root} could not be read, so {'it is' if n == 1 else 'they are'} "
                f"not searchable. Fix or replace {'it' if n == 1 else 'them'}, then update the catalogue (F5)."
            )
            self.table.selectRow(0)
        else:
            self.summary.setText("Every file of this catalogue could be read.")
        self.copy_button.setEnabled(bool(self.files))
        self.reveal_button.setEnabled(bool(self.files))

    def copy_list(self) -> None:
        """Tab-separated path and reason, one file a line (for a mail or a spreadsheet)."""
        lines = [f"{os.path.join(self.root, relpath)}\t{reason}" for relpath, reason in self.files]
        QApplication.clipboard().setText("\n".join(lines) + "\n")

    def reveal_selected(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.files):
            desktop.show_in_folder(os.path.join(self.root, self.files[row][0]))

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: the worker is finished before the dialog goes
        self._job.stop(5000)
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._job.stop(5000)
        super().closeEvent(event)
