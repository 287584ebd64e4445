"""A team catalogue's decisions (issue 12) and subfolders: a person's "same design" or "not similar" on a pair.

`PgSteering` is a part of `PostgresStore` (a mixin over its connection and
statements). Table ``decisions`` (format 4, pg_schema.py) keeps each pair by
the images' relative paths, with the verdict, who (the person the app names:
``swimsearch.app_user()``, and the login: ``session_user``) and when, one
row per pair (a < b). Reads join the images held now (not tombstones), so a
decision shows only while both files are there; a decision goes with its
file when an update makes it a tombstone or removes it (same transaction),
and follows a file found moved. A viewer searches with the decisions but
cannot make one (refused in one sentence, as an update is).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..errors import CatalogueError
from .postgres_arrays import MARKS, Marks
from .verdicts import VERDICTS, Decision

log = logging.getLogger(__name__)

#: "{s}" is the catalogue's quoted schema.
SQL = {
    "decisions": "SELECT ia.id, ib.id, d.a, d.b, d.verdict, d.who, d.at, d.login FROM {s}.decisions d "
                 "JOIN {s}.images ia ON ia.path = d.a AND ia.gone IS NULL JOIN {s}.images ib ON ib.path = d.b AND ib.gone IS NULL "
                 "ORDER BY d.at, d.a, d.b",
    "live_paths": "SELECT id, path FROM {s}.images WHERE id = ANY(%s) AND gone IS NULL",
    "paths_of": "SELECT id, path FROM {s}.images WHERE id = ANY(%s)",
    "decide": "INSERT INTO {s}.decisions (a, b, verdict, at) VALUES (%s, %s, %s, extract(epoch FROM clock_timestamp())) "
              "ON CONFLICT (a, b) DO UPDATE SET verdict = excluded.verdict, at = excluded.at, "
              "who = swimsearch.app_user(), login = session_user RETURNING who, at, login",
    "undecide": "DELETE FROM {s}.decisions WHERE a = %s AND b = %s",
    "change_marks": MARKS,  # what moves at every committed change (postgres_arrays.MARKS)
    "import_decision": "INSERT INTO {s}.decisions (a, b, verdict, who, at) VALUES (%s, %s, %s, %s, %s) "
                       "ON CONFLICT (a, b) DO UPDATE SET verdict = excluded.verdict, who = excluded.who, at = excluded.at",
    "prune": "DELETE FROM {s}.decisions d WHERE NOT EXISTS (SELECT 1 FROM {s}.images i WHERE i.path = d.a AND i.gone IS NULL) "
             "OR NOT EXISTS (SELECT 1 FROM {s}.images i WHERE i.path = d.b AND i.gone IS NULL)",
    "forget": "DELETE FROM {s}.decisions WHERE a = ANY(%s) OR b = ANY(%s)",
    "decisions_on": "SELECT a, b, verdict, who, login, at FROM {s}.decisions WHERE a = ANY(%s) OR b = ANY(%s)",
    "put_decision": "INSERT INTO {s}.decisions (a, b, verdict, who, login, at) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (a, b) DO UPDATE SET verdict = excluded.verdict, who = excluded.who, login = excluded.login, "
                    "at = excluded.at",
    "folders": "SELECT regexp_replace(path, '[^/]*$', '') AS dir, count(*) FROM {s}.images "
               "WHERE error IS NULL AND gone IS NULL GROUP BY dir",
    "ids_all": "SELECT id FROM {s}.images WHERE gone IS NULL",
    "ids_in": "SELECT id FROM {s}.images WHERE path >= %s AND path < %s AND gone IS NULL",
}


def statements(schema: str) -> dict[str, str]:
    quoted = '"' + schema.replace('"', '""') + '"'
    return {key: text.replace("{s}", quoted) for key, text in SQL.items()}


def clean_folder(folder: str) -> str:
    """A subfolder as the catalogue writes it: relative, '/'-separated, no leading or trailing '/' ("" is the root)."""
    return "/".join(part for part in folder.replace("\\", "/").split("/") if part not in ("", "."))


class PgSteering:
    """The decisions and subfolder part of `PostgresStore` (reader and writer)."""

    _conn: Any
    _sql: dict[str, str]

    @property
    def readonly(self) -> bool:  # the store's (PostgresReader)
        raise NotImplementedError

    @property
    def readonly_reason(self) -> str:
        raise NotImplementedError

    def decisions(self) -> list[Decision]:
        return [_record(*row) for row in self._run(lambda: self._conn.execute(self._sql["decisions"]).fetchall())]

    def change_marks(self) -> Marks:
        """(the change counter of designs, lists and the fit; the decisions' count and sum of times): what
        another client's commit moves (other_writes.py asks it before each search, one round trip)."""
        row = self._run(lambda: self._conn.execute(self._sql["change_marks"]).fetchone())
        return (int(row[0]), int(row[1])), (int(row[2]), float(row[3]))

    def decide(self, a: int, b: int, verdict: str | None) -> Decision | None:
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r} (choose one of {', '.join(VERDICTS)})")
        if self.readonly:
            raise CatalogueError(self.readonly_reason)
        if a == b:
            raise CatalogueError("A design is always the same design as itself: choose another one to compare it with.")

        def write() -> Decision | None:
            paths = dict(self._conn.execute(self._sql["live_paths"], ([int(a), int(b)],)).fetchall())
            if len(paths) < 2:
                raise CatalogueError("This design is no longer in the catalogue (an update removed it), so no decision was saved.")
            first, second = sorted((paths[a], paths[b]))
            with getattr(self, "transaction")():
                if verdict is None:
                    self._conn.execute(self._sql["undecide"], (first, second))
                    return None
                who, at, login = self._conn.execute(self._sql["decide"], (first, second, verdict)).fetchone()
            log.info("%s (login %s) decided %s: %s / %s", who, login, verdict, first, second)
            return _record(a, b, paths[a], paths[b], verdict, who, at, login)

        return self._run(write)

    def prune_decisions(self) -> int:
        def prune() -> int:
            with getattr(self, "transaction")():
                return max(self._conn.execute(self._sql["prune"]).rowcount, 0)

        return self._run(prune)

    def import_decisions(self, decisions: Sequence[Decision]) -> None:
        rows = [(min(d.a_path, d.b_path), max(d.a_path, d.b_path), d.verdict, d.who, float(d.at)) for d in decisions]

        def write() -> None:
            with getattr(self, "transaction")(), self._conn.cursor() as cur:
                cur.executemany(self._sql["import_decision"], rows)

        self._run(write)

    def folder_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for folder, count in self._run(lambda: self._conn.execute(self._sql["folders"]).fetchall()):
            parts = folder.rstrip("/").split("/") if folder else []
            for depth in range(len(parts) + 1):
                counts["/".join(parts[:depth])] += count
        return dict(sorted(counts.items()))

    def ids_in_folders(self, folders: Sequence[str]) -> np.ndarray:
        found: list[int] = []
        for folder in {clean_folder(f) for f in folders}:
            if folder:
                rows = self._run(lambda: self._conn.execute(self._sql["ids_in"], (folder + "/", folder + "0")).fetchall())
            else:
                rows = self._run(lambda: self._conn.execute(self._sql["ids_all"]).fetchall())
            found.extend(r[0] for r in rows)
        return np.unique(np.asarray(found, dtype=np.int64))

    # --- kept in step with the images (inside the store's write transactions) ----------------

    def forget_decisions(self, image_ids: Sequence[int]) -> None:
        """Drop the decisions on these images (made tombstones or removed): a decision goes with its file."""
        paths = [p for _, p in self._conn.execute(self._sql["paths_of"], ([int(i) for i in image_ids],)).fetchall()]
        if paths:
            self._conn.execute(self._sql["forget"], (paths, paths))

    def move_decisions(self, moves: dict[str, str]) -> None:
        """Rewrite the decisions of files found moved (old relative path -> new): they follow the file."""
        moves = {old: new for old, new in moves.items() if old != new}
        if not moves:
            return
        olds = list(moves)
        rows = self._conn.execute(self._sql["decisions_on"], (olds, olds)).fetchall()
        self._conn.execute(self._sql["forget"], (olds, olds))
        with self._conn.cursor() as cur:
            for a, b, verdict, who, login, at in rows:
                first, second = sorted((moves.get(a, a), moves.get(b, b)))
                if first != second:
                    cur.execute(self._sql["put_decision"], (first, second, verdict, who, login, at))

    def _run(self, action: Any) -> Any:
        """`action`, with a driver failure as the store's one plain sentence."""
        try:
            return action()
        except CatalogueError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise getattr(self, "describe")(exc) from exc
            raise


def _record(a: int, b: int, a_path: str, b_path: str, verdict: str, who: str, at: float, login: str | None = None) -> Decision:
    """A decision with its pair in id order (a < b)."""
    if b < a:
        a, b, a_path, b_path = b, a, b_path, a_path
    return Decision(a=int(a), b=int(b), a_path=a_path, b_path=b_path, verdict=verdict, who=who, at=float(at), login=login)
