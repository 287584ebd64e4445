"""The steps that bring a catalogue file from one schema version to the next (version 1 is `create_schema`).

`MIGRATIONS[v]` turns a version v-1 file into version v inside the opening
transaction; a new file is made at version 1 and taken through every step, so
new and migrated files hold the same tables. A step only adds: no data is
rewritten, and a file that is not upgraded (read-only) is refused before any step.
"""

from __future__ import annotations

import logging
from typing import Callable

import sqlite_utils

log = logging.getLogger(__name__)


def add_decisions(db: sqlite_utils.Database) -> None:
    """Version 2: people's verdicts on pairs of images (issue 12).

    Kept by the images' relative paths, not their ids: a rebuild with another
    model gives every image a new id, and a decision must outlive it. The pair
    is unordered (a < b); a later verdict on the pair replaces the earlier one.
    """
    db.execute(
        """
        CREATE TABLE decisions (
            a       TEXT NOT NULL,
            b       TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('same', 'different')),
            who     TEXT NOT NULL,
            at      REAL NOT NULL,
            PRIMARY KEY (a, b),
            CHECK (a < b)
        )
        """
    )
    db.execute("CREATE INDEX decisions_b ON decisions (b)")


#: version -> the step that migrates a catalogue from version-1 to version.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    2: add_decisions,
}

#: The newest format this SwimSearch reads and writes.
SCHEMA_VERSION = max(MIGRATIONS, default=1)
