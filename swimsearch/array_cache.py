"""What a search reads of a large catalogue, as memory-mapped arrays in a disposable file beside it.

Above `EngineConfig.rescore_in_memory_up_to` images a search read about 230
catalogue rows (embeddings, neighbour lists) at 20-30 µs each: most of a
search's time at a million images (docs/BENCHMARKS.md). This cache holds, for
one catalogue file, every stored embedding (float16, exactly the store's
values, tombstones too, as `embedding_matrix` answers for them) and, for a fit
on augmented vectors, every image's augmented vector made as a search would
make it from the store (rescoring.py), in one file of arrays that a search
maps into memory: it touches pages, not rows.

The catalogue stays the one file and the source of truth (DESIGN.md); this
file is derived and disposable. It lives in the user's cache folder
(`cache_dir`), is named after the catalogue (its path, creation time and
model) and records the catalogue's `signature` (checksums of every image
record and neighbour list, the fit) as read in the same transaction as its
arrays. It is written whole to a temporary file, synced and renamed into
place; its header names each array's offset, shape and CRC-32, and `verify`
checks them all, so a truncated, damaged or stale file is ignored (a log
line) and made again, never trusted. It is made in a separate, low-priority
process (`python -m swimsearch.array_cache CATALOGUE CACHE`; array_watch.py
starts it and hands its arrays to the search once it answers), so making
2.5 GB per million images slows neither opening nor searching.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .calibration import Calibration, shipped_calibration
from .index import FittedIndex, row_lookup
from .neighbours import NeighbourLists, VectorTable, augmented

log = logging.getLogger(__name__)

MAGIC = b"SWIMARR1"
FORMAT = 1
HEADER = 65536  # bytes reserved for the JSON header; arrays start at multiples of ALIGN after it
ALIGN = 4096
CACHE_ENV = "SWIMSEARCH_CACHE_DIR"  # where caches go instead of the user's cache folder (tests, benchmarks)
CHUNK = 8192

#: The process that asked for the cache (set by `main`): when it ends, so does the making (`_still_wanted`).
_PARENT: int | None = None


class Abandoned(Exception):
    """The process that asked for the cache has ended: stop, leaving no work files."""


def _still_wanted() -> None:
    if _PARENT is not None and os.getppid() != _PARENT:
        raise Abandoned("the process that asked for it has ended")


def cache_dir() -> Path:
    """$SWIMSEARCH_CACHE_DIR, else the platform's per-user cache folder (XDG_CACHE_HOME on Linux) /SwimSearch/arrays."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "SwimSearch" / "arrays"


def cache_file(store: Any, directory: Path | None = None) -> Path:
    """The cache file of an open SqliteStore: named by its resolved path, creation time and model."""
    meta = store.file.meta
    key = json.dumps([str(Path(store.path).resolve()), meta("created"), meta("model_sha256")], default=str)
    name = f"{Path(store.path).stem[:40]}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.swimarrays"
    return (directory or cache_dir()) / name


def signature(store: Any) -> str:
    """What the cached arrays are made of, in a few aggregate reads (0.3 s at a million images, warm):
    every image record's checksum (it covers the id and its embedding's checksum), every neighbour
    list's checksum (they cover the id), the fit, the model and its shipped calibration. Any committed
    change to them changes it, and so does a new version of the app that ships another calibration."""
    conn, meta = store.file.conn, store.file.meta
    images = conn.execute("SELECT count(*), sum(crc), sum(vector_crc), max(id) FROM images").fetchone()
    lists = conn.execute("SELECT count(*), sum(crc), max(image_id) FROM neighbours").fetchone()
    model = meta("model_sha256")
    parts = [FORMAT, list(images), list(lists), meta("fitted"), model, meta("embedding_dtype"), meta("embedding_dim"),
             calibration_key(shipped_calibration(model))]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CachedArrays:
    """The mapped arrays of one cache file (read-only)."""

    path: Path
    signature: str
    ids: np.ndarray  # (n,) int64 sorted: every stored embedding
    embeddings: np.ndarray | None  # (n, D) float16, the store's values; None where `powered` holds them
    powered: np.ndarray | None  # (n, D) float32 the embeddings power-normalised (Calibration.powered, power 0.5)
    augmented: np.ndarray | None  # (n, D) float16 augmented vectors (a fit on augmented vectors), else None
    whitened: np.ndarray | None = None  # (n, d) float32 same-design vectors (a model with a calibration)
    calibration: str | None = None  # `calibration_key` of the calibration they were made with

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", row_lookup(np.asarray(self.ids)))

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """The stored embeddings (float32, exactly the store's float16 values) of rows."""
        if self.embeddings is not None:
            return np.asarray(self.embeddings[rows], dtype=np.float32)
        assert self.powered is not None
        return _unpowered(np.asarray(self.powered[rows])).astype(np.float32)

    def __len__(self) -> int:
        return len(self.ids)


