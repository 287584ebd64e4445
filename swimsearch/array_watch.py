"""The array cache of the open catalogue file, handed to the search once it is checked, dropped at any change.

When a large catalogue file is opened (or re-read after an update), `ArrayWatch`
starts `python -m swimsearch.array_cache` in a low-priority process of its own:
it checks the catalogue's cache file (array_cache.py) and makes it again when
it is missing, damaged or stale. Until that process answers, searches read
rows as before; no search waits for it, and its memory and CPU are not the
window's. When it answers, the arrays are mapped and checked here once: the
signature it read, every searchable image present, a sample of embeddings
equal to the store's rows, and nothing committed to the catalogue since this
watch began.

Before every search `current` asks SQLite whether the file changed (its data
version and this connection's own changes: a few microseconds). Any change
drops the arrays until `SearchEngine.reload` makes a new watch, so a search
after an update never reads an array made before it. It also asks whether the
cache file is still the size it was opened at (an fstat): one cut short or
written over in place is dropped, searches read the catalogue, and the maker
checks it and makes it again.

`MakerWatch` is what a team catalogue's search cache (team_replica.py) shares
with it: the maker's process, its answer and the checks before a cache is used.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .array_cache import CachedArrays, CacheUnusable, cache_file, open_cache
from .array_upkeep import last_line, log_file, touch
from .errors import CatalogueError
from .mapped_pages import PageMapper, start_mapping

log = logging.getLogger(__name__)

#: Embeddings compared with the store's rows when a cache is taken into use.
SAMPLE = 16

#: Caches not made for want of disk space in this session (path: why): not tried again until it ends.
NOT_MADE: dict[Path, str] = {}

def maker_code(module: str) -> str:
    """The background process's code, running `module`.main(): lowered in priority before it imports
    anything (array_cache.main); a crash leaves its traceback in its log file (array_upkeep.log_file)."""
    return (
        "import faulthandler, os, sys\n"
        # not the working folder first (`-c` puts it there): a `swimsearch` in it (another source tree, when a
        # benchmark runs two in turns) would make the cache in another FORMAT; PYTHONPATH names this very copy
        "sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]\n"
        "faulthandler.enable()\n"
        "try:\n    os.nice(10)\nexcept (AttributeError, OSError):\n    pass\n"
        f"from {module} import main\n"
        "sys.exit(main())\n"
    )


CHILD = maker_code("swimsearch.array_build")


class MakerWatch:
    """What the search cache of an open catalogue shares, a file's (`ArrayWatch`) or a team catalogue's
    (team_replica.TeamReplica): its maker in a low-priority process of its own, started as the second search
    begins, and the maker's answer checked before the cache is taken into use.

    A subclass sets `_store` and `_path` and says how to start its maker (`_command`, `_env`).
    """

    what = "array cache"  #: the cache, as log lines name it
    kind = "catalogue"  #: the catalogue, as log lines name it
    _log = log
    _path: Path  #: the cache file (set by the subclass once it knows it)

    def __init__(self, store: Any):
        self._store = store
        self._arrays: CachedArrays | None = None
        self._mapper: PageMapper | None = None  # maps the taken cache's pages in (mapped_pages.py)
        self._proc: subprocess.Popen[bytes] | None = None
        self._asked = 0
        self._done = store is None

    @property
    def _where(self) -> str:
        """The catalogue, as log lines name it."""
        return str(self._store.path)

    def _command(self) -> list[str]:
        return [sys.executable, "-c", CHILD, str(self._store.path), str(self._path)]

    def _env(self) -> dict[str, str]:
        return _child_env()

    def _start(self) -> None:
        """Start the checking (or making) process, at low priority from its first line."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            stderr: Any = open(log_file(self._path), "wb")  # the maker's log lines, overwritten by each maker
        except OSError:
            stderr = subprocess.DEVNULL  # the maker says why in its answer
        try:
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=self._env(),
            )
        except OSError as exc:
            self._log.warning("no %s for %s: %s", self.what, self._where, exc)
            self._done = True
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()  # the child holds its own copy

    def _advance(self) -> None:
        """Start the maker as the second search begins (the first one after opening has both cores to
        itself); take its answer once it ended (said why once when not: not tried again by this watch)."""
        if self._proc is None:
            self._asked += 1
            if self._asked >= 2:
                self._start()
        elif self._proc.poll() is not None:
            self._arrays = self._take(self._answer())
            self._proc = None
            self._done = self._arrays is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background process and the mapping in of its pages (tests, benchmarks); whether the cache is in use."""
        deadline = None if timeout is None else time.monotonic() + timeout  # both waits together: `timeout` at most
        if self._proc is None and self._arrays is None and not self._done:
            self._start()
        if self._proc is not None and not self._done:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        arrays = self.current()
        if self._mapper is not None:  # and for its pages to be mapped in (what a search reads from then on)
            self._mapper.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return arrays is not None

    def current(self) -> CachedArrays | None:  # pragma: no cover - each watch says when its cache holds
        raise NotImplementedError

    def stop(self) -> None:
        """End the background process (a newer watch replaces this one)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # it removes its own work files (array_cache.main)
        self.close()

    def close(self) -> None:
        """The engine closes (the window closes its catalogue): the mapping in of the cache's pages ends now, not
        seconds later on a thread of its own; a maker still running finishes its cache on its own, as before."""
        self._done = True
        self._let_go()

    def _let_go(self) -> None:
        """Drop the cache (a change, a newer watch): its pages are no longer mapped in."""
        self._arrays = None
        if self._mapper is not None:
            self._mapper.stop()
            self._mapper = None

    def _answer(self) -> dict[str, Any]:
        assert self._proc is not None
        out = self._proc.stdout.read() if self._proc.stdout is not None else b""
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        try:
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError, UnicodeDecodeError):
            last = last_line(log_file(self._path))
            answer = {"error": f"the cache process ended with {self._proc.returncode} and no answer"
                      + (f"; the last line of its log {log_file(self._path)}: {last}" if last else "")}
        return answer if isinstance(answer, dict) else {"error": "an answer that is not an object"}

    def _take(self, answer: dict[str, Any]) -> CachedArrays | None:
        if "skipped" in answer:  # not enough disk space: one warning, not tried again this session
            NOT_MADE[self._path] = str(answer["skipped"])
            self._log.warning("%s", answer["skipped"])
            return None
        if "error" in answer:
            self._log.warning("no %s for %s: %s (its log: %s)", self.what, self._where, answer["error"], log_file(self._path))
            return None
        if not self._unchanged():
            return None
        try:
            arrays = open_cache(self._path)
        except CacheUnusable as exc:
            self._log.warning("the %s %s %s: not used", self.what, self._path, exc)
            return None
        why = self._unfit(arrays, answer)
        if why is None and not self._sample_matches(arrays):
            why = f"differs from the {self.kind}'s rows"
        if why is not None:
            self._log.warning("the %s %s %s: not used", self.what, self._path, why)
            return None
        touch(self._path)  # taken into use: kept by the makers' pruning (array_upkeep.prune)
        self._took(arrays, answer)
        self._mapper = start_mapping((arrays.ids, arrays.embeddings, arrays.augmented, arrays.whitened), arrays.mapped_in, self.what)
        self._log.info("searching %s with its %s %s (%d images)", self._where, self.what, self._path, len(arrays))
        return arrays

    def _unchanged(self) -> bool:
        """Whether the catalogue is still as it was when the maker began (asked before the cache is opened)."""
        return True

    def _unfit(self, arrays: CachedArrays, answer: dict[str, Any]) -> str | None:
        """Why the cache the maker answered for cannot serve (None: it can)."""
        return "was replaced meanwhile" if arrays.signature != answer.get("signature") else None

    def _took(self, arrays: CachedArrays, answer: dict[str, Any]) -> None:
        """The cache is taken into use."""

    def _sample_ids(self, arrays: CachedArrays) -> np.ndarray:
        return arrays.ids

    def _sample_matches(self, arrays: CachedArrays) -> bool:
        """A sample of embeddings equal to the store's rows."""
        ids = self._sample_ids(arrays)
        if not len(ids):
            return True
        picks = np.unique(np.random.default_rng().choice(ids, min(SAMPLE, len(ids)), replace=False))
        try:
            stored = self._store.embedding_matrix(picks.tolist())
        except CatalogueError:
            return False
        held = arrays.raw(arrays.rows(stored.ids))
        return len(stored.ids) == len(picks) and np.array_equal(held, stored.vectors.astype(np.float32))


