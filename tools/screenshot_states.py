"""Screenshots of every state of the window at its minimum size, 800 x 600, to look at the layout.

Copies the sample photos into a throwaway folder with one unreadable file
added, builds it with the real model (the user's own settings and
catalogues are never touched), then grabs the window and each view and
dialog in turn:

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot_states.py --out-dir /tmp/states
    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot_states.py --out-dir docs --only review,results

Files: window-800x600-<state>.png (start, building, results, failed-query,
narrow-filters), review-800x600.png, unreadable.png, shortcuts.png,
open-dialog.png, error-dialog.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (800, 600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default="/tmp/swimsearch-states")
    parser.add_argument("--only", default="", help="comma-separated names to write (default: all)")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}

    scratch = Path(tempfile.mkdtemp(prefix="swimsearch-states-"))
    os.environ["SWIMSEARCH_USER_DATA"] = str(scratch / "user-data")
    folder = scratch / "designs"
    shutil.copytree(ROOT / "resources" / "sample", folder, ignore=shutil.ignore_patterns("*.md"))
    (folder / "notes.jpg").write_text("a text file named .jpg")

    from PyQt5.QtCore import QCoreApplication, QSettings, Qt
    from PyQt5.QtWidgets import QApplication, QListView

    from tools.qt_wait import wait_until as _wait_until
    from ui import dialogs
    from ui.file_preview import ImageFileDialog
    from ui.main_window import MainWindow
    from ui.query_panel import file_url_mime
    from ui.settings import Settings
    from ui.style import app_icon, apply_app_style

    QCoreApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(scratch / "settings"))
    app = QApplication(sys.argv[:1])
    apply_app_style(app)
    app.setWindowIcon(app_icon())
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def wait_until(predicate, what: str, timeout: float = 180.0) -> None:
        _wait_until(predicate, what, timeout=timeout, step_ms=20)

    def settle(seconds: float = 0.4) -> None:
        until = time.monotonic() + seconds
        wait_until(lambda: time.monotonic() > until, "the layout to settle")

    def save(widget, name: str) -> None:
        if only and name.split(".")[0] not in only:
            return
        settle()
        widget.grab().save(str(out / name))
        print(f"wrote {out / name}")

    window = MainWindow(Settings())
    window.resize(*SIZE)
    window.show()
    building = []
    window.build_progress_changed.connect(lambda phase, done, total: building.append((phase, done)))
    window.open_path(str(folder))
    wait_until(lambda: any(phase == "embed" and done >= 8 for phase, done in building), "the build to be under way")
    save(window, "window-800x600-building.png")
    wait_until(lambda: window.search.state is not None and not window.builds.busy, "the build")
    save(window, "window-800x600-start.png")

    shown = []
    window.results_shown.connect(shown.append)
    window.query_panel.take(file_url_mime(str(folder / "shorts-04.jpg")))
    wait_until(lambda: shown, "the results")
    wait_until(lambda: window.cache.peek(window.model.match_at(1).path, 168) is not None, "the thumbnails")
    save(window, "window-800x600-results.png")

    failed = []
    window.query_failed.connect(failed.append)
    window.query_panel.take(file_url_mime(str(folder / "notes.jpg")))
    wait_until(lambda: failed, "the failed query")
    save(window, "window-800x600-failed-query.png")
    from PyQt5.QtWidgets import QMessageBox

    for box in window.findChildren(QMessageBox):
        save(box, "error-dialog.png")
        box.close()

    window.min_slider.setValue(40)
    save(window, "window-800x600-filters.png")
    window.min_slider.setValue(0)

    window.unreadable_link.click()
    from ui.unreadable import UnreadableDialog

    dialog = window.findChild(UnreadableDialog)
    wait_until(lambda: dialog.table.rowCount() == 1, "the unreadable list")
    save(dialog, "unreadable.png")
    dialog.close()

    window.shortcuts_action.trigger()
    from ui.shortcuts import ShortcutsDialog

    shortcuts = window.findChild(ShortcutsDialog)
    save(shortcuts, "shortcuts.png")
    shortcuts.close()

    picker = ImageFileDialog(window, "Search with a design", str(folder), dialogs.IMAGE_FILTER, window.cache)
    picker.show()
    files = picker.findChild(QListView, "listView")
    wait_until(lambda: files.model().rowCount(files.rootIndex()) > 30, "the folder listing")
    row = next(r for r in range(files.model().rowCount(files.rootIndex()))
               if files.model().index(r, 0, files.rootIndex()).data() == "dress-02.jpg")
    files.setCurrentIndex(files.model().index(row, 0, files.rootIndex()))
    wait_until(lambda: picker.preview.path is not None and "px" in picker.details.text(), "the preview")
    save(picker, "open-dialog.png")
    picker.reject()

    window.duplicates_action.trigger()
    from ui.duplicate_view import DuplicateReviewDialog

    review = window.findChild(DuplicateReviewDialog)
    review.resize(*SIZE)
    wait_until(lambda: window.duplicates.catalogue_path is not None and not window.duplicates.busy, "the groups")
    wait_until(lambda: review.left.view.has_picture() and review.right.view.has_picture(), "the pictures")
    review.pair.zoom_by(1.6)
    save(review, "review-800x600.png")
    review.close()
    window.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
