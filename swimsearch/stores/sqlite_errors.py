"""SQLite's failures on a catalogue file, as one plain sentence each.

`describe_error` turns whatever SQLite (or the text it hands back) raises
into a `CatalogueError` a user can act on: read-only, busy, disk full, a
journal deleted under an update, a damaged file. Every store method passes
its failures through it (`sqlite_file.plain_errors`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import CatalogueBusy, CatalogueError
from .integrity import damaged

#: What reading a catalogue file may raise: SQLite's errors, and text in it that is not UTF-8.
SQLITE_ERRORS = (sqlite3.Error, UnicodeDecodeError)


def describe_error(exc: BaseException, path: Path) -> CatalogueError:
    """A plain CatalogueError for an SQLite error on the catalogue at `path`."""
    if isinstance(exc, UnicodeDecodeError):  # a damaged page, read as text
        return damaged(str(path), "it holds text that is not UTF-8")
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "attempt to write" in text:
        return CatalogueError(f"The catalogue {path} is read-only: it can be searched but not updated.")
    if "locked" in text or "busy" in text:
        return CatalogueBusy(f"The catalogue {path} is busy in another program; try again in a moment.")
    if "disk is full" in text or "database or disk is full" in text:
        return CatalogueError(f"The disk holding {path} is full: nothing more could be saved (what was saved before is kept).")
    wal = Path(f"{path}-wal")
    torn = getattr(exc, "sqlite_errorname", "") == "SQLITE_IOERR_SHORT_READ" and wal.exists()
    if "disk i/o error" in text and Path(f"{path}-shm").exists() and (torn or not wal.exists()):
        return CatalogueError(
            f"The journal file {wal} of the catalogue is missing or cut short: another program deleted or replaced "
            "it while the catalogue was open. Close every program using the catalogue, then open it again."
        )
    if "disk i/o error" in text:
        return CatalogueError(
            f"The disk reported an error while reading or writing {path} (is it full, or failing?). "
            "What was saved before is kept."
        )
    if "unable to open" in text:
        return CatalogueError(f"The catalogue {path} cannot be opened (missing folder or no permission).")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return damaged(str(path), str(exc))
    if "interrupted" in text:  # the time limit while opening (sqlite_checks.time_limit)
        return damaged(str(path), "reading it takes far too long")
    if "too big" in text or "could not decode" in text or "no such" in text or "circularly" in text:
        return damaged(str(path), str(exc))
    return CatalogueError(f"The catalogue {path} cannot be used: {exc}.")
