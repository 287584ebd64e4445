"""The main window: query on the left, ranked matches on the right, catalogues in the menus.

It wires the pieces and keeps the state a user sees (the open catalogue, the
current query, the history); the long work runs in the search service's
thread and in build jobs, and every answer comes back as a signal.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from PyQt5.QtCore import QPoint, Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMenu,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from swimsearch.config import EngineConfig
from swimsearch.export import as_text, write_csv
from swimsearch.search import Match

from . import desktop, dialogs
from .actions import apply_view, create_actions, fill_menu_bar, fill_toolbar, match_menu
from .build import BuildOutcome, BuildService
from .errors import plain_message
from .history import History, HistoryEntry
from .locations import CatalogueTarget, catalogue_for_folder, sample_folder, sample_target, target_for
from .preview import PreviewPane
from .formatting import count_matches, duration
from .progress import BuildProgress
from .query_panel import QueryPanel, to_pil
from .results import ResultsModel, ResultsView
from .queries import CatalogueImageQuery, FileQuery, PictureQuery, Query, RandomQuery
from .search import CatalogueState, QueryOutcome, SearchService, open_default_embedder
from .settings import MAX_RESULTS, OPTIONS, Settings
from .style import app_icon
from .thumbnails import ThumbnailCache
from .widgets import ElidedLabel, HeaderBar

log = logging.getLogger(__name__)

APP_NAME = "SwimSearch"
ZOOM_STEP = 24
SIDE_WIDTH = 330  # the query column, wide enough for the preview's buttons


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
        self._target: CatalogueTarget | None = None
        self._state: CatalogueState | None = None
        self._record_next = True
        self._query_started = 0.0
        self._shown: HistoryEntry | None = None  # the history entry on screen (None after a failure)
        self._version = 0  # counts catalogue (re)openings: older results may show removed files
        self._closed = False
        self.last_query_ms: float | None = None  # from asking to results on screen
        self._just_built: str | None = None
        self._sample_rebuilt = False

        self.history = History()
        self.cache = ThumbnailCache(parent=self)
        self.model = ResultsModel(self)
        self.search = SearchService(open_embedder, self._config, self)
        self.builds = BuildService(open_embedder, self._config, self)

        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setMinimumSize(900, 640)
        self._first_show = True
        self._build_widgets()
        self._actions = create_actions(self)
        fill_menu_bar(self, self.menuBar(), self._actions)
        self._build_toolbar()
        self._build_status_bar()
        self._restore_settings()  # before connecting, so restoring one control cannot save over another
        self._connect()
        self._update_empty_text()
        self._update_actions()

    # --- construction -------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.query_panel = QueryPanel(self.cache)
        self.preview = PreviewPane(self.cache)
        self.side_splitter = QSplitter(Qt.Vertical)
        self.side_splitter.addWidget(self.query_panel)
        self.side_splitter.addWidget(self.preview)
        self.side_splitter.setChildrenCollapsible(False)
        self.side_splitter.setHandleWidth(10)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(12, 12, 0, 12)
        side_layout.addWidget(self.side_splitter)
        side.setMinimumWidth(250)

        self.results_label = ElidedLabel(mode=Qt.ElideRight)
        self.results_label.setObjectName("title")
        self.results_label.setTextInteractionFlags(Qt.NoTextInteraction)
        self.top_spin = QSpinBox()
        self.top_spin.setRange(OPTIONS["results/top_n"].minimum, MAX_RESULTS)
        self.top_spin.setAccelerated(True)
        self.top_spin.setToolTip("How many of the best matches to show")
        self.min_slider = QSlider(Qt.Horizontal)
        self.min_slider.setRange(0, 100)
        self.min_slider.setFixedWidth(120)
        self.min_slider.setToolTip("Hide matches less similar than this")
        self.min_label = QLabel()
        self.min_label.setMinimumWidth(self.min_label.fontMetrics().horizontalAdvance("100%") + 4)
        show_label = QLabel("Show")
        show_label.setObjectName("muted")
        best_label = QLabel("best")
        best_label.setObjectName("muted")
        min_caption = QLabel("Minimum similarity")
        min_caption.setObjectName("muted")
        filter_bar = HeaderBar(
            self.results_label,
            [show_label, self.top_spin, best_label, 16, min_caption, self.min_slider, self.min_label],
        )
        filter_bar.setObjectName("filterBar")
        self.filter_bar = filter_bar

        self.results_view = ResultsView(self.cache, self.settings["results/thumbnail_size"])
        self.results_view.setModel(self.model)
        self.results_view.viewport().setAcceptDrops(False)
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(6, 12, 6, 0)
        results_layout.setSpacing(6)
        results_layout.addWidget(filter_bar)
        results_layout.addWidget(self.results_view, 1)

        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(side)
        self.splitter.addWidget(results)
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
        bar = self.statusBar()
        bar.setSizeGripEnabled(True)
        self.progress = BuildProgress()
        self.catalogue_label = QLabel()
        self.timing_label = QLabel()
        bar.addPermanentWidget(self.progress, 1)
        bar.addPermanentWidget(self.timing_label)
        bar.addPermanentWidget(self.catalogue_label)

    def _connect(self) -> None:
        self.query_panel.browse_requested.connect(self.choose_image)
        self.query_panel.file_dropped.connect(self.search_file)
        self.query_panel.picture_dropped.connect(self.search_picture)
        self.query_panel.catalogue_dropped.connect(self.open_path)
        self.query_panel.drop_refused.connect(self._show_error)
        self.preview.search_requested.connect(self.search_match)
        self.preview.open_requested.connect(self.open_match)
        self.preview.reveal_requested.connect(self.reveal_match)
        self.results_view.search_requested.connect(self.search_match)
        self.results_view.open_requested.connect(self.open_match)
        self.results_view.context_menu_requested.connect(self._on_context_menu)
        self.results_view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.model.modelReset.connect(self._on_model_reset)
        self.cache.thumbnail_ready.connect(self.model.refresh_path)
        self.top_spin.valueChanged.connect(self._on_filter_changed)
        self.min_slider.valueChanged.connect(self._on_filter_changed)
        self.search.catalogue_opened.connect(self._on_catalogue_opened)
        self.search.open_failed.connect(self._on_open_failed)
        self.search.result_ready.connect(self._on_result_ready)
        self.search.query_failed.connect(self._on_query_failed)
        self.search.failed.connect(self._show_error)
        self.builds.progress_changed.connect(self.progress.update_progress)
        self.builds.progress_changed.connect(self.build_progress_changed)  # after the progress line shows it
        self.builds.result_ready.connect(self._on_build_result)
        self.builds.failed.connect(self._on_build_failed)
        self.builds.idle.connect(self._on_builds_idle)
        self.progress.cancel_requested.connect(self.builds.cancel)

    def _restore_settings(self) -> None:
        s = self.settings
        if not (s["window/geometry"] and self.restoreGeometry(s["window/geometry"])):
            self.resize(1280, 820)
        if s["window/state"]:
            self.restoreState(s["window/state"])
        self._splitter_restored = bool(s["window/splitter"]) and self.splitter.restoreState(s["window/splitter"])
        self.top_spin.setValue(s["results/top_n"])
        self.min_slider.setValue(s["results/min_similarity"])
        self.mirror_action.setChecked(s["search/mirror"])
        self.model.set_filter(self.top_spin.value(), self.min_slider.value())
        self._update_min_label()

    def _save_settings(self) -> None:
        s = self.settings
        s["window/geometry"] = bytes(self.saveGeometry())
        s["window/state"] = bytes(self.saveState())
        s["window/splitter"] = bytes(self.splitter.saveState())
        s["results/top_n"] = self.top_spin.value()
        s["results/min_similarity"] = self.min_slider.value()
        s["results/thumbnail_size"] = self.results_view.delegate.thumb_size
        s["search/mirror"] = self.mirror_action.isChecked()
        s.sync()

    # --- catalogues -------------------------------------------------------------------------

    def open_start(self, argument: str | None = None) -> None:
        """What opens at start: the given folder or catalogue, else the last one, else the sample."""
        if argument:
            self.open_path(argument)
            return
        last = self.settings["catalogue/last"]
        if last and Path(last) == sample_target().path:
            self.open_sample()
        elif last and Path(last).is_file():
            self.open_target(CatalogueTarget(Path(last)))
        else:
            self.open_sample()

    def open_path(self, path: str) -> None:
        """Open a folder's catalogue (building it if there is none) or a catalogue file."""
        try:
            target = target_for(path)
        except ValueError as exc:
            self._show_error(str(exc))
            return
        self.open_target(target)

    def open_sample(self) -> None:
        self.open_target(sample_target())

    def open_target(self, target: CatalogueTarget, *, update: bool = False) -> None:
        """Show `target`: open it, and build it when it does not exist yet (or `update` it)."""
        self._target = target
        self.setWindowTitle(f"{_target_name(target)} — {APP_NAME}")
        if target.exists:
            self.search.open_catalogue(str(target.path))
            self.statusBar().showMessage(f"Opening “{_target_name(target)}”…")
            if update:
                self.start_build(target)
        else:
            self._leave_catalogue()  # the window now shows the catalogue being built
            self.start_build(target)
        self._update_empty_text()

    def _leave_catalogue(self) -> None:
        """Close the open catalogue; the current query stays, to run again on the next one."""
        self.search.close_catalogue()
        self._state = None
        self._clear_results()
        self._update_catalogue_label()
        self._update_actions()

    def _clear_results(self) -> None:
        """An empty grid, with no title or timings left from the last query."""
        self._shown = None
        self.model.set_result(None)
        self.timing_label.setText("")
        self._update_results_label()

    def choose_folder_to_build(self) -> None:
        folder = dialogs.choose_folder(self, self.settings["dialogs/catalogue_folder"] or str(Path.home()))
        if not folder:
            return
        self.settings["dialogs/catalogue_folder"] = str(Path(folder).parent)
        self.open_target(CatalogueTarget(catalogue_for_folder(folder), Path(folder).resolve()), update=True)

    def choose_catalogue(self) -> None:
        path = dialogs.choose_catalogue(self, self.settings["dialogs/catalogue_folder"] or str(Path.home()))
        if path:
            self.settings["dialogs/catalogue_folder"] = str(Path(path).parent)
            self.open_target(CatalogueTarget(Path(path)))

    def update_catalogue(self) -> None:
        """Read new and changed files of the open catalogue's folder (F5)."""
        if self._state is not None:
            sample = self._target is not None and self._target.sample
            self.start_build(CatalogueTarget(Path(self._state.path), sample=sample))
        elif self._target is not None:
            self.start_build(self._target)
        else:
            self._show_error("No catalogue is open: build one from a folder first (Ctrl+B).")

    def start_build(self, target: CatalogueTarget, *, replace: bool = False) -> None:
        """Build or update a catalogue on a worker thread (a running build is cancelled first)."""
        self.progress.start(_target_name(target))
        self.statusBar().clearMessage()  # the progress line says it all
        self.builds.start(target, replace=replace)
        self._update_catalogue_label()
        self._update_empty_text()
        self._update_actions()

    def _on_build_result(self, outcome: BuildOutcome) -> None:
        if not self.builds.has_pending:
            self.progress.finish()
        report = outcome.report
        if outcome.cancelled:
            text = (
                f"Stopped building “{outcome.name}”: {report.indexed:,} designs are searchable. "
                "Press F5 to go on from there."
            )
        else:
            counts = (("added", report.added), ("updated", report.updated), ("removed", report.removed),
                      ("unreadable", report.unreadable))
            changes = ", ".join(f"{n:,} {what}" for what, n in counts if n) or "no changes"
            text = (f"“{outcome.name}” is ready: {report.indexed:,} designs searchable "
                    f"({changes}, {duration(report.seconds)}).")
        self.statusBar().showMessage(text, 15_000)
        self._just_built = outcome.catalogue_path
        if self._state is not None and Path(self._state.path) == Path(outcome.catalogue_path):
            self.search.reload()
        else:
            self.search.open_catalogue(outcome.catalogue_path)
        self.build_finished.emit(outcome)

    def _on_build_failed(self, message: str) -> None:
        if not self.builds.has_pending:
            self.progress.finish()
        self._show_error(message)
        self.build_finished.emit(None)

    def _on_builds_idle(self) -> None:
        self.progress.finish()
        self._update_catalogue_label()
        self._update_empty_text()
        self._update_actions()

    def _on_catalogue_opened(self, state: CatalogueState) -> None:
        target = self._target
        if target is not None and target.sample and Path(state.root).resolve() != sample_folder().resolve():
            log.info("the sample catalogue points at %s; building it again", state.root)
            self.search.close_catalogue()
            self.start_build(target, replace=True)
            return
        reopened = self._state is not None and self._state.path == state.path
        self._state = state
        self._version += 1
        if target is None or Path(target.path) != Path(state.path):
            self._target = CatalogueTarget(Path(state.path))
        self.settings.remember_catalogue(state.path)
        self.setWindowTitle(f"{state.name} — {APP_NAME}")
        self._update_catalogue_label()
        if self._just_built != state.path:  # after a build its summary stays in the status bar
            self.statusBar().showMessage(f"Opened “{state.name}”: {state.searchable:,} designs searchable.", 8000)
        self._just_built = None
        if not state.root_exists:
            self.statusBar().showMessage(
                f"The folder of “{state.name}” is missing ({state.root}); results show as missing files.", 15_000
            )
        current = self.history.current
        if not reopened:  # the ids of another catalogue mean nothing here: keep the query, not the history
            self.history.clear()
        self._rerun(current)
        self._update_empty_text()
        self._update_actions()
        self.catalogue_ready.emit(state)

    def _on_open_failed(self, path: str, message: str) -> None:
        target = self._target
        if target is not None and target.sample and Path(path) == target.path and not self._sample_rebuilt:
            self._sample_rebuilt = True  # once: a sample that fails again is reported, not rebuilt forever
            log.warning("the sample catalogue cannot be opened (%s); building it again", message)
            self.start_build(self._target, replace=True)
            return
        self.settings.forget_catalogue(path)
        state = self._state
        if state is not None and Path(state.path) != Path(path):  # the catalogue on screen is still open
            self._target = CatalogueTarget(Path(state.path))
            self.setWindowTitle(f"{state.name} — {APP_NAME}")
            self._show_error(message)
            return
        self._state = None
        self.setWindowTitle(APP_NAME)
        self._update_catalogue_label()
        self._clear_results()
        self._show_error(message)
        self._update_empty_text()
        self._update_actions()

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.settings["catalogue/recent"] if Path(p).is_file()]
        for path in recent:
            name = Path(path).parent.name if Path(path).name.startswith(".swimsearch") else Path(path).stem
            action = self.recent_menu.addAction(f"{name}  —  {path}")
            action.triggered.connect(lambda _=False, p=path: self.open_target(CatalogueTarget(Path(p))))
        if not recent:
            self.recent_menu.addAction("No recent catalogues").setEnabled(False)

    # --- queries ------------------------------------------------------------------------------

    def choose_image(self) -> None:
        start = self.settings["dialogs/image_folder"] or (self._state.root if self._state else str(Path.home()))
        path = dialogs.choose_image(self, start)
        if path:
            self.settings["dialogs/image_folder"] = str(Path(path).parent)
            self.search_file(path)

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None or not self.query_panel.take(mime, refuse=False):
            self.statusBar().showMessage("The clipboard holds no picture to search with.", 6000)

    def search_file(self, path: str) -> None:
        self._submit(FileQuery(os.path.abspath(path), mirror=self.mirror_action.isChecked()))

    def search_picture(self, image, label: str) -> None:
        self._submit(PictureQuery(to_pil(image), label, picture=image, mirror=self.mirror_action.isChecked()))

    def search_match(self, match: Match) -> None:
        """Search from a result (a click, Enter, or the context menu): no new embedding needed."""
        if match.missing:
            self._show_error(f"The file {match.path} is missing (moved or deleted?), so it cannot be searched from.")
            return
        self._submit(CatalogueImageQuery(match.image_id, match.path, mirror=self.mirror_action.isChecked()))

    def search_random(self) -> None:
        self._submit(RandomQuery(mirror=self.mirror_action.isChecked()))

    def _submit(self, request: Query, *, record: bool = True) -> None:
        if self._state is None:
            building = self.builds.busy
            self._show_error(
                "The catalogue is still being built: you can search when it is done, or cancel to search what was read so far."
                if building
                else "No catalogue is open: build one from a folder (Ctrl+B) or open one (Ctrl+Shift+O)."
            )
            return
        self.results_view.cancel_pending_click()
        self.cache.drop_queued()
        if request.shown_when_asked:
            request.show_on(self.query_panel)
        self.query_panel.set_status("searching…")
        self._record_next = record
        self._query_started = time.perf_counter()
        self.search.search(request)

    def _on_result_ready(self, outcome: QueryOutcome) -> None:
        result = outcome.result
        entry = HistoryEntry(outcome.query.recorded(result), result, self._version)
        if self._record_next:
            self.history.push(entry)
        else:
            self.history.replace_current(entry)
        self._show_entry(entry)
        self.last_query_ms = (time.perf_counter() - self._query_started) * 1000
        self.results_shown.emit(result)

    def _on_query_failed(self, request: Query, message: str) -> None:
        self.query_panel.set_status("cannot be searched")
        self._clear_results()
        self.results_view.set_empty_text("No results", message)
        self._show_error(message)
        self.query_failed.emit(message)
        self._update_actions()

    def _show_entry(self, entry: HistoryEntry) -> None:
        result = entry.result
        entry.request.show_on(self.query_panel)
        self.query_panel.set_status("")
        self._shown = entry
        self.model.set_result(result)
        self._select_best_match()
        self.timing_label.setText(f"embed {result.embed_ms:.0f} ms · search {result.search_ms:.0f} ms")
        self._update_results_label()
        self._update_empty_text()
        self._update_actions()

    def _rerun(self, entry: HistoryEntry | None, *, same_ids: bool = False) -> None:
        """Run a query again, with the current mirror setting, in its history place.

        Args:
            same_ids: the catalogue's ids still hold (same catalogue, maybe
                updated); otherwise a search from a catalogue image runs from its file.
        """
        if entry is None:
            self._clear_results()
            self.query_panel.show_nothing()
            return
        self._submit(entry.request.again(same_ids=same_ids).with_mirror(self.mirror_action.isChecked()), record=False)

    def go_back(self) -> None:
        if self._state is None:
            return
        current = self.history.current
        # After a failed query the screen no longer shows the current entry: Back returns to it.
        entry = current if self._shown is not current else self.history.back()
        self._show_history(entry)

    def go_forward(self) -> None:
        if self._state is not None:
            self._show_history(self.history.forward())

    def _show_history(self, entry: HistoryEntry | None) -> None:
        """Show an entry of the history; one from before the catalogue last changed runs again."""
        if entry is None:
            return
        if entry.version != self._version:
            self._rerun(entry, same_ids=True)
        else:
            self._show_entry(entry)

    def _select_best_match(self) -> None:
        """Select the best match that is not the query itself, so the preview compares at once."""
        matches = self.model.visible_matches()
        for row, match in enumerate(matches):
            if not self.model.is_query(match):
                self.results_view.setCurrentIndex(self.model.index(row))
                self.results_view.scrollToTop()
                return
        self.preview.show_match(None)

    # --- results -------------------------------------------------------------------------------

    def _on_filter_changed(self) -> None:
        selected = self.results_view.current_match()
        self.model.set_filter(self.top_spin.value(), self.min_slider.value())
        self.settings["results/top_n"] = self.top_spin.value()
        self.settings["results/min_similarity"] = self.min_slider.value()
        self._update_min_label()
        if selected is not None:
            for row, match in enumerate(self.model.visible_matches()):
                if match.image_id == selected.image_id:
                    self.results_view.setCurrentIndex(self.model.index(row))
                    break
        self._update_results_label()
        self._update_empty_text()
        self._update_actions()

    def _update_min_label(self) -> None:
        self.min_label.setText(f"{self.min_slider.value()}%")

    def _on_model_reset(self) -> None:
        self.preview.show_match(None)

    def _on_current_changed(self, current, previous) -> None:
        match = self.model.match_at(current.row()) if current.isValid() else None
        self.preview.show_match(match, is_query=match is not None and self.model.is_query(match))

    def _update_results_label(self) -> None:
        result = self.model.result
        if result is None:
            self.filter_bar.set_title("")
            return
        shown = len(self.model.visible_matches())
        text = f"{count_matches(shown)} for {self._shown.request.title(result)}"
        hidden = self.model.hidden_below_minimum()
        if hidden:
            text += f"  ·  {hidden} more below {self.min_slider.value()}%"
        self.filter_bar.set_title(text)

    def _update_empty_text(self) -> None:
        """What the empty grid tells the user to do next."""
        name = self._state.name if self._state else (_target_name(self._target) if self._target else "")
        if self._state is None and self.builds.busy:
            title = f"Building the catalogue “{name}”…"
            body = "You can search when it is done, or cancel to search the designs read so far."
        elif self._state is None:
            title = "No catalogue is open"
            body = "Build one from a folder of designs (Ctrl+B), or open one (Ctrl+Shift+O)."
        elif self._state.searchable == 0:
            title = f"“{name}” has no searchable designs yet"
            body = "Press F5 to read its folder."
        elif self.model.result is None:
            title = f"Find similar designs in “{name}”"
            body = (
                "Drop a design anywhere on this window, click the query panel to choose a file,\n"
                "paste a picture (Ctrl+V), or press Ctrl+R for a random design from the catalogue."
            )
        else:
            title = f"No match is at least {self.min_slider.value()}% similar"
            body = "Lower the minimum similarity to see more."
        self.results_view.set_empty_text(title, body)

    def _update_catalogue_label(self) -> None:
        state = self._state
        if state is None and self.builds.busy and self._target is not None:
            self.catalogue_label.setText(f"{_target_name(self._target)}  ·  building…")
            return
        if state is None:
            self.catalogue_label.setText("No catalogue")
            self.catalogue_label.setToolTip("")
            return
        text = f"{state.name}  ·  {state.searchable:,} designs"
        if state.readonly:
            text += "  ·  read-only"
        self.catalogue_label.setText(text)
        self.catalogue_label.setToolTip(f"{state.path}\nFolder: {state.root}\nModel: {state.model_name}")

    def _update_actions(self) -> None:
        has_results = bool(self.model.visible_matches())
        searchable = self._state is not None and self._state.searchable > 0
        open_ = self._state is not None
        off_history = self.history.current is not None and self._shown is not self.history.current
        view = SimpleNamespace(
            can_go_back=open_ and (self.history.can_go_back() or off_history),
            can_go_forward=open_ and self.history.can_go_forward(),
            searchable=searchable,
            has_results=has_results,
            can_update=self._state is not None and not self._state.readonly,
            mirror=self.mirror_action.isChecked(),
        )
        apply_view(self._actions, view)

    def zoom(self, step: int) -> None:
        option = OPTIONS["results/thumbnail_size"]
        size = min(option.maximum, max(option.minimum, self.results_view.delegate.thumb_size + step * ZOOM_STEP))
        self.results_view.set_thumb_size(size)
        self.settings["results/thumbnail_size"] = size

    def set_mirror(self, checked: bool) -> None:
        self.settings["search/mirror"] = checked
        entry = self.history.current
        if entry is not None and self._state is not None:
            self._rerun(entry, same_ids=True)

    # --- result actions -----------------------------------------------------------------------

    def open_match(self, match: Match) -> None:
        if match.missing or not desktop.open_file(match.path):
            self._show_error(f"The file {match.path} cannot be opened (missing, or no viewer for it).")

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

    def export_csv(self) -> None:
        result = self.model.visible_result()
        if result is None or not result.matches:
            return
        folder = self.settings["dialogs/export_folder"] or str(Path.home())
        stem = self._shown.request.export_stem(result)
        path = dialogs.choose_csv_path(self, str(Path(folder) / f"matches-{stem}.csv"))
        if not path:
            return
        self.settings["dialogs/export_folder"] = str(Path(path).parent)
        state = self._state
        try:
            count = write_csv(
                [result], path, catalogue=state.path if state else "", model=state.model_name if state else "",
                model_sha256=state.model_sha256 if state else "",
            )
        except Exception as exc:  # noqa: BLE001 - disk full, permission denied, ...: tell the user
            self._show_error(plain_message(exc, "exporting the matches"))
            return
        self.statusBar().showMessage(f"Exported {count_matches(count)} to {path}", 8000)

    def copy_list(self) -> None:
        result = self.model.visible_result()
        if result is None or not result.matches:
            return
        QApplication.clipboard().setText(as_text(result))
        self.statusBar().showMessage(f"Copied {count_matches(len(result.matches))} to the clipboard", 5000)

    def show_about(self) -> None:
        from PyQt5.QtWidgets import QMessageBox

        from swimsearch import __version__

        QMessageBox.about(
            self,
            "About SwimSearch",
            f"<b>SwimSearch {__version__}</b><p>Finds similar designs in your image catalogue, offline.</p>"
            "<p>Drop a design, see ranked look-alikes with their similarity, click one to search from it, "
            "export the list as CSV.</p>",
        )

    # --- errors, drops, closing ---------------------------------------------------------------

    def _show_error(self, message: str) -> None:
        """A known failure: one plain sentence in the status bar and in a dialog."""
        self.statusBar().showMessage(message, 15_000)
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

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)


def _target_name(target: CatalogueTarget) -> str:
    if target.sample:
        return "sample"
    if target.root is not None:
        return target.root.name
    path = target.path
    return path.parent.name if path.name.startswith(".swimsearch") else path.stem