class CacheUnusable(Exception):
    """A cache file that must not be used (missing, damaged, of another format); the reason in words."""


def _header(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise CacheUnusable(f"cannot be read ({exc.strerror or exc})") from exc
    if len(head) < HEADER or head[:8] != MAGIC:
        raise CacheUnusable("is not a SwimSearch array cache")
    length = int.from_bytes(head[8:16], "little")
    body = head[16 : 16 + length] if 0 < length <= HEADER - 24 else b""
    if not body or zlib.crc32(body) != int.from_bytes(head[16 + length : 20 + length], "little"):
        raise CacheUnusable("has a damaged header")
    try:
        header = json.loads(body)
        arrays = header["arrays"]
        ends = [int(a["offset"]) + int(np.prod(a["shape"])) * np.dtype(a["dtype"]).itemsize for a in arrays.values()]
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheUnusable("has a damaged header") from exc
    if header.get("format") != FORMAT:
        raise CacheUnusable(f"is of another format ({header.get('format')})")
    if size < max(ends, default=HEADER):
        raise CacheUnusable(f"is cut short ({size:,} of {max(ends):,} bytes)")
    return header


def open_cache(path: Path) -> CachedArrays:
    """Map a cache file's arrays (its header and size checked; `verify` checks the data)."""
    header = _header(path)
    maps = {
        name: np.memmap(path, dtype=np.dtype(a["dtype"]), mode="r", offset=int(a["offset"]), shape=tuple(a["shape"]))
        if int(np.prod(a["shape"])) else np.empty(tuple(a["shape"]), np.dtype(a["dtype"]))
        for name, a in header["arrays"].items()
    }
    ids, embeddings, powered = maps.get("ids"), maps.get("embeddings"), maps.get("powered")
    n = 0 if ids is None else len(ids)
    if ids is None or (embeddings is None and powered is None and n):
        raise CacheUnusable("lacks its arrays")
    extra, whitened = maps.get("augmented"), maps.get("whitened")
    if any(a is not None and len(a) != n for a in (embeddings, powered, extra, whitened)):
        raise CacheUnusable("has arrays of different sizes")
    if embeddings is None and powered is None:
        embeddings = np.empty((0, 0), np.float16)
    return CachedArrays(path, str(header["signature"]), np.asarray(ids), embeddings, powered, extra, whitened, header.get("calibration"))


def verify(path: Path) -> str:
    """The signature of a cache file whose every array matches its CRC-32 (CacheUnusable otherwise).

    Read with plain reads, not mapped, so checking 5 GB does not fill the checking process's memory.
    """
    header = _header(path)
    with open(path, "rb") as fh:
        for name, a in header["arrays"].items():
            length = int(np.prod(a["shape"])) * np.dtype(a["dtype"]).itemsize
            fh.seek(int(a["offset"]))
            crc, left = 0, length
            while left:
                _still_wanted()
                block = fh.read(min(left, 1 << 24))
                if not block:
                    raise CacheUnusable(f"is cut short in its {name}")
                crc, left = zlib.crc32(block, crc), left - len(block)
            if crc != int(a["crc"]):
                raise CacheUnusable(f"has damaged {name}")
    ids = open_cache(path).ids
    if len(ids) > 1 and np.any(np.diff(ids) <= 0):
        raise CacheUnusable("has unsorted ids")
    return str(header["signature"])


# --- making one ------------------------------------------------------------------------------------


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
    conn = store.file.conn
    conn.execute("BEGIN")
    try:
        sign = signature(store)
        fitted: FittedIndex | None = store.fitted()
        calibration = shipped_calibration(store.file.meta("model_sha256"))
        dim = int(store.file.meta("embedding_dim") or 0)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".making-") as folder:
            work = Path(folder)
            parts = list(_spill(_stored_embeddings(store), work, dim))
            ids = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
            if len(ids) > 1 and np.any(np.diff(ids) <= 0):
                raise ValueError("the store gave its embeddings out of order")
            n = len(ids)
            powered = calibration is not None and calibration.power == 0.5 and n > 0
            shapes: dict[str, tuple[str, tuple[int, ...]]] = {"ids": ("<i8", (n,))}
            if powered:  # the embeddings are exactly recoverable from these (CachedArrays.raw), so not kept twice
                shapes["powered"] = ("<f4", (n, dim))
            else:
                shapes["embeddings"] = ("<f2", (n, dim))
            if fitted is not None and fitted.augmented and n:
                shapes["augmented"] = ("<f2", (n, dim))
            if calibration is not None and n:
                width = calibration.vectors(np.zeros((1, dim), np.float32)).shape[1]
                shapes["whitened"] = ("<f4", (n, width))
            info = {"signature": sign, "calibration": calibration_key(calibration), "catalogue": str(store.path), "made": time.time()}
            with _output(path, shapes, info) as out:
                out["ids"][:] = ids
                prepared = np.memmap(work / "prepared.f16", dtype=np.float16, mode="w+", shape=(max(n, 1), dim))[:n]
                at = 0
                for part_ids, part in parts:
                    _still_wanted()
                    raw = np.fromfile(part, dtype=np.float16).reshape(len(part_ids), dim)
                    part.unlink()
                    rows = slice(at, at + len(raw))
                    wide = raw.astype(np.float32)
                    if powered:
                        assert calibration is not None
                        out["powered"][rows] = values = calibration.powered(wide)
                        if not np.array_equal(_unpowered(values), raw):
                            raise ValueError("an embedding is not recovered from its power-normalised value")
                    else:
                        out["embeddings"][rows] = raw
                    if "whitened" in out:  # 8,192 at a time, as RescoringData holds them for a small catalogue
                        assert calibration is not None
                        out["whitened"][rows] = calibration.vectors(wide).astype(np.float32)
                    if fitted is not None:
                        prepared[rows] = fitted.prepare(wide).astype(np.float16)
                    at += len(raw)
                if "augmented" in out:
                    assert fitted is not None
                    _augmented(fitted, ids, prepared, store.neighbour_lists(), out["augmented"])
                del prepared
    finally:
        conn.execute("ROLLBACK")
    log.info("made the array cache %s of %d images in %.1f s", path, n, time.perf_counter() - started)
    return sign


