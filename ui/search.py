"""Queries on one long-lived worker thread that owns the catalogue, the model and the search engine.

The GUI talks to `SearchService`; the service's `SearchWorker` lives on its
own QThread, opens the model and the catalogue there, and answers requests
one after another. A new query supersedes a pending one: each query is sent with a
generation number, and the worker skips any request that is no longer the
latest, so a burst of clicks costs one search, not a queue of them. Results
are the engine's frozen dataclasses, never live engine objects.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from PyQt5.QtCore import QObject, QTimer, pyqtSignal, pyqtSlot

from swimsearch import copy_check, halves
from swimsearch.catalogue import Catalogue, refuse_other_folder
from swimsearch.colour import ColourMix
from swimsearch.stores.sqlite import SqliteStore
from swimsearch.config import EngineConfig
from swimsearch.errors import CatalogueError, DamagedCatalogue, OtherFolder
from swimsearch.images import ImageError
from swimsearch.locations import display_name
from swimsearch.look_verdicts import LookAhead
from swimsearch.model import Embedder, default_model_path, describe_model
from swimsearch.regions import Box
from swimsearch.search import SearchEngine, SearchResult
from swimsearch.steering import colour_query
from swimsearch.rocchio import Example, Steering

from .queries import CatalogueImageQuery, FileQuery, PictureQuery, Query, RandomQuery
from .session_types import CatalogueState
from .settings import MAX_RESULTS
from .workers import Job, Worker, WorkerOutbox, name_this_thread

log = logging.getLogger(__name__)

#: Pictures kept embedded for steering a query again ("not like this", a decision, the folder
#: filter): re-ranking then needs no network pass.
KEPT_EXAMPLES = 64
#: Looking ahead (look_verdicts.py) waits this long after the catalogue opens or a search, and rests at least as
#: long as each step took (half of one core at most), so the window's own searches never queue behind it.
AHEAD_WAIT_MS, AHEAD_REST_MS = 1500, 20


def open_default_embedder() -> Embedder:
    """The model that ships with the app (opened in the thread that calls this)."""
    return Embedder(default_model_path())


@dataclass(frozen=True)
class QueryOutcome:
    """A query's answer, with the generation it was asked in (older answers are dropped)."""

    query: Query
    result: SearchResult
    catalogue_path: str
    generation: int
    state: CatalogueState | None = None  # the catalogue as this search re-read it after another process changed it


