"""The window's steering commands: several designs at once, "not like this", decisions, the folder filter,
a box drawn on the query picture and the colour slider.

A part of the main window (kept out of main_window.py so each stays small):
it turns grid selections, drops of several files, the result menu's
"Not like this" / "Same design" / "Not similar" and the folder button into
calls on the session (ui/session.py), and answers the result menu's
questions (is this match decided? can it be?). The actions table
(ui/actions.py) names its slots as `steering.<name>`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PyQt5.QtCore import QObject

from swimsearch.search import Match
from swimsearch.stores.verdicts import DIFFERENT, SAME

from .folder_dialog import FolderDialog
from .queries import CatalogueImageQuery, FileQuery

log = logging.getLogger(__name__)


class SteeringControls(QObject):
    """Steering for one window (its parent)."""

    def __init__(self, window: Any):  # the MainWindow (not imported: it imports this module)
        super().__init__(window)
        self.window = window
        self.session = window.session
        window.query_panel.files_dropped.connect(self.search_files)
        window.results_pane.folders_requested.connect(self.choose_folders)
        window.search.decision_failed.connect(window.show_error)
        window.query_panel.detail_drawn.connect(self.session.search_detail)
        window.query_panel.colour_changed.connect(self.set_colour)

    def set_colour(self, colour: float) -> None:
        """How much colour matters (the query panel's slider): remembered at once, and the query runs again."""
        self.window.settings["search/colour"] = round(colour * 100)
        self.session.set_colour(colour)

    # --- several designs at once -----------------------------------------------------------

    def search_selected(self) -> None:
        """Search with every selected result together (Ctrl/Shift-click to select them)."""
        chosen = [m for m in self.window.results_view.selected_matches() if not m.missing]
        if chosen:
            self.session.search_together([CatalogueImageQuery(m.image_id, m.path) for m in chosen])

    def search_files(self, paths: tuple[str, ...], left_out: str = "") -> None:
        """Several files dropped at once: one search with them all.

        Args:
            left_out: the sentence on the dropped files that are not pictures, for the status bar.
        """
        self.session.search_together([FileQuery(os.path.abspath(p)) for p in paths], note=left_out)

    def several_selected(self, match: Match) -> bool:
        return len(self.window.results_view.selected_matches()) > 1

    # --- not like this, and decisions ----------------------------------------------------------

    def not_like(self, match: Match) -> None:
        """Steer the query away from this result: the list re-ranks at once."""
        self.session.not_like(match)

    def mark_same(self, match: Match) -> None:
        """Keep "same design" for this result and the query (again: take it back)."""
        self.session.decide(match, None if match.decision == SAME else SAME)

    def mark_different(self, match: Match) -> None:
        """Keep "not similar" for this result and the query (again: take it back)."""
        self.session.decide(match, None if match.decision == DIFFERENT else DIFFERENT)

    def is_same(self, match: Match) -> bool:
        return match.decision == SAME

    def is_different(self, match: Match) -> bool:
        return match.decision == DIFFERENT

    # the same from the keyboard, on the result in focus (the grid's current one)

    def not_like_current(self) -> None:
        match = self.window.results_view.current_match()
        if match is not None and self.can_steer_from(match):
            self.not_like(match)

    def mark_same_current(self) -> None:
        match = self.window.results_view.current_match()
        if match is not None and self.can_decide(match):
            self.mark_same(match)

    def mark_different_current(self) -> None:
        match = self.window.results_view.current_match()
        if match is not None and self.can_decide(match):
            self.mark_different(match)

    def can_steer_from(self, match: Match) -> bool:
        """Not the query itself: a result can be steered from or decided on."""
        return not self.window.model.is_query(match)

    def can_decide(self, match: Match) -> bool:
        state = self.session.catalogue
        return self.can_steer_from(match) and self.session.view().can_decide and state is not None and not state.readonly

    # --- the folder filter ---------------------------------------------------------------------

    def choose_folders(self) -> None:
        """Open the folder filter (a tree of the catalogue's subfolders); what is ticked narrows every search."""
        state = self.session.catalogue
        if state is None:
            return
        dialog = FolderDialog(state.folders, self.session.folders, state.name, self.window)
        dialog.folders_chosen.connect(self.session.set_folders)
        dialog.open()
