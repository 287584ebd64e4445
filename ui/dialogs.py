"""The app's dialogs in one place: file choosers and the plain-sentence error box.

The window calls these through the module (`dialogs.choose_image(...)`), so
tests can replace a chooser without a modal dialog blocking them.
"""

from __future__ import annotations

import logging
from typing import Callable

from PyQt5.QtCore import QDir, Qt
from PyQt5.QtWidgets import QFileDialog, QMessageBox, QWidget

from swimsearch.catalogue import CATALOGUE_SUFFIX
from swimsearch.images import IMAGE_EXTENSIONS
from swimsearch.sheet import SHEET_SUFFIXES

from .thumbnails import ThumbnailCache

log = logging.getLogger(__name__)

IMAGE_FILTER = "Pictures ({});;All files (*)".format(" ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)))
CATALOGUE_FILTER = f"SwimSearch catalogues (*{CATALOGUE_SUFFIX});;All files (*)"
SHEET_FILTER = "PDF document (*.pdf);;Web page (*.html)"


def choose_image(parent: QWidget, folder: str, cache: ThumbnailCache | None = None) -> str:
    """An image file to search with ("" when cancelled); with a thumbnail cache, the dialog previews pictures."""
    if cache is None:
        path, _ = QFileDialog.getOpenFileName(parent, "Search with a design", folder, IMAGE_FILTER)
        return path
    from .file_preview import ImageFileDialog

    dialog = ImageFileDialog(parent, "Search with a design", folder, IMAGE_FILTER, cache)
    if dialog.exec_() != QFileDialog.Accepted or not dialog.selectedFiles():
        return ""
    return dialog.selectedFiles()[0]


def choose_folder(parent: QWidget, folder: str, title: str = "Build a catalogue from a folder of designs") -> str:
    """A folder ("" when cancelled): by default, a folder of designs to build a catalogue from."""
    return QFileDialog.getExistingDirectory(parent, title, folder)


def confirm(parent: QWidget, text: str, title: str = "SwimSearch") -> bool:
    """Ask before a bulk change; True when the user said yes."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
    return answer == QMessageBox.Yes


def ask(parent: QWidget, text: str, yes: str, no: str, on_yes: Callable[[], None], *, name: str = "questionBox",
        title: str = "SwimSearch", on_no: Callable[[], None] | None = None) -> QMessageBox:
    """A window-modal question with two worded answers that does not block the event loop.

    `on_yes` runs when the user picks `yes`, `on_no` when they pick `no` or close
    the box; `no` is the default (Enter or Escape), so a hurried key press
    changes nothing.
    """
    box = QMessageBox(QMessageBox.Question, title, text, QMessageBox.NoButton, parent)
    box.setObjectName(name)
    yes_button = box.addButton(yes, QMessageBox.AcceptRole)
    no_button = box.addButton(no, QMessageBox.RejectRole)
    box.setDefaultButton(no_button)
    box.setEscapeButton(no_button)
    box.setWindowModality(Qt.WindowModal)
    box.setAttribute(Qt.WA_DeleteOnClose)
    # on `finished`, not `buttonClicked`: closed by its title bar's X, the box clicks no button (a reviewer, round 14:
    # the question about a copied catalogue then never came again)
    box.finished.connect(lambda _=None: on_yes() if box.clickedButton() is yes_button else on_no() if on_no else None)
    box.open()
    return box


def choose_catalogue(parent: QWidget, folder: str) -> str:
    """An existing catalogue file ("" when cancelled); hidden files are shown, catalogues are hidden files."""
    dialog = QFileDialog(parent, "Open a catalogue", folder, CATALOGUE_FILTER)
    dialog.setFileMode(QFileDialog.ExistingFile)
    dialog.setFilter(dialog.filter() | QDir.Hidden)
    if dialog.exec_() != QFileDialog.Accepted or not dialog.selectedFiles():
        return ""
    return dialog.selectedFiles()[0]


def choose_csv_path(parent: QWidget, suggested: str) -> str:
    """Where to export the match list ("" when cancelled); adds .csv when left out."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export matches as CSV", suggested, "CSV files (*.csv)")
    if path and not path.lower().endswith(".csv"):
        path += ".csv"
    return path


def choose_sheet_path(parent: QWidget, suggested: str) -> str:
    """Where to save a contact sheet ("" when cancelled); the chosen kind's suffix is added when left out."""
    path, chosen = QFileDialog.getSaveFileName(parent, "Export as contact sheet", suggested, SHEET_FILTER)
    if path and not path.lower().endswith(SHEET_SUFFIXES):
        path += ".html" if chosen.startswith("Web page") else ".pdf"
    return path


def show_about(parent: QWidget) -> None:
    from swimsearch import __version__

    QMessageBox.about(
        parent,
        "About SwimSearch",
        f"<b>SwimSearch {__version__}</b><p>Finds similar designs in your image catalogue, offline.</p>"
        "<p>Drop a design, see ranked look-alikes with their similarity, click one to search from it, "
        "export the list as CSV.</p>",
    )


def show_error(parent: QWidget, text: str, title: str = "SwimSearch") -> QMessageBox:
    """One plain sentence in a window-modal box that does not block the event loop."""
    box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, parent)
    box.setObjectName("errorBox")
    box.setWindowModality(Qt.WindowModal)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.open()
    return box

