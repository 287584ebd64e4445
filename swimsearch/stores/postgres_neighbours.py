"""A team catalogue's neighbour lists (neighbours.py): one row per image, kept as a catalogue file keeps them.

Table ``neighbours`` (format 3, pg_schema.py): ``image_id`` (its record's id;
the row goes with the record), ``ids`` (k little-endian int64 image ids,
best first, -1 for none) and ``sims`` (their k float32 cosines, NaN for
none): the same bytes as the file's blobs, so a copy either way carries them
bit-identical. A list names other images by id and is made again when one of
them leaves (indexing.py), so the ids it names are not foreign keys.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np

from ..neighbours import NeighbourLists
from .integrity import damaged

log = logging.getLogger(__name__)

#: The most neighbours a list may hold (config.augment_k is 5), as in a catalogue file.
MAX_K = 64

#: "{s}" is the catalogue's quoted schema.
SQL = {
    "lists_all": "SELECT image_id, ids, sims FROM {s}.neighbours ORDER BY image_id",
    "lists_of": "SELECT image_id, ids, sims FROM {s}.neighbours WHERE image_id = ANY(%s) ORDER BY image_id",
    "lists_clear": "DELETE FROM {s}.neighbours",
    "lists_drop": "DELETE FROM {s}.neighbours WHERE image_id = ANY(%s)",
    # an image removed meanwhile by another user gets no list (its row would fail the foreign key)
    "lists_put": "INSERT INTO {s}.neighbours (image_id, ids, sims) SELECT %s, %s, %s "
                 "WHERE EXISTS (SELECT 1 FROM {s}.images m WHERE m.id = %s) "
                 "ON CONFLICT (image_id) DO UPDATE SET ids = excluded.ids, sims = excluded.sims",
    "lists_count": "SELECT count(*) FROM {s}.neighbours",
}


def statements(schema: str) -> dict[str, str]:
    quoted = '"' + schema.replace('"', '""') + '"'
    return {key: text.replace("{s}", quoted) for key, text in SQL.items()}


def read_lists(conn: Any, sql: dict[str, str], location: str, image_ids: Iterable[int] | None = None) -> NeighbourLists:
    """The lists of the given ids that have one (None: every list), checked as a file's are read."""
    with conn.cursor(binary=True) as cur:
        if image_ids is None:
            rows = cur.execute(sql["lists_all"]).fetchall()
        else:
            rows = cur.execute(sql["lists_of"], (sorted({int(i) for i in image_ids}),)).fetchall()
    return lists_from_rows(rows, location)


def lists_from_rows(rows: list[tuple[int, bytes, bytes]], location: str) -> NeighbourLists:
    """Rows (image id, ids blob, sims blob) in id order as a checked `NeighbourLists`."""
    if not rows:
        return NeighbourLists.empty(0)
    width = len(rows[0][1])
    if not 0 < width <= 8 * MAX_K or width % 8 or any(len(r[1]) != width or len(r[2]) * 2 != width for r in rows):
        raise damaged(location, "a neighbour list has an impossible length")
    k = width // 8
    lists = NeighbourLists(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.frombuffer(b"".join(bytes(r[1]) for r in rows), "<i8").reshape(len(rows), k).astype(np.int64),
        np.frombuffer(b"".join(bytes(r[2]) for r in rows), "<f4").reshape(len(rows), k).astype(np.float32),
    )
    named = lists.neighbours >= 0
    if (lists.neighbours < -1).any() or not np.isfinite(lists.similarities[named]).all() or (
        np.abs(lists.similarities[named]) > 1.001
    ).any():
        raise damaged(location, "a neighbour list holds impossible values")
    return lists


def write_lists(conn: Any, sql: dict[str, str], lists: NeighbourLists, *, replace: bool) -> None:
    """Keep lists, each replacing the image's own; `replace`: every other list is dropped first (in the caller's transaction)."""
    if replace:
        conn.execute(sql["lists_clear"])
    if not len(lists):
        return
    ids = np.ascontiguousarray(lists.neighbours, dtype="<i8")
    sims = np.ascontiguousarray(lists.similarities, dtype="<f4")
    with conn.cursor() as cur:
        cur.executemany(  # pipelined: one round trip for the lot
            sql["lists_put"],
            [(image_id, a.tobytes(), b.tobytes(), image_id) for image_id, a, b in zip(lists.ids.tolist(), ids, sims)],
        )
