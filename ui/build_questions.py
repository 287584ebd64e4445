"""The questions a build asks the user: build this dropped folder? rebuild with this model? remove the files gone?
set a damaged file aside (or a copied folder's file that describes the original folder)?

A part of the main window (kept out of main_window.py so each stays small):
it answers the session's `model_differs`, `removal_held` and
`catalogue_damaged` signals with a window-modal question and hands the
answer back to the session. One "remove them?" question is open at a time:
a watched folder that updates again replaces it rather than stacking a
second one. A damaged catalogue is never overwritten or deleted: when the
user agrees, it is renamed beside itself (`swimsearch.locations.set_aside`)
and a new one is built in its place.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QObject
from PyQt5.QtWidgets import QMessageBox

from swimsearch.locations import set_aside

from . import dialogs
from .formatting import count_of
from .locations import target_for
from .session_types import CatalogueState, Target, target_name

log = logging.getLogger(__name__)


class BuildQuestions(QObject):
    """The update's questions for one window (its parent)."""

    def __init__(self, window: Any):  # the MainWindow (not imported: it imports this module)
        super().__init__(window)
        self.window = window
        self.session = window.session
        self._removal_box: QMessageBox | None = None  # the open "remove them from the catalogue?" question
        self.session.removal_held.connect(self._on_removal_held)
        self.session.model_differs.connect(self._on_model_differs)
        self.session.catalogue_damaged.connect(self._on_catalogue_damaged)
        self.session.catalogue_copied.connect(self._on_catalogue_copied)
        for service in (window.search, window.builds):  # told just before the failure it explains
            service.damaged.connect(self.session.on_damaged)
        window.search.other_folder.connect(self.session.on_other_folder)

    def open_dropped(self, path: str) -> None:
        """A folder or catalogue file dropped on the window: opened, but a folder with no catalogue yet is built
        (every picture read, a file written into it) only once the user says so; default: Cancel."""
        try:
            target = target_for(path)
        except ValueError as exc:
            self.window.show_error(str(exc))
            return
        if target.exists or target.root is None:
            self.session.open(target)
            return
        text = (
            f"Build a catalogue of the folder “{target_name(target)}”?\n\n"
            f"Every picture in {target.root} and its subfolders is read (a large folder takes a while; "
            f"Cancel in the status bar stops it), and the catalogue is kept as {target.path}."
        )
        dialogs.ask(self.window, text, "Build", "Cancel", lambda: self.session.open(target), name="buildDroppedBox")

    def _on_model_differs(self, state: CatalogueState) -> None:
        """The catalogue was built with another model: say so, and offer to rebuild it with this one."""
        text = (
            f"“{state.name}” was built with another model, {state.built_with}, not with {state.model_name} "
            "that this SwimSearch uses, so pictures cannot be searched in it.\n\n"
            f"Rebuild it with this model? Every picture is read again ({count_of(state.images, 'picture')}); "
            "the two models' descriptions are never mixed."
        )
        dialogs.ask(self.window, text, "Rebuild now", "Not now", self.session.update, name="modelBox")

    def _on_removal_held(self, count: int, folder: str, reason: str) -> None:
        """An update found many files gone at once and kept them: ask whether they really were deleted."""
        if self._removal_box is not None:  # one question at a time (a watched folder updates again)
            self._removal_box.close()
        text = (
            f"{count:,} pictures are no longer in {folder}.\n\n{reason[:1].upper()}{reason[1:]}. "
            "They were kept in the catalogue for now.\n\nIf they really were deleted or moved away, "
            "remove them from the catalogue. If the drive or share comes back, keep them: nothing is read again."
        )
        self._removal_box = dialogs.ask(
            self.window, text, "Remove them from the catalogue", "Keep them", self.session.confirm_removal,
            name="removalBox", on_no=self.session.keep_held,
        )
        box = self._removal_box
        box.destroyed.connect(lambda _=None: self._removal_box is box and setattr(self, "_removal_box", None))

    def _on_catalogue_damaged(self, target: Target, message: str) -> None:
        """A folder's catalogue is damaged: offer to set it aside (renamed, kept) and build a new one; default: no."""
        text = (
            f"{message}\n\nSet the damaged file aside and build a new catalogue of “{target_name(target)}”? "
            f"It is kept beside itself as {Path(target.path).name}.damaged-DATE-TIME, nothing is deleted; "
            "every picture of the folder is read again."
        )
        dialogs.ask(self.window, text, "Set it aside and build a new one", "Leave it",
                    lambda: self._set_aside_and_build(target), name="damagedBox", on_no=self.session.leave_damaged)

    def _on_catalogue_copied(self, target: Target, message: str) -> None:
        """A folder's catalogue file describes another folder (copied with it): offer a new one; default: no."""
        text = (
            f"{message}\n\nThe folder was probably copied together with its catalogue, so searching it would "
            f"show the other folder's pictures. Build a new catalogue of “{target_name(target)}”? The copied file "
            f"is kept beside itself as {Path(target.path).name}.copied-DATE-TIME, nothing is deleted; every "
            "picture of the folder is read."
        )
        dialogs.ask(self.window, text, "Set it aside and build a new one", "Leave it",
                    lambda: self._set_aside_and_build(target, "copied"), name="copiedBox", on_no=self.session.leave_damaged)

    def _set_aside_and_build(self, target: Target, what: str = "damaged") -> None:
        try:
            kept = set_aside(target.path, why=what)
        except OSError as exc:
            self.session.leave_damaged()
            self.window.show_error(f"The {what} catalogue {target.path} could not be set aside: {exc.strerror or exc}.")
            return
        self.session.rebuild_damaged(target, kept.name, what)
