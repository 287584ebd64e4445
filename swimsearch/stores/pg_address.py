"""Naming a team catalogue: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?catalogue=NAME]``.

A team catalogue lives in a PostgreSQL database; one database can hold
several, each in a schema of its own (``cat_NAME``), and ``?catalogue=NAME``
says which one (default: ``main``). Every other query parameter (``sslmode``,
``host=/socket/dir``, ``port``...) goes to libpq unchanged, so anything
PostgreSQL's own tools accept works here too.

The password is never part of what is shown, logged, exported or saved:
`TeamAddress.display` is the address without it, and that is what a store
reports as its location and what the window remembers. The password comes,
in this order, from the address itself, from what the user typed in this
session (`remember_password`), and otherwise from libpq: the ``PGPASSWORD``
environment variable or ``~/.pgpass``, as every PostgreSQL tool does.

Nothing here imports the driver: parsing an address costs nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ..errors import CatalogueError

log = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres")
#: The catalogue an address names when it has no ``?catalogue=``.
DEFAULT_CATALOGUE = "main"
CATALOGUE_PARAMETER = "catalogue"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

#: Passwords typed in this session, by the address without password (never written anywhere).
_session_passwords: dict[str, str] = {}
#: Where each team catalogue's folder is on this computer, by address (the window sets them from its settings).
_session_roots: dict[str, str] = {}


def is_team_address(text: object) -> bool:
    """Whether `text` names a team catalogue (a ``postgresql://`` or ``postgres://`` address)."""
    return isinstance(text, str) and text.split("://", 1)[0].lower() in SCHEMES and "://" in text


@dataclass(frozen=True)
class TeamAddress:
    """A parsed team-catalogue address.

    Attributes:
        user, host, port, database: as written (None where libpq's defaults apply).
        catalogue: the catalogue's name inside the database.
        password: from the address itself (None: from the session, PGPASSWORD or ~/.pgpass).
        options: the other query parameters, passed to libpq.
    """

    user: str | None
    host: str | None
    port: int | None
    database: str | None
    catalogue: str
    password: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "TeamAddress":
        """Read an address; a malformed one is refused in one sentence (never echoing its password)."""
        if not is_team_address(text):
            raise CatalogueError("A team catalogue address starts with postgresql://, e.g. postgresql://anna@server/designs.")
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError as exc:
            # urllib's own words quote the "port" it read, which is the password when the password holds a "/":
            # say what is wrong without them.
            what = "its port is not a number" if "port" in str(exc).lower() else "it cannot be read"
            raise CatalogueError(
                f"The team catalogue address is not valid: {what} (write @ : / ? # % in a password as %40 %3A %2F "
                "%3F %23 %25, or leave the password out and give it when asked)."
            ) from None
        options = []
        catalogue = DEFAULT_CATALOGUE
        password = unquote(parts.password) if parts.password is not None else None
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == CATALOGUE_PARAMETER:
                catalogue = value
            elif key == "password":  # libpq accepts it here too; it is kept out of the shown address all the same
                password = value
            else:
                options.append((key, value))
        if not _NAME.match(catalogue):
            raise CatalogueError(
                f"A team catalogue name must start with a letter and use only a-z, 0-9 and _ (up to 40): {catalogue!r} does not."
            )
        database = unquote(parts.path.lstrip("/")) or None
        return cls(
            user=unquote(parts.username) if parts.username else None,
            host=parts.hostname,
            port=port,
            database=database,
            catalogue=catalogue,
            password=password or None,
            options=tuple(options),
        )

    @property
    def display(self) -> str:
        """The address without its password, with the catalogue always named: shown, saved, logged."""
        return _build(self, self.catalogue, with_password=False)

    @property
    def server(self) -> str:
        """Where the catalogue is, for messages: "HOST" (or "this computer" for a local socket)."""
        host = self.host or dict(self.options).get("host") or ""
        return "this computer" if not host or host.startswith("/") or host == "localhost" else host

    def conninfo(self) -> str:
        """What libpq gets: the address without the catalogue parameter and without the password."""
        auth = quote(self.user, safe="") + "@" if self.user else ""
        host = self.host or ""
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        port = f":{self.port}" if self.port else ""
        query = f"?{urlencode(self.options)}" if self.options else ""
        return f"postgresql://{auth}{host}{port}/{quote(self.database or '', safe='')}{query}"

    def password_to_use(self) -> str | None:
        """The address's own password, else one typed in this session (None: let libpq find one)."""
        return self.password or _session_passwords.get(self.display)


def _build(address: TeamAddress, catalogue: str, *, with_password: bool) -> str:
    auth = ""
    if address.user:
        auth = quote(address.user, safe="")
        if with_password and address.password:
            auth += ":" + quote(address.password, safe="")
        auth += "@"
    host = address.host or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{address.port}" if address.port else ""
    # "/" stays as it is (a socket folder reads host=/var/run/postgresql, not host=%2Fvar%2Frun%2Fpostgresql):
    # a query value may hold it, and the address parses back the same.
    query = urlencode([*address.options, (CATALOGUE_PARAMETER, catalogue)], safe="/")
    return f"postgresql://{auth}{host}{port}/{quote(address.database or '', safe='')}?{query}"


def _without_password(text: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", text)


def display_address(text: str) -> str:
    """`text` without its password (as given when it cannot be parsed, with any password masked)."""
    try:
        return TeamAddress.parse(text).display
    except CatalogueError:
        return _without_password(text)


def remember_password(address: str, password: str) -> None:
    """Keep a typed password for this session only (in memory; never saved), for `address`."""
    _session_passwords[TeamAddress.parse(address).display] = password


def forget_password(address: str) -> None:
    _session_passwords.pop(display_address(address), None)


def catalogue_name(address: str) -> str:
    """The catalogue an address names (for titles: "swimwear")."""
    return TeamAddress.parse(address).catalogue


def remember_root(address: str, folder: str | None) -> None:
    """Where `address`'s shared folder is on this computer, for every catalogue opened in this process (None: forget)."""
    key = display_address(address)
    if folder:
        _session_roots[key] = str(folder)
    else:
        _session_roots.pop(key, None)


def session_root(address: str) -> str | None:
    """The folder `remember_root` gave for `address`, if any."""
    return _session_roots.get(display_address(address))
