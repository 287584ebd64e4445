"""Watched folders: the open catalogue is updated by itself when pictures in its folder change.

Catalogue ▸ Watch the folder for changes, remembered per catalogue (a team
watches the folder it works in, not the large archive on a share). While on:

* a QFileSystemWatcher watches the catalogue's folder and its subfolders (at
  most `MAX_WATCHED` of them: watchers are a limited resource);
* a change starts a short quiet period (`QUIET_MS`), so a copy of 300 files
  is one update, not 300; then the changed folders are listed again on a
  worker thread and compared with what they held: only a picture added,
  removed or changed counts (the catalogue's own files, which an update
  writes, never do, so an update cannot set off another);
* every `RESCAN_MS` all folders are listed again anyway, because watchers
  miss changes on network shares and beyond their limit;
* the update itself is F5's: the same progress line, Cancel and summary. It
  waits while a build runs, a search is under way or the duplicate review
  moves files, and starts as soon as they are done.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PyQt5.QtCore import QFileSystemWatcher, QObject, QTimer
from PyQt5.QtWidgets import QMainWindow

from swimsearch.images import is_image_path

from .workers import Job, Worker

if TYPE_CHECKING:
    from .session_types import CatalogueState

log = logging.getLogger(__name__)

QUIET_MS = 2000
RESCAN_MS = 5 * 60 * 1000
MAX_WATCHED = 1000


@dataclass(frozen=True)
class Listing:
    """What one folder holds that matters: its pictures (name, size, mtime) and its subfolders."""

    pictures: frozenset[tuple[str, int, float]]
    folders: frozenset[str]


def list_folder(path: str) -> Listing | None:
    """One folder's pictures and subfolders, hidden ones left out as the scan does (None: it is gone)."""
    pictures, folders = set(), set()
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir():
                        folders.add(entry.name)
                    elif is_image_path(entry.name):
                        info = entry.stat()
                        pictures.add((entry.name, info.st_size, info.st_mtime))
                except OSError:
                    continue
    except OSError:
        return None
    return Listing(frozenset(pictures), frozenset(folders))


def list_tree(root: str, folders: list[str] | None, limit: int) -> tuple[dict[str, Listing], bool]:
    """Listings of `folders` (None: the whole tree under `root`), new subfolders included, up to `limit` folders.

    Returns the listings and whether the tree had more folders than `limit`.
    """
    todo = list(folders) if folders is not None else [root]
    listings: dict[str, Listing] = {}
    truncated = False
    while todo:
        path = todo.pop()
        if path in listings:
            continue
        if len(listings) >= limit:
            truncated = True
            break
        listing = list_folder(path)
        if listing is None:
            continue
        listings[path] = listing
        if folders is None:
            todo.extend(os.path.join(path, name) for name in sorted(listing.folders))
    return listings, truncated


class ListWorker(Worker):
    doing = "checking the folder for changes"

    def __init__(self, root: str, folders: list[str] | None):
        super().__init__()
        self._root, self._folders = root, folders

    def work(self) -> tuple[dict[str, Listing], bool]:
        return list_tree(self._root, self._folders, MAX_WATCHED)


