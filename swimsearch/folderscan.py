"""The folder scan: which files of a catalogue folder are pictures, and what was left out.

`scan_folder` lists the files SwimSearch reads; `scan_folder_report` also
counts the files it does not read, by kind (".indd", ".txt", ...), and the
folders it could not list, so that a build summary can say "skipped: 3 .indd"
instead of leaving them out silently.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

from .errors import Cancelled, CatalogueError
from .formats import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

PathT = TypeVar("PathT", bound="str | os.PathLike")

#: Files an operating system leaves in folders; not designs, not worth a word.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r", "ehthumbs.db"})

#: Catalogue files and their SQLite sidecars are SwimSearch's own, not skipped designs.
OWN_SUFFIXES = (".swimcat", ".swimcat-wal", ".swimcat-shm", ".swimcat-journal")

#: The kind of a file without an extension.
NO_EXTENSION = "(no extension)"

#: Why an entry that looks like a picture cannot be one, in words (recorded as the file's unreadable reason).
DANGLING_LINK = "a link to a file that is not there"
LINK_LOOP = "a link that leads back to itself"

#: Why a file whose name is not UTF-8 text (possible on Linux) is left out of a build and is not
#: searched with: the catalogue, a CSV and a contact sheet all keep names as UTF-8 text.
NAME_NOT_TEXT = "the file name is not valid UTF-8 text; rename the file"

#: The picture kinds SwimSearch reads, as a user names them ("BMP, GIF, JPEG, ...").
READABLE = ", ".join(sorted({e.lstrip(".").upper() for e in IMAGE_EXTENSIONS} - {"JPE", "JFIF", "TIF"}))


class NoPictures(CatalogueError):
    """A folder to build holds no picture SwimSearch reads (so no catalogue is made)."""


def not_text(path: str | os.PathLike) -> str | None:
    """`path` with the bytes that are not UTF-8 text written as \\xNN (caf\\xe9.jpg), or None when it is text."""
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate no file name decoded to: write it as it is escaped
            return text.encode("utf-8", "backslashreplace").decode("utf-8")


def named_as_text(path: PathT, what: str = "folder") -> PathT:
    """`path`, or CatalogueError when a folder (or a catalogue file, `what`) has a name that is not UTF-8 text.

    The catalogue keeps its folder as text; SQLite and every file the engine writes would fail
    on such a name deep inside with a message no one can act on.
    """
    escaped = not_text(path)
    if escaped is None:
        return path
    part = next((not_text(name) for name in Path(os.fsdecode(path)).parts if not_text(name)), escaped)
    raise CatalogueError(
        f"The {what} {escaped} cannot be used: the name “{part}” is not valid UTF-8 text, so rename it and try again."
    )


@dataclass(frozen=True)
class FoundFile:
    """One image file found by `scan_folder`: path relative to the root, size, mtime.

    `name_error` is set for a file whose name is not valid UTF-8 (possible on
    Linux): such a name cannot be stored as text, so the file is reported as
    unreadable under an escaped name instead of crashing the build. It is
    also set, never opened, for a dangling link, a link loop or a named pipe.
    """

    relpath: str
    size: int
    mtime: float
    name_error: str | None = None


@dataclass(frozen=True)
class FolderScan:
    """What `scan_folder_report` found.

    Attributes:
        files: the picture files, as `scan_folder` returns them.
        skipped: files not read, counted by kind (lower-case extension such as
            ".indd", or "(no extension)"); hidden and system files are not counted.
        unlisted: folders (relative to the root, "." for the root) that could not be listed.
    """

    files: list[FoundFile]
    skipped: dict[str, int] = field(default_factory=dict)
    unlisted: tuple[str, ...] = ()

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def skipped_summary(self, kinds: int = 5) -> str:
        """'3 .indd, 2 .txt, 1 .docx' (most common first; the rest as 'N other'), or ''."""
        return skipped_summary(self.skipped, kinds)


def skipped_summary(skipped: Mapping[str, int], kinds: int = 5) -> str:
    """Counts by kind as '3 .indd, 2 .txt, 1 .docx' (most common first; the rest as 'N other'), or ''."""
    ordered = sorted(skipped.items(), key=lambda item: (-item[1], item[0]))
    parts = [f"{count} {kind}" for kind, count in ordered[:kinds]]
    rest = sum(count for _, count in ordered[kinds:])
    if rest:
        parts.append(f"{rest} other")
    return ", ".join(parts)


def skipped_files(by_kind: Mapping[str, int], kinds: int = 4) -> str:
    """Files a folder holds but SwimSearch does not read, by kind: "3 .svg, 2 .pdf and 4 other files", or ""."""
    ordered = sorted(((k, n) for k, n in by_kind.items() if n), key=lambda item: (-item[1], item[0]))
    if not ordered:
        return ""
    parts = [f"{n:,} {kind}" for kind, n in ordered[:kinds]]
    rest = sum(n for _, n in ordered[kinds:])
    if rest:
        parts.append(f"{rest:,} other")
    text = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f"{text} file{'' if sum(n for _, n in ordered) == 1 else 's'}"


def refuse_folder_without_pictures(root: str | os.PathLike, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Raise NoPictures unless `root` holds at least one picture file; stops looking at the first one.

    Called before a new catalogue file is made, so that building a folder of
    notes leaves nothing behind in it; walks as the scan does and counts what
    it finds instead, so the sentence can say what the folder does hold.
    """
    others: Counter[str] = Counter()
    for _, entry in _walk(Path(root), []):
        if should_stop():
            raise Cancelled()
        if is_image_path(entry.name):
            return
        kind = _kind(entry.name)
        if kind is not None and _is_file(entry):
            others[kind] += 1
    held = skipped_files(others)
    raise NoPictures(
        f"The folder {root} holds no pictures SwimSearch can read ({READABLE}): there is nothing to index, so no catalogue was made"
        + (f": it holds {held}." if held else ": it is empty.")
    )


