"""A seeded generator of crafted and damaged catalogues, and what SwimSearch must do with each.

A catalogue is a file a colleague sends. Each variant takes a real catalogue
(built from generated pictures) and changes it the way a hostile sender or a
failing disk would: ids of 2^31 to 2^62, dtypes that are objects or
sub-arrays, shapes of 10^12 elements, metadata of the wrong type, embeddings
of the wrong length, pHashes that are not numbers, doubled codes, NaN in the
fit, views, triggers and extra tables, paths that climb out of the folder,
buckets outside their table, and more. Every variant is made twice: as
changed (its checksums no longer match) and with every checksum recomputed
(a crafted file: only the validation of values can catch it).

Whatever the variant, opening, reading, searching, listing duplicates,
checking and updating the catalogue must give either one plain sentence
(a `CatalogueError`) or results identical to the untouched catalogue's:
never a traceback, a hang, an out-of-memory kill or a silently wrong result.

    python tests/crafted_catalogues.py OUT_DIR [--seed S] [--count N]

prints one JSON line per variant ({"name", "outcome", "message"}) and a summary;
`tests/test_crafted.py` runs it under a memory limit and a time limit.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import struct
import shutil
import sqlite3
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20261214

#: The sentences a refusal may be (besides "is damaged").
PLAIN_REFUSALS = ("is damaged", "not a SwimSearch catalogue", "made by a newer SwimSearch", "states no schema version")

Mutation = Callable[[sqlite3.Connection, random.Random], None]


@dataclass(frozen=True)
class Crafted:
    """One variant: a name, how it changes the file, whether every checksum is recomputed afterwards."""

    name: str
    mutate: Mutation
    resum: bool


def config():
    from swimsearch.config import EngineConfig

    # graph_from=20: the catalogue keeps a search graph too, so its stored bytes are crafted like the rest
    return EngineConfig(hash_dim=16, rerank_dim=16, bits=64, lsh_tables=4, lsh_key_bits=8, batch_size=8, exact_below=0,
                        graph_from=20)


def make_base(folder: Path, path: Path) -> None:
    """The untouched catalogue: 36 pictures in two subfolders, one unreadable file, two decisions, and their details."""
    from helpers import FakeMapEmbedder, make_pattern_images
    from swimsearch.catalogue import Catalogue

    make_pattern_images(folder / "summer", 18, family=3)
    make_pattern_images(folder / "winter", 18, start=100, family=3)
    (folder / "notes.png").write_text("not a picture")
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(FakeMapEmbedder(), config())
        ids = {r.relpath: r.image_id for r in catalogue.records(range(1, 64)).values()}
        catalogue.decide(ids["summer/img0000.png"], ids["summer/img0001.png"], "same")
        catalogue.decide(ids["summer/img0002.png"], ids["winter/img0100.png"], "different")


# --- recomputing checksums: what a crafted file does ------------------------------------------------


def resum(conn: sqlite3.Connection) -> None:
    """Recompute every checksum of the file from its (changed) content, as SwimSearch writes them."""
    from swimsearch.stores.sqlite_schema import (
        IMAGE_CRC_COLUMNS, array_crc, block_crc, bucket_crc, decision_crc, detail_crc, image_crc, meta_crc, neighbour_crc,
        vector_crc,
    )

    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def safe(sql, params=()):
        try:
            conn.execute(sql, params)
        except sqlite3.Error:
            pass

    def rows(sql):
        table = sql.split(" FROM ")[1].split()[0]
        if table not in tables:  # a view in its place may recurse for ever: the generator must not read it either
            return []
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.Error:
            return []

    if "embeddings" in tables and "images" in tables:
        for image_id, blob in rows("SELECT image_id, vector FROM embeddings"):
            safe("UPDATE images SET vector_crc = ? WHERE id = ?", (vector_crc(blob) if isinstance(blob, bytes) else None, image_id))
    for row in rows(f"SELECT {', '.join(IMAGE_CRC_COLUMNS)} FROM images"):
        safe("UPDATE images SET crc = ? WHERE id = ?", (image_crc(tuple(row)), row[0]))
    for key, value in rows("SELECT key, value FROM meta"):
        if isinstance(value, str):
            safe("UPDATE meta SET crc = ? WHERE key = ?", (meta_crc(key, value), key))
    for b, n, i, c, v in rows("SELECT block_no, count, ids, codes, vectors FROM code_blocks"):
        if all(isinstance(x, bytes) for x in (i, c, v)):
            safe("UPDATE code_blocks SET crc = ? WHERE block_no = ?", (block_crc(n, i, c, v), b))
    for name, d, s, data in rows("SELECT name, dtype, shape, data FROM arrays"):
        if all(isinstance(x, str) for x in (d, s)) and isinstance(data, bytes):
            safe("UPDATE arrays SET crc = ? WHERE name = ?", (array_crc(d, s, data), name))
    for t, k, ids in rows("SELECT table_no, bucket_key, ids FROM buckets"):
        if isinstance(ids, bytes) and isinstance(k, int):
            safe("UPDATE buckets SET crc = ? WHERE table_no = ? AND bucket_key = ?", (bucket_crc(t, k, ids), t, k))
    for table, column in (("regions", "vectors"), ("colours", "signature")):
        for image_id, blob in rows(f"SELECT image_id, {column} FROM {table}"):
            if isinstance(blob, bytes) and isinstance(image_id, int):
                safe(f"UPDATE {table} SET crc = ? WHERE image_id = ?", (detail_crc(image_id, blob), image_id))
    for a, b, verdict, who, at in rows("SELECT a, b, verdict, who, at FROM decisions"):
        safe("UPDATE decisions SET crc = ? WHERE a = ? AND b = ?", (decision_crc(a, b, verdict, who, at), a, b))
    for image_id, ids, sims in rows("SELECT image_id, ids, sims FROM neighbours"):
        if isinstance(ids, bytes) and isinstance(sims, bytes) and isinstance(image_id, int):
            safe("UPDATE neighbours SET crc = ? WHERE image_id = ?", (neighbour_crc(image_id, ids, sims), image_id))


# --- the mutations ------------------------------------------------------------------------------------


def _one(conn, sql: str, rng: random.Random):
    rows = conn.execute(sql).fetchall()
    return rng.choice(rows) if rows else None


def _set_meta(key: str, text: str) -> Mutation:
    return lambda conn, rng: conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text)
    )


def _block_ids(value_of: Callable[[random.Random, int], int]) -> Mutation:
    """Replace one id of one code block."""

    def mutate(conn, rng):
        import numpy as np

        block_no, ids = _one(conn, "SELECT block_no, ids FROM code_blocks", rng)
        array = np.frombuffer(ids, "<i8").copy()
        at = rng.randrange(len(array))
        array[at] = value_of(rng, int(array[at]))
        conn.execute("UPDATE code_blocks SET ids = ? WHERE block_no = ?", (array.astype("<i8").tobytes(), block_no))

    return mutate


def _bucket_ids(value_of: Callable[[random.Random], int]) -> Mutation:
    def mutate(conn, rng):
        import numpy as np

        t, k, ids = _one(conn, "SELECT table_no, bucket_key, ids FROM buckets", rng)
        array = np.frombuffer(ids, "<i8").copy()
        array[rng.randrange(len(array))] = value_of(rng)
        conn.execute("UPDATE buckets SET ids = ? WHERE table_no = ? AND bucket_key = ?", (array.astype("<i8").tobytes(), t, k))

    return mutate


def _array(name_of: Callable[[random.Random], str], change: Callable[[sqlite3.Connection, str, random.Random], None]) -> Mutation:
    return lambda conn, rng: change(conn, name_of(rng), rng)


def _array_values(value: float) -> Callable[[sqlite3.Connection, str, random.Random], None]:
    def change(conn, name, rng):
        import numpy as np

        dtype, data = conn.execute("SELECT dtype, data FROM arrays WHERE name = ?", (name,)).fetchone()
        array = np.frombuffer(data, dtype).copy()
        if array.dtype.kind != "f":
            array = array.astype("<f4")
            dtype = "<f4"
        array[rng.randrange(len(array))] = value
        conn.execute("UPDATE arrays SET dtype = ?, data = ? WHERE name = ?", (dtype, array.tobytes(), name))

    return change


def _image_column(column: str, values: list) -> Mutation:
    def mutate(conn, rng):
        (image_id,) = _one(conn, "SELECT id FROM images WHERE error IS NULL", rng)
        conn.execute(f"UPDATE images SET {column} = ? WHERE id = ?", (rng.choice(values), image_id))  # noqa: S608

    return mutate


def _embedding_blob(change: Callable[[bytes, random.Random], bytes]) -> Mutation:
    def mutate(conn, rng):
        image_id, blob = _one(conn, "SELECT image_id, vector FROM embeddings", rng)
        conn.execute("UPDATE embeddings SET vector = ? WHERE image_id = ?", (change(blob, rng), image_id))

    return mutate


def _detail_blob(table: str, change: Callable[[bytes, random.Random], object]) -> Mutation:
    """Change one image's regional vectors or colour signature."""
    column = {"regions": "vectors", "colours": "signature"}[table]

    def mutate(conn, rng):
        image_id, blob = _one(conn, f"SELECT image_id, {column} FROM {table}", rng)
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE image_id = ?", (change(blob, rng), image_id))  # noqa: S608

    return mutate


