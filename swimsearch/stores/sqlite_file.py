"""The catalogue file itself: one SQLite database per catalogue, made and migrated with sqlite-utils.

Tables (schema version 1):

* ``meta``        key -> JSON value: schema version, model identity, root folder, fit state.
* ``images``      one row per file found: path relative to the root, size, mtime,
                  width, height, pHash, subfolder label, and the error text of an
                  unreadable file (which then has no embedding).
* ``embeddings``  the trunk's 1280 floats per readable image (stored as float16).
* ``code_blocks`` packed spherical codes and re-ranking vectors, a few thousand
                  images per row: a million load in a fraction of a second.
* ``arrays``      the fitted hash layer, spheres, re-ranking basis and LSH bit samples.
* ``buckets``     the LSH tables: one row per non-empty bucket (table, key) with its image ids.

Arrays are raw little-endian bytes with their dtype and shape, never pickle;
every SQL value is a parameter. The file is opened in WAL mode so a search can
read while a build writes; a build holds an exclusive lock on the file so two
processes never update one catalogue at once. This module opens, creates,
checks and migrates the file; `SqliteStore` (sqlite.py) reads and writes it.
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

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
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
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    return wrapper


def chunks(ids: Sequence[int], size: int = 500) -> Iterator[tuple[list[int], str]]:
    """Parts of `ids` with their "?, ?, ..." placeholders (well under SQLite's variable limit)."""
    for start in range(0, len(ids), size):
        part = [int(i) for i in ids[start : start + size]]
        yield part, ",".join("?" * len(part))


def check_file(path: Path) -> None:
    """Refuse, in plain words, anything that is not an SQLite file (never overwrite it)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(100)
    except PermissionError as exc:
        raise CatalogueError(f"The catalogue {path} cannot be read: permission denied.") from exc
    except OSError as exc:
        raise CatalogueError(f"The catalogue {path} cannot be read: {exc.strerror or exc}.") from exc
    if size == 0:
        raise CatalogueError(f"The file {path} is empty: it is not a SwimSearch catalogue.")
    if head[: len(SQLITE_MAGIC)] != SQLITE_MAGIC:
        raise CatalogueError(f"The file {path} is not a SwimSearch catalogue, or it is damaged.")
    expected = _declared_size(head)
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0  # the WAL may hold the pages the file lacks
    if expected is not None and size < expected and not pending:
        raise CatalogueError(
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
    except sqlite3.DatabaseError as exc:
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


def describe_error(exc: sqlite3.Error, path: Path) -> CatalogueError:
    """A plain CatalogueError for an SQLite error on the catalogue at `path`."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "attempt to write" in text:
        return CatalogueError(f"The catalogue {path} is read-only: it can be searched but not updated.")
    if "locked" in text or "busy" in text:
        return CatalogueBusy(f"The catalogue {path} is busy in another program; try again in a moment.")
    if "disk is full" in text or "database or disk is full" in text:
        return CatalogueError(f"The disk holding {path} is full: nothing more could be saved (what was saved before is kept).")
    if "disk i/o error" in text:
        return CatalogueError(
            f"The disk reported an error while reading or writing {path} (is it full, or failing?). "
            "What was saved before is kept."
        )
    if "unable to open" in text:
        return CatalogueError(f"The catalogue {path} cannot be opened (missing folder or no permission).")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return CatalogueError(f"The catalogue {path} is damaged ({exc}). It was not changed; rebuild it into a new file.")
    return CatalogueError(f"The catalogue {path} cannot be used: {exc}.")


def create_schema(db: sqlite_utils.Database) -> None:
    """Schema version 1, created with sqlite-utils."""
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("images").create(
        {
            "id": int,
            "path": str,
            "size": int,
            "mtime": float,
            "width": int,
            "height": int,
            "phash": int,
            "label": str,
            "error": str,
            "added": float,
        },
        pk="id",
        not_null={"path", "size", "mtime", "added"},
    )
    db.table("images").create_index(["path"], unique=True)
    db.table("embeddings").create({"image_id": int, "vector": bytes}, pk="image_id", not_null={"vector"})
    db.table("code_blocks").create(
        {"block_no": int, "count": int, "ids": bytes, "codes": bytes, "vectors": bytes},
        pk="block_no",
        not_null={"count", "ids", "codes", "vectors"},
    )
    db.table("arrays").create({"name": str, "dtype": str, "shape": str, "data": bytes}, pk="name", not_null={"dtype", "shape", "data"})
    db.table("buckets").create(
        {"table_no": int, "bucket_key": int, "ids": bytes}, pk=("table_no", "bucket_key"), not_null={"ids"}
    )


#: version -> function that migrates a catalogue from version-1 to version.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {}


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
        self.db = sqlite_utils.Database(self.conn, execute_plugins=False)
        self._lock_fd: int | None = None
        try:
            if not exists:
                with self.db.atomic():
                    create_schema(self.db)
                    self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    self.set_meta(schema_version=SCHEMA_VERSION, created=time.time())
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise describe_error(exc, self.path) from exc
        except CatalogueError:
            self.conn.close()
            raise

    def _check_schema(self) -> None:
        if "meta" not in self.db.table_names():
            raise CatalogueError(f"The file {self.path} is an SQLite database but not a SwimSearch catalogue.")
        version = self.meta("schema_version")
        if not isinstance(version, int):
            raise CatalogueError(f"The catalogue {self.path} is damaged: it states no schema version.")
        if version > SCHEMA_VERSION:
            raise CatalogueError(
                f"The catalogue {self.path} was made by a newer SwimSearch (format {version}; "
                f"this version reads up to {SCHEMA_VERSION}). Update SwimSearch to open it."
            )
        if version < SCHEMA_VERSION:
            if self.readonly:
                raise CatalogueError(f"The catalogue {self.path} is in an older format and read-only, so it cannot be upgraded.")
            with self.db.atomic():
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    log.info("migrating %s to format %d", self.path, step)
                    MIGRATIONS[step](self.db)
                self.set_meta(schema_version=SCHEMA_VERSION)

    # --- metadata and arrays ---------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, **values: Any) -> None:
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )

    def put_array(self, name: str, array: np.ndarray) -> None:
        array = np.asarray(array)
        dtype = array.dtype.newbyteorder("<").str
        self.conn.execute(
            "INSERT INTO arrays(name, dtype, shape, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET dtype = excluded.dtype, shape = excluded.shape, data = excluded.data",
            (name, dtype, json.dumps(list(array.shape)), to_blob(array, dtype)),
        )

    def get_array(self, name: str) -> np.ndarray:
        row = self.conn.execute("SELECT dtype, shape, data FROM arrays WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(name)
        dtype, shape, data = row
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(json.loads(shape)).astype(np.dtype(dtype).newbyteorder("="))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes (sqlite-utils' atomic block)."""
        with self.db.atomic():
            yield

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
    except sqlite3.Error as exc:
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
