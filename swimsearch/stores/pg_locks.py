"""Who may update what in a team catalogue at the same moment: advisory locks per folder, and one for the index.

Several designers update one catalogue at once, each scanning a folder of
it. Two updates of the same folder (or of a folder and one inside it) would
race: one could take the other's new files for deleted ones. So an update
holds, for its whole run, an exclusive lock on its folder and shared locks on
every folder above it (the catalogue's root is the folder ""): updates of
"anna" and "bert" run side by side, while "anna" and "anna/summer", or "anna"
and the whole catalogue, do not. The second one is refused at once, in words
that name who holds the folder, rather than left waiting.

The index phase of an update (fit or encode new designs) is short but must not
overlap another's: it waits for the index lock instead.

All are session-level advisory locks on (hash of the catalogue's schema, hash
of the name): the server drops them with the session, so a killed client
never leaves a stale lock (measured: released 3 ms after a SIGKILL).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any, Iterator

from ..errors import CatalogueBusy

log = logging.getLogger(__name__)

INDEX_LOCK = "index"
UPDATE_PREFIX = "update:"

HOLDERS = (
    "SELECT a.application_name, a.usename, to_char(a.backend_start, 'HH24:MI') FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid() "
    "AND l.classid = hashtext(%s)::oid AND l.objid = hashtext(%s)::oid AND l.objsubid = 2"
)


def scope_of(relative_folder: str) -> str:
    """A folder inside the catalogue's root as a lock name: '' for the root, 'a/b' (posix, no slashes around)."""
    return relative_folder.strip("/").replace("\\", "/") if relative_folder not in (".", "") else ""


def lock_plan(scope: str) -> list[tuple[str, bool]]:
    """(lock name, shared) to take for an update of `scope`: shared on every folder above it, exclusive on it."""
    parts = [p for p in scope.split("/") if p]
    above = [""] + ["/".join(parts[:n]) for n in range(1, len(parts))]
    return [(UPDATE_PREFIX + name, True) for name in above] + [(UPDATE_PREFIX + "/".join(parts), False)]


@contextmanager
def update_locks(conn: Any, schema: str, scope: str, catalogue: str) -> Iterator[None]:
    """Hold `scope` of the catalogue for one update; CatalogueBusy (naming the holder) when someone else does."""
    taken: list[tuple[str, bool]] = []
    with ExitStack() as pin, _released(conn, schema, taken):
        for name, shared in lock_plan(scope):
            function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
            got = conn.execute(f"SELECT {function}(hashtext(%s), hashtext(%s))", (schema, name)).fetchone()[0]
            if not got:
                raise CatalogueBusy(_busy_sentence(conn, schema, name, catalogue))
            if not taken:  # from the first lock on, this connection must not be silently replaced
                pin.enter_context(_pinned(conn))
            taken.append((name, shared))
        yield


@contextmanager
def _released(conn: Any, schema: str, taken: list[tuple[str, bool]]) -> Iterator[None]:
    try:
        yield
    finally:
        for name, shared in reversed(taken):
            function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            try:
                conn.execute(f"SELECT {function}(hashtext(%s), hashtext(%s))", (schema, name))
            except Exception:  # noqa: BLE001 - a lost connection has dropped its locks already
                log.debug("could not release %s", name, exc_info=True)


@contextmanager
def index_lock(conn: Any, schema: str) -> Iterator[None]:
    """Wait for, then hold, the catalogue's index (one fit or encoding at a time)."""
    conn.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", (schema, INDEX_LOCK))
    with _pinned(conn):
        try:
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (schema, INDEX_LOCK))
            except Exception:  # noqa: BLE001 - a lost connection has dropped its locks already
                log.debug("could not release the index lock", exc_info=True)


def _pinned(conn: Any) -> Any:
    """A session lock lives and dies with its connection: a lost one must not be silently replaced meanwhile."""
    pinned = getattr(conn, "pinned", None)  # a TeamConnection (pg_reconnect.py); a bare psycopg one in tests
    return pinned() if pinned is not None else nullcontext()


def hold_index_in_transaction(conn: Any, schema: str) -> None:
    """The index lock until the current transaction ends (a fit is written under it, whoever calls)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (schema, INDEX_LOCK))


def _busy_sentence(conn: Any, schema: str, name: str, catalogue: str) -> str:
    folder = name[len(UPDATE_PREFIX):]
    what = f"the folder {folder} of the team catalogue {catalogue}" if folder else f"the team catalogue {catalogue}"
    who = "Someone else"
    try:
        rows = conn.execute(HOLDERS, (schema, name)).fetchall()
    except Exception:  # noqa: BLE001 - no right to see who: say so without a name
        log.debug("cannot tell who holds %s", name, exc_info=True)
        rows = []
    if rows:
        application, login, since = rows[0]
        person = (application or "").removeprefix("swimsearch").strip()
        who = f"{person} (login {login})" if person and login and person != login else (person or login or who)
        if since:
            who += f", connected since {since},"
    return f"{who} is updating {what} right now; try again when that update has finished."