class ArrayWatch(MakerWatch):
    """The array cache of one open catalogue file, from a background process.

    Args:
        reader: the engine's reader (a Catalogue or a SqliteStore; other stores get no cache).
        searchable: the ids the engine's searcher holds (sorted): each must be in the cache.
        directory: where cache files go (None: array_cache.cache_dir()).
    """

    def __init__(self, reader: Any, searchable: np.ndarray, directory: Path | None = None):
        from .stores.sqlite import SqliteStore

        store = getattr(reader, "store", reader)
        super().__init__(store if isinstance(store, SqliteStore) else None)
        self._searchable = np.asarray(searchable, dtype=np.int64)
        if self._store is None:
            return
        self._token: tuple[int, int] = (-1, -1)
        try:
            self._path = cache_file(self._store, directory)
            self._token = self._store.change_token()
        except (OSError, ValueError, CatalogueError) as exc:
            log.warning("no array cache for %s: %s", getattr(self._store, "path", "?"), exc)
            self._done = True
            return
        if self._path in NOT_MADE:  # said once already; a search reads the catalogue's rows
            log.debug("no array cache for %s: %s", self._store.path, NOT_MADE[self._path])
            self._done = True

    def current(self) -> CachedArrays | None:
        """The checked arrays when they are ready and the catalogue has not changed since; else None."""
        if self._arrays is not None:
            if self._store.change_token() != self._token:
                log.info("the catalogue changed: its array cache is not used until it is re-read")
                self._let_go()
                self._done = True
            elif self._arrays.resized():  # an fstat: a file cut short or written over in place would fail reads
                log.warning("the array cache %s was cut short or changed in place while in use: searches read the "
                            "catalogue while it is checked and made again", self._path)
                self._let_go()  # not done: `_advance` starts the maker again
            else:
                return self._arrays
        if not self._done:
            self._advance()
        return self._arrays

    def after_own_write(self) -> None:
        """This engine wrote something the arrays do not hold (a decision): keep them, unless another
        connection committed meanwhile."""
        if self._store is not None and self._token[0] >= 0 and self._store.change_token()[0] == self._token[0]:
            self._token = self._store.change_token()

    def accept_change(self) -> None:
        """Another connection committed only what the arrays do not hold (its decisions: the engine compared
        the content signature): keep them."""
        if self._store is not None and self._token[0] >= 0:
            self._token = self._store.change_token()

    def _unchanged(self) -> bool:
        if self._store.change_token() != self._token:
            log.info("the catalogue changed while its array cache was made: not used until it is re-read")
            return False
        return True

    def _unfit(self, arrays: CachedArrays, answer: dict[str, Any]) -> str | None:
        if arrays.signature != answer.get("signature"):
            return "was replaced meanwhile"
        return "lacks searchable images" if np.any(arrays.rows(self._searchable) < 0) else None

    def _sample_ids(self, arrays: CachedArrays) -> np.ndarray:
        return self._searchable


def _child_env() -> dict[str, str]:
    """This environment, with this very copy of the package first on the child's import path."""
    here = str(Path(__file__).resolve().parent.parent)  # not `import swimsearch`: a package loaded under another name
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "SWIMSEARCH_ARRAY_ASKER": str(os.getpid())}
