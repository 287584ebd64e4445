"""A team catalogue's tables on PostgreSQL: creating and finding them, and PostgreSQL errors as one plain sentence.

The DDL lives in postgres_schema.sql beside this module, as a template whose
placeholders are filled with quoted identifiers, never with text a user
typed (docs/POSTGRES_RESEARCH.md gives the reasons for its shape). As with the
catalogue file (sqlite_schema.py), a new catalogue is made as version 1 and
taken through every migration in `MIGRATIONS`, so a new catalogue and an
upgraded one are the same schema by construction.

Version 2 (issue 14, as the catalogue file's version 2): ``images`` gets
``fingerprint`` (content fingerprint), ``retry`` (read again at the next
update: its last read failed for a passing reason), ``gone`` (when the file
was found missing: a tombstone keeps its record and embedding a while) and
``recode`` (its code is of an older embedding: searchable by it until the new
one is written). The file's row checksums have no counterpart here: the
server checks its own pages, and a team catalogue is never a file a user
is handed.

Version 3 (issue 11, as the catalogue file's version 3): ``neighbours``, one
row per image: its k nearest other images' ids and cosines, the file's own
bytes (postgres_neighbours.py); the row goes with its image's record.

Version 4 (issue 12, as the catalogue file's version 4): ``decisions``, a
person's "same design" / "not similar" on a pair of images, kept by their
relative paths with who (the person the app names, and the login) and when
(postgres_steering.py).

Version 5 (issue 12, as the catalogue file's version 5): the details of a
steered search, one row per readable image, each going with its record:
``regions`` (the regional vectors of search by a detail) and ``colours``
(the colour signature), the file's own bytes; the basis the vectors are made
with is kept in ``arrays`` (``regions.*``) and the ``regions`` metadata
(postgres_details.py). A catalogue migrated from an older version has none
yet: its next update reads its pictures again for them (details.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CatalogueBusy, CatalogueError

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("postgres_schema.sql")
SCHEMA_VERSION = 5

#: version -> the statements that take a catalogue from version-1 to version ("{s}": its quoted schema,
#: "{viewer}", "{editor}": its quoted group roles).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE {s}.images ADD COLUMN fingerprint bigint, ADD COLUMN retry boolean NOT NULL DEFAULT false, "
        "ADD COLUMN gone double precision, ADD COLUMN recode boolean NOT NULL DEFAULT false",
        "CREATE INDEX images_recode ON {s}.images (id) WHERE recode",  # few at any time: found at once
    ),
    3: (
        "CREATE TABLE {s}.neighbours (image_id bigint PRIMARY KEY REFERENCES {s}.images (id) ON DELETE CASCADE, "
        "ids bytea NOT NULL, sims bytea NOT NULL)",
        "GRANT SELECT ON {s}.neighbours TO {viewer}",
        "GRANT INSERT, UPDATE, DELETE ON {s}.neighbours TO {editor}",
    ),
    4: (
        "CREATE TABLE {s}.decisions (a text COLLATE \"C\" NOT NULL, b text COLLATE \"C\" NOT NULL, "
        "verdict text NOT NULL CHECK (verdict IN ('same', 'different')), who text NOT NULL DEFAULT swimsearch.app_user(), "
        "login text NOT NULL DEFAULT session_user, at double precision NOT NULL, PRIMARY KEY (a, b), CHECK (a < b))",
        "GRANT SELECT ON {s}.decisions TO {viewer}",
        "GRANT INSERT, UPDATE, DELETE ON {s}.decisions TO {editor}",
    ),
    5: (
        "CREATE TABLE {s}.regions (image_id bigint PRIMARY KEY REFERENCES {s}.images (id) ON DELETE CASCADE, "
        "vectors bytea NOT NULL)",
        "CREATE TABLE {s}.colours (image_id bigint PRIMARY KEY REFERENCES {s}.images (id) ON DELETE CASCADE, "
        "signature bytea NOT NULL)",
        # float16 noise does not compress: stored out of line as it is, never tried
        "ALTER TABLE {s}.regions ALTER COLUMN vectors SET STORAGE EXTERNAL",
        "GRANT SELECT ON {s}.regions, {s}.colours TO {viewer}",
        "GRANT INSERT, UPDATE, DELETE ON {s}.regions, {s}.colours TO {editor}",
    ),
}
#: Serialises creating and migrating catalogues in one database.
DDL_LOCK = "swimsearch:schema"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class CatalogueNames:
    """The database names of one catalogue: its schema and its two group roles."""

    schema: str
    viewer: str
    editor: str

    @classmethod
    def of(cls, name: str, database: str) -> "CatalogueNames":
        """Names for catalogue `name` in `database` (roles are cluster-wide, so they carry the database).

        Raises:
            CatalogueError: the name is not a lower-case word (letters, digits, '_').
        """
        if not _NAME.match(name):
            raise CatalogueError(
                f"A team catalogue name must start with a letter and use only a-z, 0-9 and _ (up to 40): {name!r} does not."
            )
        prefix = f"{database}_{name}"[:50]
        return cls(schema=f"cat_{name}", viewer=f"{prefix}_viewer", editor=f"{prefix}_editor")


def schema_sql(names: CatalogueNames) -> Any:
    """The DDL of one catalogue (and the registry, if missing) as a composed psycopg statement."""
    from psycopg import sql

    template = SCHEMA_FILE.read_text(encoding="utf-8")
    return sql.SQL(template).format(
        schema=sql.Identifier(names.schema),
        viewer=sql.Identifier(names.viewer),
        editor=sql.Identifier(names.editor),
    )


def create_catalogue(conn: Any, name: str) -> CatalogueNames:
    """Create catalogue `name` in the connected database, all or nothing (its tables, functions and roles).

    Raises:
        CatalogueError: the name is taken or invalid, or the account may not create it.
    """
    database = conn.info.dbname
    names = CatalogueNames.of(name, database)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))
            conn.execute(schema_sql(names))
            _migrate(conn, names, 1)
            conn.execute(
                "INSERT INTO swimsearch.catalogues (name, schema_name) VALUES (%s, %s)", (name, names.schema)
            )
    except Exception as exc:  # psycopg.Error, turned into a sentence
        if getattr(exc, "sqlstate", None) == "42501" and "extension" in str(exc):
            # pgvector is not a trusted extension: only a superuser adds it, whatever rights the account has
            raise CatalogueError(
                f"The database {database} does not have the pgvector extension, which only a superuser can add: "
                f"ask the database's administrator to run CREATE EXTENSION vector in it (pgvector 0.7 or newer)."
            ) from exc
        if getattr(exc, "sqlstate", None) == "42501":
            raise CatalogueError(
                f"The account {conn.info.user} may not create the team catalogue {name} in the database {database} "
                "(it needs the right to create schemas and roles there): ask the database's administrator to create it."
            ) from exc
        if getattr(exc, "sqlstate", None) == "42710" and not _schema_exists(conn, names.schema):
            # The roles are named "DATABASE_NAME" cut to 50 characters, and roles are the server's, not the
            # database's: a long name, or another database whose name and catalogue read the same, took them.
            raise CatalogueError(
                f"The name {name} cannot be used in the database {database}: the roles a team catalogue of that name "
                f"gets ({names.editor}, {names.viewer}) already exist on this server, for another catalogue whose "
                "database and name begin the same way; choose a shorter or different name."
            ) from exc
        raise describe_pg_error(exc, name) from exc
    log.info("created team catalogue %s (schema %s) in %s", name, names.schema, database)
    return names


def _schema_exists(conn: Any, schema: str) -> bool:
    return bool(conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()[0])


def drop_catalogue(conn: Any, name: str) -> None:
    """Remove catalogue `name` from the connected database: its schema, its two roles, its registry row."""
    from psycopg import sql

    names = CatalogueNames.of(name, conn.info.dbname)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(names.schema)))
        registry = conn.execute("SELECT to_regclass('swimsearch.catalogues') IS NOT NULL").fetchone()[0]
        if registry:
            conn.execute("DELETE FROM swimsearch.catalogues WHERE name = %s", (name,))
        for role in (names.viewer, names.editor):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                continue
            if registry:  # the registry's rights are what keeps a role from being dropped
                conn.execute(sql.SQL("REVOKE ALL ON swimsearch.catalogues FROM {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("REVOKE ALL ON SCHEMA swimsearch FROM {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    log.info("dropped team catalogue %s from %s", name, conn.info.dbname)


def find_catalogue(conn: Any, name: str) -> CatalogueNames:
    """The names of an existing catalogue; a missing, foreign or newer one is refused in one sentence."""
    names = CatalogueNames.of(name, conn.info.dbname)
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{names.schema}.meta",)).fetchone()[0]
    if not exists:
        others = list_catalogues(conn)
        hint = f" It holds: {', '.join(others)}; name one with ?catalogue=NAME." if others else ""
        raise CatalogueError(f"There is no team catalogue named {name} in the database {conn.info.dbname}.{hint}")
    version = conn.execute(
        sql_text("SELECT value FROM {}.meta WHERE key = 'schema_version'", names.schema)
    ).fetchone()
    number = int(version[0]) if version and str(version[0]).isdigit() else None
    if number is None:
        raise CatalogueError(f"The team catalogue {name} is damaged: it states no schema version.")
    if number > SCHEMA_VERSION:
        raise CatalogueError(
            f"The team catalogue {name} was made by a newer SwimSearch (format {number}; this version reads up to "
            f"{SCHEMA_VERSION}). Update SwimSearch to open it."
        )
    if number < SCHEMA_VERSION:
        upgrade_catalogue(conn, names, name)
    return names


def upgrade_catalogue(conn: Any, names: CatalogueNames, name: str) -> None:
    """Take an older catalogue through the migrations, all or nothing (the owner's right, as creating it was)."""
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))
            version = int(conn.execute(sql_text("SELECT value FROM {}.meta WHERE key = 'schema_version'", names.schema)).fetchone()[0])
            _migrate(conn, names, version)  # another client may have done it while we waited for the lock
    except Exception as exc:  # psycopg.Error, turned into a sentence
        if getattr(exc, "sqlstate", None) == "42501":
            raise CatalogueError(
                f"The team catalogue {name} is in an older format (before {SCHEMA_VERSION}) that only its owner can "
                f"upgrade: ask whoever created it to open it once with this version of SwimSearch."
            ) from exc
        raise describe_pg_error(exc, name) from exc
    log.info("team catalogue %s upgraded to format %d", name, SCHEMA_VERSION)


