"""A team catalogue's connection that comes back after the server restarts or the network drops.

A window stays open for days; the server is restarted at night, or the
laptop's network drops. psycopg's connection is then dead for good, and
every search would fail until the catalogue was reopened. `TeamConnection`
stands in for the psycopg connection everywhere the store keeps one (the
store, its searcher and its index tables all hold this one object) and, when
a statement finds the connection lost, opens a new one and tries once more,
but only where nothing of ours can be half done:

* never inside a transaction of ours (what it wrote is gone with the old
  connection; the caller is told, and its next attempt starts afresh);
* never while a session lock of ours is held (`pinned`: an update's folder
  locks live and die with the connection they were taken on);
* a statement sent on its own is sent again only if it cannot have changed
  anything: a read, or one the lost connection never sent.

Session settings made with ``set_config(..., false)`` (the searcher's
``hnsw.ef_search``) are made again on the new connection, so a search after
a reconnect ranks as before. If the server is still away, the first error is
raised (one plain sentence, by the store) and the next attempt tries again.
"""

from __future__ import annotations

import logging
import re
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

#: The server ended the session (fast shutdown, pg_terminate_backend, crash recovery, being a standby no more).
_ENDED = ("57P01", "57P02", "57P03")
#: Statements that read only: sent again after a lost connection whatever became of the first try.
_READS = re.compile(r"^\s*(select|with|show)\b", re.IGNORECASE)
_WRITES = re.compile(r"\b(insert|update|delete|merge|copy|create|drop|alter|truncate|nextval|setval|lock)\b",
                     re.IGNORECASE)
_SESSION_SETTING = re.compile(r"set_config\(.*,\s*false\s*\)\s*$", re.IGNORECASE | re.DOTALL)


class TeamConnection:
    """A psycopg connection (everything not named here goes to it) that reconnects where that is safe."""

    def __init__(self, conn: Any, reopen: Callable[[], Any]):
        self.__dict__.update(_conn=conn, _reopen=reopen, _depth=0, _pins=0, _closed=False, _attributes={},
                             _settings={}, reconnects=0)

    # --- what the store calls ---------------------------------------------------------------------

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        sent_broken = self._lost_already()
        try:
            result = self._conn.execute(query, params, **kwargs)
        except Exception as exc:
            if not self._may_send_again(exc, query, sent_broken):
                raise
            result = self._conn.execute(query, params, **kwargs)
        self._remember(query, params)
        return result

    def cursor(self, *args: Any, **kwargs: Any) -> "_Cursor":
        return _Cursor(self, args, kwargs)

    @contextmanager
    def transaction(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """psycopg's transaction; the outermost one begins on a new connection when the old one is lost."""
        with ExitStack() as stack:
            outermost = self._depth == 0
            try:
                tx = stack.enter_context(self._conn.transaction(*args, **kwargs))
            except Exception as exc:
                # BEGIN failed: nothing of this transaction was sent yet, so it may start afresh
                if not (outermost and self._may_reconnect(exc, True)):
                    raise
                tx = stack.enter_context(self._conn.transaction(*args, **kwargs))
            self.__dict__["_depth"] += 1
            try:
                yield tx
            finally:
                self.__dict__["_depth"] -= 1

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """While a session lock of ours is held: a lost connection is reported, never replaced."""
        self.__dict__["_pins"] += 1
        try:
            yield
        finally:
            self.__dict__["_pins"] -= 1

    def close(self) -> None:
        self.__dict__["_closed"] = True
        self._conn.close()

    @property
    def raw(self) -> Any:
        """The psycopg connection of the moment (for psycopg functions that check what they are given)."""
        return self._conn

    # --- the rest is the psycopg connection's -------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._attributes[name] = value  # made again on a new connection (prepare_threshold)
        setattr(self._conn, name, value)

    def __enter__(self) -> "TeamConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- reconnecting -------------------------------------------------------------------------------

    def _lost_already(self) -> bool:
        return bool(self._conn.broken or self._conn.closed) and not self._closed

    def _may_send_again(self, exc: Exception, query: Any, sent_broken: bool) -> bool:
        """Reconnect after `exc` and say whether `query` may be sent again on the new connection."""
        text = _text(query)
        harmless = sent_broken or (text is not None and bool(_READS.match(text)) and not _WRITES.search(text))
        if not harmless:
            # it may have been done: the caller is told; reconnecting now would still help the next attempt
            if self._depth == 0 and self._pins == 0 and _is_lost(exc, self._conn):
                self._try_reconnect(exc)
            return False
        return self._depth == 0 and self._may_reconnect(exc, True)

    def _remember(self, query: Any, params: Any) -> None:
        """Keep a session setting (the last value of each statement) to make it again after a reconnect."""
        text = _text(query)
        if text is not None and self._depth == 0 and _SESSION_SETTING.search(text):
            self._settings[text] = params

    def _may_reconnect(self, exc: Exception, harmless: bool) -> bool:
        if self._closed or self._depth or self._pins or not harmless or not _is_lost(exc, self._conn):
            return False
        return self._try_reconnect(exc)

    def _try_reconnect(self, exc: Exception) -> bool:
        log.info("the connection to the team catalogue was lost (%s); connecting again", str(exc).strip())
        try:
            fresh = self._reopen()
        except Exception:  # noqa: BLE001 - still away: the caller reports the first error; the next attempt tries again
            log.info("connecting again failed", exc_info=True)
            return False
        try:
            for name, value in self._attributes.items():
                setattr(fresh, name, value)
            for query, params in self._settings.items():
                fresh.execute(query, params)
        except Exception:  # noqa: BLE001 - lost again at once: same as above
            log.info("the new connection was lost at once", exc_info=True)
            fresh.close()
            return False
        old = self._conn
        self.__dict__.update(_conn=fresh, reconnects=self.reconnects + 1)
        try:
            old.close()
        except Exception:  # noqa: BLE001 - a dead connection may refuse even to close
            log.debug("closing the lost connection failed", exc_info=True)
        return True


def _is_lost(exc: BaseException, conn: Any) -> bool:
    """Whether `exc` means the connection is gone (not a refused statement on a live one)."""
    state = getattr(exc, "sqlstate", None) or ""
    if state in _ENDED or state.startswith("08"):
        return True
    return type(exc).__name__ == "OperationalError" and bool(conn.broken or conn.closed)


def _text(query: Any) -> str | None:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    return None  # a composed statement: treated as a possible write


class _Cursor:
    """A cursor of a `TeamConnection`: its `execute` reconnects and sends again as the connection's does."""

    def __init__(self, owner: TeamConnection, args: tuple, kwargs: dict):
        self._owner, self._args, self._kwargs = owner, args, kwargs
        self._cur = owner._conn.cursor(*args, **kwargs)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> "_Cursor":
        sent_broken = self._owner._lost_already()
        try:
            self._cur.execute(query, params, **kwargs)
        except Exception as exc:
            if not self._owner._may_send_again(exc, query, sent_broken):
                raise
            self._cur.close()
            self._cur = self._owner._conn.cursor(*self._args, **self._kwargs)
            self._cur.execute(query, params, **kwargs)
        self._owner._remember(query, params)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)

    def __enter__(self) -> "_Cursor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cur.close()
