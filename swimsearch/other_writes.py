"""What another process wrote to the open catalogue: asked before each search, cheap while nothing changed.

Another window, a CLI `swimsearch index` or another designer changes the catalogue file a search engine
holds in memory (its searchable ids, fitted index, decisions). SQLite's data version moves at every
commit by another connection and never at this connection's own (a few microseconds to ask:
sqlite_arrays.change_token, as array_watch.py asks it). When it moved, the content signature
(array_cache.signature: records, embeddings, neighbour lists, the fit; 0.3 s at a million designs) tells
a change of designs, which needs everything read again, from one of decisions only.

A team catalogue has no data version: its marks (stores/postgres_steering.change_marks, one round trip)
are the catalogue's change counter, which every change of designs, lists or the fit moves, and its
decisions' count and sum of times. They are asked only where the engine holds the designs (a team
catalogue below `exact_below`, searched in memory). A larger one's server finds its candidates as they
are now, and every search statement brings the same marks with them (stores/postgres_follow.py): when
another user's decisions moved them, the decisions are read (one round trip) and the search is ranked
again from the candidates already sent (`ranked`); when another user's designs moved the counter, their
count is read again (one round trip) and the window's count follows.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from .array_cache import signature

log = logging.getLogger(__name__)

#: Designs up to which the content signature is read whenever the engine reads the catalogue (milliseconds),
#: so that even the first decision another process makes reads no design again; above, it is read at the
#: first change (0.3 s at a million designs: not added to opening), which reads everything again once.
SIGN_UP_TO = 100_000

T = TypeVar("T")


class OtherWrites:
    """The change marks of one open catalogue file (a store without a data version is never seen changed).

    Args:
        reader: the engine's reader (a Catalogue or a store).
    """

    def __init__(self, reader: Any):
        self._store = getattr(reader, "store", reader)
        self._token = getattr(self._store, "change_token", None)
        self._marks = getattr(self._store, "change_marks", None) if self._token is None else None
        self._seen: Any = None  # the data version (or a team catalogue's marks) when the engine last read it
        self._signature: str | None = None  # the content signature then, once known
        self._pending: tuple[Any, str] = (None, "")  # what `check` saw when it said "designs"

    def _version(self) -> Any:
        if self._marks is not None:
            return self._marks()
        return None if self._token is None else int(self._token()[0])

    def reading(self, designs: int) -> None:
        """The engine reads the catalogue of about `designs` now (marked before reading, in the order a
        commit meanwhile is seen as a change of designs next time: the version, the signature, the reads)."""
        self._seen = self._version()
        self._signature = None
        if self._token is not None and designs <= SIGN_UP_TO:
            self._signature = signature(self._store)

    def written_since(self) -> Any:
        """The catalogue's version when another connection committed since it was read (a build writing, say);
        None when nothing was. Cheap: the check a search makes first, without reading anything again."""
        now = self._version() if self._seen is not None else None
        return None if now is None or now == self._seen else now

    def own_write(self, watch: Any) -> None:
        """The engine wrote decisions itself and reads them again now: its search cache (`watch`) is kept, and
        a team catalogue's decision marks taken (a change of designs meanwhile is still seen next time)."""
        if watch is not None:
            watch.after_own_write()
        if self._marks is not None and self._seen is not None:
            self._seen = (self._seen[0], self._marks()[1])

    def check(self) -> str | None:
        """None while nothing was committed by another connection; else "decisions" when the designs are
        the same (the signature agrees; now taken as read), or "designs" when they must be read again."""
        if self._seen is None:
            return None
        now = self._version()
        if now == self._seen:
            return None
        if self._marks is not None:
            if now[0] == self._seen[0]:
                self._seen = now
                return "decisions"
            self._pending = (now, "")
            return "designs"
        signed = signature(self._store)
        if signed == self._signature:
            self._seen = now
            return "decisions"
        self._pending = (now, signed)
        return "designs"

    def follow(self, engine: Any) -> bool:
        """Bring a SearchEngine up to what another process committed: its decisions only (its array cache,
        if any, is still the catalogue's), or everything; whether its designs were read again."""
        if self._marks is not None and not engine.holds_designs:
            return False  # its server finds the candidates as they are now, in the search's own round trips
        changed = self.check()
        if changed == "decisions":
            engine.reload_decisions()
            if engine.array_watch is not None:
                engine.array_watch.accept_change()
            return False
        if changed is None:
            return False
        log.info("another process changed the catalogue %s: reading it again", engine.reader.location)
        now, signed = self._pending
        engine.reload()  # calls `reading`
        if self._seen == now and signed:  # nothing committed between the signature and the reading: they agree
            self._signature = signed
        engine.refreshes += 1
        return True

    def ranked(self, engine: Any, searcher: Any, rank: Callable[[], T]) -> T:
        """`rank()`, a search's ranking; for a team catalogue searched on its server, ranked again when the marks
        its statements brought say another user decided meanwhile (the decisions read, the candidates not asked
        again: `PgSearcher.replaying`), and the design count read again when another user's designs changed."""
        begin = getattr(searcher, "new_search", None)
        if begin is not None:
            begin()
        ranked = rank()
        marks = getattr(searcher, "marks", None)
        if self._marks is None or marks is None or self._seen is None or marks == self._seen:
            return ranked
        seen, self._seen = self._seen, marks
        if marks[0] != seen[0]:  # designs added or removed (their candidates are found already): the count follows
            searcher.recount()
            engine.refreshes += 1
        if marks[1] == seen[1]:
            return ranked
        log.info("another user decided on the team catalogue %s: its decisions read again", engine.reader.location)
        engine.reload_decisions()
        with searcher.replaying():
            return rank()

