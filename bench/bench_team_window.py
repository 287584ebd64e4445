"""Opening a team catalogue of a million designs in the real window, and the time to its first results.

The window (offscreen) is started as a designer's is, its model loaded (here
team_data.SyntheticEmbedder, the "synthetic" model of bench_scale's
catalogues: a picture seeds an embedding). Then, timed from the moment the
team catalogue is asked for (what *Connect to team catalogue…* does once the
dialog is answered): the catalogue is open and shown (`catalogue_ready`), a
picture is dropped on the query panel, and its matches are in the grid
(`results_shown`). Repeated --times; the first right after the server started
(its cache cold; the machine's file cache may be warm).

Needs the team catalogue written by `bench/bench_pg.py --store --sizes 1000000`.

    QT_QPA_PLATFORM=offscreen nice -n 10 .venv/bin/python bench/bench_team_window.py [--size 1000000] [--times 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import save

import team_data
from tools.qt_wait import wait_until as _wait_until


def wait_until(predicate, what: str) -> None:
    _wait_until(predicate, what, timeout=600.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--times", type=int, default=5)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="swimsearch-bench-team-window-"))
    os.environ["SWIMSEARCH_USER_DATA"] = str(scratch / "user-data")
    address_of, connect, stop = team_data.start()
    try:
        database = f"team_{args.size}"
        with connect(database) as conn:
            if not conn.execute("SELECT to_regclass('cat_synthetic.meta') IS NOT NULL").fetchone()[0]:
                raise SystemExit(f"no team catalogue of {args.size:,}: run bench/bench_pg.py --store --sizes {args.size}")
        address = address_of(database)
        queries = team_data.make_pictures(scratch / "queries", args.times, start=5_000_000)
        from swimsearch.catalogue import Catalogue

        with Catalogue.open(address, readonly=True) as catalogue:  # the model the catalogue names (bench_scale's
            identity = catalogue.identity()                          # builds name the real trunk's)
        figures = run_window(address, queries, scratch, (identity.model_name, identity.model_sha256))
    finally:
        stop()
    figures.update(size=args.size, load=os.getloadavg())
    print(f"wrote {save(f'pg-window-{args.size}', figures)}")
    return 0


def run_window(address: str, queries: list[Path], scratch: Path, model: tuple[str | None, str | None]) -> dict:
    from PyQt5.QtCore import QSettings
    from PyQt5.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.query_panel import file_url_mime
    from ui.settings import Settings
    from ui.style import apply_app_style

    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(scratch / "settings"))
    app = QApplication(sys.argv[:1])
    apply_app_style(app)
    loaded = []

    def open_embedder():
        embedder = team_data.SyntheticEmbedder()
        # it stands in for the model the catalogue was built with (the synthetic embeddings were made as it makes them)
        embedder.name, embedder.sha256 = model[0] or embedder.name, model[1] or embedder.sha256
        loaded.append(time.perf_counter())
        return embedder

    window = MainWindow(Settings(), open_embedder=open_embedder)
    window.resize(1400, 900)
    window.show()
    wait_until(lambda: loaded, "the model")
    ready, shown = [], []
    window.catalogue_ready.connect(ready.append)
    window.results_shown.connect(shown.append)
    rounds = []
    for n, query in enumerate(queries):
        if n:  # open it anew each time: another catalogue first, as a designer switching back would
            window.session._leave_catalogue()
            window.session.catalogue = None
        asked = time.perf_counter()
        window.open_path(address)
        wait_until(lambda: len(ready) > n, "the team catalogue")
        opened = time.perf_counter()
        window.query_panel.take(file_url_mime(str(query)))
        wait_until(lambda: len(shown) > n, "the results")
        done = time.perf_counter()
        state, result = ready[-1], shown[-1]
        rounds.append({"open_s": opened - asked, "first_results_s": done - asked, "search_after_open_s": done - opened,
                       "engine_search_ms": result.search_ms, "embed_ms": result.embed_ms, "matches": len(result.matches),
                       "searchable": state.searchable, "grid_rows": window.model.rowCount()})
        r = rounds[-1]
        print(f"round {n + 1}: open {r['open_s']:.2f} s, first results {r['first_results_s']:.2f} s after asking "
              f"({r['matches']} matches of {r['searchable']:,} designs; engine search {r['engine_search_ms']:.0f} ms)",
              flush=True)
    window.close()
    figures = {"rounds": rounds,
               "open_s_median": statistics.median(r["open_s"] for r in rounds),
               "first_results_s_median": statistics.median(r["first_results_s"] for r in rounds),
               "first_results_s_max": max(r["first_results_s"] for r in rounds),
               "first_results_s_cold": rounds[0]["first_results_s"]}
    print(f"opening the team catalogue and its first results: {figures['first_results_s_median']:.2f} s median, "
          f"{figures['first_results_s_max']:.2f} s at worst, {figures['first_results_s_cold']:.2f} s cold", flush=True)
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
