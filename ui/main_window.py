"""The main window: query on the left, ranked matches on the right, catalogues in the menus.

It lays out the widgets and renders the session (`ui/session.py`), which keeps
the state a user sees (the open catalogue, the query, the history, the
filters) and makes every decision about it. Clicks become calls on the
session; the long work runs in the search service's thread and in build jobs,
whose answers go to the session; whenever the session changes, `_render`
shows its view. Commands, menus and toolbar are declared in `ui/actions.py`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable

from PyQt5.QtCore import QPoint, Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QApplication, QLabel, QMainWindow, QMenu, QPushButton, QSplitter, QToolBar, QVBoxLayout, QWidget,
)

from swimsearch.config import EngineConfig
from swimsearch.search import Match, SearchResult
from swimsearch.stores.pg_address import is_team_address

from . import desktop, dialogs
from .actions import ACTIONS, apply_view, create_actions, fill_menu_bar, fill_toolbar, match_menu
from .build import BuildOutcome, BuildService
from .build_questions import BuildQuestions
from .duplicate_view import REVIEW_ACTIONS, DuplicateReviewDialog
from .duplicates import DuplicateReview
from .exports import Exports
from .history import History
from .look_ahead import LookAheadControl
from .locations import CatalogueTarget, sample_target, target_for, target_for_catalogue
from .preview import PreviewPane
from .progress import BuildProgress
from .queries import CatalogueImageQuery, FileQuery, PictureQuery, Query
from .query_panel import QueryPanel, to_pil
from .results_pane import ResultsPane
from .search import SearchService, open_default_embedder
from .session import APP_NAME, Session
from .session_types import Filters, Target, target_name
from .settings import OPTIONS, Settings
from .shortcuts import ShortcutsDialog, shortcut_rows
from .status_bar import StatusBar, name_label
from .steer_results import SteeringControls
from .style import app_icon
from .team import TeamCatalogues
from .thumbnails import ThumbnailCache
from .unreadable import UnreadableDialog
from .watch import FolderWatch
from .widgets import CardSplitter, ColumnScroll

log = logging.getLogger(__name__)

ZOOM_STEP = 24
SIDE_WIDTH = 330  # the query column, wide enough for the preview's buttons
MINIMUM_SIZE = (800, 600)  # every state of the window is checked at this size (tools/screenshot.py --states)


class MainWindow(QMainWindow):
    """SwimSearch's window.

    Args:
        settings: the settings registry.
        open_embedder: makes the model; called in worker threads (tests pass a fake).
        config: engine settings for builds and searches (the user's query
            settings are applied on top).
    """

    results_shown = pyqtSignal(object)  # SearchResult now in the grid
    query_failed = pyqtSignal(str)
    catalogue_ready = pyqtSignal(object)  # CatalogueState
    build_finished = pyqtSignal(object)  # BuildOutcome, or None when the build failed
    build_progress_changed = pyqtSignal(str, int, int)  # phase, done, total (what the progress bar shows)

    def __init__(
        self,
        settings: Settings,
        *,
        open_embedder: Callable = open_default_embedder,
        config: EngineConfig | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.settings = settings
        self._open_embedder = open_embedder
        self._config = settings.engine_config(config or EngineConfig())
        self._closed, self._first_show, self._query_started = False, True, 0.0
        self.last_query_ms: float | None = None  # from asking to results on screen

        self.cache = ThumbnailCache(parent=self)
        self.search = SearchService(open_embedder, self._config, self)
        self.builds = BuildService(open_embedder, self._config, self)
        self.session = Session(
            self.search, self._start_build, settings, target_for_catalogue,
            mirror=settings["search/mirror"], colour=settings["search/colour"] / 100,
            filters=Filters(settings["results/top_n"], settings["results/min_similarity"]), folder_memory=settings,
        )

        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setMinimumSize(*MINIMUM_SIZE)
        self.exports = Exports(self)
        self.duplicates = DuplicateReview(self, self._config, DuplicateReviewDialog)
        self.watch = FolderWatch(self)
        self.team = TeamCatalogues(self)  # before any catalogue opens: it hands over where shared folders are
        self._build_widgets()
        self.steering = SteeringControls(self)  # several designs, not like this, decisions, folders
        self.build_questions = BuildQuestions(self)  # rebuild with this model? remove the files gone?
        self.look_ahead = LookAheadControl(self)  # Search ▸ Look ahead while idle, and how far it is
        self._actions = create_actions(self)
        fill_menu_bar(self, self.menuBar(), self._actions)
        self._build_toolbar()
        self._build_status_bar()
        self._restore_settings()  # before connecting, so restoring one control cannot save over another
        self._connect()
        self._render()

    @property
    def history(self) -> History:
        return self.session.history

    # --- construction ------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.query_panel = QueryPanel(self.cache)
        self.preview = PreviewPane(self.cache)
        self.side_splitter = CardSplitter([self.query_panel, self.preview], share=self.settings["window/query_share"] / 100)
        self.side_splitter.setChildrenCollapsible(False)
        self.side_splitter.setHandleWidth(10)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(12, 12, 0, 12)
        side_layout.addWidget(self.side_splitter)

        pane = self.results_pane = ResultsPane(self.cache, self.settings["results/thumbnail_size"])
        self.model, self.results_view, self.filter_bar = pane.model, pane.view, pane.filter_bar
        self.results_label, self.top_spin, self.min_slider = pane.title, pane.top_spin, pane.min_slider
        self.min_label = pane.min_label

        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(ColumnScroll(side, min_width=250))  # at 800 x 600 it scrolls, never squashes
        self.splitter.addWidget(pane)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(8)
        self.setCentralWidget(self.splitter)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        fill_toolbar(toolbar, self._actions)
        self.addToolBar(Qt.TopToolBarArea, toolbar)
        self.toolbar = toolbar

    def _build_status_bar(self) -> None:
        bar = StatusBar.install(self)
        self.progress = BuildProgress()
        self.catalogue_label = name_label()
        self.timing_label = QLabel()
        self.unreadable_link = QPushButton()  # "2 unreadable files": opens their list
        self.unreadable_link.setObjectName("statusLink")
        self.unreadable_link.setFlat(True)
        self.unreadable_link.setCursor(Qt.PointingHandCursor)
        self.unreadable_link.setToolTip("See which files could not be read, and why")
        self.unreadable_link.clicked.connect(self.show_unreadable)
        bar.addPermanentWidget(self.progress, 1)
        bar.addPermanentWidget(self.timing_label)
        bar.addPermanentWidget(self.catalogue_label, capped=True)
        bar.addPermanentWidget(self.unreadable_link)

    def _connect(self) -> None:
        panel, view, session = self.query_panel, self.results_view, self.session
        panel.browse_requested.connect(self.choose_image)
        panel.file_dropped.connect(self.search_file)
        panel.picture_dropped.connect(self.search_picture)
        panel.catalogue_dropped.connect(self.build_questions.open_dropped)  # a folder to build: asked first
        panel.drop_refused.connect(self.show_error)
        for source in (self.preview, view):
            source.search_requested.connect(self.search_match)
            source.open_requested.connect(self.open_match)
        self.preview.reveal_requested.connect(self.reveal_match)
        view.context_menu_requested.connect(self._on_context_menu)
        self.results_pane.selected_changed.connect(lambda match, is_query: self.preview.show_match(match, is_query=is_query))
        self.cache.thumbnail_ready.connect(self.model.refresh_path)
        self.results_pane.filters_changed.connect(self._on_filters_changed)
        self.search.catalogue_opened.connect(session.on_catalogue_opened)
        self.search.open_failed.connect(session.on_open_failed)
        self.search.result_ready.connect(lambda outcome: session.on_result_ready(outcome.query, outcome.result, outcome.state))
        self.search.query_failed.connect(session.on_query_failed)
        self.search.failed.connect(self.show_error)
        self.builds.progress_changed.connect(self.progress.update_progress)
        self.builds.progress_changed.connect(self.build_progress_changed)  # after the progress line shows it
        self.builds.result_ready.connect(self._on_build_result)
        self.builds.failed.connect(self._on_build_failed)
        self.builds.idle.connect(self._on_builds_idle)
        self.progress.cancel_requested.connect(self.builds.cancel)
        session.changed.connect(self._render)
        session.query_started.connect(self._on_query_started)
        session.results_shown.connect(self._on_results_shown)
        session.query_failed.connect(self.query_failed.emit)
        session.catalogue_ready.connect(self.catalogue_ready.emit)
        session.catalogue_ready.connect(self.team.on_catalogue_ready)
        session.message.connect(self.statusBar().showMessage)
        session.error.connect(self.show_error)
        for note in self.settings.notes:  # settings an older version saved, changed on the way in
            self.statusBar().showMessage(note, 20000)

    def _restore_settings(self) -> None:
        s = self.settings
        if not (s["window/geometry"] and self.restoreGeometry(s["window/geometry"])):
            self.resize(1280, 820)
        if s["window/state"]:
            self.restoreState(s["window/state"])
        self._splitter_restored = bool(s["window/splitter"]) and self.splitter.restoreState(s["window/splitter"])
        self.results_pane.set_filters(self.session.filters)

    def _save_settings(self) -> None:
        s = self.settings
        s["window/geometry"] = bytes(self.saveGeometry())
        s["window/state"] = bytes(self.saveState())
        s["window/splitter"] = bytes(self.splitter.saveState())
        s["window/query_share"] = round(100 * self.side_splitter.share) if self.side_splitter.share else 0
        s["results/top_n"] = self.top_spin.value()
        s["results/min_similarity"] = self.min_slider.value()
        s["results/thumbnail_size"] = self.results_view.delegate.thumb_size
        s["search/mirror"] = self.session.mirror
        s.sync()

    # --- rendering the session ----------------------------------------------------------------

    def _render(self) -> None:
        """Show the session's view: titles, labels, the results, the query panel and the actions."""
        view = self.session.view()
        self.setWindowTitle(view.window_title)
        self.catalogue_label.set_full_text(view.catalogue_text)
        self.catalogue_label.setToolTip(f"{view.catalogue_text}\n{view.catalogue_tip}" if view.catalogue_tip else view.catalogue_text)
        self.timing_label.setText(view.timing_text)
        self.unreadable_link.setText(view.unreadable_text)
        self.unreadable_link.setVisible(view.has_unreadable)
        self.query_panel.show_query(view.panel_query, view.panel_status)
        self.query_panel.show_steering(can_draw_box=view.can_draw_box, colour=view.colour)
        self.results_pane.render(view)
        apply_view(self._actions, view)

    def _on_filters_changed(self, filters: Filters) -> None:
        self.settings["results/top_n"] = filters.top_n
        self.settings["results/min_similarity"] = filters.min_percent
        self.session.set_filters(filters)

    # --- catalogues -----------------------------------------------------------------------------

    def open_start(self, argument: str | None = None) -> None:
        """What opens at start: the given folder or catalogue, else the last one, else the sample."""
        if argument:
            self.open_path(argument)
        else:
            self.session.open_start(self.settings["catalogue/last"], sample_target())

    def open_path(self, path: str, update: bool = False) -> None:
        """Open a folder's catalogue (building it if there is none, or updating it) or a catalogue file."""
        try:
            target = target_for(path)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.session.open(target, update=update)

    def open_sample(self) -> None:
        self.session.open(sample_target())

    def choose_folder_to_build(self) -> None:
        folder = dialogs.choose_folder(self, self.settings["dialogs/catalogue_folder"] or str(Path.home()))
        if folder:
            self.settings["dialogs/catalogue_folder"] = str(Path(folder).parent)
            self.open_path(folder, update=True)  # a folder name that is not text: one sentence, as for a dropped one

    def choose_catalogue(self) -> None:
        path = dialogs.choose_catalogue(self, self.settings["dialogs/catalogue_folder"] or str(Path.home()))
        if path:
            self.settings["dialogs/catalogue_folder"] = str(Path(path).parent)
            self.session.open(CatalogueTarget(Path(path)))

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [target_for_catalogue(p) for p in self.settings["catalogue/recent"] if is_team_address(p) or Path(p).is_file()]
        for target in recent:
            action = self.recent_menu.addAction(f"{target_name(target)}  —  {target.path}")
            action.triggered.connect(lambda _=False, t=target: self.session.open(t))
        if not recent:
            self.recent_menu.addAction("No recent catalogues").setEnabled(False)

    def _start_build(self, target: Target, replace: bool, allow_removal: bool = False) -> None:
        """Build or update a catalogue on a worker thread (a running build is cancelled first)."""
        self.progress.start(target_name(target))
        self.statusBar().clearMessage()  # the progress line says it all
        self.builds.start(target, replace=replace, allow_removal=allow_removal)

    def _on_build_result(self, outcome: BuildOutcome) -> None:
        if not self.builds.has_pending:
            self.progress.finish()
        self.session.on_build_finished(outcome)
        self.build_finished.emit(outcome)

    def _on_build_failed(self, message: str) -> None:
        if not self.builds.has_pending:
            self.progress.finish()
        self.session.on_build_failed(message)
        self.build_finished.emit(None)

    def _on_builds_idle(self) -> None:
        self.progress.finish()
        self.session.on_builds_idle()

    # --- queries ----------------------------------------------------------------------------------

    def choose_image(self) -> None:
        state = self.session.catalogue
        start = self.settings["dialogs/image_folder"] or (state.root if state else str(Path.home()))
        path = dialogs.choose_image(self, start, self.cache)
        if path:
            self.settings["dialogs/image_folder"] = str(Path(path).parent)
            self.search_file(path)

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None or not self.query_panel.take(mime, refuse=False):
            self.statusBar().showMessage("The clipboard holds no picture to search with.", 6000)

    def search_file(self, path: str) -> None:
        self.session.search(FileQuery(os.path.abspath(path)))

    def search_picture(self, image, label: str) -> None:
        self.session.search(PictureQuery(to_pil(image), label, picture=image))

    def search_match(self, match: Match) -> None:
        """Search from a result (a click, Enter, or the context menu): no new embedding needed."""
        if match.missing:
            self.show_error(f"The file {match.path} is missing (moved or deleted?), so it cannot be searched from.")
            return
        self.session.search(CatalogueImageQuery(match.image_id, match.path))

    def set_mirror(self, checked: bool) -> None:
        self.settings["search/mirror"] = checked
        self.session.set_mirror(checked)

    def _on_query_started(self, query: Query) -> None:
        self.results_view.cancel_pending_click()
        self.cache.drop_queued()
        self._query_started = time.perf_counter()

    def _on_results_shown(self, result: SearchResult) -> None:
        self.last_query_ms = (time.perf_counter() - self._query_started) * 1000
        self.results_shown.emit(result)

    def zoom(self, step: int) -> None:
        option = OPTIONS["results/thumbnail_size"]
        size = min(option.maximum, max(option.minimum, self.results_view.delegate.thumb_size + step * ZOOM_STEP))
        self.results_view.set_thumb_size(size)
        self.settings["results/thumbnail_size"] = size

    # --- result actions -----------------------------------------------------------------------

    def open_match(self, match: Match) -> None:
        if match.missing or not desktop.open_file(match.path):
            self.show_error(f"The file {match.path} cannot be opened (missing, or no viewer for it).")

    def reveal_match(self, match: Match) -> None:
        desktop.show_in_folder(match.path)

    def copy_path(self, match: Match) -> None:
        QApplication.clipboard().setText(match.path)
        self.statusBar().showMessage(f"Copied {match.path}", 4000)

    def context_menu(self, match: Match) -> QMenu:
        """The menu for one result (separate from showing it, so it can be tested)."""
        return match_menu(self, match)

    def _on_context_menu(self, match: Match, position: QPoint) -> None:
        menu = self.context_menu(match)
        menu.setAttribute(Qt.WA_DeleteOnClose)
        menu.popup(position)

    def show_about(self) -> None:
        dialogs.show_about(self)

    def show_shortcuts(self) -> None:
        ShortcutsDialog(shortcut_rows((("", ACTIONS), ("Duplicate review", REVIEW_ACTIONS))), self).show()

    def show_unreadable(self) -> None:
        state = self.session.catalogue
        if state is not None:
            UnreadableDialog(state.path, state.name, self).show()

    # --- errors, drops, closing ---------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """A known failure: one plain sentence, once, in a dialog (the status bar is for progress and notes)."""
        if not self._closed:
            dialogs.show_error(self, message)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override: drops anywhere on the window
        self.query_panel.dragEnterEvent(event)

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.query_panel.dragLeaveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.query_panel.dropEvent(event)

    def shutdown(self) -> None:
        """Cancel the build, stop the search thread and the thumbnail decoders, and wait for them."""
        if self._closed:
            return
        self._closed = True
        self._save_settings()
        self.watch.stop()
        self.exports.stop()
        self.duplicates.stop()
        self.builds.stop()
        self.search.shutdown()
        self.cache.shutdown()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._first_show:
            self._first_show = False
            if not self._splitter_restored:
                self.splitter.setSizes([SIDE_WIDTH, max(400, self.width() - SIDE_WIDTH)])
            self.results_view.setFocus()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.timing_label.setVisible(self.width() >= 1000)  # a narrow status bar keeps its width for messages

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)


