"""The catalogue file itself: one SQLite database per catalogue, made and migrated with sqlite-utils.

Tables (the schema, its version 2 columns and its migrations are in sqlite_schema.py):

* ``meta``        key -> JSON value: schema version, model identity, root folder, fit state.
* ``images``      one row per file found: path relative to the root, size, mtime,
                  width, height, pHash, subfolder label, and the error text of an
                  unreadable file (which then has no embedding).
* ``embeddings``  the trunk's 1280 floats per readable image (stored as float16).
* ``code_blocks`` packed spherical codes and re-ranking vectors, a few thousand
                  images per row: a million load in a fraction of a second.
* ``arrays``      the fitted hash layer, spheres, re-ranking basis and LSH bit samples.
* ``buckets``     the LSH tables: one row per non-empty bucket (table, key) with its image ids.
* ``decisions``   (version 4) people's verdicts on pairs of images, by relative path.

Arrays are raw little-endian bytes with their dtype and shape, never pickle;
every SQL value is a parameter. The file is opened in WAL mode so a search can
read while a build writes; a build holds an exclusive lock on the file so two
processes never update one catalogue at once. This module opens, creates,
checks (sqlite_checks.py) and migrates the file; every metadata value and
array is verified against its checksum as it is read; `SqliteStore`
(sqlite.py) reads and writes the rest.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Concatenate, Iterator, ParamSpec, Protocol, Sequence, TypeVar

import numpy as np
import sqlite_utils

from ..errors import CatalogueBusy, CatalogueError
from .integrity import check_array, damaged
from .sqlite_checks import (
    OPEN_SECONDS,
    apply_limits,
    check_columns,
    check_file,
    META_WORDS,
    check_meta_value,
    check_objects,
    time_limit,
)
from .sqlite_errors import SQLITE_ERRORS, describe_error
from .sqlite_schema import MIGRATIONS, SCHEMA_VERSION, array_crc, create_schema, meta_crc

__all__ = ["SCHEMA_VERSION", "SqliteFile", "check_file", "connect", "create_file", "describe_error"]

log = logging.getLogger(__name__)

#: The oldest format this version reads as it is when it cannot upgrade the file
#: (read-only): format 3 only adds the neighbour lists (issue 11), which a reader
#: can do without (it searches as before them).
READABLE_FROM = 2

APPLICATION_ID = 0x5357_4D43  # "SWMC": marks the file as a SwimSearch catalogue


def to_blob(array: np.ndarray, dtype: str) -> bytes:
    """Raw little-endian bytes of `array` cast to `dtype` (e.g. '<f4')."""
    return np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()


def from_blobs(blobs: list[bytes], dtype: str, width: int) -> np.ndarray:
    """Stack same-sized blobs into an (n, width) array of `dtype`."""
    if not blobs:
        return np.empty((0, width), dtype=np.dtype(dtype).newbyteorder("="))
    flat = np.frombuffer(b"".join(blobs), dtype=np.dtype(dtype))
    return flat.reshape(len(blobs), width).astype(np.dtype(dtype).newbyteorder("="), copy=False)


def phash_to_sql(value: int) -> int:
    """Unsigned 64-bit pHash as SQLite's signed 64-bit integer."""
    return value - (1 << 64) if value >= (1 << 63) else value


