"""How the command line names, opens and copies catalogues: a file, a folder, or a team catalogue's address.

``--catalogue`` takes a catalogue file, the folder it describes (its
catalogue is found where the window puts it: `swimsearch.locations`), or a
team catalogue: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?catalogue=NAME]``.
A team catalogue's password comes from the address, PGPASSWORD, ~/.pgpass,
or, on a terminal, a prompt. Its folder is wherever this computer mounts the
shared drive: ``--root PATH`` says where, else the folder it was indexed
from is used where it exists, and `swimsearch index FOLDER` takes FOLDER (or
the folder above it that holds the catalogue's designs). A folder that cannot
be found is said once, on stderr; search goes on, with missing files.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from . import locations
from .catalogue import Catalogue
from .config import EngineConfig
from .cli_checks import UsageError, other_model
from .copying import CopyReport, copy_catalogue
from .errors import CatalogueError
from .folderscan import refuse_folder_without_pictures
from .stores.pg_address import display_address, is_team_address
from .stores.sqlite import SqliteStore
from .terminal import shown

log = logging.getLogger(__name__)


def prompt_password(where: str) -> str | None:
    """Ask on the terminal for a team catalogue's password (None when not on a terminal)."""
    if not sys.stdin.isatty():
        return None
    try:
        return getpass.getpass(f"Password for {where}: ")
    except (EOFError, KeyboardInterrupt):
        return None


def folder_catalogue(folder: Path) -> Path:
    """The catalogue of an image folder, where the window would put or find it."""
    return locations.catalogue_for_folder(folder, locations.user_data_dir())


#: "postgressql://", "postgresql:/", "http://": a scheme of two letters or more (not C:/) and a slash.
_ADDRESS_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/|^postgres(ql)?//", re.IGNORECASE)


def refuse_mistyped_address(value: str) -> None:
    """A mistyped team address would otherwise become a catalogue file in folders named
    after it, its password included: refuse it without repeating it."""
    if not is_team_address(value) and _ADDRESS_LIKE.match(value):
        raise UsageError(
            "that catalogue looks like an address, but only team catalogues at "
            "postgresql://USER@HOST/DATABASE are known (is the start of the address mistyped?)"
        )


def catalogue_location(value: str) -> str | Path:
    """--catalogue as a location: a team address as given, a folder's catalogue file, or a file."""
    if is_team_address(value):
        return value
    refuse_mistyped_address(value)
    path = Path(value)
    return folder_catalogue(path) if path.is_dir() else path


def open_existing(value: str, root: str | None = None) -> Catalogue:
    """Open the catalogue --catalogue names; says once on stderr when a team catalogue's folder is not found here."""
    location = catalogue_location(value)
    if isinstance(location, str):
        catalogue = Catalogue.open(location, root=root, password_prompt=prompt_password)
        note = catalogue.store.root_note() if hasattr(catalogue.store, "root_note") else None
        if note:
            print(f"swimsearch: {note}", file=sys.stderr)
        return catalogue
    if root is not None:
        raise UsageError("--root is for team catalogues (postgresql://...); a catalogue file finds its own folder")
    if not location.exists():
        if Path(value).is_dir():
            raise CatalogueError(f"There is no catalogue of the folder {value}. Build one with: swimsearch index {value}")
        raise CatalogueError(f"There is no catalogue at {location}. Build one with: swimsearch index FOLDER --catalogue {location}")
    return Catalogue.open(location)


def open_for_index(folder: Path, value: str | None, root: str | None) -> Catalogue:
    """The catalogue `swimsearch index FOLDER` updates (made if new): FOLDER is its folder or one inside it."""
    location = catalogue_location(value) if value else folder_catalogue(folder)
    if not isinstance(location, str) and not location.exists():
        refuse_folder_without_pictures(folder)  # before any file is made: nothing to index leaves nothing behind
    if not isinstance(location, str):
        if root is not None:
            raise UsageError("--root is for team catalogues (postgresql://...); a catalogue file finds its own folder")
        return Catalogue.open_or_create(location, folder)
    catalogue = Catalogue.open_or_create(location, root or folder, password_prompt=prompt_password)
    store = catalogue.store
    if isinstance(store, SqliteStore):
        return catalogue
    if root is not None:
        found = store.map_root(root)
    else:  # FOLDER is the shared folder as mounted here, or a folder inside it
        candidates = (folder.resolve(), *folder.resolve().parents)
        found = store.root_found or any(store.map_root(candidate) for candidate in candidates)
    if not found:
        # Updating from a folder that is not the catalogue's would take every design for deleted.
        catalogue.close()
        raise CatalogueError(
            f"The folder {root or folder} does not hold the designs of the team catalogue {display_address(location)} "
            f"(indexed from {store.recorded_root}). Give --root PATH: where that folder is on this computer."
        )
    return catalogue


def new_catalogue_file(folder: Path, value: str | None) -> Path | None:
    """The catalogue file `open_for_index` will make for `folder` (None: it exists already, or is a team catalogue)."""
    location = catalogue_location(value) if value else folder_catalogue(folder)
    return None if isinstance(location, str) or location.exists() else location


def remove_new_catalogue(path: Path) -> None:
    """Take away a catalogue file just made that holds nothing worth keeping (no picture could be read)."""
    _remove(str(path))


