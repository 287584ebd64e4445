"""What a team catalogue's search brought along with its candidates, for the engine's next questions about them.

After the server's HNSW search the engine asks the store about the
candidates: their re-ranking vectors (all of them, to order the two
searches' candidates); for the best few dozen their neighbour lists and the
embeddings of those neighbours (to make their augmented vectors, issue 11);
the embeddings of every candidate (each is scored as shown); and finally the
records of the ten shown. Each question was a round trip to a server that is
busy with others: at a million designs a search made about six (two searches,
two or three reads of embeddings, one of records), and on a loaded machine
each one waits for the server's turn and then for the client's.

So the search statement brings everything the engine will ask, in one round
trip: every candidate's code, re-ranking vector and embedding (those not
already held here from the search before: the second search of a query
expansion finds mostly the first one's candidates, `recent_vectors`); for the best `HEAD` of
them their record and neighbour list, and the embeddings of the designs
those lists name that are neither candidates nor held. Whatever else is
asked (a list of a candidate ranked lower, a design added meanwhile) is read
from the server for the ids not held here, and kept here too. Everything held
is answered for a few seconds only (the engine asks at once): a later
question reads the server again, so nothing held outlives another user's
change for long, and a store's own change clears it (`clear`).

Vectors come as ``halfvec_send`` bytes and are decoded all at once
(`halfvecs`), not value by value by the driver.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np

#: Candidates (best by re-ranking vector) whose record and neighbour list, and whose neighbours' embeddings,
#: the search statement brings along: the engine augments the best expand_k + RESCORE_MARGIN (35) of each
#: search, then the best `wanted` (40) of both searches together; a fit on raw embeddings asks for none.
HEAD = 64

#: What one candidate's row holds, by field: see `PgSearcher.search`'s statement.
FIELDS = ("code", "rerank", "vector", "record", "list")


class Prefetch:
    """Values of recent searches by field and image id, answered while fresh (`FRESH_S`).

    Everything held was kept since `_since`, and all of it is dropped once that is `FRESH_S` ago (or too
    much is held), so no value needs a time of its own and a statement's rows go in as a few bulk updates.
    """

    FRESH_S = 5.0
    MOST = 8192  # values of a field held at most (a few searches' worth)
    #: `recent_vectors` forgets what would be dropped within this many seconds or this many more values: a
    #: search statement told the server not to send the embeddings held, and they must still be here when
    #: the engine asks for them.
    MARGIN_S = 1.0
    ROOM = 2048

    def __init__(self) -> None:
        self.clear()

    def keep(self, rows: Sequence[tuple], rerank: np.ndarray, vectors: dict[int, np.ndarray], head: int = HEAD) -> None:
        """What one search statement brought.

        Args:
            rows: its candidate rows (id, fit, sim, code, rerank, place, vector, 7 record columns, list ids,
                list sims), `rerank` decoded in the same order.
            vectors: the embeddings it brought (candidates' and their neighbours'), by id.
        """
        self._expire(time.monotonic())
        ids = [row[0] for row in rows]
        self.fields["code"].update(zip(ids, [row[3] for row in rows]))
        self.fields["rerank"].update(zip(ids, rerank))
        records, lists = self.fields["record"], self.fields["list"]
        wanted = set(ids)  # what the statement would have brought but found held: still wanted by the next one
        for row in rows:
            if row[5] <= head:  # a candidate of the head: its record and list
                if row[7] is not None:  # (not removed meanwhile)
                    records[row[0]] = (row[0], *row[7:14])
                if row[14] is None:
                    lists[row[0]] = None  # known to have none
                else:
                    lists[row[0]] = (bytes(row[14]), bytes(row[15]))
                    wanted.update(np.frombuffer(row[14], "<i8").tolist())
        self._recent &= wanted
        self._put("vector", vectors)

    def keep_items(self, ids: list[int], codes: list[Any], rerank: np.ndarray) -> None:
        """Codes and re-ranking vectors of a search's candidates (a search from the client's replica)."""
        self._expire(time.monotonic())
        self.fields["code"].update(zip(ids, codes))
        self.fields["rerank"].update(zip(ids, rerank))

    def keep_field(self, field: str, values: dict[int, Any]) -> None:
        """Values read from the server on a later question (embeddings of neighbours), for the next one."""
        self._expire(time.monotonic())
        self._put(field, values)

    def _put(self, field: str, values: dict[int, Any]) -> None:
        self.fields[field].update(values)
        if field == "vector":
            self._recent.update(values)

    def partial(self, image_ids: Iterable[int], field: str) -> dict[int, Any]:
        """The fresh values of `field` held for the asked ids (the others must be read from the server)."""
        self._expire(time.monotonic())
        held = self.fields[field]
        return {i: held[i] for i in image_ids if i in held}

    def recent_vectors(self) -> list[int]:
        """Ids of the embeddings the last search statement brought or kept, and those read since, that stay
        held for `MARGIN_S` and `ROOM` more: what the next search statement need not bring again."""
        self._expire(time.monotonic() + self.MARGIN_S, self.ROOM)
        held = self.fields["vector"]
        return [i for i in self._recent if i in held]

    def clear(self) -> None:
        self.fields: dict[str, dict[int, Any]] = {name: {} for name in FIELDS}
        self._recent: set[int] = set()
        self._since = time.monotonic()  # when the oldest value held may have been kept

    def _expire(self, now: float, room: int = 0) -> None:
        """Drop everything once the oldest value may be stale, or too much is held (cheap: no value is read)."""
        if now - self._since >= self.FRESH_S or max(len(self.fields["code"]), len(self.fields["vector"])) + room > self.MOST:
            self.clear()


def halfvecs(values: Sequence[bytes], dim: int | None = None) -> np.ndarray:
    """``halfvec_send`` bytes of equal-sized vectors -> (n, dim) float16, bit-identical to what was stored.

    Raises:
        ValueError: a value is not a halfvec of that size.
    """
    if not values:
        return np.empty((0, dim or 0), np.float16)
    first = values[0]
    width = (len(first) - 4) // 2
    if dim is not None and width != dim:
        raise ValueError(f"expected halfvec({dim}) values, got halfvec({width})")
    joined = b"".join(values)
    if len(joined) != len(values) * (4 + 2 * width):
        raise ValueError("halfvec values of different sizes")
    halves = np.frombuffer(joined, dtype=">u2").reshape(len(values), 2 + width)
    if (halves[:, 0] != width).any() or halves[:, 1].any():
        raise ValueError("not a halfvec value")
    return halves[:, 2:].view(">f2").astype(np.float16)
