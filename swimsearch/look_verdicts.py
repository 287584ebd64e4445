"""Verdicts of the look at two pictures (copy_check.py), kept between searches and sessions.

The look that tells a copy from a look-alike (same_picture.py) costs a few
milliseconds a pair, most of a search's time at 5,398 images (17 ms against
6 ms without it). Its verdict depends only on the two files, so it is kept:
by each file's path, size and change time (a file changed since is looked at
again) and by the look's own code (a new look is a new file of verdicts), in
a small SQLite file in the user's cache folder (array_cache.cache_dir), so
that any catalogue, a team catalogue too, reads the verdicts of pairs looked
at before. The look is symmetric (`copy_check.same_picture`), so a pair is
kept once, whichever was the query.

`look_ahead` fills it for a catalogue's own images in the
background (the window does it while nobody searches), so a design clicked or
dragged from the catalogue needs no look at all; which images were looked
ahead is kept here too, per catalogue.

A cache folder that cannot be written (read-only, full) keeps verdicts in
memory for this session only, and a damaged verdict file is set aside and
started again: losing it costs time, never a result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from . import copy_check, images
from .array_cache import cache_dir
from .errors import CatalogueError
from .images import ImageError
from .stores.sqlite_looks import LookFile, LookFileLost, open_look_file

if TYPE_CHECKING:
    from .stores.base import CatalogueReader, ImageRecord

log = logging.getLogger(__name__)

#: The page a look-ahead search fills: the window's (ui/settings.MAX_RESULTS); a search of a smaller page looks
#: at fewer pairs, so its verdicts are all kept too.
AHEAD_PAGE = 200
#: Catalogues of more designs are not looked ahead (their searches keep what they look at): at about 20 ms a
#: design and half of one core, 100,000 take an hour or more of a laptop's battery; a million would take a day.
AHEAD_UP_TO = 100_000
#: Looking ahead waits while another connection writes to the catalogue, till it has been still this long (s).
QUIET_S = 5.0
#: Verdict files of another version of the look are removed once unused this many days.
STALE_DAYS = 30


def look_version() -> str:
    """The look's version: a digest of the code a verdict depends on (copy_check.py's look, images.py's decoding)
    and of OpenCV's and FAISS's versions, so a changed look never reads old verdicts."""
    digest = hashlib.sha256()
    for module in (copy_check, images):
        with open(module.__file__ or "", "rb") as f:
            digest.update(f.read())
    for package in ("opencv-python-headless", "opencv-python", "faiss-cpu"):
        try:
            digest.update(f"{package} {metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()[:16]


def file_key(path: str | os.PathLike) -> int | None:
    """A 63-bit key of a file as it is now (path, size, modification and status-change times: a picture
    replaced in place with its size and time restored, as `cp -p` or a sync tool do, still has a new status-change
    time); None when it cannot be read."""
    try:
        path = os.path.abspath(path)  # a file dragged in by a relative path is the catalogue's absolute one
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    name = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "little") >> 1


class LookVerdicts:
    """Kept verdicts of pairs of files (by `file_key`), thread-safe; in memory when `path` is None or unusable."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._file: LookFile | None = open_look_file(path) if path is not None else None
        self._memory: dict[tuple[int, int], bool] = {}
        self._ahead: set[tuple[str, int]] = set()

    @classmethod
    def default(cls) -> "LookVerdicts":
        """The user's verdict file for this version of the look (those of earlier versions are removed)."""
        path = cache_dir() / f"looks-{look_version()}.sqlite"
        try:
            for old in path.parent.glob("looks-*.sqlite*"):
                # another version's, unused for a month (a window of another version may share the folder)
                if not old.name.startswith(path.name) and time.time() - old.stat().st_mtime > STALE_DAYS * 86400:
                    old.unlink()
        except OSError:  # removed meanwhile, or a folder not there yet: left as it is
            pass
        return cls(path)

    def get(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], bool]:
        """The kept verdicts of `pairs` (either order), by the pair as given; pairs never looked at are left out."""
        wanted = {_ordered(a, b): (a, b) for a, b in pairs}
        with self._lock:
            found = {wanted[k]: self._memory[k] for k in wanted if k in self._memory}
            rest = [k for k in wanted if wanted[k] not in found]
            if self._file is not None and rest:
                try:
                    found.update((wanted[k], same) for k, same in self._file.verdicts(rest).items())
                except LookFileLost:
                    self._file = None
        return found

    def put(self, verdicts: dict[tuple[int, int], bool]) -> None:
        """Keep verdicts of pairs of files (either order)."""
        rows = {_ordered(a, b): bool(same) for (a, b), same in verdicts.items()}
        with self._lock:
            if self._file is not None and rows:
                try:
                    self._file.keep(rows)
                    return
                except LookFileLost:
                    self._file = None
            self._memory.update(rows)

    def looked_ahead(self, catalogue: str, keys: list[int]) -> set[int]:
        """Which of `keys` (files as `file_key` reads them) were looked ahead in `catalogue` (`mark_ahead`)."""
        with self._lock:
            found = {k for k in keys if (catalogue, k) in self._ahead}
            rest = [k for k in keys if k not in found]
            if self._file is not None and rest:
                try:
                    found |= self._file.ahead(catalogue, rest)
                except LookFileLost:
                    self._file = None
        return found

    def mark_ahead(self, catalogue: str, keys: list[int]) -> None:
        """Say that the pairs a search of each file in `catalogue` looks at are kept."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.mark_ahead(catalogue, keys)
                    return
                except LookFileLost:
                    self._file = None
            self._ahead.update((catalogue, k) for k in keys)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _ordered(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


class Checks(Protocol):
    """What looking ahead needs of the look (same_picture.PictureCheck, which holds these verdicts)."""

    enabled: bool

    def kept(self) -> LookVerdicts | None: ...


class Searches(Protocol):
    """What looking ahead needs of the engine (search.SearchEngine)."""

    picture_check: Checks
    reader: "CatalogueReader"

    @property
    def calibrated(self) -> bool: ...

    def searchable_ids(self) -> np.ndarray: ...

    def records(self, image_ids: np.ndarray) -> dict[int, "ImageRecord"]: ...

    def search_id(self, image_id: int, *, top_n: int = 50) -> Any: ...

    @property
    def written_since(self) -> Any: ...


def look_ahead(engine: Searches, image_ids: Sequence[int], *, top_n: int = AHEAD_PAGE) -> int:
    """Search with each of `image_ids` (catalogue images) not yet looked ahead in this catalogue, so that the
    verdicts of the pairs its search looks at are kept: a later search by that design, clicked or dragged from
    its folder, then looks at nothing. `top_n`: the page of the searches to come (the window's; a smaller page
    looks at fewer pairs). Returns how many were searched."""
    verdicts, todo = _to_look_ahead(engine, image_ids)
    searched = []
    for image_id, key in todo.items():
        try:
            engine.search_id(image_id, top_n=top_n)
        except (CatalogueError, ImageError) as exc:  # gone since, or unreadable: looked at when searched, if ever
            log.debug("looking ahead: image %d skipped (%s)", image_id, exc)
            continue
        searched.append(key)
    if verdicts is not None and searched:
        verdicts.mark_ahead(engine.reader.location, searched)
    return len(searched)


def to_look_ahead(engine: Searches, image_ids: Sequence[int]) -> list[int]:
    """Those of `image_ids` that `look_ahead` would search (none when nothing is looked at or kept)."""
    return list(_to_look_ahead(engine, image_ids)[1])


def _looks(engine: Searches) -> bool:
    """Whether the engine's searches look at pictures at all (not without the check, nor without the calibration)."""
    return engine.picture_check.enabled and engine.calibrated