def _unpowered(powered: np.ndarray) -> np.ndarray:
    """float16 embeddings from their power-0.5 values: squared in float32 the error is ~2e-7 of the value,
    far inside half a float16 step (5e-4), so each rounds back to the very value stored."""
    return (np.sign(powered) * powered * powered).astype(np.float16)


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


def calibration_key(calibration: Calibration | None) -> str | None:
    """Which calibration the same-design vectors were made with (a new version of the app may ship another)."""
    return None if calibration is None else hashlib.sha256(calibration.arrays()).hexdigest()


@contextlib.contextmanager
def _output(path: Path, shapes: dict[str, tuple[str, tuple[int, ...]]], info: dict[str, Any]) -> Iterator[dict[str, np.ndarray]]:
    """Writable arrays at aligned offsets of a temporary file; on leaving, each array's CRC-32 and the header
    are written, the file synced and renamed into place (on an error it is removed)."""
    layout, at = {}, HEADER
    for name, (dtype, shape) in shapes.items():
        layout[name] = {"dtype": dtype, "shape": list(shape), "offset": at}
        at += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // ALIGN) * ALIGN
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as fh:
            fh.truncate(at)
        arrays = {
            name: np.memmap(temporary, dtype=np.dtype(a["dtype"]), mode="r+", offset=a["offset"], shape=tuple(a["shape"]))
            for name, a in layout.items() if int(np.prod(a["shape"]))
        }
        yield arrays
        for a in arrays.values():
            a.flush()
        del arrays
        with open(temporary, "r+b") as fh:
            for name, a in layout.items():
                fh.seek(a["offset"])
                crc, left = 0, int(np.prod(a["shape"])) * np.dtype(a["dtype"]).itemsize
                while left:
                    block = fh.read(min(left, 1 << 24))
                    crc, left = zlib.crc32(block, crc), left - len(block)
                a["crc"] = crc
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
    with _only_maker(path):  # a second process asking for the same cache waits, then finds it made
        store = SqliteStore.open(catalogue, readonly=True)
        try:
            return _ensure(store, path)
        finally:
            store.close()


@contextlib.contextmanager
def _only_maker(path: Path) -> Iterator[None]:
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
    conn = store.file.conn
    conn.execute("BEGIN")
    try:
        now = signature(store)
    finally:
        conn.execute("ROLLBACK")
    if path.exists():
        try:
            if verify(path) == now:
                return {"signature": now, "made": False}
            log.info("the array cache %s is stale: making it again", path)
        except CacheUnusable as exc:
            log.warning("the array cache %s %s: it is ignored and made again", path, exc)
    return {"signature": build(store, path), "made": True}


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
    _PARENT = os.getppid()
    try:
        result = ensure(Path(args[0]), Path(args[1]))
    except Exception as exc:  # a cache that cannot be made leaves the search on its rows: say why, in one line
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
