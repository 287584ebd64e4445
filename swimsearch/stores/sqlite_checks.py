"""Checks a catalogue file must pass before anything is read from it, and the full check of `info --check`.

A valid SQLite file can still be hostile: a view named `images` that refers
to itself (every query hangs), a trigger, a table with other columns, a
blob of a gigabyte, metadata of the wrong type. Before SwimSearch reads a
row, the file's schema objects and columns must be exactly those SwimSearch
makes (compared with a reference made in memory the same way), every
statement runs under limits (blob size, a time limit while opening), and
each metadata value has the type its key calls for. `full_check` verifies
every checksum of the file, for `swimsearch info --check`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import CatalogueError, DamagedCatalogue
from ..safeopen import NotAFile, open_regular
from .integrity import EMBEDDING_DTYPES, MAX_EMBEDDING_DIM, check_fit_state, damaged, is_int, is_number
from .sqlite_schema import SCHEMA_VERSION, describe_schema, reference_schema

log = logging.getLogger(__name__)

#: The largest string or blob SQLite may hand back: a code block of 4096 images is
#: about 1 MB and a bucket of a million images 8 MB; a crafted gigabyte blob is refused.
MAX_BLOB = 256 * 1024 * 1024

#: Opening (schema, metadata, migration checks) never takes longer than this.
OPEN_SECONDS = 60.0

SQLITE_MAGIC = b"SQLite format 3\x00"


def _optional(kind: Any) -> Any:
    return lambda v: v is None or kind(v)


#: Each metadata key, and what its value must be.
META_CHECKS = {
    "schema_version": is_int,
    "created": is_number,
    "root": lambda v: isinstance(v, str) and 0 < len(v) < 8192 and "\0" not in v,
    "root_relative": _optional(lambda v: isinstance(v, str) and len(v) < 8192 and "\0" not in v),
    "embedding_dtype": lambda v: isinstance(v, str) and v in EMBEDDING_DTYPES,
    "embedding_dim": _optional(lambda v: is_int(v) and 1 <= v <= MAX_EMBEDDING_DIM),
    "model_name": _optional(lambda v: isinstance(v, str) and len(v) < 1024),
    "model_sha256": _optional(lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)),
}


def check_file(path: Path) -> None:
    """Refuse, in plain words, anything that is not an SQLite file (never overwrite it)."""
    try:
        with open_regular(path) as fh:  # a pipe or a device named as a catalogue must not block
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(100)
    except NotAFile as exc:
        raise CatalogueError(f"{path} is {exc.reason}: it is not a SwimSearch catalogue.") from exc
    except PermissionError as exc:
        raise CatalogueError(f"The catalogue {path} cannot be read: permission denied.") from exc
    except OSError as exc:
        raise CatalogueError(f"The catalogue {path} cannot be read: {exc.strerror or exc}.") from exc
    if size == 0:
        raise CatalogueError(f"The file {path} is empty: it is not a SwimSearch catalogue.")
    if head[: len(SQLITE_MAGIC)] != SQLITE_MAGIC:
        raise DamagedCatalogue(f"The file {path} is not a SwimSearch catalogue, or it is damaged.")
    expected = _declared_size(head)
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0  # the WAL may hold the pages the file lacks
    if expected is not None and size < expected and not pending:
        raise DamagedCatalogue(
            f"The catalogue {path} is damaged: the file is cut short ({size:,} of {expected:,} bytes). "
            "It was not changed; rebuild it into a new file."
        )


def _declared_size(header: bytes) -> int | None:
    """The database size the SQLite header declares (pages x page size), when it is valid.

    A file shorter than this was truncated (a copy cut short, a full disk
    during a copy): refusing it up front is cheaper and clearer than failing
    on the first missing page.
    """
    if len(header) < 100:
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    change_counter = int.from_bytes(header[24:28], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    if pages == 0 or valid_for != change_counter:
        return None
    return pages * page_size


#: Metadata keys in words, for messages.
META_WORDS = {
    "fitted": "index description", "root": "folder", "root_relative": "folder", "embedding_dim": "embedding size",
    "embedding_dtype": "embedding type", "model_sha256": "model checksum", "schema_version": "format version",
}


def apply_limits(conn: sqlite3.Connection) -> None:
    """Limits every statement on this connection keeps, whatever the file holds."""
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_BLOB)
    except AttributeError:  # Python before 3.11: SQLite's own limit (1 GB) applies
        log.debug("sqlite3 cannot set limits here")


@contextmanager
def time_limit(conn: sqlite3.Connection, seconds: float) -> Iterator[None]:
    """Interrupt any statement of this block that runs past `seconds` (SQLite says "interrupted")."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    finally:
        conn.set_progress_handler(None, 0)


