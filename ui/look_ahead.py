"""Search ▸ Look ahead while idle: the switch, remembered, and how far the pass is, in the status bar.

While nobody searches, the search thread looks ahead at the open catalogue's
designs (swimsearch/look_verdicts.py, ui/search.py): it searches with each,
a couple at a time, so the look at the pairs it would show as *same design*
is made once and kept. A click on a design afterwards looks at nothing. It
takes half of one core at most; the status bar says how far it is
("Looking ahead 40 %") while it runs, and the switch stops it at once.
"""

from __future__ import annotations

from typing import Any

from PyQt5.QtWidgets import QLabel

from swimsearch.look_verdicts import AHEAD_UP_TO


class LookAheadControl:
    """The window's side of looking ahead: the setting, the session's checked state, the progress label."""

    def __init__(self, window: Any):  # the MainWindow (not imported: the window imports this)
        self._window = window
        self.label = QLabel()
        self.label.setToolTip("Looking ahead at this catalogue's designs while nobody searches, so that a click on "
                              "one is quicker; Search ▸ Look ahead while idle stops it")
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance("Looking ahead 100 %"))  # no jitter
        self.label.hide()  # put in the status bar at the first progress (the window makes its bar after this)
        window.search.ahead_progress.connect(self._on_progress)
        self._apply(bool(window.settings["search/look_ahead"]))

    def set_enabled(self, on: bool) -> None:
        """Look ahead while idle or not; remembered."""
        self._window.settings["search/look_ahead"] = on
        self._apply(on)
        state = self._window.session.catalogue
        if on and state is not None and state.searchable > AHEAD_UP_TO:
            message = f"Not looked ahead: more than {AHEAD_UP_TO:,} designs (its searches keep what they look at)."
        else:
            message = "Looking ahead while idle: clicks on designs get quicker." if on else "Looking ahead switched off."
        self._window.statusBar().showMessage(message, 6000)

    def _apply(self, on: bool) -> None:
        self._window.search.set_looks_ahead(on)
        self._window.session.set_looking_ahead(on)
        if not on:
            self.label.hide()

    def _on_progress(self, done: int, total: int) -> None:
        running = 0 <= done < total
        if running and self.label.parent() is None:
            self._window.statusBar().addPermanentWidget(self.label)
        if running:
            self.label.setText(f"Looking ahead {100 * done // total} %")
        self.label.setVisible(running)
