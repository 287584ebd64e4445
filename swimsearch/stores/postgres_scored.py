"""An update's candidate neighbours of new designs, scored where the embeddings are (`PgSearcher`'s part)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import CatalogueError
from . import pg_types


class ScoredCandidates:
    """`scored_candidates` of the server searcher (postgres_index.PgSearcher)."""

    EF_SEARCH: int
    _conn: Any
    _sql: dict[str, str]
    _fitted: Any
    _describe: Callable[[Exception], CatalogueError]

    def _set_ef(self, ef: int) -> None:
        raise NotImplementedError

    def scored_candidates(self, prepared: np.ndarray, reduced: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """An update's candidate neighbours of new designs, with their cosines computed in the server.

        Args:
            prepared: (m, D) the designs' prepared vectors (float32 values of the float16 ones).
            reduced: (m, R) their re-ranking vectors, what the HNSW index is searched with.
            depth: candidates per design.

        Returns:
            (m, depth) ids (-1 pads) and (m, depth) cosines of the candidates' prepared vectors, made here in
            float32 from the stored float16 embeddings: within 1e-3 of the update's own float16 vectors
            (neighbours.SCORE_MARGIN), so the update reads only the few it must compare exactly.
        """
        if self._fitted.centre is None:
            raise CatalogueError("The team catalogue's fit has no centre to score candidates on.")
        centre = _vector_literal(self._fitted.centre)
        ids = np.full((len(prepared), depth), -1, np.int64)
        sims = np.full((len(prepared), depth), np.nan, np.float32)
        try:
            self._set_ef(max(self.EF_SEARCH, depth))
            with self._conn.cursor(binary=True) as cur:
                for n in range(len(prepared)):
                    args = (centre, _vector_literal(prepared[n]), pg_types.HalfVec(reduced[n]), depth)
                    rows = cur.execute(self._sql["scored_candidates"], args).fetchall()
                    ids[n, : len(rows)] = [r[0] for r in rows]
                    sims[n, : len(rows)] = [r[1] for r in rows]
        except Exception as exc:
            if isinstance(exc, CatalogueError):
                raise
            raise self._describe(exc) from exc
        return ids, sims


def _vector_literal(values: np.ndarray) -> str:
    """A pgvector `vector` in text: float32 values written exactly (9 significant digits)."""
    return "[" + ",".join(f"{v:.9g}" for v in np.asarray(values, dtype=np.float32).tolist()) + "]"
