"""The fitted index of a team catalogue on the server: the fit's arrays, the items table, and search by HNSW.

`ItemTables` reads and writes the index part of one catalogue schema:

* the fitted hash layer, spheres, re-ranking basis and LSH bit samples
  (``arrays`` and the ``fitted`` metadata), the same rows as in a SQLite file;
* ``items``: one row per searchable design, its code as ``bit(B)`` and its
  re-ranking vector as ``halfvec(R)`` under an HNSW index, tagged with the
  generation of the fit that made it. A new fit is written to a table of its
  own and swapped in with the transaction that saves it (the schema's
  ``refit_begin``/``refit_finish``), so a search sees one fit, never two.

`PgSearcher` is the store's own `Searcher`: the server finds the candidates
with the HNSW index (``hnsw.ef_search`` 300, ``iterative_scan =
relaxed_order`` so designs being written by others never cost a search its
answer); the engine rescores them exactly as for the SQLite store. Small
catalogues are not searched here but loaded (`load_snapshot`) and searched
exactly in memory, so they rank identically on both stores.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

import numpy as np

from ..errors import CatalogueError, IndexChanged
from ..index import FittedIndex, IndexSnapshot
from ..lsh import BucketTables
from ..searchers import Ranking
from . import pg_types
from .base import FitState
from .postgres_arrays import MARKS, SEARCH as REPLICA_SEARCH, Marks, marks_of
from .postgres_follow import FollowedSearches, ranking_of
from .postgres_prefetch import HEAD, Prefetch, halfvecs
from .postgres_scored import ScoredCandidates

log = logging.getLogger(__name__)

#: Candidate search breadth (hnsw.ef_search). Each search asks for rescore_depth (200) candidates, twice
#: (query expansion); at ef_search 200 the HNSW walk lost part of those 200 and, at 1M designs, recall@10 of
#: the app's own ranking over exact candidates was 0.966 (the SQLite store's graph: 0.984). Measured through
#: the store at 1M (200 queries): ef 250 0.986, 300 0.992, 400 0.996; 300 costs about 0.5 ms of server CPU
#: a search more than 200 (bench/bench_pg.py --store, bench/results/pg-store-1000000.json).
EF_SEARCH = 300
#: Rows per COPY message when writing a new fit's items.
COPY_CHUNK = 20_000

#: Statements on one catalogue; "{s}" is its quoted schema name.
SQL = {
    "meta": "SELECT value FROM {s}.meta WHERE key = %s",
    "set_meta": "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    # the fit's arrays; the region basis's (regions.*, postgres_details.py) are read on their own
    "arrays": "SELECT name, dtype, shape, data FROM {s}.arrays WHERE name NOT LIKE 'regions.%%'",
    "put_array": "INSERT INTO {s}.arrays (name, dtype, shape, data) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (name) DO UPDATE SET dtype = excluded.dtype, shape = excluded.shape, data = excluded.data",
    "refit_begin": "SELECT {s}.refit_begin(%s, %s)",
    "refit_finish": "SELECT {s}.refit_finish()",
    "searchable": "SELECT count(*) FROM {s}.items",
    # embedded, not gone, and no code or a code of an older embedding
    "uncoded": "SELECT e.image_id FROM {s}.embeddings e JOIN {s}.images i ON i.id = e.image_id WHERE i.gone IS NULL "
               "AND (i.recode OR NOT EXISTS (SELECT 1 FROM {s}.items t WHERE t.image_id = e.image_id)) ORDER BY e.image_id",
    # an image removed meanwhile by another user is skipped, not a failed foreign key
    "add_item": "INSERT INTO {s}.items (image_id, fit, code, rerank) SELECT %s, %s, %s, %s "
                "WHERE EXISTS (SELECT 1 FROM {s}.images m WHERE m.id = %s) "
                "ON CONFLICT (image_id) DO UPDATE SET fit = excluded.fit, code = excluded.code, rerank = excluded.rerank",
    "all_items": "SELECT image_id, code, rerank, fit FROM {s}.items ORDER BY image_id",
    # One bytea of big-endian int8 (a million rows one by one through the driver: seconds of client CPU).
    "ids": "SELECT string_agg(int8send(image_id), ''::bytea ORDER BY image_id) FROM {s}.items",
    "items_of": "SELECT image_id, code, rerank FROM {s}.items WHERE image_id = ANY(%s)",
    # One round trip for all that the engine asks of a search (postgres_prefetch.py): every candidate's code,
    # re-ranking vector, place and embedding (unless held: %(held)s), for the best %(head)s their record and
    # neighbour list, then rows of the embeddings of the designs those lists name that are neither candidates
    # nor held (fit NULL). A list's ids are k little-endian int8 (postgres_neighbours.py), unpacked here byte
    # by byte (PostgreSQL 14 casts no bytea to bigint). Vectors go as halfvec_send bytes, decoded at once in
    # NumPy. OFFSET 0 keeps each gated read a subquery of its own, so "place <= head" gates it before any row
    # is read (flattened, it was a filter after reading every row).
    "search": "WITH c AS MATERIALIZED (" + MARKS + "), r AS MATERIALIZED (SELECT image_id, fit, (rerank <#> %(q)s) * -1 AS sim, code, rerank FROM {s}.items "
              "ORDER BY rerank <#> %(q)s LIMIT %(k)s), "
              "o AS MATERIALIZED (SELECT r.*, row_number() OVER (ORDER BY r.sim DESC) AS place FROM r), "
              "l AS MATERIALIZED (SELECT n.image_id, n.ids, n.sims FROM o JOIN {s}.neighbours n ON n.image_id = o.image_id "
              "WHERE o.place <= %(head)s), "
              "x AS MATERIALIZED (SELECT DISTINCT id FROM (SELECT "
              + " | ".join(f"(get_byte(l.ids, 8 * j + {b})::int8 << {8 * b})" for b in range(8))
              + " AS id FROM l, generate_series(0, length(l.ids) / 8 - 1) j OFFSET 0) v "
              "WHERE id >= 0 AND NOT id = ANY(%(held)s::int8[]) AND id NOT IN (SELECT image_id FROM o)) "
              "SELECT o.image_id, o.fit, o.sim, o.code, halfvec_send(o.rerank), o.place, "
              "CASE WHEN NOT o.image_id = ANY(%(held)s::int8[]) THEN (SELECT halfvec_send(e.vector) FROM {s}.embeddings e "
              "WHERE e.image_id = o.image_id) END, h.path, h.size, h.width, h.height, h.phash, h.error, h.mtime, l.ids, l.sims, "
              "c.n, c.m, c.dn, c.ds "
              "FROM c CROSS JOIN o LEFT JOIN l ON l.image_id = o.image_id LEFT JOIN LATERAL (SELECT i.path, i.size, i.width, "
              "i.height, i.phash, i.error, i.mtime FROM {s}.images i WHERE i.id = o.image_id AND o.place <= %(head)s OFFSET 0) h "
              "ON true UNION ALL SELECT x.id, NULL, NULL, NULL, NULL, NULL, halfvec_send(e.vector), NULL, NULL, NULL, NULL, NULL, "
              "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM x JOIN {s}.embeddings e ON e.image_id = x.id",
    # An update's candidate neighbours of a new design: the HNSW search, each candidate with the cosine of its
    # prepared vector (embedding less the fit's centre) to the design's, computed where the embeddings are.
    "scored_candidates": "SELECT t.image_id, 1 - ((e.vector::vector - %s::vector) <=> %s::vector) FROM (SELECT image_id "
                         "FROM {s}.items ORDER BY rerank <#> %s LIMIT %s) t JOIN {s}.embeddings e ON e.image_id = t.image_id",
    "replica_search": REPLICA_SEARCH,  # with the client's replica: candidates and the change counter (postgres_arrays.py)
    "clear_items": "DELETE FROM {s}.items",
    "lock_items": "LOCK TABLE {s}.items IN ACCESS SHARE MODE",
}


def statements(schema: str) -> dict[str, str]:
    """`SQL` with the catalogue's schema filled in (a name of a-z, 0-9 and _ only, checked on opening)."""
    quoted = '"' + schema.replace('"', '""') + '"'
    return {key: text.replace("{s}", quoted) for key, text in SQL.items()}