def _nan_regions(blob: bytes, rng: random.Random) -> bytes:
    import numpy as np

    array = np.frombuffer(blob, "<f2").copy()
    array[rng.randrange(len(array))] = rng.choice([math.nan, math.inf, -math.inf])
    return array.tobytes()


def _nan_embedding(blob: bytes, rng: random.Random) -> bytes:
    import numpy as np

    array = np.frombuffer(blob, "<f2").copy()
    array[rng.randrange(len(array))] = rng.choice([np.nan, np.inf, -np.inf])
    return array.tobytes()


def _neighbour_ids(value_of: Callable[[random.Random, int], int]) -> Mutation:
    """One named neighbour of one image's list changed to `value_of(rng, old)`."""
    def mutate(conn, rng):
        image_id, blob = _one(conn, "SELECT image_id, ids FROM neighbours", rng)
        ids = list(struct.unpack(f"<{len(blob) // 8}q", blob))
        at = rng.randrange(len(ids))
        ids[at] = value_of(rng, ids[at])
        conn.execute("UPDATE neighbours SET ids = ? WHERE image_id = ?", (struct.pack(f"<{len(ids)}q", *ids), image_id))
    return mutate


def _neighbour_sims(value: float) -> Mutation:
    def mutate(conn, rng):
        image_id, blob = _one(conn, "SELECT image_id, sims FROM neighbours", rng)
        sims = list(struct.unpack(f"<{len(blob) // 4}f", blob))
        sims[rng.randrange(len(sims))] = value
        conn.execute("UPDATE neighbours SET sims = ? WHERE image_id = ?", (struct.pack(f"<{len(sims)}f", *sims), image_id))
    return mutate