def check_objects(conn: sqlite3.Connection, location: str, version: int | None = None) -> None:
    """Only the tables and indexes SwimSearch makes: no view, trigger, virtual or extra table.

    Args:
        version: the file's schema version; None (before the version can be
            read safely) accepts the objects of any version this SwimSearch knows.
    """
    versions = range(1, SCHEMA_VERSION + 1) if version is None else [version]
    known = [reference_schema(v)["objects"] for v in versions]
    found = sorted(
        (kind, name, table)
        for kind, name, table in conn.execute("SELECT type, name, tbl_name FROM sqlite_master")
        if name != "sqlite_stat1"
    )
    wanted = found if found in known else known[-1]
    virtual = conn.execute("SELECT count(*) FROM sqlite_master WHERE upper(ltrim(sql)) LIKE 'CREATE VIRTUAL%'").fetchone()[0]
    if found not in known or virtual:
        extra = sorted({f"{kind} {name}" for kind, name, _ in found} - {f"{kind} {name}" for kind, name, _ in wanted})
        what = f"it holds {', '.join(extra[:3])} that SwimSearch never makes" if extra else "tables are missing or changed"
        raise damaged(location, what)


def check_columns(conn: sqlite3.Connection, location: str, version: int) -> None:
    """Each table has exactly the columns of schema `version` (types, keys, defaults, nothing generated)."""
    if describe_schema(conn)["columns"] != reference_schema(version)["columns"]:
        raise damaged(location, "its tables do not have the columns SwimSearch makes")


def check_meta_value(location: str, key: str, value: Any) -> Any:
    """A metadata value of the type its key calls for (unknown keys are passed through)."""
    check = META_CHECKS.get(key)
    if key == "fitted":
        if value is not None:
            check_fit_state(location, value)
    elif check is not None and not check(value):
        raise damaged(location, f"its {META_WORDS.get(key, key.replace('_', ' '))} is not readable")
    return value


def full_check(file: Any, store: Any) -> list[str]:
    """Every check there is, for `info --check`: SQLite's own, then every checksum and record.

    Returns what was checked, in words; raises DamagedCatalogue at the first damage found.
    """
    path: Path = file.path
    location = str(path)
    done = []
    problems = [row[0] for row in file.conn.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        raise damaged(location, f"SQLite's integrity check failed: {problems[0]}")
    done.append("SQLite's integrity check")
    for key in [row[0] for row in file.conn.execute("SELECT key FROM meta")]:
        file.meta(key)
    done.append("metadata")
    images = store.check_images()
    done.append(f"{images:,} image records and their embeddings")
    done.append(store.check_details())
    lists = store.neighbour_lists()  # checksums, and every id they name is an image of this file
    if lists is not None and len(lists):
        done.append(f"{len(lists):,} neighbour lists")
    done.append(f"{store.check_decisions():,} decisions on pairs of designs")
    snapshot = store.load_snapshot(every_bucket=True)  # the bucket rows too, where a search graph would skip them
    if snapshot is not None:
        done.append(f"the fitted index, {len(snapshot):,} codes and {len(snapshot.lsh_tables().table.members):,} bucket entries")
        if snapshot.graph is not None:
            done.append(f"the search graph, {len(snapshot.graph):,} nodes")
    return done
