"""Where a folder's catalogue lives, shared by the command line and the window.

A folder's catalogue is a hidden file inside it, so it moves with the folder.
When the folder is not writable (a read-only share) the catalogue goes to a
per-user folder instead, under a name made from the folder's path. An
existing catalogue wins wherever it is, so a folder that became read-only
keeps the catalogue it has.

The per-user folder is passed in: the window asks Qt (`QStandardPaths`), the
command line uses `platform_data_dir()`, which names the same folder Qt does
for this application, so both find each other's catalogues.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable

from .folderscan import named_as_text

log = logging.getLogger(__name__)

#: The file name ending of a catalogue.
CATALOGUE_SUFFIX = ".swimcat"
#: The file name of a folder's own catalogue, inside the folder.
FOLDER_CATALOGUE_NAME = f".swimsearch{CATALOGUE_SUFFIX}"
#: Organisation and application names: Qt makes the per-user data folder from them.
ORGANISATION_NAME = "SwimSearch"
APPLICATION_NAME = "SwimSearch"
#: Set to a folder to keep per-user data (fallback catalogues, sample, log) there instead.
USER_DATA_ENV = "SWIMSEARCH_USER_DATA"
#: The subfolder of the per-user folder that holds catalogues of read-only folders.
FALLBACK_SUBFOLDER = "catalogues"
#: The sample catalogue's file in the per-user folder (the window makes it on first use).
SAMPLE_CATALOGUE_NAME = f"sample{CATALOGUE_SUFFIX}"

#: The default test whether a folder can hold its own catalogue.
Writable = Callable[[Path], bool]


def _writable(folder: Path) -> bool:
    """A folder can hold its catalogue when it is writable and on this computer, not on a network share
    (where SQLite must not write: the catalogue then goes to the per-user folder, as for a read-only folder)."""
    from .stores.network_fs import network_file_system

    return os.access(folder, os.W_OK) and network_file_system(folder) is None


def platform_data_dir() -> Path:
    """The per-user data folder Qt's `AppDataLocation` gives this application, without Qt.

    Linux and other Unix: $XDG_DATA_HOME (default ~/.local/share)/SwimSearch/SwimSearch;
    macOS: ~/Library/Application Support/SwimSearch/SwimSearch;
    Windows: %APPDATA%/SwimSearch/SwimSearch. Nothing is created.
    """
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / ORGANISATION_NAME / APPLICATION_NAME


def user_data_dir(location: str | os.PathLike | None = None) -> Path:
    """The per-user folder of SwimSearch: $SWIMSEARCH_USER_DATA, else `location`, else `platform_data_dir()`.

    Args:
        location: what the caller's toolkit names as the per-user data folder
            (the window passes Qt's); empty or None for the platform's usual one.
    Nothing is created: callers that write make the folders they need.
    """
    override = os.environ.get(USER_DATA_ENV)
    if override:
        return Path(override)
    return Path(location) if location else platform_data_dir()


def folder_catalogue(folder: str | os.PathLike) -> Path:
    """The catalogue file inside `folder` (whether or not it exists)."""
    return Path(folder) / FOLDER_CATALOGUE_NAME


def fallback_catalogue(folder: str | os.PathLike, user_data: str | os.PathLike) -> Path:
    """The per-user catalogue file of `folder`: `<user_data>/catalogues/<name>-<sha1 of the path>.swimcat`.

    The name is the one the window has always used (folder name, then the
    first 10 hex digits of the SHA-1 of the resolved folder path), so
    catalogues it made are found.
    """
    folder = Path(folder).resolve()
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:10]
    name = re.sub(r"[^\w.-]+", "_", folder.name or "catalogue")[:40]
    return Path(user_data) / FALLBACK_SUBFOLDER / f"{name}-{digest}{CATALOGUE_SUFFIX}"


def sample_catalogue(user_data: str | os.PathLike) -> Path:
    """The sample catalogue's file: always per user, since the shipped photos' folder is no place to write."""
    return Path(user_data) / SAMPLE_CATALOGUE_NAME


def is_sample_folder(folder: str | os.PathLike) -> bool:
    """Whether `folder` is the sample photos that ship with SwimSearch (resources/sample)."""
    from .paths import resources_dir

    try:
        return Path(folder).resolve() == (resources_dir() / "sample").resolve()
    except (OSError, FileNotFoundError):  # no resources folder (a stripped install): no sample either
        return False


def catalogue_for_folder(
    folder: str | os.PathLike, user_data: str | os.PathLike, *, writable: Writable = _writable
) -> Path:
    """The catalogue file of an image folder: an existing one, else inside it, or per user when it is read-only.

    The shipped sample folder's catalogue is the window's per-user sample
    catalogue, so `--catalogue resources/sample` finds what the window made.

    Args:
        folder: the image folder.
        user_data: the per-user folder (see `user_data_dir`).
        writable: whether a folder can hold its own catalogue (default: `os.access(folder, W_OK)`).

    Raises:
        CatalogueError: the folder's name is not UTF-8 text (rename it).
    """
    named_as_text(folder)  # its per-user catalogue is named by a digest of the name as text
    if is_sample_folder(folder):
        return sample_catalogue(user_data)
    folder = Path(folder).resolve()
    inside = folder_catalogue(folder)
    per_user = fallback_catalogue(folder, user_data)
    if inside.is_file():
        return inside
    if per_user.is_file():
        return per_user
    return inside if writable(folder) else per_user


def display_name(catalogue: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """A short name for a catalogue, for titles, menus and messages: the name of its folder
    (a team catalogue: its name and server, "swimwear on db.example.com").

    Args:
        catalogue: the catalogue file, or a team catalogue's address.
        root: its image folder, when known (an open catalogue knows it).
    """
    from .stores.pg_address import TeamAddress, is_team_address

    if is_team_address(catalogue):  # a team catalogue is known by its own name, whatever folder it maps to
        address = TeamAddress.parse(str(catalogue))
        return f"{address.catalogue} on {address.server}"
    if root is not None:
        root = Path(root)
        return root.name or str(root)
    path = Path(catalogue)
    if path.name.startswith(".swimsearch"):  # a folder's own catalogue (or a copy of it beside it)
        return path.parent.name or str(path.parent)
    if path.parent.name == FALLBACK_SUBFOLDER:
        # "<folder name>-<10 hex digits>": the folder name without the digest
        stem, _, digest = path.stem.rpartition("-")
        if stem and re.fullmatch(r"[0-9a-f]{10}", digest):
            return stem
    return path.stem


def set_aside(catalogue: str | os.PathLike, now: float | None = None, why: str = "damaged") -> Path:
    """Move a damaged catalogue file out of its place, kept beside it as `NAME.damaged-YYYYmmdd-HHMMSS`
    (`why`: "copied" for a copy's file that describes the original folder).

    Its SQLite journal files go with it (`...-wal`, `...-shm`), so the copy
    stays as it was for anyone who wants to look at it. Nothing is deleted
    and nothing is overwritten: a name already taken gets `-2`, `-3`, ...

    Returns:
        The file's new path.

    Raises:
        OSError: it could not be renamed (a read-only folder, say); it is then left as it was.
    """
    path = Path(catalogue)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for n in range(1, 1000):
        aside = path.with_name(f"{path.name}.{why}-{stamp}" + (f"-{n}" if n > 1 else ""))
        if not any(Path(f"{aside}{end}").exists() for end in ("", "-wal", "-shm")):
            break
    else:
        raise FileExistsError(f"no free name to set {path} aside")
    _rename_no_replace(path, aside)
    for end in ("-wal", "-shm"):
        if Path(f"{path}{end}").exists():
            _rename_no_replace(Path(f"{path}{end}"), Path(f"{aside}{end}"))
    log.warning("the %s catalogue %s was set aside as %s", why, path, aside.name)
    return aside


def _rename_no_replace(source: Path, target: Path) -> None:
    """Rename `source` to `target`, refusing to replace a file there (a hard link fails when one exists)."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: the name was free a moment ago
        if target.exists():
            raise FileExistsError(f"{target} exists") from None
        os.rename(source, target)
        return
    os.unlink(source)
