"""What a server search reads of a team catalogue changing under it (`PgSearcher`'s part).

Every search statement also reads the catalogue's marks (postgres_arrays.MARKS: the change counter and the
decisions' count and sum of times) in the same round trip. With the client's replica (team_replica.py) the
counter says whether the replica still holds the catalogue; in any case the engine compares the marks with
those it read the catalogue at (other_writes.py): another user's decisions are read again and the search
ranked again from the candidates the server already sent (`replaying`, no round trip), another user's new
or removed designs are counted again (`recount`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import CatalogueError
from ..searchers import Ranking
from . import pg_types
from .postgres_arrays import Marks, ReplicaStale, replica_search
from .postgres_prefetch import halfvecs


class FollowedSearches:
    """The marks, the replay and the replica's search of the server searcher (postgres_index.PgSearcher)."""

    EF_SEARCH: int
    _conn: Any
    _sql: dict[str, str]
    _count: int
    _ids: Any
    _iterative: bool
    _fitted: Any
    _prefetch: Any
    _describe: Callable[[Exception], CatalogueError]
    replica: Any
    marks: Marks | None
    _answered: dict[tuple[int, bytes], Ranking]
    _replaying: bool

    def _set_ef(self, ef: int) -> None:
        raise NotImplementedError

    def _check_fit(self, found: list[tuple]) -> None:
        raise NotImplementedError

    def _search(self, vector: np.ndarray, k: int) -> Ranking:
        raise NotImplementedError

    def new_search(self) -> None:
        """A search of the engine begins: the candidates of the last one are not answered again."""
        self._answered.clear()

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """The engine ranks this search again (another user's decisions were read with its candidates): the same
        candidate searches are answered from what the server sent, without a round trip."""
        self._replaying = True
        try:
            yield
        finally:
            self._replaying = False

    def recount(self) -> None:
        """Another user added or removed designs: their count (and ids) read again (one round trip)."""
        self._count = int(self._conn.execute(self._sql["searchable"]).fetchone()[0])
        self._ids = None

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        k = max(1, int(k))
        key = (k, np.asarray(vector, np.float32).tobytes())
        if self._replaying and key in self._answered:
            return self._answered[key]
        if len(self._answered) > 64:  # searches outside the engine's (neighbours, adaptation) between its searches
            self._answered.clear()
        self._answered[key] = ranking = self._search(vector, k)
        return ranking

    def _search_with_replica(self, vector: np.ndarray, k: int) -> Ranking:
        """The candidates only, with the change counter: the engine reads the rest from the client's replica
        (team_replica.py), unless the counter says the catalogue changed since it was made."""
        try:
            self._set_ef(max(self.EF_SEARCH, k))
            found, self.marks = replica_search(self._conn, self._sql["replica_search"], pg_types.HalfVec(vector), k,
                                               None if self._iterative else min(k, self._count))
        except Exception as exc:
            raise self._describe(exc) from exc
        counter = self.marks[0]
        if counter != self.replica.counter:
            self.replica.stale(counter)
            self._check_fit(found)  # a refit too: take the new fit now, or the engine's one retry meets it again
            raise ReplicaStale("The team catalogue changed since this computer's search cache was made; search again.")
        self._check_fit(found)
        try:
            reranked = halfvecs([r[4] for r in found], self._fitted.rerank_basis.shape[1])
        except ValueError as exc:
            raise self._describe(exc) from exc
        self._prefetch.keep_items([r[0] for r in found], [r[3] for r in found], reranked)
        return ranking_of(found)


def ranking_of(found: list[tuple]) -> Ranking:
    """A search statement's candidate rows (id, fit, sim, ...) as a Ranking, best first."""
    ids = np.array([r[0] for r in found], dtype=np.int64)
    sims = np.array([r[2] for r in found], dtype=np.float32)
    order = np.argsort(-sims, kind="stable")  # relaxed order: nearly sorted, sorted here
    return Ranking(ids[order], sims[order], len(found), "hnsw")
