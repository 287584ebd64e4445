"""Connecting to a team catalogue's server: the driver, the password, the person's name and pgvector's version.

psycopg (3, with its own libpq) is imported here and only here, when a team
catalogue is opened, so a SwimSearch that never opens one never loads it.
Every connection:

* gets its password from the address, this session, or libpq (PGPASSWORD,
  ~/.pgpass), and only then asks `password_prompt` (the CLI's getpass);
* names the person behind it, twice: ``swimsearch.user`` (what the schema's
  column defaults record on every change) and the application name (what
  another designer is told when this one holds a folder they want to update);
* sends TCP keepalives, so the server notices a vanished laptop within
  minutes and releases its locks, instead of after two hours;
* checks pgvector: 0.7 brings halfvec, 0.8 the iterative scan that keeps a
  search's answer complete while others add designs;
* comes back after the server restarts or the network drops
  (pg_reconnect.py): the store keeps one `TeamConnection` for its life.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import CatalogueError
from .pg_address import TeamAddress, remember_password
from .pg_schema import describe_pg_error
from .pg_types import register_types

log = logging.getLogger(__name__)

#: Asks the user for the password of an address (shown without password); None or "" gives up.
PasswordPrompt = Callable[[str], "str | None"]

MIN_PGVECTOR = (0, 7)  # halfvec, HNSW on halfvec
ITERATIVE_SCAN = (0, 8)  # hnsw.iterative_scan
#: Set this to name the person behind changes (default: the operating system's login name).
USER_ENV = "SWIMSEARCH_USER"


def person_name() -> str:
    """Who is working: $SWIMSEARCH_USER, else the login name of this computer."""
    try:
        return os.environ.get(USER_ENV) or getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): the server's login stands in
        return ""


def driver() -> Any:
    """The psycopg module, or one plain sentence saying how to install it."""
    try:
        import psycopg
    except ImportError as exc:
        raise CatalogueError(
            "Team catalogues need the PostgreSQL driver psycopg, which is not installed: "
            "pip install 'psycopg[binary]'."
        ) from exc
    return psycopg


@dataclass(frozen=True)
class ServerInfo:
    """What a connection learned about its server."""

    user: str  # the login (session_user)
    person: str  # who the changes are recorded for
    vector_version: tuple[int, ...]

    @property
    def iterative_scan(self) -> bool:
        return self.vector_version >= ITERATIVE_SCAN


def connect(
    address: TeamAddress, *, password_prompt: PasswordPrompt | None = None, person: str | None = None
) -> tuple[Any, ServerInfo]:
    """An open connection (autocommit; transactions are explicit; it reconnects by itself, see
    pg_reconnect.TeamConnection) and what it learned of the server.

    Raises:
        CatalogueError: no driver, wrong or missing password, unreachable server, no pgvector (one sentence each).
    """
    psycopg = driver()
    person = person_name() if person is None else person
    options = _options(person)
    password = address.password_to_use()
    try:
        conn = _open(psycopg, address, password, options)
    except psycopg.OperationalError as exc:
        text = str(exc).lower()
        wants_password = "no password supplied" in text or "password authentication failed" in text
        typed = password_prompt(address.display) if wants_password and password_prompt and not password else None
        if not typed:
            raise describe_pg_error(exc, address.catalogue, address.user) from None
        try:
            conn = _open(psycopg, address, typed, options)
        except psycopg.OperationalError as again:
            raise describe_pg_error(again, address.catalogue, address.user) from None
        remember_password(address.display, typed)
    except psycopg.ProgrammingError as exc:  # libpq refused the address itself (an unknown ?option=)
        raise CatalogueError(f"The team catalogue address {address.display} is not valid: {str(exc).strip()}.") from None
    try:
        server = _prepare(conn, address, person)
    except CatalogueError:
        conn.close()
        raise
    except psycopg.Error as exc:
        conn.close()
        raise describe_pg_error(exc, address.catalogue, address.user) from exc
    from .pg_reconnect import TeamConnection  # it reopens through `reopen` below

    return TeamConnection(conn, lambda: reopen(address, person)), server


def reopen(address: TeamAddress, person: str) -> Any:
    """A fresh raw connection to `address` after the old one was lost (no prompt: the password was given before)."""
    psycopg = driver()
    options = _options(person)
    conn = _open(psycopg, address, address.password_to_use(), options)
    try:
        _prepare(conn, address, person)
    except BaseException:
        conn.close()
        raise
    return conn


def _options(person: str) -> dict[str, Any]:
    return {
        "autocommit": True,
        "connect_timeout": 10,
        "application_name": f"swimsearch {person}".strip()[:63],
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 6,
    }


def _open(psycopg: Any, address: TeamAddress, password: str | None, options: dict[str, Any]) -> Any:
    if password:
        return psycopg.connect(address.conninfo(), password=password, **options)
    return psycopg.connect(address.conninfo(), **options)


def _prepare(conn: Any, address: TeamAddress, person: str) -> ServerInfo:
    """Name the person, check pgvector, teach the connection our vector types."""
    conn.execute("SELECT set_config('swimsearch.user', %s, false)", (person,))
    user = conn.execute("SELECT session_user").fetchone()[0]
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        # a database without pgvector can still receive a new catalogue, whose DDL creates the extension
        return ServerInfo(user=user, person=person or user, vector_version=())
    version = _version(row[0])
    if version < MIN_PGVECTOR:
        raise CatalogueError(
            f"The server of the team catalogue {address.catalogue} has pgvector {row[0]}; SwimSearch needs 0.7 or newer "
            "(ask its administrator to run ALTER EXTENSION vector UPDATE)."
        )
    if version < ITERATIVE_SCAN:
        log.warning("pgvector %s on %s: searches during updates may return fewer results; 0.8 is recommended",
                    row[0], address.server)
    register_types(conn)
    return ServerInfo(user=user, person=person or user, vector_version=version)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