class Generation:
    """The number of the latest query (written by the GUI thread, read by the worker)."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


class SearchOutbox(WorkerOutbox):
    catalogue_opened = pyqtSignal(object)  # CatalogueState
    ahead_progress = pyqtSignal(int, int)  # designs looked ahead, of all (equal: done; 0 of 0: stopped)
    query_failed = pyqtSignal(object, int, str)  # query, generation, message


class SearchWorker(Worker):
    """Owns the model, the open catalogue and its SearchEngine, all opened in this worker's thread.

    The catalogue's state, results and failed queries reach the GUI thread through `outbox`.
    """

    open_failed = pyqtSignal(str, str)  # path, message
    damaged = pyqtSignal(str, str)  # path, message: the file is damaged (sent just before its open_failed)
    other_folder = pyqtSignal(str, str)  # path, message: the file describes another folder (just before its open_failed)
    decision_failed = pyqtSignal(str)  # message

    doing = "searching"
    outbox_type = SearchOutbox
    #: look ahead at an open catalogue's designs while idle (look_verdicts.py)
    looks_ahead = True

    def __init__(self, open_embedder: Callable, config: EngineConfig, generation: Generation):
        super().__init__()
        self._open_embedder = open_embedder
        self._config = config
        self._generation = generation
        self._embedder = None
        self._catalogue: Catalogue | None = None
        self._engine: SearchEngine | None = None
        self._examples: OrderedDict[tuple, tuple[Example, Any]] = OrderedDict()
        self._ahead: LookAhead | None = None  # the open catalogue's designs still to look ahead
        self._refreshes_told = 0  # the engine's `refreshes` the window was last told of
        self._ahead_told = 0.0  # when the window was last told how far looking ahead is
        self._last_search = 0.0

    @pyqtSlot()
    def start(self) -> None:
        """Load the model once, at thread start; without it, search by catalogue image still works."""
        name_this_thread()

        def load() -> None:
            self._embedder = self._open_embedder()

        self.guarded(load, "loading the model")

    @pyqtSlot(object, object)
    def open_catalogue(self, path: str, root: str | None = None) -> None:
        """Open `path` in place of the open catalogue, which stays open if `path` cannot be opened.

        Args:
            root: the folder `path` is the catalogue of (opened from the folder): a file that describes
                another folder (copied along with it) is refused (`other_folder`, then `open_failed`).
        """

        def action() -> None:
            try:
                catalogue = Catalogue.open(path)
            except DamagedCatalogue as exc:
                self.damaged.emit(str(path), str(exc))
                raise
            if root is not None:
                try:
                    refuse_other_folder(catalogue, root)
                except OtherFolder as exc:
                    self.other_folder.emit(str(path), str(exc))
                    raise
            try:
                engine = SearchEngine(catalogue, self._embedder, self._config)
            except Exception as exc:
                catalogue.close()
                if isinstance(exc, DamagedCatalogue):
                    self.damaged.emit(str(path), str(exc))
                raise
            self._close()
            self._catalogue, self._engine, self._refreshes_told = catalogue, engine, engine.refreshes
            self.outbox.post("catalogue_opened", self._state())
            if engine.picture_check.enabled:
                copy_check.warm_up()  # here, not in the first search: the look at same design needs OpenCV
            halves.warm_up()  # OpenCV's float16 conversions, checked once (the look's version stays: its code is unchanged)
            self._look_ahead()

        self.guarded(action, "opening the catalogue", on_error=lambda message: self.open_failed.emit(str(path), message))

    @pyqtSlot()
    def close_catalogue(self) -> None:
        self._close()

    @pyqtSlot()
    def reload(self) -> None:
        """Re-read the index after a build or update of the open catalogue."""
        if self._engine is None:
            return

        def action() -> None:
            self._engine.reload()
            self._examples.clear()  # ids and stored embeddings may have changed
            self._refreshes_told = self._engine.refreshes
            self.outbox.post("catalogue_opened", self._state())
            self._look_ahead()  # the designs a build or update added

        path = str(self._catalogue.path)
        self.guarded(action, "reloading the catalogue", on_error=lambda message: self.open_failed.emit(path, message))

    @pyqtSlot(object, int)
    def search(self, query: Query, generation: int) -> None:
        if generation != self._generation.value:
            log.debug("skipping superseded query %d", generation)
            return

        self._last_search = time.monotonic()

        def action() -> None:
            if self._engine is None:
                raise CatalogueError("No catalogue is open: build one from a folder (Ctrl+B) or open one (Ctrl+Shift+O).")
            result = self._run(query)
            state = None
            if self._engine.refreshes != self._refreshes_told:  # another window or a CLI update changed its designs
                self._examples.clear()  # (re-read by this search, or by looking ahead since the last one)
                self._refreshes_told = self._engine.refreshes
                state = self._state()
            self.outbox.post("result_ready", QueryOutcome(query, result, str(self._catalogue.path), generation, state))

        self.guarded(action, "searching", on_error=lambda message: self.outbox.post("query_failed", query, generation, message))

    @pyqtSlot(object, object)
    def decide(self, pairs: list[tuple[int, int]], verdict: str | None) -> None:
        """Keep a verdict on pairs of catalogue images (the query on screen then runs again)."""

        def action() -> None:
            self._engine.decide_pairs(pairs, verdict)

        self.guarded(action, "saving the decision", on_error=self.decision_failed.emit)

    def _run(self, query: Query) -> SearchResult:
        """The one engine call: a detail of its picture when it has a box; else the query's pictures as
        examples, steered by its unlike designs and folders, with its colour setting (of its first picture)."""
        engine = self._engine
        colour = ColourMix(query.colour)
        if query.box is not None:
            return engine.search_detail(self._source(query), Box(*query.box), top_n=MAX_RESULTS, colour=colour,
                                        folders=query.folders)
        if isinstance(query, RandomQuery):
            query = CatalogueImageQuery(self._random_id(query.folders), "", mirror=query.mirror, folders=query.folders)
        started = time.perf_counter()
        readable, left_out = self._readable(query.examples(), query.mirror)
        like = tuple(example for _, example in readable)
        unlike = tuple(self._example(q, query.mirror) for q in query.unlike)
        steer = colour_query(engine.reader, engine.embedder, self._source(readable[0][0]), colour)
        embed_ms = (time.perf_counter() - started) * 1000
        steering = Steering(like, unlike, tuple(query.folders))
        result = engine.search_examples(steering, top_n=MAX_RESULTS, embed_ms=embed_ms, colour=steer)
        return replace(result, note=f"{result.note} {left_out}".strip()) if left_out else result

    def _readable(self, queries: tuple[Query, ...], mirror: bool) -> tuple[list[tuple[Query, Example]], str]:
        """The pictures searched together that can be read, with their examples, and a sentence naming those
        that cannot ("" when all can). One picture that cannot be read is an error; of several, the others are
        searched (a damaged PDF dropped with two photos stopped the search with an error box, round 13)."""
        readable: list[tuple[Query, Example]] = []
        failed: list[ImageError] = []
        for q in queries:
            try:
                readable.append((q, self._example(q, mirror)))
            except ImageError as exc:
                if len(queries) == 1:
                    raise
                failed.append(exc)
        if not readable:
            raise failed[0]
        if not failed:
            return readable, ""
        names = [os.path.basename(e.path.rstrip(os.sep)) or e.path for e in failed]
        what = f"{names[0]} cannot be read ({failed[0].reason})" if len(names) == 1 else (
            f"{', '.join(names[:-1])} and {names[-1]} cannot be read")
        return readable, f"{what}: searched with {'the other picture' if len(readable) == 1 else f'the other {len(readable)}'}."

    @staticmethod
    def _source(query: Query) -> Any:
        """What the engine reads a query's picture from: a file, picture data, or a catalogue image's id."""
        match query:
            case FileQuery():
                return query.path
            case PictureQuery():
                return query.image
            case CatalogueImageQuery():
                return int(query.image_id)
        raise TypeError(f"no picture for {type(query).__name__}")

    def _example(self, query: Query, mirror: bool) -> Example:
        """A picture as the engine's `Example`, embedded once and kept (KEPT_EXAMPLES) for steering again."""
        engine = self._engine
        match query:
            case FileQuery():
                try:
                    info = os.stat(query.path)
                    key: tuple = ("file", query.path, info.st_size, info.st_mtime_ns, mirror)
                except OSError:
                    key = ("file", query.path, None, None, mirror)  # let the engine say it cannot be read
                source: Any = query.path
            case PictureQuery():
                key, source = ("picture", id(query.image), mirror), query.image
            case CatalogueImageQuery():
                key, source = ("catalogue", query.image_id, mirror), int(query.image_id)
            case _:
                raise TypeError(f"no engine call for {type(query).__name__}")
        kept = self._examples.get(key)
        if kept is not None:
            self._examples.move_to_end(key)
            example = kept[0]
        else:
            example = engine.example(source, mirror=mirror)
            self._examples[key] = (example, source)  # the source is kept too, so an id() is never reused meanwhile
            while len(self._examples) > KEPT_EXAMPLES:
                self._examples.popitem(last=False)
        if not isinstance(source, int):  # pasted data too is looked at for *same design*, as the engine's search does
            engine.picture_check.remember(example, source)
        return example

    def _random_id(self, folders: tuple[str, ...]) -> int:
        ids = self._engine.searchable_ids()
        if folders:
            ids = np.intersect1d(ids, self._catalogue.ids_in_folders(folders))
        if not len(ids):
            raise CatalogueError("No design of the chosen folders is searchable: choose other folders or all of them.")
        return int(ids[np.random.default_rng().integers(len(ids))])

    @pyqtSlot()
    def shutdown(self) -> None:
        """Close the catalogue in this thread, then finish (which quits the thread)."""
        try:
            self._close()
        finally:
            self.finished.emit()

    def _look_ahead(self) -> None:
        """Start looking ahead at the open catalogue's designs (look_verdicts.py), a step at a time while idle,
        in place of a pass already running (one pass at a time: its timer chain ends at its next step)."""
        if self._ahead is not None:
            self.outbox.post("ahead_progress", 0, 0)  # the pass before is over
        self._ahead = LookAhead(self._engine, top_n=MAX_RESULTS) if self.looks_ahead and self._engine is not None else None
        if self._ahead is not None:
            self._ahead_later(self._ahead, AHEAD_WAIT_MS)

    @pyqtSlot(bool)
    def set_looks_ahead(self, on: bool) -> None:
        """Look ahead while idle or not (Search ▸ Look ahead while idle); a pass under way stops at once."""
        self.looks_ahead = on
        if not on:
            self._ahead = None
            self.outbox.post("ahead_progress", 0, 0)
        elif self._ahead is None:
            self._look_ahead()

    def _ahead_later(self, ahead: LookAhead, msecs: int) -> None:
        QTimer.singleShot(msecs, lambda: self._ahead_step(ahead))

    def _ahead_step(self, ahead: LookAhead) -> None:
        if ahead is not self._ahead or self._engine is None:  # another pass, or the catalogue closed
            return
        idle = (time.monotonic() - self._last_search) * 1000
        if idle < AHEAD_WAIT_MS:  # someone is searching: wait till they pause
            self._ahead_later(ahead, int(AHEAD_WAIT_MS - idle) + 1)
            return
        if not ahead.ready():  # a build writes to the catalogue: wait till it is still
            self._ahead_later(ahead, AHEAD_WAIT_MS)
            return
        started, refreshes = time.perf_counter(), self._engine.refreshes
        try:
            more = ahead.step()
        except Exception:  # noqa: BLE001 - a background nicety: searches still look at what they show
            log.warning("looking ahead stopped", exc_info=True)
            more = False
        if self._engine is not None and self._engine.refreshes != refreshes:  # another process changed the designs:
            self._examples.clear()  # the next search's answer carries the catalogue's new state (`search`)
        if ahead is not self._ahead:
            return
        done, total = ahead.progress
        if not more or time.monotonic() - self._ahead_told > 1.0:  # the window is told once a second at most
            self._ahead_told = time.monotonic()
            self.outbox.post("ahead_progress", total if not more else done, total)
        if not more:
            log.info("looked ahead at %d designs of %s", ahead.searched, self._catalogue.path if self._catalogue else "")
            self._ahead = None
            return
        self._ahead_later(ahead, max(AHEAD_REST_MS, int((time.perf_counter() - started) * 1000)))

    def _close(self) -> None:
        if self._ahead is not None:
            self.outbox.post("ahead_progress", 0, 0)  # no pass any more: the window's label goes
        self._ahead = None
        if self._engine is not None:
            self._engine.picture_check.close()
            self._engine.close()  # no thread of its search cache outlives it (mapped_pages.py)
        if self._catalogue is not None:
            self._catalogue.close()
        self._catalogue = self._engine = None
        self._examples.clear()

    def _state(self) -> CatalogueState:
        catalogue = self._catalogue
        info = catalogue.info()
        return CatalogueState(
            path=str(catalogue.path),
            name=display_name(catalogue.path, catalogue.root),
            root=str(catalogue.root),
            root_exists=info["root_exists"],
            images=info["images"],
            searchable=len(self._engine),
            unreadable=info["unreadable"],
            readonly=catalogue.readonly,
            readonly_reason=catalogue.store.readonly_reason if catalogue.readonly else "",
            model_name=getattr(self._embedder, "name", "") or (info["model"] or ""),
            model_sha256=getattr(self._embedder, "sha256", "") or (info["model_sha256"] or ""),
            can_search_images=self._embedder is not None,
            folders=tuple(catalogue.folder_counts().items()),
            team=not isinstance(catalogue.store, SqliteStore),
            root_note=(getattr(catalogue.store, "root_note", lambda: None)() or ""),
            built_with=other_model(info, self._embedder),
            unfinished=max(0, info["readable"] - info["searchable"]) if info["readable"] >= 2 else 0,
        )