def _sql(*statements: str) -> Mutation:
    def mutate(conn, rng):
        for statement in statements:
            conn.execute(statement)

    return mutate


def _decision_column(conn: sqlite3.Connection, rng: random.Random, column: str, values: list) -> None:
    conn.execute("PRAGMA ignore_check_constraints = ON")  # as a crafting tool would, around the table's CHECKs
    try:
        conn.execute(f"UPDATE decisions SET {column} = ? WHERE rowid = (SELECT min(rowid) FROM decisions)", (rng.choice(values),))
    except sqlite3.IntegrityError:  # NOT NULL holds even so: store an empty text instead
        conn.execute(f"UPDATE decisions SET {column} = '' WHERE rowid = (SELECT min(rowid) FROM decisions)")
    finally:
        conn.execute("PRAGMA ignore_check_constraints = OFF")


def _block_column(column: str, change: Callable[[object, random.Random], object]) -> Mutation:
    def mutate(conn, rng):
        block_no, value = _one(conn, f"SELECT block_no, {column} FROM code_blocks", rng)  # noqa: S608
        conn.execute(f"UPDATE code_blocks SET {column} = ? WHERE block_no = ?", (change(value, rng), block_no))  # noqa: S608

    return mutate


def _nan_vectors(blob, rng):
    import numpy as np

    array = np.frombuffer(blob, "<f2").copy()
    array[rng.randrange(len(array))] = np.nan
    return array.tobytes()


def _duplicate_block(conn, rng):
    """The same image twice: the red team's query came back 5 times."""
    import numpy as np

    block_no, count, ids, codes, vectors = _one(conn, "SELECT block_no, count, ids, codes, vectors FROM code_blocks", rng)
    array = np.frombuffer(ids, "<i8").copy()
    a, b = rng.sample(range(len(array)), 2)
    array[b] = array[a]
    conn.execute("UPDATE code_blocks SET ids = ? WHERE block_no = ?", (array.tobytes(), block_no))


