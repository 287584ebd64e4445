"""Keeping the array cache folder (array_cache.py) within bounds: free disk space, old caches, the maker's log.

A cache is made only when the disk holds it, its work files and a margin
(`room_for`); a maker removes the caches of its folder that no search took
into use for `UNUSED_DAYS` days or whose catalogue file is gone (`prune`); each
maker's log lines go to `NAME.log` beside its cache, and `describe` puts a
cache's path, size and state in words for `swimsearch info`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

GB = 1e9
#: A cache no search took into use for this long is removed by the next maker (its file's mtime: `touch`).
UNUSED_DAYS = 30
#: What the log file of a maker that found too little room begins its line with (`describe` reads it back).
NO_ROOM = "not enough free disk space"
MARGIN_ENV = "SWIMSEARCH_CACHE_MARGIN_GB"


def free_bytes(folder: Path) -> tuple[int, int]:
    """(bytes free to this user, the disk's size) where `folder` lies."""
    usage = shutil.disk_usage(folder)
    return int(usage.free), int(usage.total)


def margin(total: int) -> int:
    """What a cache must leave free: 10 % of a small disk (where systems start warning and other programs
    fail), at most 10 GB of a large one, at least 1 GB. The cache is disposable; the user's disk is not.
    $SWIMSEARCH_CACHE_MARGIN_GB sets another (benchmarks on a shared machine whose disk is nearly full)."""
    given = os.environ.get(MARGIN_ENV)
    if given:
        try:
            return int(float(given) * GB)
        except ValueError:
            log.warning("%s=%r is not a number of GB: ignored", MARGIN_ENV, given)
    return int(max(1 * GB, min(0.10 * total, 10 * GB)))


def room_for(folder: Path, cache: int, work: int, catalogue: str) -> str | None:
    """None when the disk holds a cache of `cache` bytes, `work` bytes of work files and the margin; else why not."""
    free, total = free_bytes(folder)
    needs = cache + work + margin(total)
    if free >= needs:
        return None
    return (f"{NO_ROOM} for the search cache of {catalogue}: needs {needs / GB:.1f} GB, {free / GB:.1f} GB free; "
            "searches read the catalogue instead")


def reserve(fd: int, size: int, offset: int = 0) -> None:
    """Claim `size` bytes from `offset` of disk for an open file before they are written through a memory
    map, so a full disk is an OSError here, not a SIGBUS in the middle of writing (where the platform can:
    Linux, BSD; elsewhere the file is only made long enough)."""
    if hasattr(os, "posix_fallocate") and size > 0:
        try:
            os.posix_fallocate(fd, offset, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # a file system that cannot: as before
                raise
    if os.fstat(fd).st_size < offset + size:
        os.ftruncate(fd, offset + size)


def log_file(cache: Path) -> Path:
    """The log of the last maker of `cache` (overwritten by each)."""
    return cache.with_name(cache.name + ".log")


def last_line(path: Path) -> str:
    """The last non-empty line of a small text file, "" when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
            lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def touch(cache: Path) -> None:
    """Mark a cache as taken into use now (its mtime: the age `prune` goes by)."""
    with contextlib.suppress(OSError):
        os.utime(cache)


@contextlib.contextmanager
def free_lock(cache: Path) -> Iterator[bool | None]:
    """Whether no maker is at work on `cache` (its lock taken without waiting, held meanwhile); None where
    there are no such locks (Windows: the age rule alone protects a cache being made)."""
    try:
        import fcntl
    except ImportError:
        yield None
        return
    lock = cache.with_name(cache.name + ".lock")
    try:
        fh = open(lock, "a")
    except OSError:
        yield False
        return
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _owner(name: str) -> str | None:
    """The cache file a work file `.NAME.swimarrays.PID.tmp` / `.NAME.swimarrays.making-*` belongs to."""
    at = name.find(".swimarrays.")
    return name[1:at] + ".swimarrays" if name.startswith(".") and at > 0 else None


def _unwanted(cache: Path, now: float, locked: bool) -> str | None:
    """Why an existing cache (or the leftovers of one) should go, None to keep it; `locked`: no maker is at
    work on it (its lock is held here), else there are no locks and only age tells."""
    from .array_cache import CacheUnusable, _header

    try:
        age = now - cache.stat().st_mtime
    except FileNotFoundError:
        if locked:
            return "work files of a maker that was ended"  # a maker at work would hold the lock
        ages = [now - p.stat().st_mtime for p in cache.parent.glob(f".{_escaped(cache.name)}.*")]
        return "work files of a maker that was ended" if ages and min(ages) > UNUSED_DAYS * 86400 else None
    if age > UNUSED_DAYS * 86400:
        return f"not used for {age / 86400:.0f} days"
    try:
        catalogue = _header(cache).get("catalogue")
    except CacheUnusable:
        return None  # its own maker makes it again or removes it
    where = Path(str(catalogue or ""))
    # only an absolute path recorded by a maker is judged, and only while its folder is there: a catalogue
    # on a drive not plugged in keeps its cache (the age rule still applies)
    if where.is_absolute() and where.parent.is_dir() and not where.exists():
        return f"its catalogue {where} is gone"
    return None


def prune(folder: Path, keep: Path, now: float | None = None) -> list[Path]:
    """Remove the caches of `folder` (and their work files, log and lock) that are not wanted any more,
    `keep` aside; the caches removed."""
    now = time.time() if now is None else now
    caches = {p.name for p in folder.glob("*.swimarrays")}
    caches |= {owner for p in folder.glob(".*.swimarrays.*") if (owner := _owner(p.name))}
    removed = []
    for name in sorted(caches - {keep.name}):
        cache = folder / name
        with free_lock(cache) as free:
            reason = _unwanted(cache, now, bool(free)) if free is not False else None
            if reason is None:
                continue
            for left in folder.glob(f".{_escaped(name)}.*"):
                shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)
            for path in (cache, log_file(cache)):
                path.unlink(missing_ok=True)
            log.info("removed the search cache %s: %s", cache, reason)
            removed.append(cache)
        cache.with_name(name + ".lock").unlink(missing_ok=True)
    return removed


def _escaped(name: str) -> str:
    import glob

    return glob.escape(name)


def describe(cache: Path) -> dict[str, Any]:
    """A cache's path, size and state in words ("ready", "being made", "absent", "not made: ...")."""
    from .array_cache import CacheUnusable, _header

    out: dict[str, Any] = {"path": str(cache), "bytes": 0, "state": "absent"}
    if cache.with_name(cache.name + ".lock").exists():
        with free_lock(cache) as free:
            if free is False:
                out["state"] = "being made or checked"
    if cache.exists():
        out["bytes"] = cache.stat().st_size
        if out["state"] == "absent":
            try:
                _header(cache)
                out["state"] = "ready (checked against the catalogue when a search takes it into use)"
            except CacheUnusable as exc:
                out["state"] = f"unusable: it {exc} (made again at the next search)"
    elif out["state"] == "absent" and last_line(log_file(cache)).find(NO_ROOM) >= 0:
        out["state"] = f"not made: {NO_ROOM}"
    return out
