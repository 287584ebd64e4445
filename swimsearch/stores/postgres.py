"""The team catalogue: one catalogue in a PostgreSQL + pgvector database, shared by several designers at once.

`PostgresStore` implements `CatalogueReader` (its reading half is
`PostgresReader`, postgres_read.py) and `CatalogueWriter` over one
connection and one catalogue schema (pg_schema.py creates it, its index part
is postgres_index.py, its rows postgres_rows.py, its locks pg_locks.py).
What writing adds to what the SQLite store does:

* **Several writers.** Paths are unique, batches write their rows in path
  order (so two batches that meet wait instead of deadlocking) and are retried
  on a deadlock; each update holds its folder (pg_locks); each change records
  who made it (the schema's column defaults and the ``changes`` table).
* **Viewers.** An account without the right to insert is read-only: the store
  says so before an update starts, in one sentence.
* **A fit is swapped in whole**: written to a table of its own, indexed, and
  put in place by the transaction that saves it (postgres_index.py).

Use it from the thread that opened it (its connection is not shared).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from ..errors import CatalogueError
from ..index import FittedIndex
from ..neighbours import NeighbourLists
from . import pg_locks, pg_types, postgres_details, postgres_neighbours, postgres_steering
from .base import (
    CatalogueWriter,
    FitSample,
    KnownFile,
    ModelInfo,
    NewImage,
    Restored,
    StoredImage,
    folder_range,
    sample_positions,
)
from .pg_address import TeamAddress
from .pg_connection import PasswordPrompt, connect
from .pg_schema import CatalogueNames, create_catalogue, describe_pg_error, drop_catalogue, find_catalogue
from .postgres_index import statements
from .postgres_read import EMBEDDING_DTYPE, PostgresReader, is_driver_error, plain
from .postgres_rows import image_rows, write_images

log = logging.getLogger(__name__)

#: `changes` rows of every batch of neighbour lists and of a copy: there for the change counter
#: (postgres_arrays.py), not shown among a catalogue's recent changes (postgres_rows.py's "changes").
BOOKKEEPING = ("lists", "import")

RETRIES = 5  # a batch that meets another in a deadlock is tried again this often

R = TypeVar("R")


def _retryable(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) in ("40P01", "40001")


class PostgresStore(PostgresReader, postgres_steering.PgSteering, postgres_details.PgDetails):
    """One team catalogue (reader and writer; decisions and subfolders: postgres_steering.py; regional vectors and
    colours: postgres_details.py). Open it with `open`, `create` or `exists` first."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sql.update(postgres_steering.statements(self.names.schema))
        self._sql.update(postgres_details.statements(self.names.schema))

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, address: str | TeamAddress, *, root: str | os.PathLike | None = None, readonly: bool = False,
             password_prompt: PasswordPrompt | None = None) -> "PostgresStore":
        """Open an existing team catalogue; no driver, no server, no catalogue: refused in one sentence."""
        address = address if isinstance(address, TeamAddress) else TeamAddress.parse(address)
        conn, server = connect(address, password_prompt=password_prompt)
        try:
            names = find_catalogue(conn, address.catalogue)
        except Exception as exc:
            conn.close()
            if isinstance(exc, CatalogueError):
                raise
            raise describe_pg_error(exc, address.catalogue, server.user) from exc
        return cls(conn, server, address, names, root=root, readonly=readonly)

    @classmethod
    def create(cls, address: str | TeamAddress, root: str | os.PathLike, *,
               password_prompt: PasswordPrompt | None = None, folder_must_exist: bool = True) -> "PostgresStore":
        """A new, empty team catalogue for the folder `root` (recorded as this computer sees it; missing
        only when not `folder_must_exist`: a copy of a catalogue whose folder is elsewhere)."""
        address = address if isinstance(address, TeamAddress) else TeamAddress.parse(address)
        folder = Path(root).resolve() if Path(root).exists() or folder_must_exist else Path(root)
        if folder_must_exist and not folder.is_dir():
            raise CatalogueError(f"The folder {folder} does not exist.")
        conn, server = connect(address, password_prompt=password_prompt)
        try:
            names = create_catalogue(conn, address.catalogue)
            if not server.vector_version:  # the catalogue's DDL has just created the extension
                pg_types.register_types(conn)
            with conn.transaction():
                for key, value in (("root", str(folder)), ("embedding_dtype", EMBEDDING_DTYPE), ("created", time.time())):
                    conn.execute(statements(names.schema)["set_meta"], (key, json.dumps(value)))
        except Exception as exc:
            conn.close()
            if isinstance(exc, CatalogueError):
                raise
            raise describe_pg_error(exc, address.catalogue, server.user) from exc
        return cls(conn, server, address, names, root=folder)

    @classmethod
    def drop(cls, address: str | TeamAddress, *, password_prompt: PasswordPrompt | None = None) -> None:
        """Remove a team catalogue with everything in it (a copy that failed; tests). The owner's right."""
        address = address if isinstance(address, TeamAddress) else TeamAddress.parse(address)
        conn, server = connect(address, password_prompt=password_prompt)
        try:
            drop_catalogue(conn, address.catalogue)
        except Exception as exc:
            if isinstance(exc, CatalogueError):
                raise
            raise describe_pg_error(exc, address.catalogue, server.user) from exc
        finally:
            conn.close()

    @classmethod
    def exists(cls, address: str | TeamAddress, *, password_prompt: PasswordPrompt | None = None) -> bool:
        """Whether the address names an existing catalogue (the server must be reachable)."""
        address = address if isinstance(address, TeamAddress) else TeamAddress.parse(address)
        conn, _ = connect(address, password_prompt=password_prompt)
        try:
            schema = CatalogueNames.of(address.catalogue, conn.info.dbname).schema
            return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.meta",)).fetchone()[0])
        finally:
            conn.close()

    # --- writing -------------------------------------------------------------------------------

    def _refuse_if_readonly(self) -> None:
        if self._readonly:
            raise CatalogueError(self.readonly_reason)

    @contextmanager
    def writer_lock(self, scope: str = "") -> Iterator[None]:
        self._refuse_if_readonly()
        with pg_locks.update_locks(self._conn, self.names.schema, pg_locks.scope_of(scope), self.name):
            yield

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        with pg_locks.index_lock(self._conn, self.names.schema):
            yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing; a fit saved inside is indexed and swapped in just before the outermost commit."""
        self._depth += 1
        self._prefetch.clear()  # what searches brought along may change now
        try:
            with self._conn.transaction():
                yield
                if self._depth == 1:
                    self._index.finish_fit()
        except CatalogueError:
            raise
        except Exception as exc:
            if is_driver_error(exc):
                raise self.describe(exc) from exc
            raise
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._index.next_generation = None

    @plain
    def set_model(self, model: ModelInfo) -> None:
        with self.transaction():
            self._index.set_meta(model_name=model.name, model_sha256=model.sha256, embedding_dim=model.dim,
                                 embedding_dtype=EMBEDDING_DTYPE)
            self._log("model", {"name": model.name})

    @plain
    def clear_images(self) -> None:
        with self.transaction():
            self._conn.execute(self._sql["clear_images"])
            self._index.set_meta(fitted=None)
            self._log("clear", {})

    @plain
    def known_files(self, scope: str = "") -> dict[str, KnownFile]:
        low, high = folder_range(pg_locks.scope_of(scope))
        with self._conn.cursor(binary=True) as cur:
            rows = cur.execute(self._sql["known"], (low, high)).fetchall()
        return {path: KnownFile(image_id, size, mtime, fingerprint, bool(retry), gone)
                for image_id, path, size, mtime, fingerprint, retry, gone in rows}

    def _retrying(self, action: Callable[[], R]) -> R:
        """`action` in a transaction, again after a short pause when it met another writer in a deadlock."""
        for attempt in range(RETRIES):
            try:
                with self.transaction():
                    return action()
            except CatalogueError as exc:
                if attempt == RETRIES - 1 or not _retryable(exc.__cause__ or exc) or self._depth:
                    raise
                log.info("a batch met another writer (%s); trying again", exc)
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
        raise AssertionError("unreachable")

    @plain
    def add_batch(self, images: Sequence[NewImage]) -> list[int]:
        """Add (or replace, by path) records and embeddings in one transaction, rows in path order."""
        order = sorted(range(len(images)), key=lambda i: images[i].relpath)
        rows = [images[i] for i in order]

        def write() -> list[int]:
            ids = write_images(self._conn, self._sql, rows)
            self.replace_details(ids, rows)  # a file read again: its old details go with its old embedding
            unreadable = sum(1 for image in rows if image.error is not None)
            self._log("add", {"images": len(rows), "unreadable": unreadable, "first": rows[0].relpath if rows else None})
            return ids

        ids = self._retrying(write) if rows else []
        out = [0] * len(images)
        for position, image_id in zip(order, ids):
            out[position] = image_id
        return out

    @plain
    def remove(self, image_ids: Sequence[int]) -> None:
        if not len(image_ids):
            return
        ids = sorted(int(i) for i in image_ids)

        def delete() -> None:
            self.forget_decisions(ids)  # a decision goes with its file
            self._conn.execute(self._sql["remove"], (ids,))
            self._log("remove", {"images": len(ids)})

        self._retrying(delete)

    @plain
    def restore(self, entries: Sequence[Restored]) -> None:
        if not entries:
            return
        rows = sorted(entries, key=lambda e: e.file.relpath)  # path order, as batches write

        def write() -> None:
            before = dict(self._conn.execute(self._sql["paths_of"], ([int(e.image_id) for e in rows],)).fetchall())
            with self._conn.cursor() as cur:
                cur.executemany(self._sql["restore"], [(e.file.relpath, e.file.size, e.file.mtime, e.fingerprint, int(e.image_id))
                                                       for e in rows])
            self.move_decisions({before[e.image_id]: e.file.relpath for e in rows if e.image_id in before})  # they follow the file
            self._log("restore", {"images": len(rows)})

        self._retrying(write)

    @plain
    def tombstone(self, image_ids: Sequence[int], at: float) -> None:
        """Out of search at once (their items go), records and embeddings kept, marked gone `at`."""
        if not len(image_ids):
            return
        ids = sorted(int(i) for i in image_ids)

        def write() -> None:
            self._conn.execute(self._sql["drop_items"], (ids,))
            self._conn.execute(self._sql["lists_drop"], (ids,))  # the lists naming it are made again by the index update
            self.forget_decisions(ids)
            self._conn.execute(self._sql["tombstone"], (float(at), ids))
            self._log("gone", {"images": len(ids)})

        self._retrying(write)

    @plain
    def flag_retry(self, image_ids: Sequence[int]) -> None:
        if len(image_ids):
            self._retrying(lambda: self._conn.execute(self._sql["flag_retry"], (sorted(int(i) for i in image_ids),)))

    @plain
    def mark_recode(self, image_ids: Sequence[int]) -> None:
        if len(image_ids):
            with self.transaction():
                self._conn.execute(self._sql["mark_recode"], (sorted(int(i) for i in image_ids),))

    @plain
    def fit_sample(self, limit: int, seed: int) -> FitSample:
        with self._conn.cursor(binary=True) as cur:
            rows = cur.execute(self._sql["fit_candidates"]).fetchall()  # in path order, byte-wise as SQLite sorts
        rows = [rows[i] for i in sample_positions(len(rows), limit, seed)]
        found = self.embedding_matrix(r[0] for r in rows)
        return FitSample(found.ids, [r[1] for r in rows], found.vectors)

    @plain
    def uncoded_ids(self) -> np.ndarray:
        return self._index.uncoded_ids()

    @plain
    def save_fit(self, fitted: FittedIndex) -> None:
        with self.transaction():
            pg_locks.hold_index_in_transaction(self._conn, self.names.schema)
            self._conn.execute(self._sql["lists_clear"])  # a new fit comes with lists of its own
            self._index.begin_fit(fitted)
            self._log("fit", {"count": fitted.count, "variant": fitted.layer.variant, "provisional": fitted.provisional})
        # alone (not inside a caller's transaction), the new fit is in place now, with no codes yet

    @plain
    def clear_index(self) -> None:
        with self.transaction():
            self._index.clear()
            self._conn.execute(self._sql["lists_clear"])
            self._index.set_meta(fitted=None)
            self._log("unfit", {})

    @plain
    def write_codes(self, image_ids: np.ndarray, codes: np.ndarray, vectors: np.ndarray) -> None:
        with self.transaction():
            bits = self._index.bits()
            self._index.write_items(image_ids, codes, vectors, bits)  # replacing the codes of images read again
            self._conn.execute(self._sql["codes_written"], (np.asarray(image_ids, dtype=np.int64).tolist(),))

    @plain
    def write_neighbours(self, lists: NeighbourLists, *, replace: bool) -> None:
        with self.transaction():
            postgres_neighbours.write_lists(self._conn, self._sql, lists, replace=replace)
            self._log(BOOKKEEPING[0], {"images": len(lists.ids)})

    @plain
    def drop_codes(self, image_ids: np.ndarray) -> None:
        """Out of search until `write_codes` gives them their new codes (in the caller's transaction)."""
        if len(image_ids):
            with self.transaction():
                self._conn.execute(self._sql["drop_items"], (sorted(int(i) for i in image_ids),))

    def write_buckets(self, keys: np.ndarray, image_ids: np.ndarray, *, merge: bool) -> None:
        """Nothing to do: the server searches the vectors; buckets are derived from the codes when copied out."""

    def write_graph(self, graph: "VectorGraph | None") -> None:
        """Nothing to keep: the server's own HNSW index finds the candidates (`searches_itself`)."""

    # --- copying in ----------------------------------------------------------------------------

    @plain
    def import_images(self, images: Sequence[StoredImage]) -> None:
        with self.transaction():
            image_rows(self._conn, self.names.schema, images)
            self._log(BOOKKEEPING[1], {"images": len(images)})

    def _log(self, action: str, detail: dict[str, Any]) -> None:
        """A `changes` row, in the transaction of the change it describes. Every change to what a client's
        search cache holds (records, embeddings, neighbour lists, the fit, the model) writes one: the
        count of these rows is what tells a client that its cache is stale (postgres_arrays.py)."""
        self._conn.execute(self._sql["log"], (action, json.dumps(detail)))


if TYPE_CHECKING:
    from ..graph import VectorGraph

    def _a_team_catalogue_is_a_writer(store: PostgresStore) -> CatalogueWriter:
        return store  # mypy checks here that the store keeps to the writer protocol