class ItemTables:
    """The index tables of one open team catalogue (its connection, its statements)."""

    def __init__(self, conn: Any, sql: dict[str, str], schema: str):
        self.conn = conn
        self.sql = sql
        self.schema = schema
        self.next_generation: int | None = None  # a fit being written (finished with its transaction)
        self._next_bits: int | None = None

    # --- metadata ------------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute(self.sql["meta"], (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, **values: Any) -> None:
        for key, value in values.items():
            self.conn.execute(self.sql["set_meta"], (key, json.dumps(value)))

    def generation(self) -> int:
        return int(self.meta("fit_generation", 0) or 0)

    def fit_state(self) -> FitState | None:
        state = self.meta("fitted")
        return FitState.from_dict(state) if state else None

    def fitted(self) -> FittedIndex | None:
        state = self.meta("fitted")
        if not state:
            return None
        arrays = {}
        for name, dtype, shape, data in self.conn.execute(self.sql["arrays"]):
            arrays[name] = np.frombuffer(bytes(data), dtype=np.dtype(dtype)).reshape(json.loads(shape)).astype(np.dtype(dtype).newbyteorder("="))
        missing = [name for name in FittedIndex.ARRAY_NAMES if name not in arrays]
        if missing:
            raise CatalogueError(f"The team catalogue is damaged: the fitted array {missing[0]} is missing.")
        return FittedIndex.from_arrays(arrays, state)

    # --- writing a fit and its items ------------------------------------------------------------

    def begin_fit(self, fitted: FittedIndex) -> None:
        """Keep a new fit's arrays and start its items table (call inside a transaction; `finish_fit` ends it)."""
        generation = self.generation() + 1
        self.conn.execute(self.sql["refit_begin"], (int(fitted.spheres.bits), int(fitted.rerank_basis.shape[1])))
        for name, array in fitted.arrays().items():
            array = np.asarray(array)
            dtype = array.dtype.newbyteorder("<").str
            data = np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()
            self.conn.execute(self.sql["put_array"], (name, dtype, json.dumps(list(array.shape)), data))
        self.set_meta(fitted={**fitted.state(), "at": time.time()}, fit_generation=generation)
        self.next_generation = generation
        self._next_bits = int(fitted.spheres.bits)

    def bits(self) -> int:
        """Code length of the fit being written, else of the catalogue's fit."""
        if self.next_generation is not None and self._next_bits is not None:
            return self._next_bits
        state = self.meta("fitted")
        if not state:
            raise CatalogueError("The team catalogue has no fitted index to write codes for.")
        return int(state["settings"]["bits"])

    def finish_fit(self) -> None:
        """Index the new fit's items and put them in place of the old ones (inside the fit's transaction)."""
        if self.next_generation is not None:
            self.conn.execute(self.sql["refit_finish"])
            self.next_generation = None

    def write_items(self, ids: np.ndarray, codes: np.ndarray, vectors: np.ndarray, bits: int) -> None:
        """Codes and re-ranking vectors of images: into the fit being written, or merged into the live items."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if self.next_generation is not None:
            fits = np.full(len(ids), self.next_generation, dtype=np.int64)
            columns = [("int8", ids), ("int4", fits), (f"bit:{bits}", codes), ("halfvec", np.asarray(vectors, np.float16))]
            pg_types.copy_rows(self.conn, f"{self.schema}.items_next", ["image_id", "fit", "code", "rerank"], columns, COPY_CHUNK)
            return
        generation = self.generation()
        with self.conn.cursor() as cur:
            cur.executemany(  # pipelined: one round trip for the lot
                self.sql["add_item"],
                [(int(i), generation, pg_types.Code(c, bits), pg_types.HalfVec(v), int(i)) for i, c, v in zip(ids, codes, vectors)],
            )

    def clear(self) -> None:
        self.conn.execute(self.sql["clear_items"])
        self.next_generation = None

    # --- reading items --------------------------------------------------------------------------

    def searchable(self) -> int:
        return int(self.conn.execute(self.sql["searchable"]).fetchone()[0])

    def uncoded_ids(self) -> np.ndarray:
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(self.sql["uncoded"]).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def load_snapshot(self, fitted: FittedIndex) -> IndexSnapshot:
        """Every item as compact arrays, for an in-memory search (small catalogues) or a copy."""
        bits, dim = fitted.spheres.bits, fitted.rerank_basis.shape[1]
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(self.sql["all_items"]).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        codes = np.stack([pg_types.parse_bit_binary(r[1], bits) for r in rows]) if rows else np.empty((0, fitted.spheres.words), np.uint64)
        vectors = np.stack([r[2] for r in rows]).astype(np.float16) if rows else np.empty((0, dim), np.float16)
        tables = BucketTables.from_keys(fitted.positions, bits, fitted.keys(codes)) if len(ids) else BucketTables.from_keys(
            fitted.positions, bits, np.empty((0, fitted.positions.shape[0]), np.int64))
        return IndexSnapshot(fitted=fitted, ids=ids, codes=codes, vectors=vectors, tables=tables)


class PgSearcher(FollowedSearches, ScoredCandidates):
    """Candidates found by the server's HNSW index over the re-ranking vectors (a `Searcher`).

    One statement a search, on the store's connection (never prepared: see `PostgresReader`). Searches
    during another user's updates stay complete (iterative scan); after
    another user's refit the searcher notices (rows of a newer fit
    generation), takes the new fit, and raises `IndexChanged`: the engine
    encodes the query with the new fit and searches again.

    Args:
        conn: the store's connection (used from the store's thread only).
        sql: the catalogue's statements.
        fitted, generation: the fit the engine encodes queries with, and its generation.
        count: searchable designs when opened (new ones are found all the same).
        iterative: the server's pgvector has the iterative scan (>= 0.8).
        refresh: reads the current fit and generation again.
        describe: turns a driver error into a plain CatalogueError.
    """
    reads_code = False  # the server walks the re-ranking vectors
    EF_SEARCH = EF_SEARCH

    def __init__(
        self,
        conn: Any,
        sql: dict[str, str],
        fitted: FittedIndex,
        generation: int,
        count: int,
        *,
        iterative: bool,
        refresh: Callable[[], tuple[FittedIndex | None, int]],
        describe: Callable[[Exception], CatalogueError],
        prefetch: Prefetch,
    ):
        self._prefetch = prefetch
        self._conn = conn
        self._sql = sql
        self._fitted = fitted
        self._generation = generation
        self._count = count
        self._iterative = iterative
        self._refresh = refresh
        self._describe = describe
        self._ids: np.ndarray | None = None
        self.replica: Any = None  # the client's search cache (team_replica.TeamReplica), set by the engine
        self.marks: Marks | None = None  # what another client's commit moves, as the last search statement read them
        self._answered: dict[tuple[int, bytes], Ranking] = {}  # this search's candidates, for `replaying` (by k, query)
        self._replaying = False
        self._ef = 0
        self._set_ef(EF_SEARCH)
        if iterative:
            # pgvector >= 0.8: scan on past ef_search until k visible rows are found, so
            # entries of designs being written by others never take a result's place.
            conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false)")

    @property
    def fitted(self) -> FittedIndex:
        return self._fitted

    @property
    def ids(self) -> np.ndarray:
        """Every searchable image id, sorted (read once: 8 MB for a million designs)."""
        if self._ids is None:
            with self._conn.cursor(binary=True) as cur:
                packed = cur.execute(self._sql["ids"]).fetchone()[0]
            self._ids = np.frombuffer(bytes(packed or b""), dtype=">i8").astype(np.int64)
        return self._ids

    def __len__(self) -> int:
        return self._count

    def _set_ef(self, ef: int) -> None:
        if ef != self._ef:
            self._conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
            self._ef = ef

    def _search(self, vector: np.ndarray, k: int) -> Ranking:
        if self.replica is not None and self.replica.taken is not None:
            return self._search_with_replica(vector, k)
        args = {"q": pg_types.HalfVec(vector), "k": k, "head": HEAD, "held": pg_types.Ids(self._prefetch.recent_vectors())}
        try:
            self._set_ef(max(EF_SEARCH, k))
            with self._conn.cursor(binary=True) as cur:
                rows = cur.execute(self._sql["search"], args).fetchall()
            if not self._iterative and sum(r[1] is not None for r in rows) < min(k, self._count):
                rows = self._exact(args)  # pgvector 0.7: entries being written took places; scan instead
        except Exception as exc:
            if isinstance(exc, CatalogueError):
                raise
            raise self._describe(exc) from exc
        found = [r for r in rows if r[1] is not None]  # the candidates; the other rows are their neighbours' embeddings
        if found:
            self.marks = marks_of(found[0], 16)
        self._check_fit(found)
        try:
            reranked = halfvecs([r[4] for r in found], self._fitted.rerank_basis.shape[1])
            brought = [r for r in rows if r[6] is not None]
            vectors = halfvecs([r[6] for r in brought])
        except ValueError as exc:  # a column altered by hand, or a damaged value
            raise self._describe(exc) from exc
        self._prefetch.keep(found, reranked, dict(zip((r[0] for r in brought), vectors)))
        return ranking_of(found)

    def _check_fit(self, found: list[tuple]) -> None:
        """After another user's refit (rows of a newer generation): take the new fit, and have the engine
        encode the query with it and ask again."""
        if any(row[1] != self._generation for row in found):
            fitted, generation = self._refresh()
            if fitted is not None:
                self._fitted, self._generation, self._ids = fitted, generation, None
            raise IndexChanged("The team catalogue's index was just rebuilt by another user; search again to use the new one.")

    def _exact(self, args: dict[str, Any]) -> list[tuple]:
        with self._conn.transaction():
            self._conn.execute("SET LOCAL enable_indexscan = off")
            with self._conn.cursor(binary=True) as cur:
                return cur.execute(self._sql["search"], args).fetchall()

    def _items(self, image_ids: np.ndarray, field: str) -> dict[int, Any]:
        """Codes or re-ranking vectors by id: those the last searches brought along, the others from the server."""
        asked = [int(i) for i in np.atleast_1d(image_ids)]
        found = self._prefetch.partial(asked, field)
        missing = [i for i in asked if i not in found]
        if missing:
            try:
                with self._conn.cursor(binary=True) as cur:
                    found.update({r[0]: r[1] if field == "code" else r[2] for r in cur.execute(self._sql["items_of"], (pg_types.Ids(missing),))})
            except Exception as exc:
                raise self._describe(exc) from exc
        return found

    def codes(self, image_ids: np.ndarray) -> np.ndarray:
        """Packed codes (n, words); zeros for a design removed meanwhile (its distance is then meaningless)."""
        bits, words = self._fitted.spheres.bits, self._fitted.spheres.words
        found = self._items(image_ids, "code")
        out = np.zeros((len(np.atleast_1d(image_ids)), words), dtype=np.uint64)
        for row, image_id in enumerate(np.atleast_1d(image_ids)):
            if int(image_id) in found:
                out[row] = pg_types.parse_bit_binary(found[int(image_id)], bits)
        return out

    def vectors(self, image_ids: np.ndarray) -> np.ndarray:
        dim = self._fitted.rerank_basis.shape[1]
        found = self._items(image_ids, "rerank")
        out = np.zeros((len(np.atleast_1d(image_ids)), dim), dtype=np.float32)
        for row, image_id in enumerate(np.atleast_1d(image_ids)):
            if int(image_id) in found:
                out[row] = found[int(image_id)].astype(np.float32)
        return out
