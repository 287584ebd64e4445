"""Screenshots of the window with real results, for the README and for looking at the layout.

Builds the sample catalogue with the real model in a throwaway data folder
(the user's own settings and catalogues are never touched), drops a design on
the window, waits for every visible thumbnail, and saves the window:

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py            # docs/screenshot.png, 1400x900
    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py --sizes 1000x700,1920x1080 --out-dir /tmp/shots

(`xvfb-run .venv/bin/python tools/screenshot.py` works too.) To look at decisions and long
names: `--folder DIR` opens that image folder instead of the sample (its catalogue is built
beside the pictures as usual), `--decide` searches from the best match and marks the last match "same design" and the best
other one "not similar" (stored in that catalogue), `--select` chooses the previewed match.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--query", default=str(ROOT / "resources" / "sample" / "shorts-04.jpg"), help="design to drop")
    parser.add_argument("--sizes", default="1400x900", help="comma-separated WIDTHxHEIGHT list")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"), help="file for a single size")
    parser.add_argument("--out-dir", help="folder for several sizes (window-WxH.png)")
    parser.add_argument("--select", type=int, default=0, help="select this result row (0: the best match)")
    parser.add_argument("--min-similarity", type=int, default=0, help="minimum similarity control (percent)")
    parser.add_argument("--folder", help="open this image folder instead of the sample catalogue")
    parser.add_argument("--decide", action="store_true", help="mark the last match 'same design', the best other 'not similar'")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="swimsearch-shot-")
    os.environ["SWIMSEARCH_USER_DATA"] = scratch

    from PyQt5.QtCore import QCoreApplication, QSettings, Qt
    from PyQt5.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.query_panel import file_url_mime
    from ui.settings import Settings
    from ui.style import app_icon, apply_app_style

    from tools.qt_wait import wait_until as _wait_until

    QCoreApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
    QCoreApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, scratch)
    app = QApplication(sys.argv[:1])
    apply_app_style(app)
    app.setWindowIcon(app_icon())

    def wait_until(predicate, what: str) -> None:
        _wait_until(predicate, what, timeout=120.0, step_ms=20)

    window = MainWindow(Settings())
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    window.resize(*sizes[0])
    window.show()
    window.min_slider.setValue(args.min_similarity)
    window.open_start(args.folder)
    wait_until(lambda: window.search.state is not None and not window.builds.busy, "the sample catalogue")
    shown = []
    window.results_shown.connect(shown.append)
    window.query_panel.take(file_url_mime(args.query))
    wait_until(lambda: shown, "the results")
    if args.decide:
        # A decision is kept between two designs of the catalogue: search from the best match first,
        # as a user clicks a result (a dropped file is not in the catalogue).
        count = len(shown)
        window.search_match(window.model.visible_matches()[1])
        wait_until(lambda: len(shown) > count, "the search from a match")
        matches = window.model.visible_matches()
        for match, mark in ((matches[-1], window.steering.mark_same), (matches[1], window.steering.mark_different)):
            count = len(shown)
            mark(match)
            wait_until(lambda: len(shown) > count, "the decision")
    if args.select:
        window.results_view.setCurrentIndex(window.model.index(args.select))

    def thumbnails_ready() -> bool:
        view = window.results_view
        pixels = int(view.delegate.thumb_size * view.devicePixelRatioF())
        visible = [
            m for row, m in enumerate(window.model.visible_matches())
            if view.visualRect(window.model.index(row)).intersects(view.viewport().rect())
        ]
        pictures = [window.query_panel.picture, window.preview.picture]
        return all(window.cache.peek(m.path, pixels) is not None for m in visible) and all(
            p.path is None or window.cache.peek(p.path, p._wanted_pixels()) is not None for p in pictures
        )

    outputs = []
    for width, height in sizes:
        window.resize(width, height)
        wait_until(thumbnails_ready, "the thumbnails")
        settled = time.monotonic() + 0.3  # layouts that re-arrange on resize (the results header) need a few turns
        wait_until(lambda: time.monotonic() > settled, "the layout to settle")
        app.processEvents()
        out = Path(args.out_dir) / f"window-{width}x{height}.png" if args.out_dir else Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out))
        outputs.append(out)
    window.close()
    for out in outputs:
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
