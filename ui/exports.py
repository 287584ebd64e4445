"""What leaves the window: the matches shown as CSV, as a contact sheet (PDF or HTML), or as text.

Each works on exactly what the grid shows (the result cut by the filters).
The contact sheet decodes every thumbnail, which takes a few seconds for a
long list, so it is made on a worker thread behind a progress dialog with
Cancel; the engine (`swimsearch.sheet`) writes it atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QObject, Qt
from PyQt5.QtWidgets import QApplication, QMainWindow, QProgressDialog

from swimsearch.export import as_text, write_csv
from swimsearch.sheet import SheetInfo, SheetQuery, write_sheet

from . import dialogs
from .errors import plain_message
from .formatting import count_matches, filters_in_words
from .queries import PictureQuery
from .workers import Job, Worker

log = logging.getLogger(__name__)


class SheetWorker(Worker):
    """Writes one contact sheet; progress is pictures done of all pictures."""

    doing = "making the contact sheet"

    def __init__(self, path: str, query: SheetQuery, info: SheetInfo):
        super().__init__()
        self._path, self._query, self._info = path, query, info

    def work(self) -> int:
        return write_sheet(
            self._path, [self._query], self._info,
            progress=lambda done, total: self.progress_changed.emit("sheet", done, total), should_stop=self.should_stop,
        )


class Exports(QObject):
    """The window's Export, Export as contact sheet and Copy list commands."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window: Any = window  # ui.main_window.MainWindow (which imports this module)
        self.sheet_job: Job | None = None
        self.progress: QProgressDialog | None = None

    def _shown(self) -> tuple[Any, Any, Any] | None:
        """(visible result, history entry, catalogue state), or None when nothing is shown."""
        window = self._window
        result, shown, state = window.model.visible_result(), window.session.shown, window.session.catalogue
        if result is None or not result.matches or shown is None or state is None:
            return None
        return result, shown, state

    def _ask_path(self, chooser, suggested_name: str) -> str:
        settings = self._window.settings
        folder = settings["dialogs/export_folder"] or str(Path.home())
        return chooser(self._window, str(Path(folder) / suggested_name))

    def _remember_folder(self, path: str) -> None:
        """The folder of an export that was written: the next export starts there (a failed one's is not kept)."""
        self._window.settings["dialogs/export_folder"] = str(Path(path).parent)

    def csv(self) -> None:
        """Save the matches shown as CSV, with its sidecar (Ctrl+E)."""
        shown = self._shown()
        if shown is None:
            return
        result, entry, state = shown
        path = self._ask_path(dialogs.choose_csv_path, f"matches-{entry.request.export_stem(result)}.csv")
        if not path:
            return
        session = self._window.session
        try:
            count = write_csv(
                [result], path, catalogue=state.path, model=state.model_name, model_sha256=state.model_sha256,
                filters=filters_in_words(session.filters, session.mirror),
            )
        except Exception as exc:  # noqa: BLE001 - disk full, permission denied, ...: tell the user
            self._window.show_error(plain_message(exc, "exporting the matches"))
            return
        self._remember_folder(path)
        self._window.statusBar().showMessage(f"Exported {count_matches(count)} to {path}", 8000)

    def sheet(self) -> None:
        """Save the matches shown as a contact sheet, PDF or HTML (Ctrl+Shift+E)."""
        shown = self._shown()
        if shown is None or self.sheet_job is not None:
            return
        result, entry, state = shown
        request = entry.request
        path = self._ask_path(dialogs.choose_sheet_path, f"sheet-{request.export_stem(result)}.pdf")
        if not path:
            return
        session = self._window.session
        picture = request.image if isinstance(request, PictureQuery) else None
        query = SheetQuery(result, picture, request.title(result))
        info = SheetInfo(state.name, state.root, state.model_name, filters_in_words(session.filters, session.mirror))
        worker = SheetWorker(path, query, info)
        progress = self.progress = QProgressDialog("Making the contact sheet…", "Cancel", 0, 0, self._window)
        progress.setObjectName("sheetProgress")
        progress.setWindowTitle("Export as contact sheet")
        progress.setWindowModality(Qt.WindowModal)
        progress.setMinimumDuration(400)  # a short list never flashes a dialog
        progress.canceled.connect(worker.cancel)
        worker.progress_changed.connect(lambda _phase, done, total: (progress.setMaximum(total), progress.setValue(done)))
        worker.result_ready.connect(lambda count: self._on_sheet_written(path, count))
        worker.failed.connect(self._window.show_error)
        job = self.sheet_job = Job(worker, "sheet")
        job.thread.finished.connect(self._on_sheet_finished)
        job.start()

    def _on_sheet_written(self, path: str, count: int) -> None:
        self._remember_folder(path)
        self._window.statusBar().showMessage(f"Saved a contact sheet of {count_matches(count)} to {path}", 10_000)

    def _on_sheet_finished(self) -> None:
        self.sheet_job = None
        if self.progress is not None:
            self.progress.reset()
            self.progress.deleteLater()
            self.progress = None

    def stop(self) -> None:
        """Cancel a sheet being made and wait for its thread (closing the window)."""
        if self.sheet_job is not None:
            self.sheet_job.stop()

    def copy_list(self) -> None:
        """Put the matches shown on the clipboard as text (Ctrl+Shift+C)."""
        result = self._window.model.visible_result()
        if result is None or not result.matches:
            return
        QApplication.clipboard().setText(as_text(result))
        self._window.statusBar().showMessage(f"Copied {count_matches(len(result.matches))} to the clipboard", 5000)