def other_model(info: dict, embedder: Any) -> str:
    """The catalogue's model in words when an image search would need another one ("" when they agree)."""
    using = getattr(embedder, "sha256", None)
    if not using or not info["model_sha256"] or info["model_sha256"] == using:
        return ""
    return describe_model(info["model"], info["model_sha256"])


class SearchService(QObject):
    """The GUI's handle on the search thread: requests go in as queued signals, answers come back.

    Only the answer to the latest query is passed on (`result_ready`,
    `query_failed`); an older one that was already running is dropped.
    """

    catalogue_opened = pyqtSignal(object)  # CatalogueState
    open_failed = pyqtSignal(str, str)  # path, message
    damaged = pyqtSignal(str, str)  # path, message: the catalogue file is damaged (just before its open_failed)
    other_folder = pyqtSignal(str, str)  # path, message: a folder's file describes another folder (copied with it)
    result_ready = pyqtSignal(object)  # QueryOutcome
    query_failed = pyqtSignal(object, str)  # Query, message
    failed = pyqtSignal(str)
    decision_failed = pyqtSignal(str)  # message
    ahead_progress = pyqtSignal(int, int)  # designs of the open catalogue looked ahead, of all (look_verdicts.py)

    _open_requested = pyqtSignal(object, object)  # path, the folder it must describe (or None)
    _looks_ahead_requested = pyqtSignal(bool)
    _reload_requested = pyqtSignal()
    _close_requested = pyqtSignal()
    _search_requested = pyqtSignal(object, int)  # query, generation
    _decide_requested = pyqtSignal(object, object)  # pairs, verdict
    _shutdown_requested = pyqtSignal()

    def __init__(self, open_embedder: Callable, config: EngineConfig, parent: QObject | None = None):
        super().__init__(parent)
        self._generation = Generation()
        self.state: CatalogueState | None = None
        self.pending: Query | None = None
        worker = SearchWorker(open_embedder, config, self._generation)
        self._job = Job(worker, "search", start=worker.start)
        self._open_requested.connect(worker.open_catalogue)
        self._reload_requested.connect(worker.reload)
        self._close_requested.connect(worker.close_catalogue)
        self._search_requested.connect(worker.search)
        self._decide_requested.connect(worker.decide)
        self._shutdown_requested.connect(worker.shutdown)
        self._looks_ahead_requested.connect(worker.set_looks_ahead)
        worker.outbox.ahead_progress.connect(self.ahead_progress)
        worker.outbox.catalogue_opened.connect(self._on_catalogue_opened)
        worker.damaged.connect(self.damaged)
        worker.other_folder.connect(self.other_folder)
        worker.open_failed.connect(self._on_open_failed)
        worker.outbox.result_ready.connect(self._on_result_ready)
        worker.outbox.query_failed.connect(self._on_query_failed)
        worker.failed.connect(self.failed)
        worker.decision_failed.connect(self.decision_failed)
        self._job.start()

    def open_catalogue(self, path: str, root: str | None = None) -> None:
        """Open `path`; `root`: the folder it must describe (a folder's own catalogue file), or None."""
        self._generation.next()  # a query for the previous catalogue is stale now
        self.pending = None
        self._open_requested.emit(str(path), root)

    def reload(self) -> None:
        self._reload_requested.emit()

    def set_looks_ahead(self, on: bool) -> None:
        """Look ahead at the open catalogue's designs while idle, or not (look_verdicts.py)."""
        self._looks_ahead_requested.emit(on)

    def close_catalogue(self) -> None:
        self._generation.next()
        self.pending = None
        self.state = None
        self._close_requested.emit()

    def search(self, query: Query) -> int:
        """Queue a query (superseding any pending one); returns its generation."""
        generation = self._generation.next()
        self.pending = query
        self._search_requested.emit(query, generation)
        return generation

    def decide(self, pairs: list[tuple[int, int]], verdict: str | None) -> None:
        """Keep a verdict on pairs of catalogue images; a search asked after this sees it (one thread, in order)."""
        self._decide_requested.emit(list(pairs), verdict)

    def shutdown(self, msecs: int = 30_000) -> None:
        """Stop the search thread and wait for it (closing the window)."""
        self._generation.next()
        self.pending = None
        if self._job.is_running():
            self._shutdown_requested.emit()
            self._job.wait(msecs)

    def _on_catalogue_opened(self, state: CatalogueState) -> None:
        self.state = state
        self.catalogue_opened.emit(state)

    def _on_open_failed(self, path: str, message: str) -> None:
        self.state = None
        self.open_failed.emit(path, message)

    def _on_result_ready(self, outcome: QueryOutcome) -> None:
        if outcome.generation != self._generation.value:
            return
        self.pending = None
        if outcome.state is not None:
            self.state = outcome.state
        self.result_ready.emit(outcome)

    def _on_query_failed(self, query: Query, generation: int, message: str) -> None:
        if generation != self._generation.value:
            return
        self.pending = None
        self.query_failed.emit(query, message)