class FolderWatch(QObject):
    """Watches the open catalogue's folder when the user asked for it, and updates the catalogue on a change."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window: Any = window  # ui.main_window.MainWindow (which imports this module)
        self.root: str | None = None
        self.listings: dict[str, Listing] = {}
        self.truncated = False
        self.job: Job | None = None
        self.update_due = ""  # why an update is due ("": none is)
        self._dirty: set[str] = set()
        self._recheck = False
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._on_directory_changed)
        self.quiet = QTimer(self, singleShot=True, interval=QUIET_MS)
        self.quiet.timeout.connect(self._check)
        self.rescan = QTimer(self, interval=RESCAN_MS)
        self.rescan.timeout.connect(self._check_all)
        session = window.session
        session.catalogue_ready.connect(self._on_catalogue_ready)
        window.builds.idle.connect(self._update_if_due)
        session.results_shown.connect(lambda _result: self._update_if_due())
        session.query_failed.connect(lambda _message: self._update_if_due())
        window.duplicates.busy_changed.connect(lambda busy: None if busy else self._update_if_due())

    @property
    def watching(self) -> bool:
        return self.root is not None

    def set_enabled(self, on: bool) -> None:
        """Watch the open catalogue's folder or stop (Catalogue ▸ Watch the folder for changes); remembered."""
        state = self._window.session.catalogue
        if state is None:
            return
        settings = self._window.settings
        watched = [p for p in settings["watch/catalogues"] if p != state.path]
        settings["watch/catalogues"] = watched + [state.path] if on else watched
        self._follow(state)
        if on:
            self._window.statusBar().showMessage(
                f"Watching the folder of “{state.name}”: new, changed and deleted pictures are read by themselves.", 8000)

    def _on_catalogue_ready(self, state: CatalogueState) -> None:
        self._follow(state)

    def _follow(self, state: CatalogueState) -> None:
        wanted = (state.path in self._window.settings["watch/catalogues"] and not state.readonly and state.root_exists)
        self._window.session.set_watching(wanted)
        if not wanted:
            self.stop_watching()
        elif self.root != state.root:
            self.stop_watching()
            self.root = state.root
            self.update_due = "Watching its folder"  # it may have changed while nobody watched: catch up once
            self._list(None)
            self.rescan.start()
            self._update_if_due()

    def stop_watching(self) -> None:
        self.root = None
        self.listings = {}
        self._dirty.clear()
        self.update_due = ""
        self.quiet.stop()
        self.rescan.stop()
        paths = self.watcher.directories()
        if paths:
            self.watcher.removePaths(paths)

    # --- noticing changes -------------------------------------------------------------------

    def _on_directory_changed(self, path: str) -> None:
        self._dirty.add(path)
        self.quiet.start()  # restarted by every event: one check after the burst

    def _check(self) -> None:
        dirty, self._dirty = sorted(self._dirty), set()
        if dirty:
            self._list(dirty)

    def _check_all(self) -> None:
        if self.truncated:  # folders beyond the watcher's limit: only a full update sees them
            self.update_due = self.update_due or "Checked its folder"
            self._update_if_due()
        else:
            self._list(list(self.listings))

    def _list(self, folders: list[str] | None) -> None:
        if self.root is None:
            return
        if self.job is not None:
            self._dirty.update(folders or [self.root])
            self._recheck = True
            return
        root = self.root
        worker = ListWorker(root, folders)
        worker.result_ready.connect(lambda answer: self._on_listed(root, folders, *answer))
        self.job = Job(worker, "watch")
        self.job.thread.finished.connect(self._on_list_finished)
        self.job.start()

    def _on_listed(self, root: str, folders: list[str] | None, listings: dict[str, Listing], truncated: bool) -> None:
        if root != self.root:
            return  # the catalogue changed meanwhile
        if folders is None:
            self.listings, self.truncated = listings, truncated
        else:
            changed = [f for f in folders if listings.get(f) != self.listings.get(f)]
            new = [os.path.join(f, n) for f in changed if f in listings
                   for n in listings[f].folders - (self.listings[f].folders if f in self.listings else frozenset())]
            for f in folders:
                if f in listings:
                    self.listings[f] = listings[f]
                else:
                    self.listings.pop(f, None)
            if new:
                self._dirty.update(new)  # list the new subfolders too, and watch them
                self.quiet.start()
            if changed:
                log.info("pictures changed in %s", ", ".join(changed))
                self.update_due = "The folder changed"
        missing = [f for f in self.listings if f not in self.watcher.directories()]
        room = MAX_WATCHED - len(self.watcher.directories())
        if missing and room > 0:
            self.watcher.addPaths(missing[:room])
        self.truncated = self.truncated or len(missing) > room
        self._update_if_due()

    def _on_list_finished(self) -> None:
        self.job = None
        if self._recheck:
            self._recheck = False
            self.quiet.start()

    # --- updating -------------------------------------------------------------------------------

    def _update_if_due(self) -> None:
        """Start F5's update when one is due and nothing it could fight with runs."""
        window = self._window
        if not self.update_due or self.root is None:
            return
        if window.builds.busy or window.search.pending is not None or window.duplicates.busy:
            return  # tried again when the build, the search or the move is done
        why, self.update_due = self.update_due, ""
        window.session.update(why=why)

    def stop(self) -> None:
        """Stop watching and wait for a listing in progress (closing the window)."""
        self.stop_watching()
        if self.job is not None:
            self.job.stop()