def copy(source_value: str, destination: str, root: str | None = None, replace_empty: bool = False) -> tuple[Catalogue, CopyReport]:
    """Copy a catalogue into a new one (a file or a team catalogue); a failed copy leaves no destination behind.

    An empty team catalogue of that name (a copy killed before its end leaves one: its transaction never
    committed) is said and refused, unless `replace_empty` (--replace-empty): then it is removed (its
    owner's right) and made again; one with anything in it is always refused.

    The copy reads the catalogue, never the pictures: its folder need not be
    reachable from this computer. The new catalogue names the same folder
    (a team catalogue's as this computer maps it, with --root as everywhere,
    else as it was recorded), and says so once when it is not here.
    """
    refuse_mistyped_address(destination)
    # The destination first: a copy that cannot be made is refused before anything else is asked or said.
    if not is_team_address(destination) and Path(destination).exists():
        if not _left_by_a_stopped_copy(destination):
            raise CatalogueError(f"{destination} already exists; copy into a new catalogue file.")
        log.info("%s holds nothing and no one writes it (a copy stopped before its end): made again", destination)
        _remove(destination)
    if is_team_address(destination):
        from .stores.postgres import PostgresStore

        if PostgresStore.exists(destination, password_prompt=prompt_password):
            if not _left_by_a_stopped_copy(destination):
                raise CatalogueError(f"The team catalogue {display_address(destination)} already exists; copy into a new name.")
            if not replace_empty:  # not taken over unasked: its owner may have granted it to people already
                raise CatalogueError(
                    f"The team catalogue {display_address(destination)} already exists, with nothing in it (a copy "
                    "stopped before its end leaves one behind): copy into a new name, or add --replace-empty to "
                    "remove it and copy into it (its owner's right; grant it to its people again after)."
                )
            print(f"swimsearch: the team catalogue {shown(display_address(destination))} holds nothing (a copy stopped "
                  "before its end): removed, and copied into again.", file=sys.stderr)
            PostgresStore.drop(destination, password_prompt=prompt_password)
    with open_existing(source_value, root) as source:
        store = source.store
        folder: Path | str = source.root
        if not isinstance(store, SqliteStore) and not store.root_found:
            folder = store.recorded_root or source.root  # open_existing said once that it is not reachable here
        elif not source.root.is_dir():
            print(f"swimsearch: the catalogue's folder {shown(str(source.root))} is not on this computer; "
                  "the copy names it all the same.", file=sys.stderr)
        target = Catalogue.create(destination, folder, password_prompt=prompt_password, folder_must_exist=False)
        try:
            report = copy_catalogue(source, target.writer(), progress=_progress())
        except BaseException:
            target.close()
            _remove(destination)
            raise
    return target, report


def _left_by_a_stopped_copy(destination: str) -> bool:
    """Whether `destination` is a catalogue with nothing in it that no one is writing: what a copy killed before its
    end leaves (its one transaction never committed). Nothing in it can be lost."""
    try:
        with Catalogue.open(destination, password_prompt=prompt_password) as found:
            writer = found.writer()
            with writer.writer_lock():  # refused at once while another process builds or copies into it
                return writer.counts()["images"] == 0 and writer.fitted() is None and not writer.decisions()
    except CatalogueError:  # not a catalogue, damaged, busy, or not ours to write
        return False


def _remove(destination: str) -> None:
    """Take away what a failed copy created."""
    try:
        if is_team_address(destination):
            from .stores.postgres import PostgresStore

            PostgresStore.drop(destination)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(destination + suffix).unlink(missing_ok=True)
    except (CatalogueError, OSError):
        log.exception("could not remove the unfinished copy %s", display_address(destination))


def _progress():
    from .terminal import TerminalProgress

    return TerminalProgress()


def search_cache_info(catalogue: Catalogue, config: EngineConfig, searchable: int) -> dict[str, Any] | None:
    """The search cache of a catalogue file (array_cache.py), or this computer's of a team catalogue
    (team_replica.py), for `swimsearch info`: path, size, state in words."""
    from .array_cache import cache_file
    from .array_upkeep import describe
    from .stores.sqlite import SqliteStore
    from .team_replica import replica_file

    team = is_team_address(catalogue.location)
    if not team and not isinstance(catalogue.store, SqliteStore):
        return None
    try:
        out = describe(replica_file(catalogue.store) if team else cache_file(catalogue.store))
    except (OSError, ValueError, CatalogueError) as exc:  # the cache's line never costs the rest of `info`
        log.info("the search cache of %s cannot be described: %s", catalogue.location, exc)
        return None
    needed_from = config.array_cache_needed_from  # the engine's own rule
    if out["state"] == "absent" and (needed_from is None or searchable < needed_from):
        out["state"] = ("absent (not used)" if needed_from is None else
                        f"absent (not needed: up to {needed_from - 1:,} searchable images are searched from memory)")
    elif out["state"] == "absent":
        out["state"] = "absent (made in the background when the catalogue is searched)"
    return out


def describe_location(catalogue: Catalogue) -> str:
    """The catalogue for messages and CSV files: its file, or its address without password."""
    return catalogue.location if is_team_address(catalogue.location) else os.fspath(catalogue.path)


def refuse_other_model(catalogue: Catalogue, embedder: Any, model_arg: str | None) -> None:
    """One sentence (CatalogueError) when the catalogue was built with another model than `embedder`'s."""
    own_place = not is_team_address(catalogue.location) and catalogue.path == folder_catalogue(catalogue.root)
    rebuild = " ".join(shown(str(word)) for word in ["swimsearch index", catalogue.root]
                       + ([] if own_place else ["--catalogue", describe_location(catalogue)])
                       + (["--model", model_arg] if model_arg else []))
    if sentence := other_model(catalogue, embedder, rebuild):
        raise CatalogueError(sentence)
