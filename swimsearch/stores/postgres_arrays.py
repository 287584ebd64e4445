"""What a team catalogue's search cache (team_replica.py) reads of the server: the array cache's reads.

array_build.build makes the search cache of a catalogue file from a handful of
reads (sqlite_arrays.py); `ArraySource` answers the same reads from an open
team catalogue, so a client makes a replica of what a search reads with the
very code that makes a catalogue file's cache: every stored embedding
(tombstones too, as `embedding_matrix` answers for them), every image record
and neighbour list, the fit, all in one REPEATABLE READ transaction.

What a replica was made at is the catalogue's change counter (`CHANGED`): the
number of rows of its ``changes`` table and their largest id. Every
transaction that changes what a replica holds (records, embeddings,
neighbour lists, the fit) writes a ``changes`` row, and no row is ever
deleted, so a committed change always moves the count (the largest id alone
would not: an identity is taken when a row is inserted, not when it commits).
The search statement reads it with its candidates (PgSearcher), so a search
knows in the same round trip whether the replica is still the catalogue's.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..errors import IndexChanged
from . import postgres_neighbours
from .base import Embeddings
from .postgres_prefetch import halfvecs

if TYPE_CHECKING:
    from ..index import FittedIndex
    from ..neighbours import NeighbourLists

PostgresStore = Any  # stores/postgres.py (not imported: it imports the searcher, which imports this module)

#: The catalogue's change counter (see the module's note): a few microseconds on a table of one row a batch.
CHANGED = "SELECT count(*) AS n, coalesce(max(id), 0) AS m FROM {s}.changes"
#: Keyset pages of every stored embedding (tombstones too), as halfvec_send bytes decoded at once.
EMBEDDINGS = "SELECT image_id, halfvec_send(vector) FROM {s}.embeddings WHERE image_id > %s ORDER BY image_id LIMIT %s"
#: Keyset pages of every image record, in the order the catalogue file's rows are read (sqlite_images.ROW's first nine).
RECORDS = "SELECT id, path, size, mtime, width, height, phash, label, error FROM {s}.images WHERE id > %s ORDER BY id LIMIT %s"
CHUNK = 8192
#: What another client's commit moves, read with every search's candidates (other_writes.py): the change
#: counter (designs, lists, the fit) and the decisions' count and sum of times (each decision, changed verdict
#: or withdrawal moves them).
MARKS = ("SELECT (SELECT count(*) FROM {s}.changes) AS n, (SELECT coalesce(max(id), 0) FROM {s}.changes) AS m, "
         "count(*) AS dn, coalesce(sum(at), 0) AS ds FROM {s}.decisions")
#: A search with the client's replica: the candidates' ids, fit, sim, code and re-ranking vector (what the
#: replica lacks), and the marks, read in the same statement (so in the same snapshot) as them;
#: the LEFT JOIN gives the marks even when no item is found.
SEARCH = ("WITH c AS MATERIALIZED (" + MARKS + ") SELECT r.image_id, r.fit, r.sim, r.code, halfvec_send(r.rerank), "
          "c.n, c.m, c.dn, c.ds "
          "FROM c LEFT JOIN LATERAL (SELECT image_id, fit, (rerank <#> %(q)s) * -1 AS sim, code, rerank "
          "FROM {s}.items ORDER BY rerank <#> %(q)s LIMIT %(k)s) r ON true")


class ReplicaStale(IndexChanged):
    """Another user changed the team catalogue since the client's search cache was made: search again without it."""


Marks = tuple[tuple[int, int], tuple[int, float]]  # (the change counter, the decisions' count and sum of times)


def marks_of(row: tuple, at: int) -> Marks:
    """The marks (`MARKS`) in a search statement's row, from its column `at` on."""
    return (int(row[at]), int(row[at + 1])), (int(row[at + 2]), float(row[at + 3]))


