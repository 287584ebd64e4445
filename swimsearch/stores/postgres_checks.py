"""`swimsearch info --check` on a team catalogue: every record, embedding and code read and checked.

The server keeps its own pages whole (and says so when it cannot), so a team
catalogue has no row checksums; what can still be wrong is what a client
wrote or an administrator changed by hand: a path leading outside the
catalogue's folder, an embedding (or regional vectors, a colour signature) of
the wrong length or with values that are not numbers, a code of another fit, a code for an image that is gone or has
no embedding. `full_check` reads everything once and raises the first such
damage as a `DamagedCatalogue`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .integrity import check_finite, check_fitted, damaged, safe_relpath

log = logging.getLogger(__name__)

PAGE = 20_000

#: "{s}" is the catalogue's quoted schema.
CHECKS = {
    "records_after": "SELECT id, path, size, mtime, width, height FROM {s}.images WHERE id > %s ORDER BY id LIMIT %s",
    "vectors_after": "SELECT image_id, vector FROM {s}.embeddings WHERE image_id > %s ORDER BY image_id LIMIT %s",
    "stray_items": "SELECT count(*) FROM {s}.items t JOIN {s}.images i ON i.id = t.image_id "
                   "WHERE i.gone IS NOT NULL OR NOT EXISTS (SELECT 1 FROM {s}.embeddings e WHERE e.image_id = t.image_id)",
    "other_fits": "SELECT count(*) FROM {s}.items WHERE fit <> %s",
    "detailed_unreadable": "SELECT (SELECT count(*) FROM {s}.regions t JOIN {s}.images i ON i.id = t.image_id WHERE i.error IS NOT NULL) "
                           "+ (SELECT count(*) FROM {s}.colours t JOIN {s}.images i ON i.id = t.image_id WHERE i.error IS NOT NULL)",
    "unreadable_embedded": "SELECT count(*) FROM {s}.images i JOIN {s}.embeddings e ON e.image_id = i.id WHERE i.error IS NOT NULL",
}


def full_check(store: Any) -> list[str]:
    """Everything of a team catalogue (a `PostgresReader`), read once; what was checked, in words."""
    conn, location = store._conn, store.location
    quoted = '"' + store.names.schema + '"'
    sql = {key: text.replace("{s}", quoted) for key, text in CHECKS.items()}
    done = []
    identity = store.identity()
    dim = identity.embedding_dim
    records = _pages(conn, sql["records_after"], lambda rows: _check_records(location, rows))
    done.append(f"{records:,} image records")
    embeddings = _pages(conn, sql["vectors_after"], lambda rows: _check_vectors(location, rows, dim), binary=True)
    done.append(f"{embeddings:,} embeddings")
    if conn.execute(sql["unreadable_embedded"]).fetchone()[0]:
        raise damaged(location, "an image recorded as unreadable has an embedding")
    fitted = store.fitted()
    if fitted is not None:
        check_fitted(location, fitted, dim)
        if conn.execute(sql["other_fits"], (store._index.generation(),)).fetchone()[0]:
            raise damaged(location, "some codes belong to another fit than the catalogue's")
        if conn.execute(sql["stray_items"]).fetchone()[0]:
            raise damaged(location, "some codes belong to images that are gone or have no embedding")
        snapshot = store.load_snapshot()
        done.append(f"the fitted index and {len(snapshot) if snapshot is not None else 0:,} codes")
    # the details (format 5): a basis that fits together, vectors and signatures of the right length, finite
    regions = sum(len(part.ids) for part in store.export_regions())
    colours = sum(len(part.ids) for part in store.export_colours())
    if conn.execute(sql["detailed_unreadable"]).fetchone()[0]:
        raise damaged(location, "an image recorded as unreadable has regional vectors or a colour signature")
    done.append(f"{regions:,} images' regional vectors and {colours:,} colour signatures")
    return done


def _pages(conn: Any, statement: str, check: Any, *, binary: bool = False) -> int:
    """Rows of a keyset-paged statement, each page checked; how many rows."""
    after, count = 0, 0
    while True:
        with conn.cursor(binary=binary) as cur:
            rows = cur.execute(statement, (after, PAGE)).fetchall()
        if not rows:
            return count
        check(rows)
        count += len(rows)
        after = rows[-1][0]


def _check_records(location: str, rows: list[tuple]) -> None:
    for image_id, path, size, mtime, width, height in rows:
        if not safe_relpath(path):
            raise damaged(location, f"the record of image {image_id} names a path outside the catalogue's folder")
        if size < 0 or mtime != mtime or any(v is not None and v < 0 for v in (width, height)):
            raise damaged(location, f"the record of image {image_id} holds impossible values")


def _check_vectors(location: str, rows: list[tuple], dim: int | None) -> None:
    vectors = [np.asarray(vector) for _, vector in rows]
    if dim is None or any(v.shape != (dim,) for v in vectors):
        raise damaged(location, "an embedding has the wrong length")
    check_finite(location, "embeddings", np.stack(vectors).astype(np.float32))