def _copy_block(conn, rng):
    """A whole block stored twice."""
    row = conn.execute("SELECT count, ids, codes, vectors FROM code_blocks LIMIT 1").fetchone()
    number = conn.execute("SELECT max(block_no) + 1 FROM code_blocks").fetchone()[0]
    conn.execute("INSERT INTO code_blocks(block_no, count, ids, codes, vectors) VALUES (?, ?, ?, ?, ?)", (number, *row))


def _graph_bytes(change: Callable[[bytearray, dict, random.Random], None]) -> Mutation:
    """Change the stored graph's serialised bytes (one part at these sizes), given where its fields are."""

    def mutate(conn, rng):
        data = bytearray(conn.execute("SELECT data FROM arrays WHERE name = 'graph.part.00000'").fetchone()[0])
        change(data, _graph_layout(bytes(data)), rng)
        conn.execute("UPDATE arrays SET data = ?, shape = ? WHERE name = 'graph.part.00000'",
                     (bytes(data), json.dumps([len(data)])))

    return mutate


def _graph_layout(data: bytes) -> dict:
    """Offsets of the fields of a serialised HNSW16,SQ8 index (see swimsearch/graph_check.py)."""
    import struct

    at, out = 4, {}
    out["ntotal"] = at + 4
    at += 33  # header: d, ntotal, two unused, is_trained, metric
    for name, size in (("probas", 8), ("cum", 4), ("levels", 4), ("offsets", 8), ("neighbours", 4)):
        (n,) = struct.unpack_from("<q", data, at)
        out[name] = (at + 8, n)  # where the values start, how many
        at += 8 + n * size
    out["entry"] = at
    return out


def _graph_neighbour(values: list[int]) -> Callable[[bytearray, dict, random.Random], None]:
    def change(data, layout, rng):
        import struct

        start, n = layout["neighbours"]
        struct.pack_into("<i", data, start + 4 * rng.randrange(n), rng.choice(values))

    return change


def _graph_field(name: str, fmt: str, values: list[int]) -> Callable[[bytearray, dict, random.Random], None]:
    def change(data, layout, rng):
        import struct

        at = layout[name] if isinstance(layout[name], int) else layout[name][0] + rng.randrange(layout[name][1]) * struct.calcsize(fmt)
        struct.pack_into(fmt, data, at, rng.choice(values))

    return change


def _graph_size(name: str, values: list[int]) -> Callable[[bytearray, dict, random.Random], None]:
    """The stated length of one of the graph's vectors."""

    def change(data, layout, rng):
        import struct

        struct.pack_into("<q", data, layout[name][0] - 8, rng.choice(values))

    return change


def _graph_ids(change: Callable[["object", random.Random], "object"]) -> Mutation:
    def mutate(conn, rng):
        import numpy as np

        ids = np.frombuffer(conn.execute("SELECT data FROM arrays WHERE name = 'graph.ids'").fetchone()[0], "<i8").copy()
        ids = np.asarray(change(ids, rng), "<i8")
        conn.execute("UPDATE arrays SET data = ?, shape = ? WHERE name = 'graph.ids'", (ids.tobytes(), json.dumps([len(ids)])))

    return mutate


def _recursive_view(name: str) -> Mutation:
    """A view named like a table, recursing for ever: every query on it would hang."""
    columns = {
        "images": "x AS id, 'a.png' AS path, 1 AS size, 1.0 AS mtime, 1 AS width, 1 AS height, 1 AS phash, NULL AS label, "
                  "NULL AS error, 1.0 AS added, NULL AS fingerprint, 0 AS retry, NULL AS gone, 0 AS recode, "
                  "NULL AS vector_crc, NULL AS crc",
        "meta": "'k' || x AS key, '1' AS value, NULL AS crc",
        "embeddings": "x AS image_id, zeroblob(10) AS vector",
    }[name]
    return _sql(
        f"DROP TABLE {name}",
        f"CREATE VIEW {name} AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT {columns} FROM r",
    )


def _paths() -> list[str]:
    return [
        "../outside/secret.jpg", "../../etc/passwd", "/etc/passwd", "summer/../../secret.jpg", "summer/./a.png",
        "C:\\Windows\\win.ini", "\\\\server\\share\\x.jpg", "", "a\0b.png", "summer//x.png", "..", ".",
        "x" * 5000,
    ]


