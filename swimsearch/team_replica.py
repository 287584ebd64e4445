"""A team catalogue's search cache on the client: the array cache of a catalogue file, made from the server.

A large catalogue file is searched from its array cache (array_cache.py):
memory-mapped embeddings, augmented and same-design vectors and records, so
a search reads no row. A team catalogue's search used to bring all of that
over the wire for every candidate, every search (postgres_prefetch.py), and
decode it here. `TeamReplica` gives a team catalogue the same cache, in the
same format, made by the same code (array_build.build, over the server's rows
read in one REPEATABLE READ transaction: stores/postgres_arrays.py), in a
low-priority background process started from the second search, in the
user's cache folder under ``team/`` (`cache_dir`), named after the
catalogue's identity on its server (the server's system identifier where the
login may read it, the database and the catalogue; never its address or
password, so two addresses of one server share it).

The server still finds the candidates with its HNSW index. Its statement
also returns the catalogue's change counter (postgres_arrays.CHANGED), in the
same round trip: when it is the counter the replica was made at, the server
sent only ids, sims, codes and re-ranking vectors, and the engine ranks from
the replica exactly as from a catalogue file's cache; when another user
changed the catalogue since, the replica is dropped (`stale`), that search
is made again the way it was made without one (the searcher raises
stores.postgres_arrays.ReplicaStale), and a new replica is made in the background.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import array_watch
from .array_cache import CachedArrays, CacheUnusable, cache_dir, signature, verify
from .array_upkeep import NO_ROOM, prune, room_for
from .array_watch import MakerWatch, _child_env, maker_code

log = logging.getLogger(__name__)

TEAM_CACHE_ENV = "SWIMSEARCH_TEAM_CACHE_DIR"  # where team catalogues' caches go (benchmarks: beside other caches)
PASSWORD_ENV = "PGPASSWORD"  # libpq's own: how the maker logs in as this client did (never on its command line)

CHILD = maker_code("swimsearch.team_replica")


def replica_file(store: Any, directory: Path | None = None) -> Path:
    """Where the search cache of an open team catalogue lives: named by its identity on its server."""
    from .stores.postgres_arrays import catalogue_identity

    identity = catalogue_identity(store)
    database, key = str(identity[1]), json.dumps(identity)
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", f"{database}-{store.address.catalogue}")[:40]
    return (directory or team_cache_dir()) / f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.swimarrays"


def team_cache_dir() -> Path:
    """$SWIMSEARCH_TEAM_CACHE_DIR, else `team/` in the folder of catalogue files' caches (array_cache.cache_dir)."""
    override = os.environ.get(TEAM_CACHE_ENV)
    return Path(override) if override else cache_dir() / "team"


class TeamReplica(MakerWatch):
    """The search cache of one open team catalogue (a `TeamReplica` for the engine is what an
    `ArrayWatch` is for a catalogue file, and shares its maker's handling): made in the background, taken
    for each search, dropped when stale.

    Args:
        store: the open PostgresStore.
        directory: where replicas go (None: `team_cache_dir`).
    """

    what = "search cache"
    kind = "team catalogue"
    _log = log

    def __init__(self, store: Any, directory: Path | None = None):
        super().__init__(store)
        self._size = -1  # the replica's size when taken: a file cut short under a held one is not read
        self.taken: CachedArrays | None = None  # the arrays the current search took (PgSearcher reads it)
        self.counter: tuple[int, int] | None = None  # the change counter they were made at
        try:
            self._path = replica_file(store, directory)
        except Exception as exc:  # noqa: BLE001 - no cache is no error: searches bring their rows as before
            log.warning("no search cache for %s: %s", store.location, exc)
            self._done = True
            return
        if self._path in array_watch.NOT_MADE:
            self._done = True

    @property
    def path(self) -> Path:
        return self._path

    @property
    def _where(self) -> str:
        return str(self._store.location)

    def current(self) -> CachedArrays | None:
        """The replica when it is made and checked and not known to be stale (asked as each search begins)."""
        if self._arrays is not None and self._held_size() != self._size:  # an fstat: microseconds
            log.warning("the search cache %s was cut short or replaced in place while in use: made again", self._path)
            self.stale(self.counter or (-1, -1))
        if self._arrays is None and not self._done:
            self._advance()
        self.taken = self._arrays
        return self._arrays

    def _held_size(self, arrays: CachedArrays | None = None) -> int:
        """The size of the file a replica reads (a replica made again is a new file: not this one)."""
        file = getattr(self._arrays if arrays is None else arrays, "file", None)
        if file is None:  # read through its maps (no pread, or no rows): the path may be another window's new replica
            return self._size
        try:
            return os.fstat(file.fileno()).st_size
        except (OSError, ValueError):
            return -2

    def stale(self, counter: tuple[int, int]) -> None:
        """The server's change counter moved past the replica's: drop it and make it again in the background."""
        log.info("the team catalogue %s changed (%s, the search cache was made at %s): made again",
                 self._store.location, counter, self.counter)
        self._let_go()
        self.taken = self.counter = None
        if self._proc is None:
            self._start()

    def after_own_write(self) -> None:
        """A decision changes nothing a replica holds."""

    accept_change = after_own_write

    def stop(self) -> None:
        super().stop()
        self.taken = None

    def _command(self) -> list[str]:
        return [sys.executable, "-c", CHILD, self._store.address.display, str(self._path)]

    def _env(self) -> dict[str, str]:
        env = _child_env()
        password = getattr(self._store._conn.info, "password", None)
        if password:
            env[PASSWORD_ENV] = password
        return env

    def _unfit(self, arrays: CachedArrays, answer: dict[str, Any]) -> str | None:
        if not isinstance(answer.get("counter"), list):
            return "was replaced meanwhile"
        return super()._unfit(arrays, answer)

    def _took(self, arrays: CachedArrays, answer: dict[str, Any]) -> None:
        self._size = self._held_size(arrays)
        self.counter = (int(answer["counter"][0]), int(answer["counter"][1]))


