"""What a team catalogue's search brought along with its candidates, for the engine's next questions about them.

After the server's HNSW search the engine asks the store about the
candidates: their re-ranking vectors (all of them, to order the two
searches' candidates), then, for the best few dozen, their embeddings, their
neighbour lists and the embeddings of those neighbours (to make their
augmented vectors, issue 11), and finally the records of the ten shown. Each
question is a round trip to a server that is busy with others, and reading
every candidate's 2.5 kB embedding and record with the candidates cost more
than the search itself (200 candidates: 7.6 of 8.8 ms of server CPU).

So the search statement brings the code and re-ranking vector of every
candidate, and the embedding, record and neighbour list of only the best
`HEAD` of them; whatever else is asked (mostly the neighbours' embeddings) is
read from the server for the ids not held here, and kept here too. Everything
held is answered for a few seconds only (the engine asks at once): a later
question reads the server again, so nothing held outlives another user's
change for long, and a store's own change clears it (`clear`).
"""

from __future__ import annotations

import time
from typing import Any, Iterable

#: Candidates (best by re-ranking vector) whose embedding, record and neighbour list the search statement
#: brings along: the engine augments the best expand_k + RESCORE_MARGIN (35) of each search, then the best
#: `wanted` (40) of both searches together; a fit on raw embeddings asks for all of its (40) candidates.
HEAD = 64

#: What one candidate's row holds, by field: see `PgSearcher.search`'s statement.
FIELDS = ("code", "rerank", "vector", "record", "list")


class Prefetch:
    """Rows of recent searches by image id and field, each answered while fresh (`FRESH_S`)."""

    FRESH_S = 5.0
    MOST = 8192  # ids held at most (a few searches' worth)

    def __init__(self) -> None:
        self.held: dict[int, dict[str, tuple[Any, float]]] = {}
        self._since = time.monotonic()  # when the oldest entry held may have been kept

    def keep(self, rows: Iterable[tuple]) -> None:
        """Rows of the search statement: (id, fit, sim, code, rerank, vector, 7 record columns, list ids, list sims)."""
        now = time.monotonic()
        self._expire(now)
        for image_id, _fit, _sim, code, rerank, vector, *rest in rows:
            entry = self.held.setdefault(image_id, {})
            entry["code"] = (code, now)
            entry["rerank"] = (rerank, now)
            if vector is not None:  # a candidate of the head: everything the engine reads of it
                record, (ids, sims) = rest[:-2], rest[-2:]
                entry["vector"] = (vector, now)
                entry["record"] = ((image_id, *record), now)
                entry["list"] = (None if ids is None else (bytes(ids), bytes(sims)), now)

    def keep_field(self, field: str, values: dict[int, Any]) -> None:
        """Values read from the server on a later question (embeddings of neighbours), for the next one."""
        now = time.monotonic()
        self._expire(now)
        for image_id, value in values.items():
            self.held.setdefault(image_id, {})[field] = (value, now)

    def partial(self, image_ids: Iterable[int], field: str) -> dict[int, Any]:
        """The fresh values of `field` held for the asked ids (the others must be read from the server)."""
        now = time.monotonic()
        found = {}
        for image_id in image_ids:
            value = self.held.get(image_id, {}).get(field)
            if value is not None and now - value[1] < self.FRESH_S:
                found[image_id] = value[0]
        return found

    def clear(self) -> None:
        self.held = {}
        self._since = time.monotonic()

    def _expire(self, now: float) -> None:
        """Drop everything once the oldest entry may be stale, or too much is held (cheap: no entry is read)."""
        if now - self._since >= self.FRESH_S or len(self.held) > self.MOST:
            self.clear()
