"""The two catalogue stores side by side, for tests that must hold on both: a `store` fixture.

`store` is parametrised "sqlite" / "postgres": each test that takes it runs
once on a catalogue file and once on a team catalogue in a fresh database
of the session's embedded PostgreSQL server (tests/pg_server.py). A test
names its catalogue with `store.location(name)` and opens it with
`Catalogue.open(...)` / `open_or_create(...)` as the CLI and the window do;
the helpers look inside each store the way only a test may.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from pg_server import PgDatabase

STORES = ["sqlite", "postgres"]


class StoreUnderTest:
    """Where a test's catalogues live, and how to look inside them."""

    def __init__(self, kind: str, folder: Path, database: PgDatabase | None = None):
        self.kind = kind
        self.folder = folder
        self.database = database

    def __repr__(self) -> str:
        return self.kind

    @property
    def team(self) -> bool:
        return self.kind == "postgres"

    def location(self, name: str = "c") -> str:
        """A catalogue's name: a file in the test's folder, or a catalogue in the test's database."""
        if self.database is None:
            return str(self.folder / f"{name}.swimcat")
        return f"{self.database.url()}&catalogue={name}"

    def query(self, location: str, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of `sql` run inside the catalogue ("{s}." names its tables)."""
        if self.database is None:
            with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True, timeout=30)) as conn:
                return conn.execute(sql.replace("{s}.", ""), params).fetchall()
        name = location.rsplit("catalogue=", 1)[1]
        with self.database.connect() as conn:
            return conn.execute(sql.replace("{s}.", f"cat_{name}."), params).fetchall()

    def stored_paths(self, location: str) -> list[str]:
        """The paths of the catalogue's records, tombstones (files found gone, kept a while) left out."""
        return [r[0] for r in self.query(location, "SELECT path FROM {s}.images WHERE gone IS NULL ORDER BY path")]

    def check_intact(self, location: str) -> dict:
        """The invariants a killed or raced build must never break; returns the counts."""
        from swimsearch.catalogue import Catalogue

        Catalogue.open(location).close()
        images = self.query(location, "SELECT count(*), count(DISTINCT path) FROM {s}.images")[0]
        assert images[0] == images[1], "a path is stored twice"
        orphans = self.query(location, "SELECT count(*) FROM {s}.embeddings WHERE image_id NOT IN (SELECT id FROM {s}.images)")
        assert orphans[0][0] == 0
        embedded = {r[0] for r in self.query(location, "SELECT image_id FROM {s}.embeddings")}
        if self.database is None:
            from test_reliability import check_intact

            state = check_intact(Path(location))
            return {"images": images[0], "coded": state["coded"]}
        coded_list = [r[0] for r in self.query(location, "SELECT image_id FROM {s}.items")]
        generations = {r[0] for r in self.query(location, "SELECT DISTINCT fit FROM {s}.items")}
        current = self.query(location, "SELECT value FROM {s}.meta WHERE key = 'fit_generation'")[0][0]
        assert generations <= {int(current)}, "codes of two fits side by side"
        assert set(coded_list) <= embedded, "codes of images that are gone"
        return {"images": images[0], "coded": len(set(coded_list))}


@pytest.fixture(params=STORES)
def store(request, tmp_path) -> StoreUnderTest:
    """Each test runs on a SQLite catalogue file and on a PostgreSQL team catalogue."""
    if request.param == "sqlite":
        return StoreUnderTest("sqlite", tmp_path)
    database = request.getfixturevalue("pg_database")
    return StoreUnderTest("postgres", tmp_path, database)


def same_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