def _to_look_ahead(engine: Searches, image_ids: Sequence[int]) -> tuple[LookVerdicts | None, dict[int, int]]:
    verdicts = engine.picture_check.kept() if _looks(engine) else None
    if verdicts is None or not len(image_ids):
        return verdicts, {}
    records = engine.records(np.asarray(image_ids, np.int64))
    found = {i: file_key(r.path) for i, r in records.items() if r.error is None}
    keys = {i: k for i, k in found.items() if k is not None}
    done = verdicts.looked_ahead(engine.reader.location, list(keys.values()))
    return verdicts, {i: k for i, k in keys.items() if k not in done}


class LookAhead:
    """A catalogue's images still to look ahead (`look_ahead`), a few at a time: the window calls `step` while
    nobody searches, so a search asked meanwhile waits for one step at most."""

    def __init__(self, engine: Searches, *, top_n: int = AHEAD_PAGE, block: int = 512):
        self._engine = engine
        self._top_n = top_n
        self._block = block
        ids = np.asarray(engine.searchable_ids(), np.int64)
        self._ids = ids if _looks(engine) and len(ids) <= AHEAD_UP_TO else ids[:0]
        self._next = 0
        self._todo: deque[int] = deque()
        self._written: Any = None  # the catalogue's version another connection last committed, and when seen
        self._written_at = 0.0
        self.searched = 0

    def ready(self) -> bool:
        """Whether to step now: not while another connection writes to the catalogue (a build of it) until it has
        been still for QUIET_S (a step's search would read the whole catalogue again after each commit)."""
        written = self._engine.written_since
        if written is None:
            return True
        if written != self._written:
            self._written, self._written_at = written, time.monotonic()
        return time.monotonic() - self._written_at >= QUIET_S

    @property
    def progress(self) -> tuple[int, int]:
        """(designs done or found done before, all to look ahead at)."""
        return self._next - len(self._todo), len(self._ids)

    def step(self, count: int = 2, *, blocks: int = 1) -> bool:
        """Look ahead `count` images (after skipping, in at most `blocks` blocks, those done before).
        Returns whether any remain."""
        for _ in range(blocks):
            if self._todo or self._next >= len(self._ids):
                break
            part = self._ids[self._next : self._next + self._block].tolist()
            self._next += len(part)
            self._todo.extend(to_look_ahead(self._engine, part))
        ids = [self._todo.popleft() for _ in range(min(count, len(self._todo)))]
        if ids:
            self.searched += look_ahead(self._engine, ids, top_n=self._top_n)
        return bool(self._todo) or self._next < len(self._ids)