def mutations() -> list[tuple[str, Mutation]]:
    """Every kind of change, by name (the generator picks seeded values for each)."""
    huge = [2**31, 2**31 + 7, 2**40, 2**62, 2**63 - 1, -1, -(2**63), 0]
    out: list[tuple[str, Mutation]] = [
        # ids that would allocate the machine away, or point nowhere
        ("code id huge or negative", _block_ids(lambda rng, old: rng.choice(huge))),
        ("code id of no image", _block_ids(lambda rng, old: old + rng.randint(1000, 10**6))),
        ("code id doubled", _duplicate_block),
        ("code block doubled", _copy_block),
        ("bucket id huge", _bucket_ids(lambda rng: rng.choice(huge))),
        ("image id huge", _image_column("id", [2**40, 2**62, 2**63 - 1])),
        # arrays: dtypes, shapes, values
        ("array dtype object", _array(lambda rng: rng.choice(ARRAYS), lambda c, n, rng: c.execute(
            "UPDATE arrays SET dtype = ? WHERE name = ?", (rng.choice(["|O", "O", "<U10", "V8", "<c16", "(100000,)<f4",
                                                                      "[('a', '<f4')]", "float", "", "<f4<f4"]), n)))),
        ("array shape huge", _array(lambda rng: rng.choice(ARRAYS), lambda c, n, rng: c.execute(
            "UPDATE arrays SET shape = ? WHERE name = ?", (rng.choice(["[1000000000000]", "[1000000, 1000000]",
                                                                      "[-1]", "[2, -3]", "[[1]]", '"x"', "{",
                                                                      "[1e400]", "[1.5]", "[true]", "null"]), n)))),
        ("array data short", _array(lambda rng: rng.choice(ARRAYS), lambda c, n, rng: c.execute(
            "UPDATE arrays SET data = substr(data, 1, ?) WHERE name = ?", (rng.randint(0, 16), n)))),
        ("array missing", _array(lambda rng: rng.choice(ARRAYS), lambda c, n, rng: c.execute(
            "DELETE FROM arrays WHERE name = ?", (n,)))),
        ("fit mean NaN", _array(lambda rng: "hash.mean", _array_values(math.nan))),
        ("fit weights inf", _array(lambda rng: rng.choice(["hash.weights", "rerank.basis", "spheres.radii"]),
                                   _array_values(math.inf))),
        ("fit positions outside the code", _array(lambda rng: "lsh.positions", _array_values(5000.0))),
        # metadata
        ("fitted not a fit", _set_meta("fitted", "PLACEHOLDER")),
        ("root not JSON or a path", _set_meta("root", "PLACEHOLDER")),
        ("embedding dtype hostile", _set_meta("embedding_dtype", "PLACEHOLDER")),
        ("embedding dim wrong", _set_meta("embedding_dim", "PLACEHOLDER")),
        ("schema version wrong", _set_meta("schema_version", "PLACEHOLDER")),
        ("model sha wrong", _set_meta("model_sha256", "PLACEHOLDER")),
        ("meta not JSON", lambda conn, rng: conn.execute(
            "UPDATE meta SET value = ? WHERE key = ?", (rng.choice(["{", "[1,", "nan", "\x00", "'x'"]),
                                                         rng.choice(["root", "fitted", "embedding_dim", "model_name"])))),
        # records
        ("path climbs out", _image_column("path", _paths())),
        ("phash not a number", _image_column("phash", ["abc", 1.5, b"\x00" * 8, "1e400"])),
        ("size or time wrong", lambda conn, rng: rng.choice([
            _image_column("size", ["big", -5, b"x", 1.5]),
            _image_column("mtime", ["big", b"x"]),
            _image_column(rng.choice(["width", "height"]), ["big", -5, 2**40, 1.5, b"x"]),
        ])(conn, rng)),
        ("retry or gone wrong", lambda conn, rng: rng.choice([
            _image_column("retry", [7, -1, "x", b"y", 0.5]), _image_column("gone", ["x", b"y"]),
        ])(conn, rng)),
        ("error not text", _image_column("error", [b"\xff\xfe", 5])),
        # embeddings
        ("embedding wrong length", _embedding_blob(lambda blob, rng: blob[: rng.randrange(len(blob))])),
        ("embedding too long", _embedding_blob(lambda blob, rng: blob + bytes(rng.randint(1, 4000)))),
        ("embedding NaN", _embedding_blob(_nan_embedding)),
        ("embedding not a blob", _embedding_blob(lambda blob, rng: rng.choice(["text", 5, 2.5]))),
        # code blocks and buckets
        ("block count wrong", _block_column("count", lambda v, rng: rng.choice([v + 1, v * 1000, -1, 2**62, "x"]))),
        ("block codes cut", _block_column("codes", lambda v, rng: v[: rng.randrange(len(v))])),
        ("block vectors NaN", _block_column("vectors", _nan_vectors)),
        ("block ids cut", _block_column("ids", lambda v, rng: v[:-rng.randint(1, 7)])),
        ("bucket key outside its table", lambda conn, rng: conn.execute(
            "UPDATE buckets SET bucket_key = ? WHERE rowid = (SELECT rowid FROM buckets ORDER BY random() LIMIT 1)",
            (rng.choice([2**20, 2**40, -3]),))),
        ("bucket ids cut", lambda conn, rng: conn.execute(
            "UPDATE buckets SET ids = substr(ids, 1, 5) WHERE rowid = (SELECT rowid FROM buckets ORDER BY random() LIMIT 1)")),
        # decisions (verdicts on pairs of designs): values SQLite's checks would refuse, a name a page long
        ("decision hostile", lambda conn, rng: _decision_column(conn, rng, *rng.choice([
            ("verdict", ["maybe", 1, b"same", None]), ("who", ["x" * 100_000, b"\xff"]), ("at", ["soon", b"x", 1e400]),
        ]))),
        # neighbour lists (issue 11): every id they name must be an image, every cosine a cosine
        ("neighbour id of no image", _neighbour_ids(lambda rng, old: old + rng.randint(1000, 10**6))),
        ("neighbour id huge or negative", _neighbour_ids(lambda rng, old: rng.choice(huge))),
        ("neighbour list of no image", lambda conn, rng: conn.execute(
            "UPDATE neighbours SET image_id = image_id + ? WHERE image_id = (SELECT max(image_id) FROM neighbours)",
            (rng.randint(1000, 10**6),))),
        ("neighbour cosine NaN or huge", lambda conn, rng: _neighbour_sims(rng.choice([math.nan, math.inf, 1e30, -7.0]))(conn, rng)),
        ("neighbour list cut", lambda conn, rng: conn.execute(
            "UPDATE neighbours SET ids = substr(ids, 1, ?) WHERE image_id = (SELECT min(image_id) FROM neighbours)",
            (rng.randint(0, 15),))),
        # the search graph (FAISS bytes): every size and neighbour checked before FAISS reads them
        ("graph neighbour out of range", _graph_bytes(_graph_neighbour([36, 37, 1000, 2**31 - 1, -2, -(2**31)]))),
        ("graph node count wrong", _graph_bytes(_graph_field("ntotal", "<q", [0, 35, 37, 2**40, -1]))),
        ("graph vector size huge", lambda conn, rng: _graph_bytes(_graph_size(
            rng.choice(["probas", "cum", "levels", "offsets", "neighbours"]), [2**20, 2**39, 2**62, -1, 0]))(conn, rng)),
        ("graph level wrong", _graph_bytes(_graph_field("levels", "<i", [0, -1, 9, 2**31 - 1]))),
        ("graph offset wrong", _graph_bytes(_graph_field("offsets", "<Q", [1, 2**40, 2**63]))),
        ("graph entry point wrong", _graph_bytes(_graph_field("entry", "<i", [36, -1, 2**31 - 1]))),
        ("graph bytes cut", lambda conn, rng: conn.execute(
            "UPDATE arrays SET data = substr(data, 1, ?), shape = ? WHERE name = 'graph.part.00000'",
            (n := rng.randint(1, 4000), json.dumps([n])))),
        ("graph part missing", _sql("DELETE FROM arrays WHERE name = 'graph.part.00000'")),
        ("graph ids wrong", lambda conn, rng: _graph_ids(rng.choice([
            lambda ids, r: ids[:-1], lambda ids, r: list(ids) + [5], lambda ids, r: [-1] + list(ids[1:]), lambda ids, r: [],
        ]))(conn, rng)),
        # the schema itself
        ("recursive view", lambda conn, rng: _recursive_view(rng.choice(["images", "meta", "embeddings"]))(conn, rng)),
        ("trigger", _sql("CREATE TRIGGER evil AFTER INSERT ON images BEGIN DELETE FROM embeddings; END")),
        ("extra table", _sql("CREATE TABLE evil(x)")),
        ("extra index", _sql("CREATE INDEX evil ON images(length(path))")),
        ("virtual table", _sql("CREATE VIRTUAL TABLE evil USING fts5(x)")),
        ("column added", _sql("ALTER TABLE images ADD COLUMN evil")),
        ("generated column", _sql("ALTER TABLE images ADD COLUMN evil AS (length(path)) VIRTUAL")),
        ("column dropped", _sql("DROP INDEX idx_images_path", "ALTER TABLE images DROP COLUMN label")),
        ("table missing", lambda conn, rng: conn.execute(
            f"DROP TABLE {rng.choice(['buckets', 'code_blocks', 'arrays', 'regions', 'colours'])}")),
        # details of a steered search (issue 12): regional vectors, colour signatures, the region basis
        ("regional vectors wrong length", _detail_blob("regions", lambda blob, rng: rng.choice(
            [blob[: rng.randrange(len(blob))], blob + bytes(rng.randint(1, 5000)), "text", 7]))),
        ("regional vectors NaN", _detail_blob("regions", _nan_regions)),
        ("colour signature wrong length", _detail_blob("colours", lambda blob, rng: rng.choice(
            [blob[: rng.randrange(len(blob))], blob + bytes(rng.randint(1, 500)), "text", 7]))),
        ("region windows outside the grid", _array(lambda rng: "regions.windows", _array_values(99.0))),
        ("region basis not finite", _array(lambda rng: rng.choice(["regions.mean", "regions.basis"]),
                                           _array_values(math.inf))),
        ("region description wrong", _set_meta("regions", "PLACEHOLDER")),
        ("index missing", _sql("DROP INDEX idx_images_path")),
    ]
    return out


