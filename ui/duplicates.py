"""Duplicate review: find groups of near-identical files, keep one copy of each, move the others aside, undo.

`DuplicateReview` is the window's handle (`window.duplicates`): it finds the
groups on a worker thread (with progress and Cancel), remembers them and the
keepers for the open catalogue, moves files on a worker thread, and keeps
the undo list for the whole session, so Ctrl+Z works after the view was
closed and opened again. It does not survive quitting the app; the move log
each destination folder keeps (`swimsearch.tidy.MOVE_LOG`) says where every
file came from. After a move or an undo the catalogue is updated as F5 does
(same progress, Cancel and summary), so moved files leave it.

The view itself is `ui/duplicate_view.py`.

Tiers (`TIERS`): near-identical files (the perceptual hash), or pictures of
one design (the calibrated similarity's same-design band, issue 11: crops,
recolours, mirror images and small rotations too); `swimsearch.duplicates`
finds both. Only near-identical groups are moved in bulk (*Move all others…*):
a same-design group holds look-alikes to check (on the 5,398 clothing photos,
823 groups of 2,289 files against 16 near-identical groups; two different
shirts score 93 %), so its others are moved one group at a time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any, Callable

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtWidgets import QMainWindow, QWidget

from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.duplicates import find_duplicate_groups
from swimsearch.search import SearchEngine
from swimsearch.tidy import Member, Move, MoveReport, is_inside, member, move_aside, move_back, suggest_keeper

from .formatting import count_of
from .workers import Job, Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tier:
    """A kind of group the review can show: its name, whether it can be found yet (and why not), and whether
    its groups may be moved all at once (only copies; look-alikes are checked one group at a time)."""

    name: str
    available: bool
    why_not: str = ""
    bulk: bool = True


TIERS = (
    Tier("Near-identical files", True),
    Tier("Same design", True, "Look-alikes to check one group at a time: pictures whose similarity is in the "
         "same-design band (crops, recolours, mirror images and small rotations of one picture, but also different, "
         "very alike garments), never moved all at once (needs a model with a similarity calibration)", bulk=False),
)


@dataclass(frozen=True)
class ReviewGroup:
    """A group as the review shows it: its files (with sizes and dates) and how far apart their hashes are."""

    members: tuple[Member, ...]
    max_phash_distance: int

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(m.path for m in self.members)


@dataclass(frozen=True)
class UndoEntry:
    """One move of the review, to undo: the catalogue, the moves, and the groups as they were before it."""

    catalogue_path: str
    moves: tuple[Move, ...]
    groups_before: tuple[ReviewGroup, ...]
    keepers_before: tuple[int, ...]


class FindWorker(Worker):
    """Finds the groups of one catalogue, opened read-only in this thread, with each file's size and date."""

    doing = "looking for duplicates"

    def __init__(self, catalogue_path: str, config: EngineConfig, same_design: bool = False):
        super().__init__()
        self._path, self._config, self._same_design = catalogue_path, config, same_design

    def work(self) -> list[ReviewGroup]:
        self.progress_changed.emit("duplicates", 0, 0)
        with Catalogue.open(self._path, readonly=True) as catalogue:
            engine = SearchEngine(catalogue, None, self._config)
            groups = find_duplicate_groups(
                engine, same_design=self._same_design,
                progress=lambda done, total: self.progress_changed.emit("duplicates", done, total),
                should_stop=self.should_stop,
            )
            records = catalogue.records([i for g in groups for i in g.image_ids])
        return [
            ReviewGroup(
                tuple(member(path, records[i].width, records[i].height) if i in records else member(path, None, None)
                      for i, path in zip(g.image_ids, g.paths)),
                g.max_phash_distance,
            )
            for g in groups
        ]


class MoveWorker(Worker):
    """Moves files aside or back (slow across drives, so never on the GUI thread)."""

    doing = "moving files"

    def __init__(self, action: Callable[[], MoveReport]):
        super().__init__()
        self._action = action

    def work(self) -> MoveReport:
        return self._action()


