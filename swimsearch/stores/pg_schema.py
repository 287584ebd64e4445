"""Creating a team catalogue's tables on PostgreSQL, and PostgreSQL errors as one plain sentence.

Groundwork for the PostgreSQL store (docs/POSTGRES_RESEARCH.md): the DDL lives
in postgres_schema.sql beside this module, as a template with placeholders
that are filled with quoted identifiers and integer literals, never with
string formatting of user input.
"""

from __future__ import annotations

from typing import Any

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogueBusy, CatalogueError

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("postgres_schema.sql")
SCHEMA_VERSION = 1
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


def schema_sql(names: CatalogueNames, *, dim: int, bits: int, rdim: int) -> Any:
    """The DDL of one catalogue (and the registry, if missing) as a composed psycopg statement."""
    from psycopg import sql

    for value in (dim, bits, rdim):
        if not isinstance(value, int) or not 0 < value <= 16000:
            raise ValueError(f"not a vector size: {value!r}")
    template = SCHEMA_FILE.read_text(encoding="utf-8")
    return sql.SQL(template).format(
        schema=sql.Identifier(names.schema),
        viewer=sql.Identifier(names.viewer),
        editor=sql.Identifier(names.editor),
        dim=sql.SQL(str(dim)),
        bits=sql.SQL(str(bits)),
        rdim=sql.SQL(str(rdim)),
    )


def create_catalogue(conn: Any, name: str, *, dim: int, bits: int, rdim: int) -> CatalogueNames:
    """Create catalogue `name` in the connected database, all or nothing.

    Raises:
        CatalogueError: the name is taken or invalid, or the account may not create it.
    """
    database = conn.info.dbname
    names = CatalogueNames.of(name, database)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))
            conn.execute(schema_sql(names, dim=dim, bits=bits, rdim=rdim))
            conn.execute(
                "INSERT INTO swimsearch.catalogues (name, schema_name) VALUES (%s, %s)", (name, names.schema)
            )
    except Exception as exc:  # psycopg.Error, turned into a sentence
        raise describe_pg_error(exc, name) from exc
    log.info("created team catalogue %s (schema %s) in %s", name, names.schema, database)
    return names


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
    "08006": "The connection to the team catalogue {catalogue} was lost; what was saved before is kept. Try again.",
}


def describe_pg_error(exc: Exception, catalogue: str, user: str | None = None) -> CatalogueError:
    """A plain CatalogueError for a psycopg error (SQLSTATE first, then the class of the state)."""
    state = getattr(exc, "sqlstate", None) or ""
    user = user or "this account"
    sentence = PLAIN.get(state)
    if sentence is None and state.startswith("08"):
        sentence = PLAIN["08006"]
    if sentence is None and "password authentication failed" in str(exc):
        sentence = PLAIN["28P01"]  # libpq reports it before any SQLSTATE exists
    if sentence is None and ("could not connect" in str(exc) or "connection refused" in str(exc).lower()):
        sentence = "The team catalogue server cannot be reached; check the address and the network."
    if sentence is None:
        log.error("unexpected PostgreSQL error on %s: %s (SQLSTATE %s)", catalogue, exc, state or "none")
        return CatalogueError(f"The team catalogue {catalogue} cannot be used: {str(exc).strip().splitlines()[0]}.")
    error_type = CatalogueBusy if state in ("55P03", "40P01") else CatalogueError
    return error_type(sentence.format(catalogue=catalogue, user=user))
