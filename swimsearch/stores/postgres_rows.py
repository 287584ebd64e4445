"""The rows of a team catalogue's images and embeddings: the statements, a batch written by a build, a copy in and out.

`write_images` is a build's batch: records upserted by path (a second
designer adding the same file updates the row, never doubles it) and their
embeddings; a file read again keeps its id and its code, marked ``recode``
(searchable by the old code until the index phase writes the new one), and
one that is unreadable now leaves search at once. Tombstones (``gone``) are
left out of every count, of search and of the fit, as in a catalogue file. `image_rows` and `stored_images` carry whole catalogues in and out,
ids and float16 embeddings unchanged, for `swimsearch copy`.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from . import pg_types
from .base import NewImage, StoredImage
from .sqlite_file import phash_to_sql

log = logging.getLogger(__name__)

_RECORD = "id, path, size, width, height, phash, error, mtime"

_ROWS = {
    "meta_all": "SELECT key, value FROM {s}.meta",
    "counts": "SELECT (SELECT count(*) FROM {s}.images WHERE gone IS NULL), "
              "(SELECT count(*) FROM {s}.embeddings e JOIN {s}.images i ON i.id = e.image_id WHERE i.gone IS NULL), "
              "(SELECT count(*) FROM {s}.images WHERE error IS NOT NULL AND gone IS NULL), (SELECT count(*) FROM {s}.items)",
    "sample_paths": "SELECT path FROM {s}.images ORDER BY id LIMIT %s",
    "unreadable": "SELECT path, error FROM {s}.images WHERE error IS NOT NULL AND gone IS NULL ORDER BY path",
    "records": f"SELECT {_RECORD} FROM {{s}}.images WHERE id = ANY(%s)",
    "record_by_path": f"SELECT {_RECORD}, fingerprint, gone FROM {{s}}.images WHERE path = %s",
    "embeddings_of": "SELECT image_id, vector FROM {s}.embeddings WHERE image_id = ANY(%s)",
    # One bytea of big-endian int8, as the searcher's "ids"
    "embedded_ids": "SELECT string_agg(int8send(e.image_id), ''::bytea ORDER BY e.image_id) FROM {s}.embeddings e "
                    "JOIN {s}.images i ON i.id = e.image_id WHERE i.gone IS NULL",
    "embeddings_after": "SELECT e.image_id, e.vector FROM {s}.embeddings e JOIN {s}.images i ON i.id = e.image_id "
                        "WHERE e.image_id > %s AND i.gone IS NULL ORDER BY e.image_id LIMIT %s",
    # Every (id, pHash) as one bytea of big-endian int8 pairs: a million rows one by one through the
    # driver cost seconds of the client's CPU before a window's first search (bench_team_window.py).
    "phashes": "SELECT string_agg(int8send(id) || int8send(phash), ''::bytea) FROM {s}.images WHERE phash IS NOT NULL",
    # what a person reads: not the bookkeeping rows of every batch of neighbour lists or of a copy (BOOKKEEPING)
    "changes": "SELECT at, app_user, db_user, action, detail FROM {s}.changes WHERE action NOT IN ('lists', 'import') "
               "ORDER BY id DESC LIMIT %s",
    "clear_images": "DELETE FROM {s}.images",
    "known": "SELECT id, path, size, mtime, fingerprint, retry, gone FROM {s}.images WHERE path >= %s AND path < %s",
    "tombstone": "UPDATE {s}.images SET gone = %s, recode = false, changed_at = now(), changed_by = swimsearch.app_user() "
                 "WHERE id = ANY(%s)",
    "restore": "UPDATE {s}.images SET path = %s, size = %s, mtime = %s, fingerprint = %s, gone = NULL, "
               "changed_at = now(), changed_by = swimsearch.app_user() WHERE id = %s",
    "flag_retry": "UPDATE {s}.images SET retry = true WHERE id = ANY(%s)",
    "mark_recode": "UPDATE {s}.images SET recode = true WHERE id = ANY(%s)",
    "codes_written": "UPDATE {s}.images SET recode = false WHERE recode AND id = ANY(%s)",
    "remove": "DELETE FROM {s}.images WHERE id = ANY(%s)",
    "fit_candidates": "SELECT i.id, i.label FROM {s}.images i JOIN {s}.embeddings e ON e.image_id = i.id "
                      "WHERE i.gone IS NULL ORDER BY i.path",
    "export_after": "SELECT i.id, i.path, i.size, i.mtime, i.width, i.height, i.phash, i.label, i.error, i.added, e.vector, "
                    "i.fingerprint, i.retry, i.gone, i.recode "
                    "FROM {s}.images i LEFT JOIN {s}.embeddings e ON e.image_id = i.id WHERE i.id > %s ORDER BY i.id LIMIT %s",
    "log": "INSERT INTO {s}.changes (action, detail) VALUES (%s, %s)",
    # Two designers adding one file: one row; the later reading wins and names its author.
    # A file read again keeps its id; a readable one keeps its code too, marked for recoding.
    "add_image": "INSERT INTO {s}.images (path, size, mtime, width, height, phash, label, error, added, fingerprint, retry) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (path) DO UPDATE SET "
                 "size = excluded.size, mtime = excluded.mtime, width = excluded.width, height = excluded.height, "
                 "phash = excluded.phash, label = excluded.label, error = excluded.error, added = excluded.added, "
                 "fingerprint = excluded.fingerprint, retry = excluded.retry, gone = NULL, "
                 "recode = excluded.error IS NULL, changed_at = now(), changed_by = swimsearch.app_user() RETURNING id",
    "add_embedding": "INSERT INTO {s}.embeddings (image_id, vector) VALUES (%s, %s) "
                     "ON CONFLICT (image_id) DO UPDATE SET vector = excluded.vector",
    "drop_embeddings": "DELETE FROM {s}.embeddings WHERE image_id = ANY(%s)",
    "drop_items": "DELETE FROM {s}.items WHERE image_id = ANY(%s)",
    "follow_ids": "SELECT setval(pg_get_serial_sequence('{s}.images', 'id'), greatest(max(id), 1)) FROM {s}.images",
}


def ROWS(schema: str) -> dict[str, str]:  # noqa: N802 - a table of statements, like postgres_index.SQL
    """The statements on images and embeddings, with the catalogue's schema filled in."""
    quoted = '"' + schema.replace('"', '""') + '"'
    return {key: text.replace("{s}", quoted) for key, text in _ROWS.items()}