class DuplicateReview(QObject):
    """The groups, keepers and undo list of the duplicate review, and the jobs that find and move."""

    groups_changed = pyqtSignal()
    progress_changed = pyqtSignal(int, int)  # done, total while finding
    busy_changed = pyqtSignal(bool)
    note = pyqtSignal(str)  # what a move or an undo did, in words
    failed = pyqtSignal(str)

    def __init__(self, window: QMainWindow, config: EngineConfig, make_view: Callable[..., QWidget]):
        super().__init__(window)
        self._window: Any = window  # ui.main_window.MainWindow (which imports this module)
        self._config = config
        self._make_view = make_view  # ui.duplicate_view.DuplicateReviewDialog (which imports this module)
        self.catalogue_path: str | None = None  # the catalogue the groups belong to
        self.tier = 0  # which of TIERS is shown
        self.groups: list[ReviewGroup] = []
        self.keepers: list[int] = []  # index of the kept member, per group
        self.undo_stack: list[UndoEntry] = []
        self.job: Job | None = None
        self.view: Any = None  # the DuplicateReviewDialog, made on first show

    # --- the view ----------------------------------------------------------------------

    def show(self) -> None:
        """Open (or raise) the review; groups are found the first time, and for another catalogue."""
        if self.view is None:
            self.view = self._make_view(self, self._window)
            self.view.destroyed.connect(lambda: setattr(self, "view", None))
        self.view.show()
        self.view.raise_()
        self.view.activateWindow()
        state = self._window.session.catalogue
        if state is not None and state.path != self.catalogue_path and not self.busy:
            self.find()

    # --- finding -----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.job is not None

    def find(self) -> None:
        state = self._window.session.catalogue
        if state is None or self.busy:
            return
        worker = FindWorker(state.path, self._config, same_design=self.tier == 1)
        worker.progress_changed.connect(lambda _phase, done, total: self.progress_changed.emit(done, total))
        worker.result_ready.connect(lambda groups: self._on_found(state.path, groups))
        worker.failed.connect(self.failed)
        self._start(Job(worker, "duplicates"))

    def set_tier(self, tier: int) -> None:
        """Show groups of another kind (`TIERS`): found again."""
        if tier != self.tier:
            self.tier = tier
            self.groups, self.keepers, self.catalogue_path = [], [], None
            self.groups_changed.emit()
            self.find()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_found(self, catalogue_path: str, groups: list[ReviewGroup]) -> None:
        self.catalogue_path = catalogue_path
        self.groups = groups
        self.choose_keepers()

    def choose_keepers(self) -> None:
        """Suggest the keeper of every group by the user's rule (largest, oldest, preferred folder)."""
        settings = self._window.settings
        rule, folder = settings["duplicates/keep_rule"], settings["duplicates/preferred_folder"]
        self.keepers = [suggest_keeper(g.members, rule, folder) for g in self.groups]
        self.groups_changed.emit()

    def set_keeper(self, group: int, index: int) -> None:
        self.keepers[group] = index
        self.groups_changed.emit()

    def movable(self, groups: list[int] | None = None) -> int:
        """How many files a move of these groups (None: all) would move."""
        chosen = range(len(self.groups)) if groups is None else groups
        return sum(len(self.groups[g].members) - 1 for g in chosen)

    # --- moving and undoing --------------------------------------------------------------

    def refusal(self, destination: str) -> str:
        """Why the others cannot be moved to `destination` now ("" when they can)."""
        state = self._window.session.catalogue
        if self._window.session.building:
            return "The catalogue is being updated: move the copies when it is done."
        if state is None or state.path != self.catalogue_path:
            return "Another catalogue is open now: find the duplicates again first."
        if state.readonly:
            return f"The catalogue “{state.name}” is read-only, so its files are not moved from here."
        if is_inside(destination, state.root):
            return (
                f"Choose a folder outside “{state.name}” ({state.root}): files moved inside it would be "
                "added to the catalogue again at its next update."
            )
        return ""

    @property
    def bulk(self) -> bool:
        """Whether the groups shown may be moved all at once (near-identical files, not look-alikes)."""
        return TIERS[self.tier].bulk

    def move_others(self, destination: str, groups: list[int] | None = None) -> str:
        """Move every copy but the keeper of the groups (None: all) to `destination`; returns a refusal or ""."""
        chosen = list(range(len(self.groups))) if groups is None else list(groups)
        if not self.bulk and (groups is None or len(chosen) != 1):
            return ("Groups of one design are look-alikes to check, not copies: move the others of one group at "
                    "a time (Move others…, Ctrl+M), after looking at it.")
        refusal = self.refusal(destination)
        if refusal or self.busy:
            return refusal
        plan = [(self.groups[g].paths, self.groups[g].members[self.keepers[g]].path) for g in chosen]
        before = (tuple(self.groups), tuple(self.keepers))
        worker = MoveWorker(lambda: move_aside(plan, destination))
        worker.result_ready.connect(lambda report: self._on_moved(report, before, destination))
        worker.failed.connect(self.failed)
        self._start(Job(worker, "move"))
        return ""

    def _on_moved(self, report: MoveReport, before: tuple, destination: str) -> None:
        gone = {m.source for m in report.moved}
        if report.moved:
            self.undo_stack.append(UndoEntry(self.catalogue_path or "", report.moved, *before))
            self._drop_members(gone)
            # the moved files leave the catalogue, as F5 does it; SwimSearch moved them itself, so however many
            # they are, this is no unmounted share (the mass-removal guard would otherwise keep them and ask)
            self._window.session.update(allow_removal=True)
        words = f"Moved {count_of(len(report.moved), 'file')} to {destination}."
        self.note.emit(words + _failures(report, "moved"))

    def can_undo(self) -> bool:
        return bool(self.undo_stack) and not self.busy

    def undo(self) -> None:
        """Move the files of the last move back where they were (Ctrl+Z)."""
        if not self.can_undo():
            return
        entry = self.undo_stack.pop()
        worker = MoveWorker(lambda: move_back(entry.moves))
        worker.result_ready.connect(lambda report: self._on_moved_back(report, entry))
        worker.failed.connect(self.failed)
        self._start(Job(worker, "undo"))

    def _on_moved_back(self, report: MoveReport, entry: UndoEntry) -> None:
        if entry.catalogue_path == self.catalogue_path:
            # the groups as they were before the move, less any file that could not come back
            stayed = {m.source for m in entry.moves} - {m.destination for m in report.moved}
            self.groups, self.keepers = list(entry.groups_before), list(entry.keepers_before)
            self._drop_members(stayed)
        if report.moved:
            self._window.session.update()
        words = f"Moved {count_of(len(report.moved), 'file')} back."
        self.note.emit(words + _failures(report, "moved back"))

    def _drop_members(self, gone: set[str]) -> None:
        groups, keepers = [], []
        for group, keeper in zip(self.groups, self.keepers):
            kept_path = group.members[keeper].path  # never among the gone: the keeper is never moved
            members = tuple(m for m in group.members if m.path not in gone)
            if len(members) > 1:
                groups.append(replace(group, members=members))
                keepers.append(next((i for i, m in enumerate(members) if m.path == kept_path), 0))
        self.groups, self.keepers = groups, keepers
        self.groups_changed.emit()

    # --- jobs ------------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        self.job = job
        job.thread.finished.connect(self._on_job_finished)
        self.busy_changed.emit(True)
        job.start()

    def _on_job_finished(self) -> None:
        self.job = None
        self.busy_changed.emit(False)

    def stop(self) -> None:
        """Cancel and wait for a running job (closing the window)."""
        if self.job is not None:
            self.job.stop()
        if self.view is not None:
            self.view.close()


def _failures(report: MoveReport, verb: str) -> str:
    if not report.failed:
        return ""
    path, reason = report.failed[0]
    more = f" (and {count_of(len(report.failed) - 1, 'other')})" if len(report.failed) > 1 else ""
    return f" {count_of(len(report.failed), 'file')} could not be {verb}: {os.path.basename(path)}: {reason}{more}."
