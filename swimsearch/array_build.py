"""Making and checking the array cache of a catalogue file (array_cache.py), in a process of its own.

`python -m swimsearch.array_build CATALOGUE CACHE_FILE` (array_watch.py starts
it at low priority) checks the cache file against the catalogue's signature and
every array's CRC-32, and makes it again when it is missing, damaged or stale:
everything read in one read transaction, the arrays filled in place in a
temporary file beside it, synced and renamed into place. It stops, leaving no
work files, when the process that asked for it ends.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .array_cache import (
    ALIGN, ASK, FORMAT, HAS_PHASH, HEADER, HELD, MAGIC, CacheUnusable, calibration_key, row_fields, row_views, signature, verify,
)
from .array_upkeep import NO_ROOM, prune, reserve, room_for
from .calibration import shipped_calibration
from .index import FittedIndex
from .neighbours import NeighbourLists, VectorTable, augmented

log = logging.getLogger(__name__)

CHUNK = 8192
PARENT_ENV = "SWIMSEARCH_ARRAY_ASKER"  # the pid of the process that asked for the cache (array_watch._child_env)

#: The process that asked for the cache (set by `main`): when it ends, so does the making (`_still_wanted`).
_PARENT: int | None = None


class Abandoned(Exception):
    """The process that asked for the cache has ended: stop, leaving no work files."""


def _still_wanted() -> None:
    if _PARENT is not None and os.getppid() != _PARENT:
        raise Abandoned("the process that asked for it has ended")


#: Raises Abandoned once the asking process has ended (for other makers: team_replica.py).
check_wanted = _still_wanted


def made_for(pid: int) -> None:
    """Make the cache for the process `pid`: the making stops (Abandoned) when it ends, as `main` does for its asker."""
    global _PARENT
    _PARENT = pid


def _stored_embeddings(store: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every stored embedding (tombstones too: `embedding_matrix` answers for them), by id, checked."""
    for ids, vectors in store.iter_stored_embeddings():
        yield np.asarray(ids, np.int64), vectors


def build(store: Any, path: Path) -> str:
    """Write the cache of an open catalogue (any SqliteStore) to `path`, atomically; returns its signature.

    Everything is read in one read transaction, so the signature is that of the arrays written. The
    arrays are filled in place in the temporary file; the only work file beside it is the prepared
    vectors the augmented ones are made from (2.5 GB per million images), removed at the end.
    """
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.read_snapshot():
        sign = signature(store)
        fitted: FittedIndex | None = store.fitted()
        calibration = shipped_calibration(store.file.meta("model_sha256"))
        dim = int(store.file.meta("embedding_dim") or 0)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.making-") as folder:
            work = Path(folder)
            parts = list(_spill(_stored_embeddings(store), work, dim))
            ids = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
            if len(ids) > 1 and np.any(np.diff(ids) <= 0):
                raise ValueError("the store gave its embeddings out of order")
            n = len(ids)
            width = _width(calibration, dim)
            fields, row_bytes = row_fields(dim, width, fitted is not None and fitted.augmented)
            info = {"signature": sign, "calibration": calibration_key(calibration),
                    "catalogue": str(Path(store.path).resolve()), "made": time.time()}
            with _output(path, {"ids": ("<i8", (n,)), "rows": ("|u1", (n, row_bytes))}, {**info, "fields": fields}) as out:
                if n:
                    out["ids"][:] = ids
                    row = row_views(out["rows"], fields)
                    _records(store, ids, row)
                prepared = None
                if fitted is not None:  # sparse: each part's rows are claimed as they are written
                    prepared = np.memmap(work / "prepared.f16", dtype=np.float16, mode="w+", shape=(max(n, 1), dim))[:n]
                at = 0
                for part_ids, part in parts:
                    _still_wanted()
                    raw = np.fromfile(part, dtype=np.float16).reshape(len(part_ids), dim)
                    part.unlink()
                    rows = slice(at, at + len(raw))
                    wide = raw.astype(np.float32)
                    row["embeddings"][rows] = raw
                    if width:  # 8,192 at a time, as RescoringData holds them for a small catalogue
                        assert calibration is not None
                        row["whitened"][rows] = calibration.vectors(wide).astype(np.float32)
                    if prepared is not None:
                        assert fitted is not None
                        _reserve_rows(work / "prepared.f16", rows, dim)
                        prepared[rows] = fitted.prepare(wide).astype(np.float16)
                    at += len(raw)
                if "augmented" in fields and n:
                    assert fitted is not None and prepared is not None
                    _augmented(fitted, ids, prepared, store.neighbour_lists(), row["augmented"])
                del prepared
    log.info("made the array cache %s of %d images in %.1f s", path, n, time.perf_counter() - started)
    return sign


