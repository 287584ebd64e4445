"""What another process wrote to the open catalogue: asked before each search, cheap while nothing changed.

Another window, a CLI `swimsearch index` or another designer changes the catalogue file a search engine
holds in memory (its searchable ids, fitted index, decisions). SQLite's data version moves at every
commit by another connection and never at this connection's own (a few microseconds to ask:
sqlite_arrays.change_token, as array_watch.py asks it). When it moved, the content signature
(array_cache.signature: records, embeddings, neighbour lists, the fit; 0.3 s at a million designs) tells
a change of designs, which needs everything read again, from one of decisions only.
"""

from __future__ import annotations

import logging
from typing import Any

from .array_cache import signature

log = logging.getLogger(__name__)

#: Designs up to which the content signature is read whenever the engine reads the catalogue (milliseconds),
#: so that even the first decision another process makes reads no design again; above, it is read at the
#: first change (0.3 s at a million designs: not added to opening), which reads everything again once.
SIGN_UP_TO = 100_000


class OtherWrites:
    """The change marks of one open catalogue file (a store without a data version is never seen changed).

    Args:
        reader: the engine's reader (a Catalogue or a store).
    """

    def __init__(self, reader: Any):
        self._store = getattr(reader, "store", reader)
        self._token = getattr(self._store, "change_token", None)
        self._seen: int | None = None  # the data version when the engine last read the catalogue
        self._signature: str | None = None  # the content signature then, once known

    def _version(self) -> int | None:
        return None if self._token is None else int(self._token()[0])

    def reading(self, designs: int) -> None:
        """The engine reads the catalogue of about `designs` now (marked before reading, in the order a
        commit meanwhile is seen as a change of designs next time: the version, the signature, the reads)."""
        self._seen = self._version()
        self._signature = signature(self._store) if self._seen is not None and designs <= SIGN_UP_TO else None

    def check(self) -> str | None:
        """None while nothing was committed by another connection; else "decisions" when the designs are
        the same (the signature agrees; now taken as read), or "designs" when they must be read again."""
        if self._seen is None:
            return None
        now = self._version()
        if now == self._seen:
            return None
        signed = signature(self._store)
        if signed == self._signature:
            self._seen = now
            return "decisions"
        self._pending: tuple[int | None, str] = (now, signed)
        return "designs"

    def follow(self, engine: Any) -> bool:
        """Bring a SearchEngine up to what another process committed: its decisions only (its array cache,
        if any, is still the catalogue's), or everything; whether its designs were read again."""
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
        if self._seen == now:  # nothing committed between the signature and the reading: they agree
            self._signature = signed
        engine.refreshes += 1
        return True
