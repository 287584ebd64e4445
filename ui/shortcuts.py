"""Help ▸ Keyboard shortcuts: a table made from the actions tables, so it can never fall behind them.

Every command with a key in `ui.actions.ACTIONS` (and in the duplicate
review's table) is listed under its menu, with the keys as this platform
writes them; `MORE_KEYS` adds what is done with keys and the mouse but is not
a menu command.
"""

from __future__ import annotations

import logging
from typing import Iterable

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from .actions import ACTIONS, ActionSpec

log = logging.getLogger(__name__)

#: (where, keys, what) for keys and gestures that are not menu commands.
MORE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Results", "Enter", "Search from the selected match"),
    ("Results", "Arrow keys", "Select another match"),
    ("Results", "Double-click", "Open the file in your viewer"),
    ("Results", "Right-click", "Search, open, show in folder, copy path"),
    ("Query panel", "Drop a file or a picture", "Search with it"),
    ("Query panel", "Click", "Choose a file to search with"),
)


def shortcut_rows(tables: Iterable[tuple[str, Iterable[ActionSpec]]] = (("", ACTIONS),)) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every command with keys, in table order, then MORE_KEYS.

    Args:
        tables: (section title, specs); a spec is listed under its menu, or the
            section title when that is given.
    """
    rows = []
    for title, specs in tables:
        for spec in specs:
            if not spec.shortcuts:
                continue
            keys = ", ".join(QKeySequence(k).toString(QKeySequence.NativeText) for k in spec.shortcuts)
            where = title or spec.menu.replace("&", "")
            rows.append((where, keys, spec.text.replace("…", "")))
    return rows + list(MORE_KEYS)


class ShortcutsDialog(QDialog):
    """The keyboard shortcuts, in a table that can be read and searched with the eyes."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Keys", "What it does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.NoSelection)
        self.table.setFocusPolicy(Qt.NoFocus)
        for row, values in enumerate(rows):
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(620, 560)