ARRAYS = ("hash.mean", "hash.weights", "hash.bias", "spheres.pivots", "spheres.radii", "rerank.basis", "lsh.positions",
          "regions.windows", "regions.mean", "regions.basis")

#: Values a metadata key is set to ("PLACEHOLDER" above), as JSON text.
META_VALUES = {
    "fitted": ['"yes"', "5", "[]", '{"variant": 1, "count": 3}', '{"variant": "pca"}', '{"variant": "pca", "count": -4}',
               '{"variant": "pca", "count": 3, "settings": {"bits": "many"}}', '{"variant": "pca", "count": 3, "settings": 7}'],
    "root": ["5", "null", "[]", '""', '{"a": 1}', "true"],
    "embedding_dtype": ['"|O"', '"(1000000,)<f4"', '"<U10"', '"V8"', '"<c16"', '"garbage"', "5", '"<f8"', '"<i8"'],
    "embedding_dim": ["0", "-5", "1000000000", '"96"', "1.5", "null"],
    "schema_version": ['"2"', "0", "-1", "1.5", "true", "null", "99"],
    "model_sha256": ['"short"', "5", '"' + "g" * 64 + '"'],
    "regions": ['"yes"', "5", "[]", '{"grid": 7}', '{"grid": 1000, "regions": 30, "dim": 96, "name": "x"}',
                '{"grid": 7, "regions": 31, "dim": 96, "name": "x"}', '{"grid": 7, "regions": 30, "dim": "96", "name": "x"}',
                '{"grid": 7, "regions": 30, "dim": 95, "name": "x"}', '{"grid": 7, "regions": 30, "dim": 96, "name": 5}'],
}