def _width(calibration: Any, dim: int) -> int:
    """The same-design vectors' width (0: the model has no calibration)."""
    return 0 if calibration is None else int(calibration.vectors(np.zeros((1, dim), np.float32)).shape[1])


def _layout(shapes: dict[str, tuple[str, tuple[int, ...]]]) -> tuple[dict[str, dict[str, Any]], int]:
    """Each array's place in the file (aligned offsets after the header) and the file's size."""
    layout: dict[str, dict[str, Any]] = {}
    at = HEADER
    for name, (dtype, shape) in shapes.items():
        layout[name] = {"dtype": dtype, "shape": list(shape), "offset": at}
        at += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // ALIGN) * ALIGN
    return layout, at


def planned_bytes(store: Any) -> tuple[int, int]:
    """(the cache file's size, its work files' peak) for an open catalogue, from a few aggregate reads: what
    `room_for` checks before anything is written (the work files: the spilled embeddings and, for a fit,
    their prepared vectors, each n x dim float16)."""
    n, _ = store.array_counts()
    dim = int(store.file.meta("embedding_dim") or 0)
    fitted = store.fitted()
    width = _width(shipped_calibration(store.file.meta("model_sha256")), dim)
    row_bytes = row_fields(dim, width, fitted is not None and fitted.augmented)[1]
    # the prepared vectors' file grows as the spilled embeddings are consumed: one more chunk at the peak
    return _layout({"ids": ("<i8", (n,)), "rows": ("|u1", (n, row_bytes))})[1], (n + CHUNK) * dim * 2


def _reserve_rows(file: Path, rows: slice, dim: int) -> None:
    """Claim the disk of float16 rows of a mapped work file before they are written (array_upkeep.reserve)."""
    with open(file, "r+b") as fh:
        reserve(fh.fileno(), (rows.stop - rows.start) * dim * 2, rows.start * dim * 2)


def _records(store: Any, ids: np.ndarray, row: dict[str, np.ndarray]) -> None:
    """The image records of `ids` into their rows (array_cache.RECORDS); a record with an error, or whose
    relative path is longer than its row holds, is left to the store (flag ASK), so every record a search
    lists is exactly the store's."""
    n = len(ids)
    size, mtime = np.zeros(n, np.int64), np.zeros(n, np.float64)
    width, height, phash = np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.zeros(n, np.uint64)
    flags, lengths = np.zeros(n, np.uint8), np.zeros(n, np.uint16)
    paths, room = row["rec_path"], row["rec_path"].shape[1]
    for record in store.iter_image_rows():
        at = int(np.searchsorted(ids, record[0]))
        if at >= n or int(ids[at]) != record[0]:
            continue
        _, rel, size[at], mtime[at], w, h, p, _, error, *_ = record
        encoded = rel.encode("utf-8", "surrogatepass")
        if error is not None or len(encoded) > room:
            flags[at] = ASK
            continue
        width[at], height[at] = (-1 if w is None else w), (-1 if h is None else h)
        flags[at] = HELD | (HAS_PHASH if p is not None else 0)
        phash[at] = 0 if p is None else p % (1 << 64)
        lengths[at] = len(encoded)
        paths[at, : len(encoded)] = np.frombuffer(encoded, np.uint8)
    for name, values in (("rec_size", size), ("rec_mtime", mtime), ("rec_width", width), ("rec_height", height),
                         ("rec_phash", phash), ("rec_flags", flags), ("rec_path_len", lengths)):
        row[name][:] = values


def _spill(chunks: Iterator[tuple[np.ndarray, np.ndarray]], work: Path, dim: int) -> Iterator[tuple[np.ndarray, Path]]:
    """Each chunk's float16 embeddings to a work file, so a million need not be held at once."""
    for n, (ids, vectors) in enumerate(chunks):
        _still_wanted()
        file = work / f"part{n:05d}.f16"
        np.ascontiguousarray(np.asarray(vectors).astype(np.float16)).reshape(len(ids), dim).tofile(file)
        yield ids, file


def _augmented(fitted: FittedIndex, ids: np.ndarray, prepared: np.ndarray, lists: NeighbourLists | None, out: np.ndarray) -> None:
    """Every image's augmented vector, rounded to float16, as RescoringData makes it from the store's rows:
    prepared vectors of every stored embedding (rounded to float16), weighted over its listed neighbours
    (a file without the lists' table: the prepared vectors themselves)."""
    if lists is None:
        out[:] = prepared
        return
    table = VectorTable(ids, prepared)
    k, alpha = int(fitted.settings.get("augment_k", 5)), float(fitted.settings.get("augment_alpha", 3.0))
    for s in range(0, len(ids), CHUNK):
        _still_wanted()
        part = ids[s : s + CHUNK]
        out[s : s + CHUNK] = augmented(table, lists.select(part), part, k=k, alpha=alpha).astype(np.float16)


