"""A larger view of the selected match, under the query so the two can be compared."""

from __future__ import annotations

import logging

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from swimsearch.search import Match

from .formatting import percent, similarity_words
from .results import MIRRORED_BADGE_FROM
from .thumbnails import ThumbnailCache
from .widgets import ElidedLabel, PictureCard

log = logging.getLogger(__name__)

EMPTY_TEXT = "Select a result to see it larger here, beside your query"


class PreviewPane(PictureCard):
    """The selected match: picture, name, similarity, size, path and what can be done with it."""

    search_requested = pyqtSignal(object)  # Match
    open_requested = pyqtSignal(object)
    reveal_requested = pyqtSignal(object)

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None):
        super().__init__("SELECTED MATCH", cache, EMPTY_TEXT, parent)
        self.match: Match | None = None
        # one line, cut at its end when the column is narrow (its words in the tooltip): wrapped, it took a line from
        # the picture, which then stood 20-30 px lower than the query's (a reviewer, round 13)
        self.score_label = ElidedLabel(mode=Qt.ElideRight)
        self.score_label.setObjectName("score")
        self.duplicate_label = QLabel("Duplicate")
        self.duplicate_label.setObjectName("duplicate")
        self.duplicate_label.setToolTip("The pictures are identical or nearly so (perceptual hash)")
        self.mirrored_label = QLabel("Mirrored")
        self.mirrored_label.setObjectName("mirrored")
        self.mirrored_label.setToolTip("It matches the query flipped left to right better than the query itself")
        self.path_label = ElidedLabel()
        self.path_label.setObjectName("muted")
        self.search_button = QPushButton("Search from this design")
        self.search_button.setObjectName("primary")
        self.open_button = QPushButton("Open")
        self.reveal_button = QPushButton("Show in folder")
        self.search_button.clicked.connect(lambda: self._emit(self.search_requested))
        self.open_button.clicked.connect(lambda: self._emit(self.open_requested))
        self.reveal_button.clicked.connect(lambda: self._emit(self.reveal_requested))

        # the score has a line of its own (beside it the badges cut "99% · same design" to "99% · same de"), its badges
        # the next, kept when they are hidden: shown, they take no height from the picture
        badges = QWidget()  # as tall as a badge whether any shows (a hidden one leaves no gap beside the other)
        badges.setMinimumHeight(max(b.sizeHint().height() for b in (self.duplicate_label, self.mirrored_label)))
        score_row = QHBoxLayout(badges)
        score_row.setContentsMargins(0, 0, 0, 0)
        score_row.setSpacing(8)
        score_row.addWidget(self.duplicate_label)
        score_row.addWidget(self.mirrored_label)
        score_row.addStretch(1)
        buttons = QGridLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.search_button, 0, 0, 1, 2)
        buttons.addWidget(self.open_button, 1, 0)
        buttons.addWidget(self.reveal_button, 1, 1)
        self.layout.addWidget(self.score_label)
        self.layout.addWidget(badges)
        self.layout.addWidget(self.details_label)
        self.layout.addWidget(self.path_label)
        self.layout.addLayout(buttons)
        self.show_match(None)

    def show_match(self, match: Match | None, *, is_query: bool = False) -> None:
        self.match = match
        for widget in (self.name_label, self.score_label, self.details_label, self.path_label):
            widget.setVisible(match is not None)
        self.duplicate_label.setVisible(match is not None and match.duplicate and not is_query)
        # as on the grid's badge: only a real match's mirroring is news
        self.mirrored_label.setVisible(match is not None and match.mirrored and match.score >= MIRRORED_BADGE_FROM)
        for button in (self.search_button, self.open_button, self.reveal_button):
            button.setVisible(match is not None)  # a calm empty card, not a row of dead buttons
            button.setEnabled(match is not None and not match.missing)
        if match is None:
            self.picture.clear()
            return
        self.name_label.set_full_text(match.name)
        similarity = similarity_words(match)
        self.score_label.set_full_text(f"{percent(match.score)}% · the query itself" if is_query else similarity)
        self.path_label.set_full_text(match.path)
        self._set_file(None if match.missing else match.path, match.width, match.height)
        self._update_details()
        self.picture.show_path(match.path, missing=match.missing)

    def _update_details(self) -> None:
        match = self.match
        if match is None:
            return
        parts = [f"rank {match.rank}"] + self._size_parts()
        if match.missing:
            parts.append("file missing")
        self.details_label.set_full_text("  ·  ".join(parts))

    def _emit(self, signal) -> None:
        if self.match is not None:
            signal.emit(self.match)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.match is not None:
            self.search_requested.emit(self.match)
            return
        super().keyPressEvent(event)
