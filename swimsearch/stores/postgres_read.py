"""Reading a team catalogue: its records, embeddings, fit and items, and search in the server.

`PostgresReader` is the reading half of `PostgresStore` (postgres.py): one
connection, one catalogue schema. Besides what every store reads, it knows
where the catalogue's folder is on this computer: the catalogue records the
folder as the computer that indexed it saw it (``/mnt/designs``,
``\\\\server\\designs``); each client maps it to its own mount (`root`), or the
recorded one is used where it exists. An unreachable folder leaves search
working and says so once (`root_note`). Candidates are found by the server's
HNSW index from `exact_below` designs up; below, the items are loaded and
searched exactly in memory, as the SQLite store does, so small catalogues
rank identically on both stores.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Concatenate, Iterable, Iterator, ParamSpec, Sequence, TypeVar

import numpy as np

from ..config import EngineConfig
from ..errors import CatalogueError
from ..fingerprint import still_the_same
from ..index import FittedIndex, IndexSnapshot
from ..neighbours import NeighbourLists
from ..searchers import Searcher
from .base import (
    CatalogueCounts,
    CatalogueIdentity,
    Embeddings,
    FitState,
    ImageRecord,
    StoredImage,
    aligned_phashes,
    relative_to_root,
)
from .pg_address import TeamAddress, session_root
from .pg_connection import ServerInfo
from .pg_schema import CatalogueNames, describe_pg_error
from . import pg_types, postgres_neighbours
from .postgres_index import ItemTables, PgSearcher, statements
from .postgres_prefetch import Prefetch
from .postgres_rows import ROWS, stored_images

log = logging.getLogger(__name__)

EMBEDDING_DTYPE = "<f2"  # halfvec: float16, bit-identical to the SQLite store's embeddings

S = TypeVar("S", bound="PostgresReader")
P = ParamSpec("P")
R = TypeVar("R")


def plain(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn any driver failure inside `method` into one plain CatalogueError about the catalogue."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except CatalogueError:
            raise
        except Exception as exc:
            if is_driver_error(exc):
                raise self.describe(exc) from exc
            raise

    return wrapper


def is_driver_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("psycopg")


class PostgresReader:
    """Reading one team catalogue (the store's half that viewers use too)."""

    def __init__(self, conn: Any, server: ServerInfo, address: TeamAddress, names: CatalogueNames,
                 *, root: str | os.PathLike | None = None, readonly: bool = False):
        self._conn = conn
        # No statement is prepared. A prepared search locks the tables its plan was made on before
        # it notices another user's refit swapped `items`: it then waits for the new table while
        # the refit waits for it to let go of the old one, and the server ends one of them as a
        # deadlock (seen in test_searches_during_an_update_are_all_answered, about 1 run in 3).
        self._conn.prepare_threshold = None
        self.server = server
        self.address = address
        self.names = names
        self._sql = {**statements(names.schema), **ROWS(names.schema), **postgres_neighbours.statements(names.schema)}
        self._index = ItemTables(conn, self._sql, names.schema)
        self._prefetch = Prefetch()  # what the last searches brought along (postgres_prefetch.py)
        self._depth = 0
        try:
            can_write = conn.execute(
                "SELECT has_table_privilege(%s, 'INSERT') AND current_setting('transaction_read_only') = 'off'",
                (f"{names.schema}.images",),
            ).fetchone()[0]
            self._readonly = readonly or not can_write
            self.recorded_root: str = self._index.meta("root") or ""
            self._root, self.root_found = self._resolve_root(root if root is not None else session_root(address.display))
        except Exception as exc:
            conn.close()
            if isinstance(exc, CatalogueError):
                raise
            raise self.describe(exc) from exc
        self._root_text = str(self._root)

    def _resolve_root(self, mapping: str | os.PathLike | None) -> tuple[Path, bool]:
        """This computer's path to the catalogue's folder, and whether the designs are found there."""
        if mapping is not None:
            folder = Path(mapping).expanduser().absolute()
            return folder, folder.is_dir() and self._holds_our_files(folder)
        recorded = Path(self.recorded_root) if self.recorded_root else Path.cwd()
        return recorded, recorded.is_dir() and self._holds_our_files(recorded)

    def map_root(self, mapping: str | os.PathLike | None) -> bool:
        """Find the catalogue's folder at `mapping` on this computer (None: where it was indexed); True if found."""
        try:
            self._root, self.root_found = self._resolve_root(mapping)
        except Exception as exc:
            raise self.describe(exc) if is_driver_error(exc) else exc
        self._root_text = str(self._root)
        return self.root_found

    def _holds_our_files(self, folder: Path, sample: int = 20) -> bool:
        rows = self._conn.execute(self._sql["sample_paths"], (sample,)).fetchall()
        return not rows or any((folder / r[0]).exists() for r in rows)

    def describe(self, exc: Exception) -> CatalogueError:
        return describe_pg_error(exc, self.address.catalogue, self.server.user)

    @property
    def location(self) -> str:
        return self.address.display

    @property
    def path(self) -> str:
        return self.address.display

    @property
    def root(self) -> Path:
        return self._root

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def name(self) -> str:
        return self.address.catalogue

    def root_note(self) -> str | None:
        """One sentence when the designs are not reachable from this computer (None when they are)."""
        if self.root_found:
            return None
        return (
            f"The designs of the team catalogue {self.name} are in {self.recorded_root} on the computer that indexed them, "
            f"which is not reachable here{'' if self._root_text == self.recorded_root else f' (nor at {self._root_text})'}: "
            "show SwimSearch where that folder is on this computer (--root PATH, or Catalogue > Map shared folder...)."
        )

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide the first error
            log.debug("error while closing %s", self.location, exc_info=True)

    # --- reading -------------------------------------------------------------------------------

    @plain
    def identity(self) -> CatalogueIdentity:
        meta = dict(self._conn.execute(self._sql["meta_all"]).fetchall())
        value = lambda key: json.loads(meta[key]) if key in meta else None  # noqa: E731
        return CatalogueIdentity(
            location=self.location,
            model_name=value("model_name"),
            model_sha256=value("model_sha256"),
            embedding_dim=value("embedding_dim"),
            embedding_dtype=value("embedding_dtype") or EMBEDDING_DTYPE,
            schema_version=value("schema_version"),
        )

    @plain
    def counts(self) -> CatalogueCounts:
        images, readable, unreadable, searchable = self._conn.execute(self._sql["counts"]).fetchone()
        return CatalogueCounts(images=images, readable=readable, unreadable=unreadable, searchable=searchable)

    @plain
    def fit_state(self) -> FitState | None:
        return self._index.fit_state()

    @plain
    def fitted(self) -> FittedIndex | None:
        return self._index.fitted()

    @contextmanager
    def _one_reading(self) -> Iterator[None]:
        """Several statements that see one state of the index, while others may fit it again."""
        with self._conn.transaction():
            if self._depth == 0:
                self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # The lock first, the snapshot after it: a new fit swaps the items table, and a
                # snapshot taken before that swap would find the new table empty.
                self._conn.execute(self._sql["lock_items"])
            yield

    @plain
    def load_snapshot(self) -> IndexSnapshot | None:
        with self._one_reading():
            fitted = self._index.fitted()
            return None if fitted is None else self._index.load_snapshot(fitted)

    @plain
    def own_searcher(self, config: EngineConfig) -> Searcher | None:
        """The server's HNSW search from `exact_below` designs up; None below (search a loaded snapshot exactly)."""
        with self._one_reading():
            fitted, count, generation = self._index.fitted(), self._index.searchable(), self._index.generation()
        if fitted is None or count < config.exact_below:
            return None
        return PgSearcher(self._conn, self._sql, fitted, generation, count,
                          iterative=self.server.iterative_scan, refresh=self._current_fit, describe=self.describe,
                          prefetch=self._prefetch)

    #: From `exact_below` designs up the server finds the candidates (HNSW): no graph of the engine's.
    searches_itself = True

    def _current_fit(self) -> tuple[FittedIndex | None, int]:
        with self._one_reading():
            return self._index.fitted(), self._index.generation()

    @plain
    def neighbour_lists(self, image_ids: Iterable[int] | None = None) -> NeighbourLists | None:
        if image_ids is None:
            return postgres_neighbours.read_lists(self._conn, self._sql, self.location)
        asked = sorted({int(i) for i in image_ids})
        held = self._prefetch.partial(asked, "list")  # None: known to have no list
        missing = [i for i in asked if i not in held]
        rows = [(i, *held[i]) for i in asked if held.get(i) is not None]
        if missing:
            with self._conn.cursor(binary=True) as cur:
                rows += [(r[0], bytes(r[1]), bytes(r[2])) for r in cur.execute(self._sql["lists_of"], (pg_types.Ids(missing),))]
        return postgres_neighbours.lists_from_rows(sorted(rows), self.location)

    @plain
    def unreadable(self) -> list[tuple[str, str]]:
        return [(p, e) for p, e in self._conn.execute(self._sql["unreadable"])]

    @plain
    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]:
        asked = [int(i) for i in image_ids]
        held = self._prefetch.partial(asked, "record")
        rows = list(held.values())
        missing = [i for i in asked if i not in held]
        if missing:
            rows += self._conn.execute(self._sql["records"], (pg_types.Ids(missing),)).fetchall()
        return {row[0]: self._record(row) for row in rows}

    @plain
    def record_by_path(self, path: str | os.PathLike, *, unchanged: bool = False) -> ImageRecord | None:
        rel = relative_to_root(path, self._root)
        if rel is None:
            return None
        row = self._conn.execute(self._sql["record_by_path"], (rel,)).fetchone()
        if row is None or row[9] is not None:  # not recorded, or a tombstone
            return None
        record = self._record(row[:8])
        if unchanged and not still_the_same(path, record.size, record.mtime, row[8]):
            return None
        return record

    def _record(self, row: tuple) -> ImageRecord:
        image_id, rel, size, width, height, phash, error, mtime = row
        return ImageRecord(
            image_id=image_id, relpath=rel, path=os.path.join(self._root_text, *rel.split("/")), size=size,
            width=width, height=height, phash=None if phash is None else phash % (1 << 64), error=error, mtime=mtime,
        )

    @plain
    def embedding_matrix(self, image_ids: Iterable[int]) -> Embeddings:
        asked = [int(i) for i in image_ids]
        found = self._prefetch.partial(asked, "vector")
        missing = [i for i in asked if i not in found]
        if missing:
            with self._conn.cursor(binary=True) as cur:
                read = dict(cur.execute(self._sql["embeddings_of"], (pg_types.Ids(missing),)).fetchall())
            if len(missing) <= 1024:  # a search's question (its candidates' neighbours): the next one may ask again
                self._prefetch.keep_field("vector", read)
            found.update(read)
        ids = [i for i in asked if i in found]
        return Embeddings(np.array(ids, dtype=np.int64), self._matrix([found[i] for i in ids]))

    @plain
    def embedded_ids(self) -> np.ndarray:
        with self._conn.cursor(binary=True) as cur:
            packed = cur.execute(self._sql["embedded_ids"]).fetchone()[0]
        return np.frombuffer(bytes(packed or b""), dtype=">i8").astype(np.int64)

    def _matrix(self, vectors: list[np.ndarray]) -> np.ndarray:
        if not vectors:
            return np.empty((0, int(self._index.meta("embedding_dim") or 0)), dtype=np.float32)
        return np.stack(vectors).astype(np.float32)

    def iter_embeddings(self, image_ids: Sequence[int] | None = None, chunk: int = 8192) -> Iterator[Embeddings]:
        if image_ids is not None:
            for start in range(0, len(image_ids), chunk):
                yield self.embedding_matrix(image_ids[start : start + chunk])
            return
        after = 0
        while True:  # keyset pages: no cursor held open between the caller's own statements
            try:
                with self._conn.cursor(binary=True) as cur:
                    rows = cur.execute(self._sql["embeddings_after"], (after, chunk)).fetchall()
            except Exception as exc:
                raise self.describe(exc) from exc
            if not rows:
                return
            after = rows[-1][0]
            yield Embeddings(np.array([r[0] for r in rows], np.int64), self._matrix([r[1] for r in rows]))

    @plain
    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        with self._conn.cursor(binary=True) as cur:
            packed = cur.execute(self._sql["phashes"]).fetchone()[0]
        pairs = np.frombuffer(bytes(packed or b""), dtype=">i8").astype(np.int64).reshape(-1, 2)
        return aligned_phashes(image_ids, [pairs])

    @plain
    def check(self) -> list[str]:
        """Verify every record, embedding and code (`swimsearch info --check`); what was checked, in words."""
        from .postgres_checks import full_check

        return full_check(self)

    @plain
    def team_info(self) -> dict[str, Any]:
        """Where the catalogue is and who is using it, for `swimsearch info`."""
        return {
            "server": self.address.server,
            "database": self._conn.info.dbname,
            "name": self.name,
            "login": self.server.user,
            "person": self.server.person,
            "access": "viewer" if self.readonly else "editor",
            "pgvector": ".".join(map(str, self.server.vector_version)),
            "recorded_root": self.recorded_root,
            "root_found": self.root_found,
            "recent_changes": self.recent_changes(3),
        }

    @plain
    def recent_changes(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest changes, newest first: when, who (person and login), what."""
        rows = self._conn.execute(self._sql["changes"], (limit,)).fetchall()
        return [{"at": at.isoformat(timespec="seconds"), "person": person, "login": login, "action": action,
                 "detail": json.loads(detail)} for at, person, login, action, detail in rows]

    @property
    def readonly_reason(self) -> str:
        """Why an update is refused (one sentence), for a read-only catalogue."""
        return (
            f"You can search the team catalogue {self.name} but not change it: the account {self.server.user} "
            "has viewer rights. Ask whoever runs the catalogue for editor rights."
        )

    # --- copying out ---------------------------------------------------------------------------

    def export_images(self, chunk: int = 10_000) -> Iterator[list[StoredImage]]:
        after = 0
        while True:
            try:
                with self._conn.cursor(binary=True) as cur:
                    rows = cur.execute(self._sql["export_after"], (after, chunk)).fetchall()
            except Exception as exc:
                raise self.describe(exc) from exc
            if not rows:
                return
            after = rows[-1][0]
            yield stored_images(rows)
