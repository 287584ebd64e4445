"""The two questions an update asks the user: rebuild with this model? remove the files that are gone?

A part of the main window (kept out of main_window.py so each stays small):
it answers the session's `model_differs` and `removal_held` signals with a
window-modal question and hands the answer back to the session. One
"remove them?" question is open at a time: a watched folder that updates
again replaces it rather than stacking a second one.
"""

from __future__ import annotations

import logging
from typing import Any

from PyQt5.QtCore import QObject
from PyQt5.QtWidgets import QMessageBox

from . import dialogs
from .formatting import count_of
from .session_types import CatalogueState

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
