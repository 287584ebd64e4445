"""Building and updating a catalogue on a worker thread, and the window's handle on builds.

The worker opens its own model and catalogue in its thread (SQLite
connections and ONNX sessions belong to the thread that opens them), reports
the engine's progress as signals and stops after the current batch when
cancelled: the engine keeps and indexes every committed batch, so a cancelled
build leaves a searchable catalogue and the next update resumes from there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PyQt5.QtCore import QObject, pyqtSignal

from swimsearch.catalogue import BuildReport, Catalogue
from swimsearch.config import EngineConfig
from swimsearch.errors import Cancelled, DamagedCatalogue
from swimsearch.folderscan import NoPictures, nothing_read, refuse_folder_without_pictures  # noqa: F401 - NoPictures re-exported
from swimsearch.locations import display_name

from .locations import CatalogueTarget
from .workers import Job, JobRunner, Worker

log = logging.getLogger(__name__)

#: Images per committed batch in the app: Cancel is checked between batches,
#: and 8 photos take about a quarter of a second on a two-core laptop.
BATCH_SIZE = 8


@dataclass(frozen=True)
class BuildOutcome:
    """What a finished or cancelled build did (a copy, never a live catalogue)."""

    catalogue_path: str
    name: str
    report: BuildReport
    cancelled: bool
    root: str = ""  # the catalogue's folder, for sentences about it


class BuildWorker(Worker):
    """Builds or updates one catalogue.

    Args:
        target: the catalogue file and, for a new catalogue, its folder.
        open_embedder: makes the model (called in the worker's thread).
        config: frozen engine settings.
        replace: delete an existing catalogue file first (the sample, after its folder moved).
        allow_removal: remove files gone from the folder even when so many are gone at once that
            the engine would hold their removal back (the user confirmed it).
    """

    damaged = pyqtSignal(str, str)  # path, message: the catalogue file is damaged (just before `failed`)

    doing = "building the catalogue"

    def __init__(self, target: CatalogueTarget, open_embedder: Callable, config: EngineConfig, *, replace: bool = False,
                 allow_removal: bool = False):
        super().__init__()
        self._allow_removal = allow_removal
        self.target = target
        self._open_embedder = open_embedder
        self._config = config.with_changes(batch_size=min(config.batch_size, BATCH_SIZE))
        self._replace = replace

    def work(self) -> BuildOutcome:
        try:
            return self._build()
        except DamagedCatalogue as exc:  # said apart, so the window can offer to set the file aside
            self.damaged.emit(str(self.target.path), str(exc))
            raise

    def _build(self) -> BuildOutcome:
        self.progress_changed.emit("start", 0, 0)
        embedder = self._open_embedder()
        if self.should_stop():
            raise Cancelled()
        path = self.target.path
        if self._replace:
            remove_catalogue(path)
        made = self.target.root is not None and not path.exists()
        if made:
            refuse_folder_without_pictures(self.target.root, self.should_stop)  # before any file is made
        if self.target.root is None:
            catalogue = Catalogue.open(path)
        else:
            catalogue = Catalogue.open_or_create(path, self.target.root)
        try:
            try:
                report = catalogue.update(  # the window keeps the hash layer a catalogue was fitted with
                    embedder, catalogue.with_fit_choices(self._config), progress=self._on_progress,
                    should_stop=self.should_stop, allow_removal=self._allow_removal,
                )
                cancelled = False
            except Cancelled as exc:
                report, cancelled = exc.report, True
            name = display_name(catalogue.path, catalogue.root)
            outcome = BuildOutcome(str(catalogue.path), name, report, cancelled, str(catalogue.root))
        finally:
            catalogue.close()
        if made and report.read_nothing:  # as a folder without pictures: refused, and nothing left in it
            remove_catalogue(path)
            raise nothing_read(self.target.root, report.errors, report.skipped)
        return outcome

    def _on_progress(self, phase: str, done: int, total: int) -> None:
        self.progress_changed.emit(phase, done, total)


def remove_catalogue(path: os.PathLike) -> None:
    """Delete a catalogue file with its SQLite side files."""
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(f"{os.fspath(path)}{suffix}")
        except FileNotFoundError:
            pass
    log.info("removed the catalogue %s", path)


class BuildService(QObject):
    """The GUI's handle on builds: one at a time (a new one cancels the running one), answers as signals.

    `idle` comes once no build runs or waits any more.
    """

    progress_changed = pyqtSignal(str, int, int)  # phase, done, total
    result_ready = pyqtSignal(object)  # BuildOutcome
    failed = pyqtSignal(str)
    damaged = pyqtSignal(str, str)  # path, message: the catalogue file is damaged (just before `failed`)
    idle = pyqtSignal()

    def __init__(self, open_embedder: Callable, config: EngineConfig, parent: QObject | None = None):
        super().__init__(parent)
        self._open_embedder = open_embedder
        self._config = config
        self._runner = JobRunner(self)
        self._runner.idle_changed.connect(lambda idle: self.idle.emit() if idle else None)

    @property
    def busy(self) -> bool:
        return self._runner.busy

    @property
    def has_pending(self) -> bool:
        """A build waits for the running one to stop."""
        return self._runner.has_pending

    def start(self, target: CatalogueTarget, *, replace: bool = False, allow_removal: bool = False) -> None:
        """Build or update `target` (cancelling a running build first); `allow_removal` as `BuildWorker` takes it."""
        worker = BuildWorker(target, self._open_embedder, self._config, replace=replace, allow_removal=allow_removal)
        worker.progress_changed.connect(self.progress_changed)
        worker.result_ready.connect(self.result_ready)
        worker.damaged.connect(self.damaged)
        worker.failed.connect(self.failed)
        self._runner.start(Job(worker, "build"))

    def cancel(self) -> None:
        self._runner.cancel()

    def stop(self) -> None:
        """Cancel and wait for the build thread (closing the window)."""
        self._runner.stop()