def variants(seed: int = SEED, count: int | None = None) -> list[Crafted]:
    """Seeded variants: every mutation at least twice each way (as changed, and with checksums recomputed)."""
    rng = random.Random(seed)
    out = []
    kinds = mutations()
    rounds = 3
    for round_no in range(rounds):
        for name, mutate in kinds:
            for resummed in (False, True):
                out.append(Crafted(f"{name} #{round_no}{' (checksums recomputed)' if resummed else ''}", mutate, resummed))
    rng.shuffle(out)
    return out[:count] if count else out


def craft(base: Path, target: Path, variant: Crafted, seed: int) -> None:
    """Copy the base catalogue to `target` and apply the variant (seeded)."""
    shutil.copy(base, target)
    rng = random.Random(f"{seed}:{variant.name}")
    with closing(sqlite3.connect(target, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        meta_key = _meta_key(variant.mutate)
        if meta_key is not None:
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (rng.choice(META_VALUES[meta_key]), meta_key))
        else:
            variant.mutate(conn, rng)
        if variant.resum:
            resum(conn)
        conn.execute("COMMIT")


def _meta_key(mutate: Mutation) -> str | None:
    """The metadata key a `_set_meta(key, "PLACEHOLDER")` mutation changes."""
    closure = getattr(mutate, "__closure__", None) or ()
    values = [cell.cell_contents for cell in closure]
    if "PLACEHOLDER" in values:
        return next(v for v in values if isinstance(v, str) and v in META_VALUES)
    return None


# --- exercising a catalogue ---------------------------------------------------------------------------


def exercise(path: Path, query: Path) -> dict:
    """Everything a user does with a catalogue; its results, or the one sentence it was refused with."""
    from helpers import FakeMapEmbedder as FakeEmbedder
    from swimsearch.catalogue import Catalogue
    from swimsearch.colour import ColourMix
    from swimsearch.regions import Box
    from swimsearch.duplicates import find_duplicate_groups
    from swimsearch.errors import CatalogueError
    from swimsearch.search import SearchEngine

    seen: dict = {}
    try:
        with Catalogue.open(path) as catalogue:
            seen["info"] = {k: v for k, v in catalogue.info().items() if k not in ("catalogue", "fitted")}
            seen["unreadable"] = catalogue.unreadable()
            seen["decisions"] = [(d.a_path, d.b_path, d.verdict, d.who) for d in catalogue.decisions()]
            engine = SearchEngine(catalogue, FakeEmbedder(), config())
            ids = engine.searchable_ids()
            seen["ids"] = ids.tolist()
            seen["records"] = sorted((r.relpath, r.phash, r.width, r.size) for r in catalogue.records(ids.tolist()).values())
            seen["search"] = [
                [(m.relpath, round(m.score, 5), m.duplicate) for m in engine.search_id(int(i), top_n=8).matches]
                for i in ids[:: max(1, len(ids) // 6)]
            ]
            seen["query"] = [(m.relpath, round(m.score, 5)) for m in engine.search(query, top_n=8).matches]
            seen["details"] = catalogue.detail_counts()
            seen["detail"] = [(m.relpath, round(m.score, 4)) for m in engine.search_detail(query, Box(0.2, 0.2, 0.5, 0.5), top_n=8).matches]
            seen["colour"] = [(m.relpath, round(m.score, 5)) for m in engine.search(query, top_n=8, colour=ColourMix(1.0)).matches]
            seen["duplicates"] = [sorted(g.paths) for g in find_duplicate_groups(engine)]
            seen["check"] = len(catalogue.store.check())
            report = catalogue.update(FakeEmbedder(), config())
            seen["update"] = (report.added, report.updated, report.removed, report.unchanged, report.indexed)
        return {"outcome": "ok", "results": seen}
    except CatalogueError as exc:
        message = str(exc)
        plain = any(words in message for words in PLAIN_REFUSALS) and "\n" not in message and "Traceback" not in message
        return {"outcome": "refused" if plain else "unclear", "message": message}
    except Exception as exc:  # noqa: BLE001 - this is what the generator counts
        import traceback

        return {"outcome": "traceback", "message": "".join(traceback.format_exception(exc))[-2000:]}


def run(out: Path, seed: int = SEED, count: int | None = None) -> dict:
    """Make the base catalogue and every variant under `out`; exercise each. Returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    folder, base = out / "pictures", out / "base.swimcat"
    if not base.exists():
        make_base(folder, base)
    query = folder / "summer" / "img0004.png"
    clean = exercise(base, query)
    assert clean["outcome"] == "ok", clean
    summary = {"variants": 0, "refused": 0, "identical": 0, "silently_wrong": 0, "traceback": 0, "unclear": 0, "slowest_s": 0.0}
    for n, variant in enumerate(variants(seed, count)):
        target = out / f"crafted-{n:03d}.swimcat"
        craft(base, target, variant, seed)
        started = time.perf_counter()
        result = exercise(target, query)
        seconds = time.perf_counter() - started
        outcome = result["outcome"]
        if outcome == "ok":
            outcome = "identical" if result["results"] == clean["results"] else "silently_wrong"
        summary["variants"] += 1
        summary[outcome] += 1
        summary["slowest_s"] = round(max(summary["slowest_s"], seconds), 3)
        print(json.dumps({"name": variant.name, "outcome": outcome, "message": result.get("message", "")[:400],
                          "seconds": round(seconds, 3)}), flush=True)
        for leftover in out.glob(f"crafted-{n:03d}.swimcat*"):
            leftover.unlink()
    print(json.dumps({"summary": summary}), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args(argv)
    run(args.out, args.seed, args.count)


if __name__ == "__main__":
    main()
