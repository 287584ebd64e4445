"""Helpers for the window tests: the shared test helpers, waiting, and dropping files and pictures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for the shared helpers

from helpers import CLOTHING, DATA, REPO, TESTS, FakeEmbedder, copy_clothing_photos, make_pattern_images  # noqa: E402,F401

#: Generous limits for waits; a test that hangs fails instead of blocking CI.
WAIT_MS = 20_000


def open_catalogue(qtbot, window, path) -> object:
    """Open a folder or catalogue in `window` and wait until it is ready; returns its CatalogueState."""
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as blocker:
        window.open_path(str(path))
    return blocker.args[0]


def drop(widget, mime) -> bool:
    """Drag `mime` onto `widget` and drop it, as a file manager or a browser does; True if accepted."""
    from PyQt5.QtCore import QPointF, Qt
    from PyQt5.QtGui import QDragEnterEvent, QDropEvent
    from PyQt5.QtWidgets import QApplication

    centre = widget.rect().center()
    enter = QDragEnterEvent(centre, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(centre), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def drop_and_wait(qtbot, window, path):
    """Drop an image file on the query panel and wait for the results; returns the SearchResult."""
    from ui.query_panel import file_url_mime

    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        assert drop(window.query_panel, file_url_mime(str(path)))
    return blocker.args[0]


def gated_model(gate, free_batches: int):
    """A model factory whose fake models pause after `free_batches` batches until `gate` is set.

    Lets a test catch a build in the middle, deterministically: the build
    thread waits on the gate (never the test), and a test that forgets to
    open it still ends after WAIT_MS.
    """

    from ui.build import BATCH_SIZE

    def open_embedder():
        embedder = FakeEmbedder()
        plain = embedder.embed
        images = [0]

        def embed(pixels):
            # counted in images: the network runs one image at a time, commits are batches
            if images[0] >= free_batches * BATCH_SIZE:
                gate.wait(WAIT_MS / 1000)
            images[0] += len(pixels)
            return plain(pixels)

        embedder.embed = embed
        return embedder

    return open_embedder


def error_texts(window) -> list[str]:
    """The messages of the error boxes open on `window`."""
    from PyQt5.QtWidgets import QMessageBox

    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]
