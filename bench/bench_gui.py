"""The window under load: GUI-thread lateness during a catalogue build, cancel time, drop-to-results time.

Runs the real window (offscreen) with the real model on the clothing photo set:

1. cancel: builds a catalogue of 1,000 photos, presses Cancel after 300 and
   times how long the build takes to stop reading, and until what it kept
   is indexed and searchable;
2. build: builds a catalogue of 5,000 photos while a 20 ms QTimer measures
   how late the GUI thread answers (max, p99, median);
3. drop: drops photos on the query panel (file URLs, as a file manager does)
   and times drop -> results in the grid, and drop -> first thumbnail shown.

Uses a throwaway folder of links to the photos, its own settings and data
folder; prints the figures and writes them as JSON. Not run in CI.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui.py
    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui.py --photos 500 --queries 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import CLOTHING, ROOT, percentile  # noqa: E402 - also puts the project on sys.path

from tools.qt_wait import wait_until as _wait_until  # noqa: E402


def wait_until(predicate, what: str) -> None:
    _wait_until(predicate, what, timeout=1800.0)


def link_photos(folder: Path, photos: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for photo in photos:
        os.symlink(photo, folder / photo.name)
    return folder


def summary(values: list[float]) -> dict[str, float]:
    """max, p99, p90, median and mean of timings in ms, rounded to 0.1 ms."""
    figures = {"max": max(values), "p99": percentile(values, 99), "p90": percentile(values, 90),
               "median": statistics.median(values), "mean": statistics.fmean(values)}
    return {name: round(value, 1) for name, value in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=5000, help="photos in the build (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=30, help="photos dropped after the build")
    parser.add_argument("--cancel-photos", type=int, default=1000, help="photos in the cancel run (0: skip it)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "gui.json")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="swimsearch-bench-gui-"))
    os.environ["SWIMSEARCH_USER_DATA"] = str(scratch / "user-data")

    from PyQt5.QtCore import QSettings, Qt, QTimer
    from PyQt5.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.query_panel import file_url_mime
    from ui.settings import Settings
    from ui.style import apply_app_style

    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(scratch / "settings"))
    app = QApplication(sys.argv[:1])
    apply_app_style(app)

    photos = sorted((CLOTHING / "images").glob("*.jpg"))
    if len(photos) < args.photos:
        print(f"only {len(photos)} photos in {CLOTHING}", file=sys.stderr)
        return 1
    figures: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "qpa_platform": os.environ.get("QT_QPA_PLATFORM", ""),
    }

    def new_window() -> MainWindow:
        window = MainWindow(Settings())
        window.resize(1400, 900)
        window.show()
        return window

    # 1. cancel ----------------------------------------------------------------------------
    if args.cancel_photos:
        window = new_window()
        folder = link_photos(scratch / "cancel", photos[-args.cancel_photos :])
        progress, finished = [], []
        window.build_progress_changed.connect(lambda *a: progress.append((time.perf_counter(), *a)))
        window.build_finished.connect(finished.append)
        window.open_path(str(folder))
        wait_until(lambda: any(p == "embed" and d >= 300 for _, p, d, _ in progress), "300 photos")
        pressed = time.perf_counter()
        window.progress.cancel_button.click()
        wait_until(lambda: finished, "the cancelled build")
        searchable_s = time.perf_counter() - pressed
        stopped_reading = next(t for t, p, _, _ in progress if p == "index" and t > pressed)
        read_after = max(d for t, p, d, _ in progress if p == "embed")
        report = finished[0].report
        figures["cancel"] = {
            "photos": args.cancel_photos,
            "pressed_after": 300,
            "seconds_to_stop_reading": round(stopped_reading - pressed, 3),
            "seconds_to_searchable": round(searchable_s, 3),
            "photos_read": read_after,
            "kept_and_searchable": report.indexed,
        }
        print(
            f"cancel: stopped reading {stopped_reading - pressed:.2f} s after Cancel, searchable after "
            f"{searchable_s:.2f} s; {report.indexed} photos kept"
        )
        window.close()

    # 2. build with a lateness probe ---------------------------------------------------------
    window = new_window()
    folder = link_photos(scratch / "clothing", photos[: args.photos])
    late: list[float] = []
    expected = [0.0]
    interval_ms = 20

    def tick() -> None:
        now = time.perf_counter()
        if expected[0]:
            late.append(max(0.0, (now - expected[0]) * 1000))
        expected[0] = now + interval_ms / 1000

    probe = QTimer()
    probe.setTimerType(Qt.PreciseTimer)
    probe.setInterval(interval_ms)
    probe.timeout.connect(tick)
    finished, ready = [], []
    window.build_finished.connect(finished.append)
    window.catalogue_ready.connect(ready.append)
    started = time.perf_counter()
    probe.start()
    window.open_path(str(folder))
    wait_until(lambda: finished, "the build")
    probe.stop()
    build_s = time.perf_counter() - started
    report = finished[0].report
    figures["build"] = {
        "photos": args.photos,
        "seconds": round(build_s, 1),
        "images_per_second": round(report.images_per_second, 1),
        "indexed": report.indexed,
        "timer_interval_ms": interval_ms,
        "ticks": len(late),
        "gui_lateness_ms": summary(late),
    }
    lateness = figures["build"]["gui_lateness_ms"]
    print(
        f"build: {args.photos} photos in {build_s:.0f} s ({report.images_per_second:.1f}/s); GUI thread late by "
        f"max {lateness['max']} ms, p99 {lateness['p99']} ms, median {lateness['median']} ms "
        f"over {len(late)} ticks of {interval_ms} ms"
    )

    # 3. drop -> results ----------------------------------------------------------------------
    wait_until(lambda: ready and window.search.state is not None and window.search.state.searchable, "the catalogue")
    shown = []
    window.results_shown.connect(shown.append)
    step = max(1, args.photos // args.queries)
    queries = [folder / p.name for p in photos[: args.photos : step][: args.queries]]
    view = window.results_view
    to_results, to_thumbnail, embed, search = [], [], [], []
    for n, query in enumerate(queries):
        window.cache.drop_queued()
        mime = file_url_mime(str(query))
        dropped = time.perf_counter()
        window.query_panel.take(mime)  # what dropEvent does with the dropped data
        wait_until(lambda: len(shown) > n, "the results")
        to_results.append((time.perf_counter() - dropped) * 1000)
        pixels = int(view.delegate.thumb_size * view.devicePixelRatioF())
        wait_until(lambda: window.cache.peek(window.model.match_at(1).path, pixels) is not None, "a thumbnail")
        to_thumbnail.append((time.perf_counter() - dropped) * 1000)
        embed.append(shown[-1].embed_ms)
        search.append(shown[-1].search_ms)
    figures["drop_to_results"] = {
        "catalogue_photos": report.indexed,
        "queries": len(queries),
        "results_ms": summary(to_results),
        "first_thumbnail_ms": summary(to_thumbnail),
        "engine_embed_ms": summary(embed),
        "engine_search_ms": summary(search),
    }
    drops = figures["drop_to_results"]
    print(
        f"drop -> results: median {drops['results_ms']['median']} ms (p90 {drops['results_ms']['p90']} ms); "
        f"-> first match thumbnail: median {drops['first_thumbnail_ms']['median']} ms; engine: embed "
        f"{drops['engine_embed_ms']['median']} ms, search {drops['engine_search_ms']['median']} ms "
        f"(medians, {len(queries)} drops)"
    )
    window.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