def write_images(conn: Any, sql: dict[str, str], images: Sequence[NewImage]) -> list[int]:
    """One build batch (inside the caller's transaction); returns the image ids in the order given."""
    params = [
        (i.relpath, i.size, i.mtime, i.width, i.height, None if i.phash is None else phash_to_sql(i.phash), i.label, i.error,
         _now(), i.fingerprint, bool(i.retry))
        for i in images
    ]
    ids: list[int] = []
    with conn.cursor() as cur:
        cur.executemany(sql["add_image"], params, returning=True)
        while True:
            row = cur.fetchone()
            ids.append(int(row[0]))
            if not cur.nextset():
                break
        readable = [(image_id, pg_types.HalfVec(image.embedding)) for image_id, image in zip(ids, images) if image.embedding is not None]
        if readable:
            cur.executemany(sql["add_embedding"], readable)
    unreadable = [image_id for image_id, image in zip(ids, images) if image.embedding is None]
    if unreadable:  # a file that was readable and is not any more leaves search at once
        conn.execute(sql["drop_embeddings"], (unreadable,))
        conn.execute(sql["drop_items"], (unreadable,))
    return ids


def image_rows(conn: Any, schema: str, images: Sequence[StoredImage]) -> None:
    """Copy images in with their ids (and embeddings, float16 unchanged), inside the caller's transaction."""
    if not images:
        return
    quoted = '"' + schema + '"'
    with conn.cursor() as cur:
        with cur.copy(f"COPY {quoted}.images (id, path, size, mtime, width, height, phash, label, error, added, "
                      "fingerprint, retry, gone, recode) FROM STDIN") as copy:
            for i in images:
                phash = None if i.phash is None else phash_to_sql(i.phash)
                copy.write_row((i.image_id, i.relpath, i.size, i.mtime, i.width, i.height, phash, i.label, i.error, i.added,
                                i.fingerprint, bool(i.retry), i.gone, bool(i.recode)))
    embedded = [i for i in images if i.embedding is not None]
    if embedded:
        ids = np.array([i.image_id for i in embedded], dtype=np.int64)
        vectors = np.stack([np.asarray(i.embedding) for i in embedded])
        if vectors.dtype != np.float16:
            vectors = vectors.astype(np.float16)  # a catalogue from before float16 storage
        pg_types.copy_rows(conn, f"{schema}.embeddings", ["image_id", "vector"], [("int8", ids), ("halfvec", vectors)])
    conn.execute(ROWS(schema)["follow_ids"])  # new images continue after the copied ids


def stored_images(rows: Sequence[tuple]) -> list[StoredImage]:
    """Rows of `export_after` as plain records (embeddings as the float16 arrays they are stored as)."""
    return [
        StoredImage(
            image_id=row[0], relpath=row[1], size=row[2], mtime=row[3], width=row[4], height=row[5],
            phash=None if row[6] is None else row[6] % (1 << 64), label=row[7], error=row[8], added=row[9],
            embedding=None if row[10] is None else np.asarray(row[10], dtype=np.float16),
            fingerprint=row[11], retry=bool(row[12]), gone=row[13], recode=bool(row[14]),
        )
        for row in rows
    ]


def _now() -> float:
    import time

    return time.time()