def phash_from_sql(values: np.ndarray) -> np.ndarray:
    """Signed int64 column back to unsigned pHash values."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


class _OnFile(Protocol):
    path: Path


S = TypeVar("S", bound=_OnFile)
P = ParamSpec("P")
R = TypeVar("R")


def plain_errors(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn any SQLite failure inside `method` into one plain CatalogueError about `self.path`."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except SQLITE_ERRORS as exc:
            raise describe_error(exc, self.path) from exc

    return wrapper


def chunks(ids: Sequence[int], size: int = 500) -> Iterator[tuple[list[int], str]]:
    """Parts of `ids` with their "?, ?, ..." placeholders (well under SQLite's variable limit)."""
    for start in range(0, len(ids), size):
        part = [int(i) for i in ids[start : start + size]]
        yield part, ",".join("?" * len(part))


def _json(text: Any, location: str, what: str) -> Any:
    """A stored JSON value; text that is not JSON is a damaged catalogue."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise damaged(location, f"its {what} is not readable") from exc


def connect(path: Path, *, create: bool = False, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """Open the SQLite file with the settings every catalogue connection uses.

    `immutable`: read without locks, WAL or shared memory (a file on a network
    file system, where those are unreliable, and which nobody updates there).
    """
    mode = "ro" if readonly or immutable else ("rwc" if create else "rw")
    uri = f"{path.resolve().as_uri()}?mode={mode}" + ("&immutable=1" if immutable else "")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
        if readonly and not immutable:
            conn = _readable(conn, path)
        conn.execute("PRAGMA busy_timeout = 30000")
        if create:
            # 8 KiB pages hold three 2.5 KiB embeddings without overflow pages.
            conn.execute("PRAGMA page_size = 8192")
        if not readonly and not immutable:
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a crash never corrupts and never loses a commit;
            # a power cut may lose the last commits but leaves a consistent file.
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
    except SQLITE_ERRORS as exc:
        raise describe_error(exc, path) from exc
    return conn


def _readable(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    """A read-only connection that works in a folder where SQLite cannot create its WAL index.

    A WAL-mode file on read-only media cannot be opened normally (SQLite wants
    to create the -shm file beside it); opened as immutable it can, which is
    safe because nobody can write there either.
    """
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None)


class SqliteFile:
    """An open catalogue file: connection, metadata, arrays and the writer lock.

    Open it in the thread that uses it (sqlite3 enforces this).
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = False, readonly: bool = False, immutable: bool = False):
        self.path = Path(path).absolute()
        exists = self.path.exists()
        if exists:
            check_file(self.path)
        elif not create:
            raise CatalogueError(f"There is no catalogue at {self.path}.")
        self.readonly = readonly or immutable
        self.conn = connect(self.path, create=not exists, readonly=self.readonly, immutable=immutable)
        apply_limits(self.conn)
        self.db = sqlite_utils.Database(self.conn, execute_plugins=False)
        self._lock_fd: int | None = None
        try:
            with time_limit(self.conn, OPEN_SECONDS):  # a crafted file must not hang the open
                if not exists:
                    with self.db.atomic():
                        create_schema(self.db)
                        self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                        self.set_meta(schema_version=SCHEMA_VERSION, created=time.time())
                self._check_schema()
        except SQLITE_ERRORS as exc:
            self.conn.close()
            raise describe_error(exc, self.path) from exc
        except CatalogueError:
            self.conn.close()
            raise

    def _check_schema(self) -> None:
        """Refuse a file that is not a catalogue, is damaged or crafted, or is newer; upgrade an older one."""
        tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise CatalogueError(f"The file {self.path} is an SQLite database but not a SwimSearch catalogue.")
        check_objects(self.conn, str(self.path))  # before any table is read: a view named images could hang it
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = _json(row[0], str(self.path), "schema version") if row else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CatalogueError(f"The catalogue {self.path} is damaged: it states no schema version.")
        if version > SCHEMA_VERSION:
            raise CatalogueError(
                f"The catalogue {self.path} was made by a newer SwimSearch (format {version}; "
                f"this version reads up to {SCHEMA_VERSION}). Update SwimSearch to open it."
            )
        check_objects(self.conn, str(self.path), version)  # the objects of its own version, not of another
        check_columns(self.conn, str(self.path), version)
        if version < SCHEMA_VERSION:
            if self.readonly and version >= READABLE_FROM:
                log.info("%s is in format %d and read-only: read as it is", self.path, version)
                return
            if self.readonly:
                raise CatalogueError(f"The catalogue {self.path} is in an older format and read-only, so it cannot be upgraded.")
            with self.db.atomic():
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    log.info("migrating %s to format %d", self.path, step)
                    MIGRATIONS[step](self.db)
                self.set_meta(schema_version=SCHEMA_VERSION)
        self.meta("schema_version")  # its checksum too

    # --- metadata and arrays ---------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        """A metadata value, checked against its checksum and the type its key calls for."""
        row = self.conn.execute("SELECT value, crc FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        text, crc = row
        what = META_WORDS.get(key, key.replace("_", " "))
        if not isinstance(text, str) or crc != meta_crc(key, text):
            raise damaged(str(self.path), f"its {what} fails its checksum")
        return check_meta_value(str(self.path), key, _json(text, str(self.path), what))

    def set_meta(self, **values: Any) -> None:
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        self.conn.executemany(
            "INSERT INTO meta(key, value, crc) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, crc = excluded.crc",
            [(k, text, meta_crc(k, text)) for k, text in rows],
        )

    def put_array(self, name: str, array: np.ndarray) -> None:
        array = np.asarray(array)
        dtype = array.dtype.newbyteorder("<").str
        shape, data = json.dumps(list(array.shape)), to_blob(array, dtype)
        self.conn.execute(
            "INSERT INTO arrays(name, dtype, shape, data, crc) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET dtype = excluded.dtype, shape = excluded.shape, data = excluded.data, "
            "crc = excluded.crc",
            (name, dtype, shape, data, array_crc(dtype, shape, data)),
        )

    def get_array(self, name: str) -> np.ndarray:
        """A stored array, refused unless its checksum, dtype and shape are sound."""
        dtype, shape, data = self.get_array_bytes(name)
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).astype(np.dtype(dtype).newbyteorder("="))

    def get_array_bytes(self, name: str) -> tuple[str, tuple[int, ...], bytes]:
        """A stored array's dtype, shape and bytes as stored, checked like `get_array` but not copied."""
        row = self.conn.execute("SELECT dtype, shape, data, crc FROM arrays WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(name)
        dtype, shape_text, data, crc = row
        location = str(self.path)
        if not (isinstance(dtype, str) and isinstance(shape_text, str) and isinstance(data, bytes)):
            raise damaged(location, f"the array {name} is not readable")
        if crc != array_crc(dtype, shape_text, data):
            raise damaged(location, f"the array {name} fails its checksum")
        dtype, shape = check_array(location, name, dtype, _json(shape_text, location, f"shape of {name}"), len(data))
        return dtype, shape, data

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes (sqlite-utils' atomic block); the outermost one checks its journal after committing."""
        with self.db.atomic():
            yield
        if not self.conn.in_transaction:
            self._check_wal()

    def _check_wal(self) -> None:
        """Stop when another program deleted or replaced the write-ahead file under an update.

        Commits since then live only in the deleted file this connection
        still holds; a checkpoint moves them into the catalogue file at once,
        before another connection can start a new journal beside the old one.
        """
        try:
            inode: int | None = os.stat(f"{self.path}-wal").st_ino
        except FileNotFoundError:
            inode = None
        if inode is not None and inode == getattr(self, "_wal_inode", inode):
            self._wal_inode = inode
            return
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not os.path.exists(self.path):  # the catalogue went with it: its folder moved or deleted
            raise CatalogueError(
                f"The catalogue {self.path} was moved or deleted while it was being updated (with its folder?): "
                "nothing more was saved there. Open the folder where it is now and update it, or build it again."
            )
        raise CatalogueError(
            f"The journal file {self.path}-wal was deleted or replaced by another program while the catalogue was "
            "being updated. What was saved so far was written into the catalogue; run the update again to finish."
        )

    # --- the writer lock ---------------------------------------------------------

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the catalogue for one build/update; refuse if another process holds it.

        An advisory flock on the database file: the kernel drops it when the
        process dies, so a killed build never leaves a stale lock behind.
        """
        try:
            import fcntl
        except ImportError:  # Windows: SQLite's own locking still protects each commit
            yield
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise CatalogueBusy(
                f"The catalogue {self.path} is being built or updated by another SwimSearch process; "
                "try again when it has finished."
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:  # closing a damaged file must not hide the first error
            log.debug("error while closing %s", self.path, exc_info=True)


def create_file(path: Path, **meta: Any) -> None:
    """Make a new catalogue file at `path` with `meta` recorded (never overwrites).

    The file is made under a temporary name and moved into place once its
    schema is committed, so a crash while creating never leaves a
    half-made file that would then be refused as damaged.
    """
    if path.exists():
        raise CatalogueError(f"A file already exists at {path}; it was left untouched.")
    temporary = path.with_name(path.name + ".creating")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
            leftover.unlink(missing_ok=True)
    except OSError as exc:
        raise CatalogueError(f"Cannot create the catalogue at {path}: {exc.strerror or exc}.") from exc
    new = SqliteFile(temporary, create=True)
    try:
        with new.transaction():
            new.set_meta(**meta)
        new.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except SQLITE_ERRORS as exc:
        raise describe_error(exc, path) from exc
    finally:
        new.close()
    try:
        os.link(temporary, path)  # fails rather than overwrite a file that appeared meanwhile
        temporary.unlink()
    except FileExistsError as exc:
        temporary.unlink(missing_ok=True)
        raise CatalogueError(f"A file already exists at {path}; it was left untouched.") from exc
    except OSError:  # file systems without hard links
        os.replace(temporary, path)