def _migrate(conn: Any, names: CatalogueNames, version: int) -> None:
    """Every migration after `version` (inside the caller's transaction, under the DDL lock)."""
    from ..failures import reason_is_transient

    quoted = '"' + names.schema + '"'
    roles = {"{viewer}": '"' + names.viewer + '"', "{editor}": '"' + names.editor + '"'}
    for number in range(version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[number]:
            for mark, role in roles.items():
                statement = statement.replace(mark, role)
            conn.execute(statement.replace("{s}", quoted))
        if number == 2:
            # Files version 1 gave up on for a passing reason are read again at the next update (as in a file).
            rows = conn.execute(f"SELECT id, error FROM {quoted}.images WHERE error IS NOT NULL").fetchall()
            again = [image_id for image_id, error in rows if reason_is_transient(error)]
            if again:
                conn.execute(f"UPDATE {quoted}.images SET retry = true WHERE id = ANY(%s)", (again,))
        conn.execute(f"UPDATE {quoted}.meta SET value = %s WHERE key = 'schema_version'", (str(number),))


def list_catalogues(conn: Any) -> list[str]:
    """The team catalogues registered in the connected database (empty when it holds none)."""
    if not conn.execute("SELECT to_regclass('swimsearch.catalogues') IS NOT NULL").fetchone()[0]:
        return []
    try:
        return [r[0] for r in conn.execute("SELECT name FROM swimsearch.catalogues ORDER BY name")]
    except Exception:  # noqa: BLE001 - no right to read the registry: say nothing about others
        log.debug("cannot list the catalogues", exc_info=True)
        return []


def sql_text(template: str, schema: str) -> Any:
    """A statement with the catalogue's schema filled in as a quoted identifier (`{}` in `template`)."""
    from psycopg import sql

    return sql.SQL(template).format(sql.Identifier(schema))


#: SQLSTATE -> the sentence a user reads. {catalogue} and {user} are filled in.
PLAIN = {
    # insufficient_privilege: a viewer tried to change something
    "42501": "You can search the team catalogue {catalogue} but not change it: the account {user} has viewer rights. "
    "Ask whoever runs the catalogue for editor rights.",
    # read_only_sql_transaction: the role or the server is read-only (a standby, or default_transaction_read_only)
    "25006": "The team catalogue {catalogue} is read-only on this server; it can be searched but not changed.",
    "28P01": "The server refused the password for {user}; check it (or PGPASSWORD / ~/.pgpass) and try again.",
    "28000": "The server does not let {user} connect to the team catalogue {catalogue} (ask its administrator).",
    "3D000": "There is no database for the team catalogue {catalogue} on this server; check the address.",
    "3F000": "There is no team catalogue named {catalogue} in this database.",
    "42P06": "A team catalogue named {catalogue} already exists in this database.",
    "42710": "A team catalogue named {catalogue} already exists in this database.",
    "23505": "Another user added the same file to {catalogue} at the same moment; update again to see it once.",
    "40P01": "The team catalogue {catalogue} was busy with another update; nothing was lost, try again.",
    "55P03": "The team catalogue {catalogue} is being updated by someone else right now; try again when they have finished.",
    "57014": "The search in {catalogue} was cancelled because it took too long.",
    "53100": "The database server's disk is full: nothing more could be saved in {catalogue} (what was saved before is kept).",
    "57P01": "The database server was shut down by its administrator; what was saved before is kept.",
    "40001": "The team catalogue {catalogue} was busy with another update; nothing was lost, try again.",
    "23503": "Another user removed a design of {catalogue} while it was being indexed; update again to finish.",
    "08006": "The connection to the team catalogue {catalogue} was lost; what was saved before is kept. Try again.",
}


#: The sentence for a server that wants a password none was given for (the window then asks for it).
NO_PASSWORD = "The server asks for a password for {user}: give it when asked, in the address, or in PGPASSWORD or ~/.pgpass."


def asks_for_password(message: str) -> bool:
    """Whether `message` (a CatalogueError's) says the server wants a password that was not given."""
    return message.startswith(NO_PASSWORD.split("{", 1)[0])


def describe_pg_error(exc: Exception, catalogue: str, user: str | None = None) -> CatalogueError:
    """A plain CatalogueError for a psycopg error (SQLSTATE first, then the class of the state, then the text)."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc)
    user = user or "this account"
    sentence = PLAIN.get(state)
    if sentence is None and state.startswith("08"):
        sentence = PLAIN["08006"]
    if sentence is None:
        sentence = _connection_sentence(text.lower())
    if sentence is None:
        # The sentence below names the cause; the driver's whole text is for --verbose and the log file.
        log.info("unexpected PostgreSQL error on %s: %s (SQLSTATE %s)", catalogue, text, state or "none")
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return CatalogueError(f"The team catalogue {catalogue} cannot be used: {first.rstrip('.')}.")
    log.info("PostgreSQL error on %s: %s (SQLSTATE %s)", catalogue, text, state or "none")
    error_type = CatalogueBusy if state in ("55P03", "40P01", "40001") else CatalogueError
    return error_type(sentence.format(catalogue=catalogue, user=user))


def _connection_sentence(text: str) -> str | None:
    """Failures libpq reports before the server gives a SQLSTATE (while connecting)."""
    if "password authentication failed" in text:
        return PLAIN["28P01"]
    if "no password supplied" in text:
        return NO_PASSWORD
    if "does not exist" in text and "database" in text:
        return PLAIN["3D000"]
    if "role" in text and "does not exist" in text:
        return "The server has no account named {user}; check the address."
    if "no pg_hba.conf entry" in text or "not permitted to log in" in text:
        return PLAIN["28000"]
    if "failed to resolve host" in text or "could not translate host name" in text:
        return "The server named in the address of the team catalogue {catalogue} cannot be found; check the address and the network."
    if option := _INVALID_OPTION.search(text):  # libpq refuses a setting of the address before connecting
        return (f"The address of the team catalogue {{catalogue}} sets {option.group(1)} to {option.group(2)!r}, "
                "which PostgreSQL does not accept; check the address.")
    if any(s in text for s in ("server closed the connection", "terminating connection", "connection is lost",
                               "the connection is closed", "ssl syscall error", "eof detected")):
        return PLAIN["08006"]
    if any(s in text for s in ("could not connect", "connection refused",
                               "timeout expired", "no route to host", "connection to server")):
        return "The server of the team catalogue {catalogue} cannot be reached; check the address and the network."
    return None


#: libpq's 'invalid sslmode value: "bogus"' (the text is lower-cased before it is matched).
_INVALID_OPTION = re.compile(r'invalid ([a-z_]+) value: "([^"]*)"')
