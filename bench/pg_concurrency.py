"""Several users on one team catalogue, through the real store: searching together, updating together, killed mid-update.

On a copy of the 100,000-design synthetic catalogue (team_data.write_team:
written by `swimsearch copy`'s code), every client a process of its own with
its own connection, as designers' computers would be:

1. searching: 1 client, then 8 at once, for --seconds each: searches per
   second, median and p95 latency, failures (the app's SearchEngine at its
   defaults: the server's HNSW search, 40 candidates rescored exactly);
2. updating while searching: 2 clients update two folders of new pictures
   (`Catalogue.update(folder=...)`, the real build: scan, decode, embed with
   team_data.SyntheticEmbedder, batches of 16, index phase) while 4 clients
   search; then, while one client updates a third folder, another asks to
   update that folder too (refused in words naming the holder). Counted afterwards: designs lost,
   designs doubled, records without embedding or code, and every search's
   answer (10 matches, no error);
3. killed: a client updating a folder is SIGKILLed at a random moment, 10
   times; after each kill the catalogue is checked (no doubled path, no
   orphan, codes of one fit only, the folder's lock free again, how long that
   took), and finally an update completes the folder.

    nice -n 10 python bench/pg_concurrency.py [--seconds 20] [--files 1500] [--sections search update kill]

The server's data folder is team_data.DATA ($SWIMSEARCH_BENCH_PG_DATA).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK, median, percentile, save

import numpy as np

import team_data

BASE = 100_000
DATABASE = "concurrency"


def searcher(address: str, seed: int, ready, go, stop, out) -> None:
    """One designer searching until told to stop: latencies, failures, incomplete answers."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.search import SearchEngine

    queries = team_data.queries()
    rng = np.random.default_rng(seed)
    latencies, failures, short = [], [], 0
    with Catalogue.open(address, readonly=True) as catalogue:
        engine = SearchEngine(catalogue, None, EngineConfig())
        engine.search_embeddings(queries[0][None], top_n=10)  # warm
        ready.put(1)
        go.wait()
        while not stop.is_set():
            query = queries[int(rng.integers(len(queries)))] + rng.normal(0, 0.01, queries.shape[1]).astype(np.float32)
            t0 = time.perf_counter()
            try:
                result = engine.search_embeddings(query[None], top_n=10)
            except Exception as exc:  # noqa: BLE001 - counted: every search must be answered
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            short += len(result.matches) != 10
    out.put({"latencies": latencies, "failures": failures, "short": short})


