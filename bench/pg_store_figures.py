"""bench_pg.py --store: search in a team catalogue written through the real store, beside the SQLite store.

For each size, the synthetic SQLite catalogue (bench_scale's data, fitted by the
real engine) is copied into a team catalogue with `swimsearch copy`'s own code
(team_data.write_team), VACUUM ANALYZE'd as autovacuum would, opened cold (the first opening after the
server started), its index and tables then prewarmed as a server in use keeps
them (the SQLite store holds its index in memory too), then both are
searched by the app's `SearchEngine` at its defaults, in this process, query by
query in alternation (so the load on the shared machine falls on both alike):
the team catalogue through its server searcher (HNSW on halfvec(128), ef_search
300, iterative scan; three searches of 200 candidates a query, each one round trip
returning the candidates and the catalogue's change counter, the rest read from
the client's search cache, team_replica.py, waited for first), the SQLite store through its own
searcher (the graph at 1M). Recall@10 is against exact cosine over all embeddings
(bench_scale.ground_truth), and against the app's own ranking with every design a
candidate (what the candidate searches lose); "same top 10" compares the two
stores' answers; "statements a search" counts the team catalogue's round trips.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from common import WORK, median, percentile

import team_data
from bench_pg import cpu_seconds


def open_team(address: str, query: np.ndarray) -> dict:
    """Opening the team catalogue as the app does (connect, fit, searcher) and its first search, in seconds."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.search import SearchEngine

    started = time.perf_counter()
    catalogue = Catalogue.open(address)
    opened = time.perf_counter()
    engine = SearchEngine(catalogue, None, EngineConfig())
    ready = time.perf_counter()
    catalogue.info()  # what the window shows about it
    informed = time.perf_counter()
    engine.search_embeddings(query[None], top_n=10)
    first = time.perf_counter()
    catalogue.close()
    return {"connect_s": opened - started, "engine_s": ready - opened, "info_s": informed - ready,
            "first_search_s": first - informed, "open_to_first_results_s": first - started, "searcher": engine.searcher_name}