# --- the maker (in its own low-priority process) ---------------------------------------------------


def ensure(address: str, path: Path) -> dict[str, Any]:
    """Check the replica of a team catalogue and make it again when it is missing, damaged or stale.

    Returns {"signature", "counter", "made"} (the change counter the replica holds the catalogue at), or
    {"skipped": why} when the disk lacks room.
    """
    from . import array_build
    from .stores.postgres import PostgresStore
    from .stores.postgres_arrays import ArraySource

    path.parent.mkdir(parents=True, exist_ok=True)
    with array_build.only_maker(path):
        for left in path.parent.glob(f".{glob.escape(path.name)}.*"):  # a maker killed outright left these
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)
        prune(path.parent, keep=path)
        store = PostgresStore.open(address, readonly=True)
        try:
            source = ArraySource(store, store.location)
            with source.read_snapshot():
                now = signature(source)
                counter = source.counter
            if path.exists():
                try:
                    if verify(path, array_build.check_wanted) == now:
                        return {"signature": now, "counter": list(counter or ()), "made": False}
                except CacheUnusable as exc:
                    log.warning("the search cache %s %s: made again", path, exc)
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            with source.read_snapshot():
                cache_bytes, work_bytes = array_build.planned_bytes(source)
            short = room_for(path.parent, cache_bytes, work_bytes, store.location)
            if short is not None:
                log.warning("%s", short)
                return {"skipped": short}
            try:
                made = array_build.build(source, path)
            except OSError as exc:
                if "No space" not in str(exc):
                    raise
                return {"skipped": f"{NO_ROOM} for the search cache of {store.location} ({exc}); searches bring their rows"}
            return {"signature": made, "counter": list(source.counter or ()), "made": True}
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m swimsearch.team_replica ADDRESS CACHE_FILE`: ensure the replica; one JSON line on stdout."""
    from . import array_build

    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    if len(args) != 2:
        print("usage: python -m swimsearch.team_replica ADDRESS CACHE_FILE", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    array_build.made_for(int(os.environ.get("SWIMSEARCH_ARRAY_ASKER") or os.getppid()))
    try:
        result = ensure(args[0], Path(args[1]))
    except Exception as exc:  # noqa: BLE001 - searches go on without it: say why, in one line
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def cache_watch(reader: Any, searcher: Any, held: np.ndarray, config: Any) -> Any:
    """The search cache a catalogue is searched from, if any: a catalogue file's array cache (`ArrayWatch`)
    once the engine holds as many searchable images as `EngineConfig.array_cache_needed_from`, a team
    catalogue's replica (`TeamReplica`, handed to its server searcher) once it has as many designs."""
    from .array_watch import ArrayWatch

    needed_from = config.array_cache_needed_from
    if needed_from is None:
        return None
    if len(held) >= needed_from:
        return ArrayWatch(reader, held)
    if searcher is not None and hasattr(searcher, "replica") and len(searcher) >= needed_from:
        searcher.replica = replica = TeamReplica(getattr(reader, "store", reader))
        return replica
    return None


def search_done(watch: Any) -> None:
    """A search ended: a team catalogue's server searcher brings its rows again until the next one takes
    the replica (a search outside one, for a design's neighbours or the adapted ranking, reads no replica)."""
    if isinstance(watch, TeamReplica):
        watch.taken = None