def replica_search(conn: Any, statement: str, query: Any, k: int, at_least: int | None) -> tuple[list[tuple], Marks]:
    """One candidate search for a client with a replica: (candidate rows, the marks). `at_least`:
    pgvector 0.7 (no iterative scan), where designs being written may take places: fewer rows than that
    and the search is made again without the index."""
    args = {"q": query, "k": k}
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(statement, args).fetchall()
        if at_least is not None and sum(r[0] is not None for r in rows) < at_least:
            with conn.transaction():
                conn.execute("SET LOCAL enable_indexscan = off")
                rows = cur.execute(statement, args).fetchall()
    return [r for r in rows if r[0] is not None], marks_of(rows[0], 5)


def catalogue_identity(store: Any) -> list[str | None]:
    """What names one team catalogue wherever it is reached from: the server's system identifier (where
    the login may not read it, the server's address stands in), the database, the schema and when the
    catalogue was created (a catalogue dropped and made again under its name is another one)."""
    conn = store._conn
    try:
        system = str(conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])
    except Exception:  # noqa: BLE001 - no right to read it
        system = store.address.server
    database = conn.execute("SELECT current_database()").fetchone()[0]
    created = conn.execute("SELECT created::text FROM swimsearch.catalogues WHERE schema_name = %s",
                           (store.names.schema,)).fetchone()
    return [system, database, store.names.schema, created[0] if created else None]


def quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


class _Meta:
    """`store.file.meta(key)` as array_cache/array_build ask it of a catalogue file."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    def meta(self, key: str) -> Any:
        return self._store._index.meta(key)


class ArraySource:
    """An open team catalogue as array_build.build reads a catalogue file (see the module's note).

    Args:
        store: the open team catalogue (read only; its connection is used from this thread only).
        name: what the cache's header names as its catalogue (the address without password).
    """

    def __init__(self, store: "PostgresStore", name: str):
        self._store = store
        self._conn = store._conn
        self._s = quoted(store.names.schema)
        self.file = _Meta(store)
        self.path = name
        self.counter: tuple[int, int] | None = None  # the change counter read by the last `content_signature`

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ transaction. Unlike a search's reading, the items table is not locked: a
        replica reads no item, and a lock held for the minutes of its making would queue a refit's swap,
        and every search behind that."""
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def changed(self) -> tuple[int, int]:
        row = self._conn.execute(CHANGED.replace("{s}", self._s)).fetchone()
        return int(row[0]), int(row[1])

    def content_signature(self) -> list[Any]:
        """The change counter and the fit's generation (every change a replica holds moves the counter)."""
        self.counter = self.changed()
        return [list(self.counter), self._store._index.generation()]

    def array_counts(self) -> tuple[int, int]:
        n = self._conn.execute(f"SELECT count(*) FROM {self._s}.embeddings").fetchone()[0]  # noqa: S608 - quoted name
        paths = self._conn.execute(f"SELECT coalesce(sum(octet_length(path)), 0) FROM {self._s}.images").fetchone()[0]  # noqa: S608
        return int(n), int(paths)

    def iter_stored_embeddings(self) -> Iterator[Embeddings]:
        dim = int(self.file.meta("embedding_dim") or 0)
        after = 0
        while True:
            with self._conn.cursor(binary=True) as cur:
                rows = cur.execute(EMBEDDINGS.replace("{s}", self._s), (after, CHUNK)).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield Embeddings(np.array([r[0] for r in rows], np.int64), halfvecs([bytes(r[1]) for r in rows], dim))

    def iter_image_rows(self) -> Iterator[tuple]:
        after = 0
        while True:
            rows = self._conn.execute(RECORDS.replace("{s}", self._s), (after, CHUNK * 4)).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield from rows

    def fitted(self) -> "FittedIndex | None":
        return self._store._index.fitted()

    def neighbour_lists(self, image_ids: Any = None) -> "NeighbourLists | None":
        return postgres_neighbours.read_lists(self._conn, self._store._sql, self._store.location, image_ids)

    def embedding_matrix(self, image_ids: Any) -> Embeddings:
        return self._store.embedding_matrix(image_ids)
