"""What a folder scan changes in a catalogue, and when a scan must not be believed: rules every store shares.

`diff_scan` compares the files found with the catalogue's records: a file is
unchanged when its size, modification time and content fingerprint are as
recorded, or (a compressed picture: `fingerprint.new_time_may_be_same`) when
only its time is new, as after a folder is copied with `cp -r`; a file whose last read failed for a passing reason is read again;
a file that is gone is kept a while as a tombstone (record and embedding),
so that a file that comes back, at its old place or moved elsewhere in the
folder, is recognised by its fingerprint and not read again.

`removal_held` is the guard against believing a scan that lost part of the
folder (a share mounted half-way, an unplugged drive under a subfolder): it
says why the removals of a scan are held back until a person confirms them.
Files inside a folder that could not be listed are neither gone nor changed:
they are kept as they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

from ..fingerprint import new_time_may_be_same
from ..images import FoundFile

#: Removals are held back when more than this share of the catalogue's files is gone at once ...
GUARD_SHARE = 0.25
#: ... and at least this many (a small folder may lose a few files without a question);
GUARD_MIN = 10
#: or when a whole subfolder that held at least this many files is gone (or empty).
GUARD_SUBFOLDER = 20

#: Records of files that are gone are kept this long, then dropped with their embeddings.
TOMBSTONE_SECONDS = 30 * 24 * 3600.0

Fingerprints = Callable[[Sequence[FoundFile]], Sequence["int | None"]]


@dataclass(frozen=True)
class KnownFile:
    """What a catalogue holds about one file, for comparing with a scan."""

    image_id: int
    size: int
    mtime: float
    fingerprint: int | None = None  # None: recorded before fingerprints were kept
    retry: bool = False  # its last read failed for a passing reason: read it again
    gone: float | None = None  # when it was found missing (a tombstone), or None


class Restored(NamedTuple):
    """A record that describes a found file without reading it: it came back, moved, or got its fingerprint."""

    image_id: int
    file: FoundFile
    fingerprint: int | None


@dataclass(frozen=True)
class ScanDiff:
    """A folder scan against what the catalogue holds."""

    todo: tuple[FoundFile, ...]  # to read: new, changed, or failed before for a passing reason
    changed: frozenset[str] = frozenset()  # of `todo`: files the catalogue holds whose content changed
    retried: frozenset[str] = frozenset()  # of `todo`: read again because their last read failed for a passing reason
    restored: tuple[Restored, ...] = ()  # records pointed at found files without reading them
    gone: tuple[tuple[str, int], ...] = ()  # (relative path, image id) of searchable files no longer found
    unchanged: int = 0
    unseen: int = 0  # files inside folders that could not be listed: kept as they are
    came_back: int = 0  # of `restored`: tombstones whose file is back where it was
    moved: int = 0  # of `restored`: records whose file is found again elsewhere in the folder
    retimed: int = 0  # of `unchanged` (and `restored`): files with a new time and their recorded content

    @property
    def removed(self) -> int:
        """Files gone from the folder (made tombstones)."""
        return len(self.gone)

    @property
    def gone_ids(self) -> list[int]:
        return [image_id for _, image_id in self.gone]

    def holding_removals(self) -> "ScanDiff":
        """This diff with its removals held back: gone files are kept as they are."""
        return ScanDiff(self.todo, self.changed, self.retried, self.restored, (), self.unchanged,
                        self.unseen + len(self.gone), self.came_back, self.moved, self.retimed)


def _same_stat(known: KnownFile, found: FoundFile) -> bool:
    # to the microsecond: file systems round differently
    return known.size == found.size and abs(known.mtime - found.mtime) <= 1e-6


def _may_be_retimed(known: KnownFile, found: FoundFile) -> bool:
    """A file found with a new time whose content the fingerprint can vouch for (`new_time_may_be_same`)."""
    return known.fingerprint is not None and known.size == found.size and new_time_may_be_same(found.relpath)


def _inside(relpath: str, folders: Sequence[str]) -> bool:
    return any(folder in ("", ".") or relpath.startswith(folder + "/") for folder in folders)


def diff_scan(
    found: Iterable[FoundFile],
    known: Mapping[str, KnownFile],
    fingerprints: Fingerprints | None = None,
    *,
    unlisted: Sequence[str] = (),
) -> ScanDiff:
    """Compare a scan with the catalogue's files (relative path -> `KnownFile`).

    Args:
        fingerprints: content fingerprints of found files (`swimsearch.fingerprint`);
            None compares sizes and times only.
        unlisted: folders (relative, "." for the root) the scan could not list.
    """
    found = list(found)
    seen = {f.relpath for f in found}
    todo: list[FoundFile] = []
    changed, retried = set(), set()
    to_check: list[tuple[FoundFile, KnownFile]] = []  # same size and time: compare content
    new: list[FoundFile] = []
    for f in found:
        k = known.get(f.relpath)
        if k is None:
            new.append(f)
        elif k.retry:
            todo.append(f)
            retried.add(f.relpath)
        elif _same_stat(k, f) or (fingerprints is not None and _may_be_retimed(k, f)):
            to_check.append((f, k))  # content decides: same time and size, or a new time alone (`cp -r`)
        else:
            todo.append(f)
            if k.gone is None:
                changed.add(f.relpath)
    unseen = 0
    missing: list[tuple[str, KnownFile]] = []  # searchable records whose file is not found, and tombstones
    for path, k in known.items():
        if path in seen:
            continue
        if k.gone is None and _inside(path, unlisted):
            unseen += 1
        else:
            missing.append((path, k))
    # Files that moved are found again by content: only new files of a size some missing record has need a look.
    by_content: dict[tuple[int, int], list[tuple[str, KnownFile]]] = {}
    for path, k in missing:
        if k.fingerprint is not None:
            by_content.setdefault((k.size, k.fingerprint), []).append((path, k))
    sizes = {size for size, _ in by_content}
    movers = [f for f in new if f.size in sizes] if fingerprints else []
    prints = list(fingerprints([f for f, _ in to_check] + movers)) if fingerprints else []
    checked = prints[: len(to_check)] if fingerprints else [None] * len(to_check)
    moved_prints = prints[len(to_check):]

    restored: list[Restored] = []
    unchanged = came_back = retimed = 0
    for (f, k), fp in zip(to_check, checked):
        new_time = not _same_stat(k, f)
        if fingerprints is None or k.fingerprint is None:
            same = True  # nothing to compare with: size and time decide, as they did
        elif fp is None:
            same = k.gone is None and not new_time  # unreadable just now: keep a good record as it is
        else:
            same = fp == k.fingerprint
        if not same:
            todo.append(f)
            if k.gone is None:
                changed.add(f.relpath)
        elif k.gone is not None:
            restored.append(Restored(k.image_id, f, fp if fp is not None else k.fingerprint))
            came_back += 1
        else:
            unchanged += 1
            if new_time:  # the recorded picture under a new time: the record takes the time, nothing is read
                restored.append(Restored(k.image_id, f, fp))
                retimed += 1
            elif fp is not None and k.fingerprint is None:
                restored.append(Restored(k.image_id, f, fp))  # recorded before fingerprints: keep one now

    matched: set[int] = set()
    moved = 0
    moved_files = dict(zip((f.relpath for f in movers), moved_prints))
    for f in new:
        fp = moved_files.get(f.relpath)
        candidates = by_content.get((f.size, fp), []) if fp is not None else []
        twin = next((k for _, k in candidates if k.image_id not in matched), None)
        if twin is None:
            todo.append(f)
            continue
        matched.add(twin.image_id)
        restored.append(Restored(twin.image_id, f, fp))
        moved += 1
    gone = tuple((path, k.image_id) for path, k in missing if k.gone is None and k.image_id not in matched)
    todo.sort(key=lambda f: f.relpath)
    return ScanDiff(
        tuple(todo), frozenset(changed), frozenset(retried), tuple(restored), gone, unchanged, unseen, came_back, moved,
        retimed,
    )


def expired_tombstones(known: Mapping[str, KnownFile], diff: ScanDiff, now: float) -> list[int]:
    """Image ids of tombstones older than TOMBSTONE_SECONDS that nothing brought back: dropped for good."""
    back = {r.image_id for r in diff.restored}
    return [
        k.image_id for k in known.values()
        if k.gone is not None and k.gone < now - TOMBSTONE_SECONDS and k.image_id not in back
    ]


def removal_held(diff: ScanDiff, known: Mapping[str, KnownFile], found: Sequence[FoundFile]) -> str | None:
    """Why this scan's removals must not be believed without a person's word, or None.

    Held when more than GUARD_SHARE of the catalogue's files (and at least
    GUARD_MIN) are gone at once, or when a whole subfolder of at least
    GUARD_SUBFOLDER files is gone or empty: what an unmounted share or an
    unplugged drive looks like.
    """
    if not diff.gone:
        return None
    live = sum(1 for k in known.values() if k.gone is None)
    gone = len(diff.gone)
    whole = _whole_subfolder(diff, known, found)
    if not (gone >= GUARD_MIN and gone > GUARD_SHARE * live) and whole is None:
        return None
    text = f"{gone:,} of the catalogue's {live:,} files are gone from its folder"
    if whole is not None:
        text += f", among them the whole subfolder {whole[0]} ({whole[1]:,} files)"
    return text + " (a drive or network share that is not mounted?)"


def _whole_subfolder(diff: ScanDiff, known: Mapping[str, KnownFile], found: Sequence[FoundFile]) -> tuple[str, int] | None:
    """The largest subfolder whose every file is gone and that holds no picture now (GUARD_SUBFOLDER or more)."""

    def folders(path: str) -> list[str]:
        parts = path.split("/")[:-1]
        return ["/".join(parts[: n + 1]) for n in range(len(parts))]

    gone_in = Counter(folder for path, _ in diff.gone for folder in folders(path))
    candidates = [(count, folder) for folder, count in gone_in.items() if count >= GUARD_SUBFOLDER]
    if not candidates:
        return None
    live_in = Counter(folder for path, k in known.items() if k.gone is None for folder in folders(path))
    found_in = Counter(folder for f in found for folder in folders(f.relpath))
    whole = [(count, folder) for count, folder in candidates if count == live_in[folder] and not found_in[folder]]
    if not whole:
        return None
    count, folder = max(whole, key=lambda item: (item[0], -len(item[1])))
    return folder, count
