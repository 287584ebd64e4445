"""The results column: a header with the title and the filters, over the grid of matches.

It renders the result part of the session's view (`SessionView`): the title,
the empty-grid text and the matches cut by the filters; the filter controls
report the user's changes as `filters_changed`.
"""

from __future__ import annotations

import logging

from PyQt5.QtCore import QModelIndex, Qt, pyqtSignal
from PyQt5.QtWidgets import QLabel, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget

from swimsearch.search import Match

from .history import HistoryEntry
from .results import ResultsModel, ResultsView
from .session_types import Filters, SessionView
from .settings import MAX_RESULTS, OPTIONS
from .thumbnails import ThumbnailCache
from .widgets import ElidedLabel, HeaderBar

log = logging.getLogger(__name__)


class ResultsPane(QWidget):
    """The results title, Show N best, Minimum similarity, and the grid.

    Args:
        cache: decodes the thumbnails.
        thumb_size: the side of a result thumbnail at start.
    """

    filters_changed = pyqtSignal(object)  # Filters, as the user set them
    folders_requested = pyqtSignal()  # the folder filter's button was clicked
    selected_changed = pyqtSignal(object, bool)  # the selected Match (or None), whether it is the query

    def __init__(self, cache: ThumbnailCache, thumb_size: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = ResultsModel(self)
        self.title = ElidedLabel(mode=Qt.ElideRight)
        self.title.setObjectName("title")
        self.title.setTextInteractionFlags(Qt.NoTextInteraction)
        self.top_spin = QSpinBox()
        self.top_spin.setRange(OPTIONS["results/top_n"].minimum, MAX_RESULTS)
        self.top_spin.setAccelerated(True)
        self.top_spin.setToolTip("How many of the best matches to show")
        self.min_slider = QSlider(Qt.Horizontal)
        self.min_slider.setRange(0, 100)
        self.min_slider.setFixedWidth(100)
        self.min_slider.setToolTip("Minimum similarity: hide matches less similar than this")
        self.min_label = QLabel()
        self.min_label.setMinimumWidth(self.min_label.fontMetrics().horizontalAdvance("100%") + 4)
        # "Show 50 best, at least 40%": reads as a sentence and fits the 800-pixel window
        captions = [QLabel(text) for text in ("Show", "best, at least")]
        for caption in captions:
            caption.setObjectName("muted")
        self.folder_button = QPushButton("All folders")  # the folder filter: narrow to a collection, a season
        self.folder_button.setObjectName("folderButton")
        self.folder_button.setToolTip("Search only in some subfolders of the catalogue (a collection, a season)")
        self.folder_button.clicked.connect(self.folders_requested)
        # At 800 px the title's row takes the folder button, so the row below keeps every caption whole
        self.filter_bar = HeaderBar(
            self.title, [6, captions[0], self.top_spin, captions[1], self.min_slider, self.min_label],
            beside_title=[self.folder_button],
        )
        self.filter_bar.setObjectName("filterBar")

        self.view = ResultsView(cache, thumb_size)
        self.view.setModel(self.model)
        self.view.viewport().setAcceptDrops(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 12, 6, 0)
        layout.setSpacing(6)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.view, 1)
        self._entry: HistoryEntry | None = None  # the entry the grid shows
        self._chosen: Match | None = None  # the match the user selected; filters never take it away
        self._refiltering = False
        self.top_spin.valueChanged.connect(self._on_filter_changed)
        self.min_slider.valueChanged.connect(self._on_filter_changed)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)

    def set_filters(self, filters: Filters) -> None:
        """Set the controls without reporting it (restoring the user's settings)."""
        for control, value in ((self.top_spin, filters.top_n), (self.min_slider, filters.min_percent)):
            control.blockSignals(True)
            control.setValue(value)
            control.blockSignals(False)

    def render(self, view: SessionView) -> None:
        self.min_label.setText(view.min_text)
        self.folder_button.setText(view.folders_text)
        self.folder_button.setEnabled(view.has_subfolders or view.folders_text != "All folders")
        self.filter_bar.set_title(view.results_title)
        self.view.set_empty_text(view.empty_title, view.empty_body)
        entry_changed = view.shown is not self._entry
        if not entry_changed and view.filters == self.model.filters:
            return
        # A new result selects its best match. New filters keep the selected match: selected again
        # when it is in the grid, and still in the preview while the filters hide it.
        self._entry = view.shown
        self._refiltering = True
        try:
            self.model.show(view.shown.result if view.shown is not None else None, view.filters)
        finally:
            self._refiltering = False
        if entry_changed:
            self._select_best_match()
        elif self._chosen is not None:
            for row, match in enumerate(self.model.visible_matches()):
                if match.image_id == self._chosen.image_id:
                    self.view.setCurrentIndex(self.model.index(row))
                    break

    def _select_best_match(self) -> None:
        """Select the best match that is not the query itself, so the preview compares at once."""
        for row, match in enumerate(self.model.visible_matches()):
            if not self.model.is_query(match):
                self.view.setCurrentIndex(self.model.index(row))
                self.view.scrollToTop()
                return
        self.view.setCurrentIndex(QModelIndex())
        self._chosen = None
        self.selected_changed.emit(None, False)

    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._refiltering or not current.isValid():
            return  # a reset of the grid is not the user choosing nothing
        match = self.model.match_at(current.row())
        if match is not None and match != self._chosen:
            self._chosen = match
            self.selected_changed.emit(match, self.model.is_query(match))

    def _on_filter_changed(self) -> None:
        self.filters_changed.emit(Filters(self.top_spin.value(), self.min_slider.value()))
