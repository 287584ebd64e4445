"""Tidying groups of duplicate files: suggest the copy to keep, move the others aside, and move them back.

Files are never deleted, only moved to a folder the user chose, and never
every copy of a group: the keeper always stays where it is. A name already
taken at the destination gets " (2)", " (3)", ... before its extension;
nothing is ever overwritten, neither when moving aside nor when moving back.
Each move is also written to a log in the destination folder
(`MOVE_LOG`), so where a file came from is known after a restart too.
Qt-free, so the window and any script share the rules.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .export import atomic_output

log = logging.getLogger(__name__)

#: The log of moves kept in each destination folder (when, from, to).
MOVE_LOG = "moved-by-swimsearch.csv"

#: Keeper rules, as a user picks them.
KEEP_LARGEST, KEEP_OLDEST, KEEP_IN_FOLDER = "largest", "oldest", "folder"


@dataclass(frozen=True)
class Member:
    """One file of a duplicate group, with what the keeper rules look at."""

    path: str
    width: int | None
    height: int | None
    size: int | None  # bytes (None: the file is gone)
    mtime: float | None  # last modification, seconds since the epoch

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    @property
    def exists(self) -> bool:
        return self.size is not None


def member(path: str, width: int | None, height: int | None) -> Member:
    """A Member with the file's size and date read from the disk now."""
    try:
        info = os.stat(path)
    except OSError:
        return Member(path, width, height, None, None)
    return Member(path, width, height, info.st_size, info.st_mtime)


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when `path` is `folder` or lies anywhere below it (links resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def suggest_keeper(members: Sequence[Member], rule: str = KEEP_LARGEST, preferred_folder: str = "") -> int:
    """The index of the copy to keep.

    Rules: "largest" keeps the most pixels, then the oldest; "oldest" keeps
    the oldest file, then the most pixels; "folder" keeps a copy inside
    `preferred_folder` when there is one (the largest of those), else falls
    back to "largest". Missing files are never kept while one exists; ties go
    to the shorter, then alphabetically first path, so the choice is stable.
    """
    candidates = [i for i, m in enumerate(members) if m.exists] or list(range(len(members)))
    if rule == KEEP_IN_FOLDER and preferred_folder:
        inside = [i for i in candidates if is_inside(members[i].path, preferred_folder)]
        candidates = inside or candidates
    never = float("inf")

    def largest(i: int) -> tuple:
        m = members[i]
        return (-m.pixels, m.mtime if m.mtime is not None else never, len(m.path), m.path)

    def oldest(i: int) -> tuple:
        m = members[i]
        return (m.mtime if m.mtime is not None else never, -m.pixels, len(m.path), m.path)

    return min(candidates, key=oldest if rule == KEEP_OLDEST else largest)


@dataclass(frozen=True)
class Move:
    """One file moved: where it was, and where it is now."""

    source: str
    destination: str


@dataclass(frozen=True)
class MoveReport:
    """What a move (or an undo) did: the files moved, and the ones that were not, each with why."""

    moved: tuple[Move, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (path, plain reason)


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem (2).ext`, `(3)`, ... when that name is taken."""
    candidate = folder / name
    stem, suffix = os.path.splitext(name)
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{stem} ({n}){suffix}"
        n += 1
    return candidate


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).rstrip(".").lower()


def move_aside(
    groups: Iterable[tuple[Sequence[str], str]],
    destination: str | os.PathLike,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> MoveReport:
    """Move every copy but the keeper of each group into `destination`.

    Args:
        groups: (paths of the group, the keeper's path) pairs.
        destination: an existing folder (never inside the folder the files are
            catalogued from: the caller checks that, it knows the catalogue).
    """
    folder = Path(destination)
    if not folder.is_dir():
        return MoveReport(failed=((str(folder), "the destination folder does not exist"),))
    moved: list[Move] = []
    failed: list[tuple[str, str]] = []
    for paths, keeper in groups:
        if keeper not in paths:
            failed.extend((p, "the group's keeper is not one of its files, so nothing of it was moved") for p in paths)
            continue
        for path in paths:
            if path == keeper:
                continue  # the keeper always stays: a group never loses every copy
            if should_stop is not None and should_stop():
                break
            if not os.path.lexists(path):
                failed.append((path, "it is no longer there"))
                continue
            if is_inside(path, folder):
                failed.append((path, "it is already in the destination folder"))
                continue
            target = free_name(folder, os.path.basename(path))
            try:
                shutil.move(path, target)
            except OSError as exc:
                failed.append((path, _reason(exc)))
                continue
            moved.append(Move(path, str(target)))
    if moved:
        _log_moves(folder, moved, "moved aside")
    return MoveReport(tuple(moved), tuple(failed))


def move_back(moves: Sequence[Move]) -> MoveReport:
    """Undo moves: each file goes back where it was, unless something else has taken its place there."""
    moved: list[Move] = []
    failed: list[tuple[str, str]] = []
    for move in reversed(moves):
        if os.path.lexists(move.source):
            failed.append((move.source, "another file has taken its place, so it stays at " + move.destination))
            continue
        if not os.path.lexists(move.destination):
            failed.append((move.source, f"it is no longer at {move.destination}"))
            continue
        try:
            Path(move.source).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(move.destination, move.source)
        except OSError as exc:
            failed.append((move.source, _reason(exc)))
            continue
        moved.append(Move(move.destination, move.source))
    for folder, group in _by_folder(moved).items():
        _log_moves(folder, group, "moved back")
    return MoveReport(tuple(moved), tuple(failed))


def _by_folder(moves: Iterable[Move]) -> dict[Path, list[Move]]:
    folders: dict[Path, list[Move]] = {}
    for move in moves:
        folders.setdefault(Path(move.source).parent, []).append(move)
    return folders


def _log_moves(folder: Path, moves: Sequence[Move], what: str) -> None:
    """Add the moves to the folder's move log (rewritten whole, atomically); a log that fails is only logged."""
    log_path = folder / MOVE_LOG
    try:
        previous = log_path.read_text(encoding="utf-8") if log_path.exists() else "when,what,from,to\r\n"
        when = datetime.now().astimezone().isoformat(timespec="seconds")
        with atomic_output(log_path, newline="", encoding="utf-8") as fh:
            fh.write(previous)
            writer = csv.writer(fh, lineterminator="\r\n")
            for move in moves:
                writer.writerow([when, what, move.source, move.destination])
    except OSError as exc:
        log.warning("cannot write the move log %s: %s", log_path, exc)