@contextlib.contextmanager
def _output(path: Path, shapes: dict[str, tuple[str, tuple[int, ...]]], info: dict[str, Any]) -> Iterator[dict[str, np.ndarray]]:
    """Writable arrays at aligned offsets of a temporary file; on leaving, each array's CRC-32 and the header
    are written, the file synced and renamed into place (on an error it is removed)."""
    layout, at = _layout(shapes)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as fh:
            reserve(fh.fileno(), at)  # a full disk: an OSError here, not a SIGBUS while the arrays are written
        arrays: dict[str, np.ndarray] = {
            name: np.memmap(temporary, dtype=np.dtype(a["dtype"]), mode="r+", offset=a["offset"], shape=tuple(a["shape"]))
            for name, a in layout.items() if int(np.prod(a["shape"]))
        }
        yield arrays
        for array in arrays.values():
            array.flush()  # type: ignore[attr-defined]
        del arrays
        with open(temporary, "r+b") as fh:
            for entry in layout.values():
                fh.seek(int(entry["offset"]))
                crc, left = 0, int(np.prod(entry["shape"])) * np.dtype(entry["dtype"]).itemsize
                while left:
                    block = fh.read(min(left, 1 << 24))
                    crc, left = zlib.crc32(block, crc), left - len(block)
                entry["crc"] = crc
            body = json.dumps({"format": FORMAT, "arrays": layout, **info}).encode()
            if len(body) > HEADER - 24:
                raise ValueError("the cache header is too long")
            fh.seek(0)
            fh.write(MAGIC + len(body).to_bytes(8, "little") + body + zlib.crc32(body).to_bytes(4, "little"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
        _sync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows: a folder cannot be opened; its rename is durable enough for a cache
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure(catalogue: Path, path: Path) -> dict[str, Any]:
    """Check the cache of a catalogue file and make it again when it is missing, damaged or stale.

    Returns {"signature": ..., "made": bool}, the signature the catalogue had when its arrays were read.
    """
    from .stores.sqlite import SqliteStore

    path.parent.mkdir(parents=True, exist_ok=True)
    with only_maker(path):  # a second process asking for the same cache waits, then finds it made
        store = SqliteStore.open(catalogue, readonly=True)
        try:
            return _ensure(store, path)
        finally:
            store.close()


@contextlib.contextmanager
def only_maker(path: Path) -> Iterator[None]:
    """One maker at a time for the cache at `path` (a lock file beside it); team_replica.py's too."""
    try:
        import fcntl
    except ImportError:  # Windows: two makers write their own temporary files; the last rename wins
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _ensure(store: Any, path: Path) -> dict[str, Any]:
    for left in path.parent.glob(f".{glob.escape(path.name)}.*"):  # a maker killed outright left these; under the lock none is in use
        shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)
    prune(path.parent, keep=path)
    with store.read_snapshot():
        now = signature(store)
    if path.exists():
        try:
            if verify(path, _still_wanted) == now:
                return {"signature": now, "made": False}
            log.info("the array cache %s is stale: removed, to be made again", path)
        except CacheUnusable as exc:
            log.warning("the array cache %s %s: it is ignored and made again", path, exc)
        # removed before the new one is made, so a rebuild needs room for one cache, not two (a search
        # still mapping it keeps reading it: removing a mapped file is safe, changing it is not)
        with contextlib.suppress(OSError):  # Windows: a file mapped elsewhere stays until replaced
            path.unlink(missing_ok=True)
    with store.read_snapshot():  # only when it is to be made: the fit is read for it
        cache_bytes, work_bytes = planned_bytes(store)
    short = room_for(path.parent, cache_bytes, work_bytes, str(store.path))
    if short is None:
        try:
            return {"signature": build(store, path), "made": True}
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise
            short = f"{NO_ROOM} for the search cache of {store.path} ({exc.strerror}); searches read the catalogue instead"
    log.warning("%s", short)
    return {"skipped": short}


def main(argv: list[str] | None = None) -> int:
    """`python -m swimsearch.array_cache CATALOGUE CACHE_FILE`: ensure the cache; one JSON line on stdout
    (array_watch.py runs it at low priority)."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    if len(args) != 2:
        print("usage: python -m swimsearch.array_cache CATALOGUE CACHE_FILE", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # ended by a newer watch: its work files are removed
    global _PARENT
    # the asker's pid, as it gave it: read here, getppid() may already be init's when a one-shot query ended first
    _PARENT = int(os.environ.get(PARENT_ENV) or os.getppid())
    try:
        result = ensure(Path(args[0]), Path(args[1]))
    except Exception as exc:  # a cache that cannot be made leaves the search on its rows: say why, in one line
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
