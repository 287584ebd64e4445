"""The catalogue file's schema: version 1 as first made, each migration since, and the row checksums.

A new catalogue is made as version 1 and taken through every migration, so a
new file and an upgraded one are the same schema by construction (and the
validation in sqlite_checks.py can compare any file with a reference made
the same way).

Version 2 (issue 14):

* ``images``: ``fingerprint`` (size plus the first and last 4 KB hashed:
  a picture replaced by one of the same size and time is noticed),
  ``retry`` (1 when the file could not be read for a passing reason: read
  again at the next update), ``gone`` (when the file was found missing: the
  record and its embedding are kept a while so a file that comes back is not
  read again), ``recode`` (1 while its code was made from an older embedding:
  it stays searchable by the old code until the new one is written),
  ``vector_crc`` (checksum of its embedding) and ``crc`` (of the row).
* ``meta``, ``code_blocks``, ``arrays``, ``buckets``: a ``crc`` of each row.

Version 3 (issue 11): ``neighbours``, one row per image: its k nearest other
images (``ids``: k little-endian int64, -1 for none; ``sims``: their k
float32 cosines, NaN for none) and a ``crc`` of the row (`neighbour_crc`);
the lists and their use are in neighbours.py and stores/sqlite_neighbours.py.

Version 4 (issue 12): ``decisions``, people's verdicts ("same design",
"not similar") on pairs of images, with who and when and a ``crc``. A pair
is kept by the images' relative paths, not their ids: a rebuild with another
model gives every image a new id, and a person's decision must outlive it.

Version 5 (issue 12): the details a steered search needs, one row per
readable image, each with a ``crc`` of its image id and blob:

* ``regions``: the regional vectors of search by a detail (regions.py),
  with the basis they were made with in ``arrays`` (``regions.*``) and the
  ``regions`` metadata;
* ``colours``: the colour signature (colour.py).

A catalogue migrated from an older version has none yet: its next update reads
its pictures again for them (details.py).

Every checksum is verified when it is read (the fit, codes and buckets when
the catalogue opens; records and embeddings as they are used) and all of
them by `swimsearch info --check`.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any, Callable

import sqlite_utils

from ..failures import reason_is_transient
from .integrity import checksum, row_checksum

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5

#: The columns of `images` its row checksum covers, in order (`recode` and `added` are bookkeeping).
IMAGE_CRC_COLUMNS = (
    "id", "path", "size", "mtime", "width", "height", "phash", "label", "error", "fingerprint", "retry", "gone", "vector_crc",
)


def image_crc(row: tuple) -> int:
    """Checksum of an images row given in IMAGE_CRC_COLUMNS order (values as SQLite stores them)."""
    return row_checksum(tuple(row))


def meta_crc(key: str, value: str) -> int:
    return checksum(key.encode("utf-8", "backslashreplace"), b"\0", value.encode("utf-8", "backslashreplace"))


def block_crc(count: int, ids: bytes, codes: bytes, vectors: bytes) -> int:
    return checksum(str(count).encode(), ids, codes, vectors)


def array_crc(dtype: str, shape: str, data: bytes) -> int:
    return checksum(dtype.encode("utf-8", "backslashreplace"), b"\0", shape.encode("utf-8", "backslashreplace"), b"\0", data)


def bucket_crc(table_no: int, key: int, ids: bytes) -> int:
    return checksum(f"{table_no}:{key}".encode(), ids)


def vector_crc(blob: bytes) -> int:
    return checksum(blob)


def detail_crc(image_id: int, blob: bytes) -> int:
    """Checksum of a regions or colours row: the blob and the image it belongs to (a row moved to another id fails)."""
    return checksum(str(image_id).encode(), b"\0", blob)


def neighbour_crc(image_id: int, ids: bytes, sims: bytes) -> int:
    """Checksum of a neighbour list row: its image id as text, then its two blobs."""
    return checksum(str(int(image_id)).encode(), ids, sims)


def decision_crc(a: str, b: str, verdict: str, who: str, at: float) -> int:
    return row_checksum((a, b, verdict, who, at))


def create_schema_v1(db: sqlite_utils.Database) -> None:
    """Schema version 1, created with sqlite-utils."""
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("images").create(
        {
            "id": int,
            "path": str,
            "size": int,
            "mtime": float,
            "width": int,
            "height": int,
            "phash": int,
            "label": str,
            "error": str,
            "added": float,
        },
        pk="id",
        not_null={"path", "size", "mtime", "added"},
    )
    db.table("images").create_index(["path"], unique=True)
    db.table("embeddings").create({"image_id": int, "vector": bytes}, pk="image_id", not_null={"vector"})
    db.table("code_blocks").create(
        {"block_no": int, "count": int, "ids": bytes, "codes": bytes, "vectors": bytes},
        pk="block_no",
        not_null={"count", "ids", "codes", "vectors"},
    )
    db.table("arrays").create({"name": str, "dtype": str, "shape": str, "data": bytes}, pk="name", not_null={"dtype", "shape", "data"})
    db.table("buckets").create(
        {"table_no": int, "bucket_key": int, "ids": bytes}, pk=("table_no", "bucket_key"), not_null={"ids"}
    )


def _to_v2(db: sqlite_utils.Database) -> None:
    """Fingerprints, passing failures, tombstones, pending recodes and checksums (see the module's text)."""
    conn = db.conn
    for statement in (
        "ALTER TABLE images ADD COLUMN fingerprint INTEGER",
        "ALTER TABLE images ADD COLUMN retry INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE images ADD COLUMN gone FLOAT",
        "ALTER TABLE images ADD COLUMN recode INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE images ADD COLUMN vector_crc INTEGER",
        "ALTER TABLE images ADD COLUMN crc INTEGER",
        "ALTER TABLE meta ADD COLUMN crc INTEGER",
        "ALTER TABLE code_blocks ADD COLUMN crc INTEGER",
        "ALTER TABLE arrays ADD COLUMN crc INTEGER",
        "ALTER TABLE buckets ADD COLUMN crc INTEGER",
    ):
        conn.execute(statement)
    # Files version 1 gave up on for a passing reason ("does not exist" while a
    # folder was renamed, "permission denied") are read again at the next update.
    conn.executemany(
        "UPDATE images SET retry = 1 WHERE id = ?",
        [(i,) for i, error in conn.execute("SELECT id, error FROM images WHERE error IS NOT NULL") if reason_is_transient(error)],
    )
    conn.executemany(
        "UPDATE images SET vector_crc = ? WHERE id = ?",
        ((vector_crc(blob), image_id) for image_id, blob in conn.execute("SELECT image_id, vector FROM embeddings").fetchall()),
    )
    columns = ", ".join(IMAGE_CRC_COLUMNS)
    rows = conn.execute(f"SELECT {columns} FROM images").fetchall()  # noqa: S608 - fixed column names
    conn.executemany("UPDATE images SET crc = ? WHERE id = ?", ((image_crc(row), row[0]) for row in rows))
    conn.executemany(
        "UPDATE meta SET crc = ? WHERE key = ?",
        [(meta_crc(key, value), key) for key, value in conn.execute("SELECT key, value FROM meta")],
    )
    conn.executemany(
        "UPDATE code_blocks SET crc = ? WHERE block_no = ?",
        [(block_crc(n, i, c, v), b) for b, n, i, c, v in conn.execute("SELECT block_no, count, ids, codes, vectors FROM code_blocks")],
    )
    conn.executemany(
        "UPDATE arrays SET crc = ? WHERE name = ?",
        [(array_crc(d, s, data), name) for name, d, s, data in conn.execute("SELECT name, dtype, shape, data FROM arrays")],
    )
    conn.executemany(
        "UPDATE buckets SET crc = ? WHERE table_no = ? AND bucket_key = ?",
        [(bucket_crc(t, k, ids), t, k) for t, k, ids in conn.execute("SELECT table_no, bucket_key, ids FROM buckets")],
    )


def _to_v3(db: sqlite_utils.Database) -> None:
    """Each image's neighbour lists (issue 11); an older catalogue gains them at its next update."""
    db.table("neighbours").create(
        {"image_id": int, "ids": bytes, "sims": bytes, "crc": int}, pk="image_id", not_null={"ids", "sims", "crc"}
    )


def _decisions_table(db: sqlite_utils.Database) -> None:
    """People's decisions on pairs of images (see the module's text); the pair is unordered (a < b)."""
    db.execute(
        """
        CREATE TABLE decisions (
            a       TEXT NOT NULL,
            b       TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('same', 'different')),
            who     TEXT NOT NULL,
            at      REAL NOT NULL,
            crc     INTEGER,
            PRIMARY KEY (a, b),
            CHECK (a < b)
        )
        """
    )
    db.execute("CREATE INDEX decisions_b ON decisions (b)")


def _detail_tables(db: sqlite_utils.Database) -> None:
    """The detail tables of a steered search (see the module's text); empty until an update fills them."""
    for table, column in (("regions", "vectors"), ("colours", "signature")):
        db.table(table).create({"image_id": int, column: bytes, "crc": int}, pk="image_id", not_null={column, "crc"})


#: version -> function that migrates a catalogue from version-1 to version.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {2: _to_v2, 3: _to_v3, 4: _decisions_table, 5: _detail_tables}


def create_schema(db: sqlite_utils.Database) -> None:
    """The current schema: version 1 taken through every migration."""
    create_schema_v1(db)
    for step in range(2, SCHEMA_VERSION + 1):
        MIGRATIONS[step](db)


_REFERENCES: dict[int, dict[str, Any]] = {}


def reference_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """What the schema of a catalogue of `version` must be: its objects (type, name, table) and each table's columns.

    Made once per process the way every catalogue of that version was made, in memory.
    """
    if version not in _REFERENCES:
        conn = sqlite3.connect(":memory:")
        try:
            db = sqlite_utils.Database(conn, execute_plugins=False)
            create_schema_v1(db)
            for step in range(2, version + 1):
                MIGRATIONS[step](db)
            _REFERENCES[version] = describe_schema(conn)
        finally:
            conn.close()
    return _REFERENCES[version]


def describe_schema(conn: sqlite3.Connection) -> dict[str, Any]:
    """A file's schema objects and table columns, in a form two files can be compared by."""
    objects = sorted(
        (kind, name, table)
        for kind, name, table in conn.execute("SELECT type, name, tbl_name FROM sqlite_master")
        if name != "sqlite_stat1"
    )
    columns = {
        table: [tuple(row[1:]) for row in conn.execute("SELECT * FROM pragma_table_xinfo(?)", (table,))]
        for kind, table, _ in objects
        if kind == "table"
    }
    return {"objects": objects, "columns": columns}