def updater(address: str, folder: str, ready, go, out) -> None:
    """One designer updating a folder of the shared catalogue (the real build)."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.errors import CatalogueError

    embedder = team_data.SyntheticEmbedder()
    ready.put(1)
    go.wait()
    t0 = time.perf_counter()
    try:
        with Catalogue.open(address) as catalogue:
            report = catalogue.update(embedder, EngineConfig(), folder=folder)
        out.put({"folder": folder, "added": report.added, "seconds": time.perf_counter() - t0})
    except CatalogueError as exc:
        out.put({"folder": folder, "refused": str(exc), "seconds": time.perf_counter() - t0})


def run_clients(targets: list[tuple], seconds: float | None) -> tuple[list[dict], float]:
    """Start processes (target, args...) together once every one is ready (opened, warmed up); stop the searchers
    after `seconds` or when the updaters are done. Returns their results and the seconds from the start signal."""
    ctx = mp.get_context("spawn")
    ready, go, stop, out = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Queue()
    processes = []
    for function, *args in targets:
        extra = (ready, go, stop, out) if function is searcher else (ready, go, out)
        processes.append((function, ctx.Process(target=function, args=(*args, *extra))))
    for _, process in processes:
        process.start()
    for _ in processes:  # spawned processes start slowly on a loaded machine: a fixed wait counted some too late
        ready.get(timeout=600)
    go.set()
    started = time.perf_counter()
    updaters = [p for f, p in processes if f is updater]
    if updaters:
        for process in updaters:
            process.join()
    else:
        time.sleep(seconds or 10)
    stop.set()
    elapsed = time.perf_counter() - started
    results = [out.get(timeout=600) for _ in processes]
    for _, process in processes:
        process.join(60)
    return results, elapsed


def summarise_searches(results: list[dict], seconds: float) -> dict:
    latencies = [ms for r in results if "latencies" in r for ms in r["latencies"]]
    failures = [f for r in results if "failures" in r for f in r["failures"]]
    return {"clients": sum(1 for r in results if "latencies" in r), "searches": len(latencies),
            "per_second": len(latencies) / seconds, "ms_median": median(latencies), "ms_p95": percentile(latencies, 95),
            "failures": len(failures), "failure_examples": failures[:3],
            "incomplete_answers": sum(r["short"] for r in results if "short" in r)}


def check(connect, prefix: str | None = None) -> dict:
    """What must hold after any race or kill: one row per path, no orphans, codes of one fit, embedded = coded."""
    with connect(DATABASE) as conn:
        q = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
        where = "WHERE path LIKE %s" if prefix else ""
        args = (prefix + "%",) if prefix else ()
        return {
            "images": q(f"SELECT count(*) FROM cat_synthetic.images {where}", *args),
            "doubled": q(f"SELECT count(*) - count(DISTINCT path) FROM cat_synthetic.images {where}", *args),
            "embeddings_without_image": q("SELECT count(*) FROM cat_synthetic.embeddings e WHERE NOT EXISTS "
                                          "(SELECT 1 FROM cat_synthetic.images i WHERE i.id = e.image_id)"),
            "fits_in_items": q("SELECT count(DISTINCT fit) FROM cat_synthetic.items"),
            "embedded_not_coded": q("SELECT count(*) FROM cat_synthetic.embeddings e WHERE NOT EXISTS "
                                    "(SELECT 1 FROM cat_synthetic.items t WHERE t.image_id = e.image_id)"),
        }


KILLED = """
import sys
sys.path[:0] = [sys.argv[3], sys.argv[4]]
import team_data
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
with Catalogue.open(sys.argv[1]) as catalogue:
    catalogue.update(team_data.SyntheticEmbedder(), EngineConfig(), folder=sys.argv[2])
"""


def same_folder(address: str, connect, folder: Path, files: int = 2000) -> dict:
    """A client starts updating `folder`; once it has committed a batch, a second asks to update it too."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig
    from swimsearch.errors import CatalogueBusy

    team_data.make_pictures(folder, files, start=400_000)
    embedder = team_data.SyntheticEmbedder()  # ready before the first client starts: the second asks at once
    catalogue = Catalogue.open(address)
    bench = str(Path(__file__).resolve().parent)
    first = subprocess.Popen([sys.executable, "-c", KILLED, address, str(folder), bench, str(ROOT)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with connect(DATABASE) as conn:
        while first.poll() is None and not conn.execute(
                "SELECT count(*) FROM cat_synthetic.images WHERE path LIKE %s", (f"{folder.name}/%",)).fetchone()[0]:
            time.sleep(0.01)
    try:
        report = catalogue.update(embedder, EngineConfig(), folder=folder)
        second = f"not refused: added {report.added}"
    except CatalogueBusy as exc:
        second = f"refused: {exc}"
    finally:
        catalogue.close()
    _, err = first.communicate(timeout=3600)  # a whole folder on a loaded machine took more than 10 min
    with connect(DATABASE) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT path) FROM cat_synthetic.images WHERE path LIKE %s",
                              (f"{folder.name}/%",)).fetchone()
    return {"second": second, "first": f"exit {first.returncode}, {stored[0]} of {files} stored, "
                                       f"{stored[0] - stored[1]} doubled" + (f" ({err.strip()[-200:]})" if first.returncode else "")}