def prewarm(connect, database: str) -> float:
    """Load what every search touches into the server's cache, as a server in use has it (pg_prewarm).

    The SQLite store holds its whole index in memory once open and reads its
    embeddings through the machine's file cache; a team catalogue's server keeps
    its hot pages cached the same way: the index, items, records and neighbour
    lists in its own buffers, the 2.6 GB of embeddings (more than its 2 GB of
    buffers) read once into the machine's file cache ('read'), where each search
    finds its 300 or so, as the SQLite store finds its own.
    """
    started = time.perf_counter()
    with connect(database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        for relation in ("items_rerank_hnsw", "items", "items_pkey", "embeddings_pkey", "images_pkey", "images",
                         "neighbours", "neighbours_pkey"):
            conn.execute("SELECT pg_prewarm(%s)", (f"cat_synthetic.{relation}",))
        conn.execute("SELECT pg_prewarm(%s, 'read')", ("cat_synthetic.embeddings",))
    return time.perf_counter() - started


def measure_both(address: str, sqlite: Path, queries: np.ndarray, truth: np.ndarray) -> dict:
    """Median/p95 latency, CPU per query and recall@10 of both stores, queries alternating between them."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.search import SearchEngine

    config = EngineConfig()
    out: dict = {}
    with Catalogue.open(sqlite, readonly=True) as local, Catalogue.open(address) as team:
        engines = {"sqlite": SearchEngine(local, None, config), "team": SearchEngine(team, None, config)}
        # The SQLite store as the app searches it: with its array cache (array_watch.py), made or checked in the
        # background when the catalogue opens; waited for here (the first time at 1M it is made: minutes).
        watch = getattr(engines["sqlite"], "array_watch", None)
        started = time.perf_counter()
        out["sqlite_array_cache"] = {"in_use": bool(watch is not None and watch.wait(1800)),
                                     "wait_s": time.perf_counter() - started}
        # The team catalogue as the app searches it: with its client's search cache (team_replica.py), made or
        # checked in the background from the second search; waited for here (the first time at 1M it is made: minutes).
        replica = getattr(engines["team"], "array_watch", None)
        started = time.perf_counter()
        out["team_search_cache"] = {"in_use": bool(replica is not None and replica.wait(1800)),
                                    "wait_s": time.perf_counter() - started,
                                    "path": str(getattr(replica, "path", "")) or None}
        backend = team.store._conn.info.backend_pid
        for engine in engines.values():  # warm-up: plans, caches
            for q in queries[:5]:
                engine.search_embeddings(q[None], top_n=10)
        times = {name: [] for name in engines}
        cpu = {name: 0.0 for name in engines}
        server_cpu = 0.0
        tops = {name: [] for name in engines}
        statements = count_statements()  # round trips to the server: each waits for its turn and the client's
        for q in queries:
            for name, engine in engines.items():
                s0, c0 = cpu_seconds(backend), time.process_time()
                t0 = time.perf_counter()
                result = engine.search_embeddings(q[None], top_n=10)
                times[name].append((time.perf_counter() - t0) * 1000)
                cpu[name] += time.process_time() - c0
                if name == "team":
                    server_cpu += cpu_seconds(backend) - s0
                tops[name].append([m.image_id for m in result.matches])
        statements = statements()
        for name, engine in engines.items():
            recall = [len(set(t) & set(w.tolist())) / 10 for t, w in zip(tops[name], truth)]
            out[name] = {
                "searcher": engine.searcher_name,
                "search_ms_median": median(times[name]), "search_ms_p95": percentile(times[name], 95),
                "client_cpu_ms": cpu[name] * 1000 / len(queries),
                "server_cpu_ms": (server_cpu * 1000 / len(queries)) if name == "team" else 0.0,
                "recall@10": float(np.mean(recall)),
            }
        out["team"]["statements_per_search"] = statements / len(queries)
        reference = exact_candidates(sqlite, queries[:REFERENCE_QUERIES])
        for name in engines:
            out[name]["recall@10_of_exact_candidates"] = float(np.mean(
                [len(set(t) & set(r)) / 10 for t, r in zip(tops[name], reference)]))
        same_ten = np.mean([set(a) == set(b) for a, b in zip(tops["team"], tops["sqlite"])])
        same_order = np.mean([a == b for a, b in zip(tops["team"], tops["sqlite"])])
        out["agreement"] = {"same_ten": float(same_ten), "same_ranking": float(same_order),
                            "overlap": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops["team"], tops["sqlite"])]))}
        out["ratio_median_team_over_sqlite"] = out["team"]["search_ms_median"] / out["sqlite"]["search_ms_median"]
    return out


def make_caches(address: str, sqlite: Path) -> dict:
    """Both stores' search caches made (or checked) as a search would have them made, timed: so that a
    measuring run after this one only checks them (a 1M cache takes minutes to make)."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.search import SearchEngine

    out = {}
    for name, location, readonly in (("sqlite", sqlite, True), ("team", address, False)):
        with Catalogue.open(location, readonly=readonly) as catalogue:
            watch = SearchEngine(catalogue, None, EngineConfig()).array_watch
            started = time.perf_counter()
            out[name] = {"in_use": bool(watch is not None and watch.wait(3600)), "s": time.perf_counter() - started}
        print(f"    {name} search cache: {'ready' if out[name]['in_use'] else 'NOT made'} in {out[name]['s']:.0f} s", flush=True)
    return out


def count_statements():
    """Counts the statements psycopg sends from now on (only the team catalogue talks to a server here);
    call the returned function to stop counting and get the count."""
    import psycopg

    real = psycopg.Cursor.execute
    sent = [0]

    def execute(cursor, *args, **kwargs):
        sent[0] += 1
        return real(cursor, *args, **kwargs)

    psycopg.Cursor.execute = execute

    def stop() -> int:
        psycopg.Cursor.execute = real
        return sent[0]

    return stop


#: Queries ranked with every design a candidate (the reference of what the candidate searches lose).
REFERENCE_QUERIES = 200


def exact_candidates(sqlite: Path, queries: np.ndarray) -> list[list[int]]:
    """The app's ranking with every design a candidate (an exact search of the SQLite store's re-ranking vectors).

    Issue 11's ranking (augmented vectors, query expansion) is not exact
    cosine by design, so recall@10 of exact cosine measures the ranking as
    much as the search; the same ranking over exact candidates measures what
    the stores' candidate searches (HNSW in the server, the graph in memory) lose.
    """
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.search import SearchEngine

    with Catalogue.open(sqlite, readonly=True) as local:
        engine = SearchEngine(local, None, EngineConfig().with_changes(exact_below=10**9))
        return [[m.image_id for m in engine.search_embeddings(q[None], top_n=10).matches] for q in queries]


def run(sizes: list[int], reuse: bool, data: Path, build_only: bool = False) -> dict:
    address_of, connect, stop = team_data.start(data)
    results: dict = {}
    try:
        for size in sizes:
            entry: dict = {}
            sqlite_written = data / f"sqlite-{size}.json"  # how long the SQLite catalogue took, for runs that reuse it
            started = time.perf_counter()
            sqlite, built = team_data.ensure_sqlite(size, data, reuse)
            if built:
                built["total_s"] = time.perf_counter() - started
                built["load"] = os.getloadavg()
                sqlite_written.write_text(json.dumps(built, indent=2))
                fresh = True  # a team catalogue copied from an earlier SQLite catalogue is of other data
            else:
                fresh = False
                built = {**json.loads(sqlite_written.read_text()), "reused": True} if sqlite_written.exists() else {}
            entry["sqlite_build"] = built
            if built:
                print(f"    SQLite catalogue: written in {built['write_s']:.0f} s, fitted (neighbour lists, graph) in "
                      f"{built['index_s']:.0f} s{' (an earlier run)' if built.get('reused') else ''}", flush=True)
            queries = team_data.queries(data)
            truth = np.load(sqlite.with_name(f"truth-{size}.npy"))
            database = f"team_{size}"
            address = address_of(database)
            entry["address"] = address
            with connect(database) as conn:
                exists = conn.execute("SELECT to_regclass('cat_synthetic.meta') IS NOT NULL").fetchone()[0]
            written = data / f"written-{size}.json"  # how long writing took; written last, so it marks a finished copy
            if exists and (fresh or not reuse or not written.exists()):
                from swimsearch.stores.postgres import PostgresStore

                PostgresStore.drop(address)
                exists = False
            if not exists:
                written.unlink(missing_ok=True)
                print(f"  writing {size:,} designs through the team catalogue store ...", flush=True)
                entry["write"] = team_data.write_team(address, sqlite, WORK / "synthetic-root")
                entry["write"]["vacuum_s"] = team_data.vacuum(connect, database)
                entry["write"]["load"] = os.getloadavg()
                written.write_text(json.dumps(entry["write"], indent=2))
            elif written.exists():
                entry["write"] = {**json.loads(written.read_text()), "reused": True}
            if "write" in entry:
                print(f"    written in {entry['write']['copy_s']:.0f} s ({entry['write']['marks']}), VACUUM "
                      f"{entry['write']['vacuum_s']:.0f} s{' (an earlier run)' if entry['write'].get('reused') else ''}",
                      flush=True)
            if build_only:
                entry["caches"] = make_caches(address, sqlite)
                results[str(size)] = entry
                continue
            with connect(database) as conn:
                entry["sizes_mb"] = {name: size / 2**20 for name, size in conn.execute(
                    "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relnamespace = 'cat_synthetic'::regnamespace "
                    "AND relkind IN ('r', 'i')").fetchall()}
            entry["open"] = open_team(address, queries[0])  # first: the server's cache is still cold
            entry["prewarm_s"] = prewarm(connect, database)
            o = entry["open"]
            print(f"    opening: connect {o['connect_s'] * 1000:.0f} ms, fit and searcher {o['engine_s'] * 1000:.0f} ms, "
                  f"info {o['info_s'] * 1000:.0f} ms, first search {o['first_search_s'] * 1000:.0f} ms: "
                  f"{o['open_to_first_results_s']:.2f} s ({o['searcher']})", flush=True)
            entry["search"] = measure_both(address, sqlite, queries, truth)
            cache = entry["search"]["sqlite_array_cache"]
            print(f"    SQLite store's array cache: {'in use' if cache['in_use'] else 'NOT in use'} "
                  f"(waited {cache['wait_s']:.0f} s)", flush=True)
            replica = entry["search"]["team_search_cache"]
            print(f"    team catalogue's search cache on this client: {'in use' if replica['in_use'] else 'NOT in use'} "
                  f"(waited {replica['wait_s']:.0f} s; {replica['path']})", flush=True)
            for name in ("team", "sqlite"):
                m = entry["search"][name]
                print(f"    {name:6s} ({m['searcher']}): search {m['search_ms_median']:.2f} ms median, p95 "
                      f"{m['search_ms_p95']:.2f}, CPU {m['client_cpu_ms']:.2f} + server {m['server_cpu_ms']:.2f} ms, "
                      f"recall@10 {m['recall@10']:.3f} of exact cosine, {m['recall@10_of_exact_candidates']:.3f} of the same ranking "
                      f"over exact candidates ({REFERENCE_QUERIES} queries)", flush=True)
            print(f"    team: {entry['search']['team']['statements_per_search']:.1f} statements a search", flush=True)
            a = entry["search"]["agreement"]
            print(f"    same ten as the SQLite store {a['same_ten']:.2f}, same ranking {a['same_ranking']:.2f}, "
                  f"overlap {a['overlap']:.3f}; team / SQLite median {entry['search']['ratio_median_team_over_sqlite']:.2f}",
                  flush=True)
            results[str(size)] = entry
    finally:
        stop()
    return results
