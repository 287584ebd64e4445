"""Narrow by folder: tick the subfolders of the catalogue to search in (a collection, a season).

Shows the catalogue's subfolders as a tree, each with the number of designs
under it; what is ticked becomes the session's folder filter (remembered per
catalogue). Nothing ticked, or "All folders", searches everywhere.
"""

from __future__ import annotations

import logging

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from .formatting import count_of

log = logging.getLogger(__name__)

FOLDER_ROLE = Qt.UserRole + 1


class FolderDialog(QDialog):
    """A checkable tree of a catalogue's subfolders; `folders_chosen(tuple)` when accepted.

    Args:
        folders: (subfolder, designs under it) of the catalogue, "" being its folder.
        chosen: the subfolders ticked now.
    """

    folders_chosen = pyqtSignal(object)  # tuple of relative subfolders (empty: all)

    def __init__(self, folders: tuple[tuple[str, int], ...], chosen: tuple[str, ...], name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("folderDialog")
        self.setWindowTitle(f"Search in folders — {name}")
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.resize(420, 460)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Designs"])
        self.tree.setColumnWidth(0, 300)
        self.items: dict[str, QTreeWidgetItem] = {}
        for folder, count in sorted(folders):
            if not folder:
                continue
            parent_item = self.items.get(folder.rsplit("/", 1)[0]) if "/" in folder else None
            item = QTreeWidgetItem([folder.rsplit("/", 1)[-1], f"{count:,}"])
            item.setData(0, FOLDER_ROLE, folder)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(0, Qt.Checked if folder in chosen else Qt.Unchecked)
            item.setToolTip(0, f"{folder}: {count_of(count, 'design')}")
            (parent_item.addChild if parent_item is not None else self.tree.addTopLevelItem)(item)
            self.items[folder] = item
        self.tree.expandAll()
        note = QLabel("Only designs in the ticked folders (and the folders inside them) are searched.")
        note.setWordWrap(True)
        note.setObjectName("muted")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.all_button = buttons.addButton("All folders", QDialogButtonBox.ResetRole)
        self.all_button.setToolTip("Search the whole catalogue again")
        self.all_button.clicked.connect(self._choose_all)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)

    def set_checked(self, folder: str, checked: bool = True) -> None:
        self.items[folder].setCheckState(0, Qt.Checked if checked else Qt.Unchecked)

    def chosen(self) -> tuple[str, ...]:
        return tuple(folder for folder, item in self.items.items() if item.checkState(0) == Qt.Checked)

    def accept(self) -> None:
        self.folders_chosen.emit(self.chosen())
        super().accept()

    def _choose_all(self) -> None:
        for item in self.items.values():
            item.setCheckState(0, Qt.Unchecked)
        self.accept()