def kills(address: str, connect, root: Path, files: int, times: int) -> dict:
    """SIGKILL an updating client `times` times at random moments; check after each; then complete the folder."""
    folder = root / "killed"
    team_data.make_pictures(folder, files, start=900_000)
    rng = random.Random(20261130)
    rounds = []
    bench = str(Path(__file__).resolve().parent)
    for _ in range(times):
        with connect(DATABASE) as conn:
            before = conn.execute("SELECT count(*) FROM cat_synthetic.images WHERE path LIKE 'killed/%'").fetchone()[0]
        left = files - before
        if left <= 0:  # everything done already: start the folder again from empty
            shutil.rmtree(folder)
            team_data.make_pictures(folder, files, start=900_000 + len(rounds) * files)
        # kill somewhere in this round's share of what is left, so the last update still has work to do
        wait_for = rng.randint(1, max(2, left // (times - len(rounds) + 1))) if left > 0 else 1
        client = subprocess.Popen([sys.executable, "-c", KILLED, address, str(folder), bench, str(ROOT)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        with connect(DATABASE) as conn:
            while client.poll() is None and time.monotonic() < deadline:
                now = conn.execute("SELECT count(*) FROM cat_synthetic.images WHERE path LIKE 'killed/%'").fetchone()[0]
                if now - before >= wait_for:
                    break
                time.sleep(0.01)
            killed = client.poll() is None
            os.kill(client.pid, signal.SIGKILL)
            client.wait()
            t0 = time.perf_counter()
            while not conn.execute("SELECT pg_try_advisory_lock(hashtext('cat_synthetic'), hashtext('update:killed'))").fetchone()[0]:
                time.sleep(0.001)
            released_ms = (time.perf_counter() - t0) * 1000
            conn.execute("SELECT pg_advisory_unlock(hashtext('cat_synthetic'), hashtext('update:killed'))")
        state = check(connect, "killed/")
        rounds.append({"killed": killed, "committed_before_kill": state["images"] - before, "lock_released_ms": released_ms, **state})
        print(f"     kill {len(rounds)}: {'killed' if killed else 'finished first'} after {state['images'] - before} "
              f"designs, lock free after {released_ms:.1f} ms, doubled {state['doubled']}, orphans "
              f"{state['embeddings_without_image']}, fits {state['fits_in_items']}", flush=True)
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig

    before_final = check(connect, "killed/")
    with Catalogue.open(address) as catalogue:
        final = catalogue.update(team_data.SyntheticEmbedder(), EngineConfig(), folder=folder)
    on_disk = {f"killed/{p.name}" for p in folder.glob("*.png")}
    with connect(DATABASE) as conn:
        stored = {r[0] for r in conn.execute("SELECT path FROM cat_synthetic.images WHERE path LIKE 'killed/%'")}
    return {"rounds": rounds, "kills": sum(r["killed"] for r in rounds), "before_final": before_final, "final_added": final.added,
            "final_removed": final.removed, "after": check(connect, "killed/"), "lost": len(on_disk - stored),
            "extra": len(stored - on_disk), "lock_released_ms_median": median([r["lock_released_ms"] for r in rounds]),
            "lock_released_ms_max": max(r["lock_released_ms"] for r in rounds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each search run")
    parser.add_argument("--files", type=int, default=1500, help="new pictures per updating client")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="keep the copied catalogue of an earlier run")
    parser.add_argument("--sections", nargs="+", choices=("search", "update", "kill"), default=["search", "update", "kill"],
                        help="which parts to run (default: all three)")
    args = parser.parse_args()
    out: dict = {"load_before": os.getloadavg()}
    address_of, connect, stop = team_data.start()
    root = WORK / "concurrency-root"
    try:
        address = address_of(DATABASE)
        with connect(DATABASE) as conn:
            exists = conn.execute("SELECT to_regclass('cat_synthetic.meta') IS NOT NULL").fetchone()[0]
        if exists and not args.reuse:
            from swimsearch.stores.postgres import PostgresStore

            PostgresStore.drop(address)
            exists = False
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        if not exists:
            print(f"copying the {BASE:,}-design catalogue into a team catalogue ...", flush=True)
            out["write"] = team_data.write_team(address, team_data.sqlite_catalogue(BASE), root)
            out["write"]["vacuum_s"] = team_data.vacuum(connect, DATABASE)
        else:
            with connect(DATABASE) as conn:  # the earlier run's folders are gone: so are their designs
                conn.execute("DELETE FROM cat_synthetic.images WHERE path NOT LIKE 'synthetic/%'")
                conn.execute("UPDATE cat_synthetic.meta SET value = %s WHERE key = 'root'", (f'"{root}"',))

        out["search"] = []
        if "search" in args.sections:
            print("1. searching clients", flush=True)
        for clients in ((1, 8) if "search" in args.sections else ()):
            results, elapsed = run_clients([(searcher, address, 100 + i) for i in range(clients)], args.seconds)
            out["search"].append(summarise_searches(results, elapsed))
            s = out["search"][-1]
            print(f"   {clients} searching: {s['per_second']:.0f} searches/s, median {s['ms_median']:.1f} ms, p95 "
                  f"{s['ms_p95']:.1f} ms, failures {s['failures']}, incomplete {s['incomplete_answers']}", flush=True)

        if "update" in args.sections:
            update_section(args, address, connect, root, out)
        if "kill" in args.sections:
            print(f"3. a client killed mid-update, {args.kills} times", flush=True)
            out["kill"] = kills(address, connect, root, max(200, args.files // 3), args.kills)
            k = out["kill"]
            print(f"   {k['kills']} kills; lock free {k['lock_released_ms_median']:.1f} ms median after a kill "
                  f"(max {k['lock_released_ms_max']:.1f}); before the next update {k['before_final']['images']} designs "
                  f"({k['before_final']['embedded_not_coded']} not yet searchable); it added {k['final_added']}; lost {k['lost']}, "
                  f"extra {k['extra']}; after: {k['after']}", flush=True)
    finally:
        stop()
    out["load_after"] = os.getloadavg()
    print(f"wrote {save('pg-concurrency-store', out)}")
    return 0


def update_section(args, address: str, connect, root: Path, out: dict) -> None:
    """2. Two clients update two folders while four search; then a second client asks for a folder being updated."""
    print("2. two clients updating while four search", flush=True)
    for name in ("anna", "bert"):
        team_data.make_pictures(root / name, args.files, start={"anna": 100_000, "bert": 200_000}[name])
    results, seconds = run_clients([(updater, address, str(root / "anna")), (updater, address, str(root / "bert"))]
                                   + [(searcher, address, 200 + i) for i in range(4)], None)
    updates = [r for r in results if "folder" in r]
    out["updates"] = {"updates": updates, "searches": summarise_searches(results, max(seconds, 1)),
                      "after": check(connect)}
    on_disk = {f"{n}/{p.name}" for n in ("anna", "bert") for p in (root / n).glob("*.png")}
    with connect(DATABASE) as conn:
        stored = [r[0] for r in conn.execute("SELECT path FROM cat_synthetic.images WHERE path LIKE 'anna/%' OR path LIKE 'bert/%'")]
    out["updates"].update(lost=len(on_disk - set(stored)), doubled=len(stored) - len(set(stored)))
    s = out["updates"]["searches"]
    print(f"   updates: {[(u['folder'].rsplit('/', 1)[1], u.get('added'), round(u['seconds'], 1)) for u in updates]}; "
          f"lost {out['updates']['lost']}, doubled {out['updates']['doubled']}; {s['searches']} searches during them "
          f"({s['per_second']:.0f}/s, median {s['ms_median']:.1f} ms, p95 {s['ms_p95']:.1f} ms), failures "
          f"{s['failures']}, incomplete {s['incomplete_answers']}; after: {out['updates']['after']}", flush=True)
    out["same_folder"] = same_folder(address, connect, root / "carl", files=max(200, args.files))
    print(f"   a second client on a folder being updated: {out['same_folder']['second']}; the first one "
          f"{out['same_folder']['first']}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