def nothing_read(root: str | os.PathLike, errors: Sequence[tuple[str, str]], skipped: Mapping[str, int]) -> NoPictures:
    """The refusal of a new catalogue whose first build could read none of its pictures (a 0-byte .jpg and notes).

    Args:
        errors: (relative path, reason) of the pictures that could not be read (a few are named).
        skipped: the other files the folder holds, by kind.
    """
    named = "; ".join(f"{path}: {why}" for path, why in errors[:3])
    if len(errors) > 3:
        named += f"; and {len(errors) - 3:,} more"
    held = skipped_files(skipped)
    return NoPictures(
        f"No picture in the folder {root} could be read ({named}): there is nothing to index, so no catalogue was made"
        + (f"; it also holds {held}." if held else ".")
    )


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has an extension this app reads."""
    return os.path.splitext(str(path))[1].lower() in IMAGE_EXTENSIONS


def scan_folder(root: str | os.PathLike) -> list[FoundFile]:
    """All image files under `root`, recursively, sorted by relative path.

    Hidden files and folders (leading dot) are skipped. Symbolic links to
    folders are followed once: a folder already visited (same device and inode)
    is not entered again, so symlink loops end. Files that vanish or cannot be
    stat'ed while scanning are left out; the build reports unreadable files
    when it opens them. A picture name that is a dangling link, a link loop or
    a named pipe (socket, device) is listed with `name_error` saying so, and is
    never opened, so the build records it as unreadable instead of hanging.
    """
    return scan_folder_report(root).files


def scan_folder_report(root: str | os.PathLike) -> FolderScan:
    """`scan_folder`, plus the files left out by kind and the folders that could not be listed."""
    root = Path(root)
    found: list[FoundFile] = []
    skipped: Counter[str] = Counter()
    unlisted: list[str] = []
    for dirpath, entry in _walk(root, unlisted):
        if not is_image_path(entry.name):
            kind = _kind(entry.name)
            if kind is not None and (_is_file(entry) or _odd(entry) is not None):  # d_type: no stat per file
                skipped[kind] += 1
            continue
        odd = _odd(entry)
        try:
            # a link that leads nowhere, or a pipe (never opened: it would wait for a writer), is recorded
            # under the link's own size and time, so an update passes it by until it changes
            info = entry.stat(follow_symlinks=odd is None or odd[1] == "special")
        except OSError:
            continue
        if odd is None and not stat.S_ISREG(info.st_mode):
            continue
        rel = (dirpath / entry.name).relative_to(root).as_posix()
        escaped = not_text(rel)
        if escaped is not None:
            found.append(FoundFile(escaped, info.st_size, info.st_mtime, NAME_NOT_TEXT))
            continue
        found.append(FoundFile(rel, info.st_size, info.st_mtime, odd[0] if odd else None))
    found.sort(key=lambda f: f.relpath)
    return FolderScan(found, dict(skipped), tuple(unlisted))


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _odd(entry: os.DirEntry) -> tuple[str, str] | None:
    """(reason, "link" or "special") for a dangling link, a link loop, or a pipe, socket or device; None otherwise.

    Such an entry is never opened: its reason is recorded as the file's unreadable reason.
    """
    try:
        mode = entry.stat().st_mode  # follows links; cached by the DirEntry
    except OSError as exc:
        try:
            is_link = entry.is_symlink()
        except OSError:
            return None
        if not is_link:
            return None  # vanished or locked: left out, as before
        if exc.errno == errno.ELOOP:
            return LINK_LOOP, "link"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return DANGLING_LINK, "link"
        return None
    if stat.S_ISFIFO(mode):
        return "not a file (a named pipe)", "special"
    if stat.S_ISSOCK(mode):
        return "not a file (a socket)", "special"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "not a file (a device)", "special"
    return None


def _kind(name: str) -> str | None:
    """The kind a skipped file is counted under, or None for files not worth counting."""
    lower = name.lower()
    if lower in SYSTEM_FILES or lower.endswith(OWN_SUFFIXES):
        return None
    ext = os.path.splitext(lower)[1]
    if not ext:
        return NO_EXTENSION
    try:
        ext.encode("utf-8")
    except UnicodeEncodeError:
        return ext.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return ext


def _walk(root: Path, unlisted: list[str]) -> Iterator[tuple[Path, os.DirEntry]]:
    """Every non-hidden entry under `root` that is not a folder (symlinks to folders followed once)."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as entries:
                children = list(entries)
        except OSError as exc:
            log.warning("cannot list folder %s: %s", folder, exc)
            unlisted.append(folder.relative_to(root).as_posix())
            continue
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks; loops stopped by `seen`
            except OSError:  # a link that leads back to itself: the scan says so
                is_dir = False
            if is_dir:
                stack.append(folder / entry.name)
            else:
                yield folder, entry
