"""A larger view of the selected match, under the query so the two can be compared."""

from __future__ import annotations

import logging

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from swimsearch.search import Match

from .results import percent
from .thumbnails import Thumbnail, ThumbnailCache
from .widgets import ElidedLabel, PictureView, file_size, human_size

log = logging.getLogger(__name__)

EMPTY_TEXT = "Select a result to see it larger here, beside your query"


class PreviewPane(QFrame):
    """The selected match: picture, name, similarity, size, path and what can be done with it."""

    search_requested = pyqtSignal(object)  # Match
    open_requested = pyqtSignal(object)
    reveal_requested = pyqtSignal(object)

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.match: Match | None = None
        heading = QLabel("SELECTED MATCH")
        heading.setObjectName("heading")
        self.picture = PictureView(cache, EMPTY_TEXT)
        self.picture.picture_ready.connect(self._on_picture_ready)
        self.name_label = ElidedLabel()
        self.name_label.setObjectName("title")
        self.score_label = QLabel()
        self.score_label.setObjectName("score")
        self.duplicate_label = QLabel("Duplicate")
        self.duplicate_label.setObjectName("duplicate")
        self.duplicate_label.setToolTip("The pictures are identical or nearly so (perceptual hash)")
        self.details_label = QLabel()
        self.details_label.setObjectName("muted")
        self.path_label = ElidedLabel()
        self.path_label.setObjectName("muted")
        self.search_button = QPushButton("Search from this design")
        self.search_button.setObjectName("primary")
        self.open_button = QPushButton("Open")
        self.reveal_button = QPushButton("Show in folder")
        self.search_button.clicked.connect(lambda: self._emit(self.search_requested))
        self.open_button.clicked.connect(lambda: self._emit(self.open_requested))
        self.reveal_button.clicked.connect(lambda: self._emit(self.reveal_requested))

        score_row = QHBoxLayout()
        score_row.setSpacing(8)
        score_row.addWidget(self.score_label)
        score_row.addWidget(self.duplicate_label)
        score_row.addStretch(1)
        buttons = QGridLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.search_button, 0, 0, 1, 2)
        buttons.addWidget(self.open_button, 1, 0)
        buttons.addWidget(self.reveal_button, 1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.setSpacing(6)
        layout.addWidget(heading)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.name_label)
        layout.addLayout(score_row)
        layout.addWidget(self.details_label)
        layout.addWidget(self.path_label)
        layout.addLayout(buttons)
        self._file_size: int | None = None
        self._dimensions = ""
        self.show_match(None)

    def show_match(self, match: Match | None, *, is_query: bool = False) -> None:
        self.match = match
        details = (self.name_label, self.score_label, self.details_label, self.path_label)
        for widget in details:
            widget.setVisible(match is not None)
        self.duplicate_label.setVisible(match is not None and match.duplicate and not is_query)
        for button in (self.search_button, self.open_button, self.reveal_button):
            button.setEnabled(match is not None and not match.missing)
        if match is None:
            self.picture.clear()
            return
        self.name_label.set_full_text(match.name)
        similarity = f"{percent(match.score)}% similar"
        self.score_label.setText(f"{similarity} (the query itself)" if is_query else similarity)
        self.path_label.set_full_text(match.path)
        self._file_size = None if match.missing else file_size(match.path)
        self._dimensions = f"{match.width} × {match.height} px" if match.width and match.height else ""
        self._update_details(match)
        self.picture.show_path(match.path, missing=match.missing)

    def _on_picture_ready(self, thumbnail: Thumbnail) -> None:
        if self.match is not None and not self._dimensions and thumbnail.width:
            self._dimensions = f"{thumbnail.width} × {thumbnail.height} px"
            self._update_details(self.match)

    def _update_details(self, match: Match) -> None:
        parts = [f"rank {match.rank}"]
        if self._dimensions:
            parts.append(self._dimensions)
        if self._file_size is not None:
            parts.append(human_size(self._file_size))
        if match.mirrored:
            parts.append("matched as a mirror image")
        if match.missing:
            parts.append("file missing")
        self.details_label.setText("  ·  ".join(parts))

    def _emit(self, signal) -> None:
        if self.match is not None:
            signal.emit(self.match)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.match is not None:
            self.search_requested.emit(self.match)
            return
        super().keyPressEvent(event)
