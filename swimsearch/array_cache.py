"""What a search reads of a large catalogue, as memory-mapped arrays in a disposable file beside it.

Above `EngineConfig.rescore_in_memory_up_to` images a search read about 230
catalogue rows (embeddings, neighbour lists) at 20-30 µs each: most of a
search's time at a million images (docs/BENCHMARKS.md). This cache holds, for
one catalogue file, every stored embedding (float16, exactly the store's
values, tombstones too, as `embedding_matrix` answers for them) and, for a fit
on augmented vectors, every image's augmented vector made as a search would
make it from the store (rescoring.py), in one file that a search maps into
memory: it reads pages, not rows.

Since FORMAT 2 the file is one row per image (`row_fields`): its first page
holds what a search reads of every candidate (the embedding, its same-design
vector, its image record), the next page its augmented vector, read for the
few dozen best only (format 1's separate arrays cost ~350 pages a search at a
million images). A search reads those pages with `pread`, one system call a
page (`CachedArrays.take`: a page fault cost three times as much), until
every page is mapped into the process (mapped_pages.py); then it reads the views.

The catalogue stays the one file and the source of truth (DESIGN.md); this
file is derived and disposable. It lives in the user's cache folder
(`cache_dir`), is named after the catalogue (its path, creation time and
model) and records the catalogue's `signature` (checksums of every image
record and neighbour list, the fit) as read in the same transaction as its
arrays. It is written whole to a temporary file, synced and renamed into
place; its header names each array's offset, shape and CRC-32, and `verify`
checks them all, so a truncated, damaged or stale file is ignored (a log
line) and made again, never trusted. It is made in a separate, low-priority process
(`python -m swimsearch.array_cache CATALOGUE CACHE`, started by array_watch.py),
so making 8.8 GB per million images slows neither opening nor searching; only
where the disk holds it with room to spare, its log in `NAME.log` beside it;
makers remove caches unused for 30 days or whose catalogue is gone (array_upkeep.py).

Two things a user (and whoever changes this) must know:

* The file must never be changed in place while a SwimSearch process holds
  it (truncated, or copied over with `cp`): a mapped file that shrinks under
  a process kills it with SIGBUS when a search touches a page that is gone.
  Deleting it is safe (the process keeps its pages; the next one makes it
  again), and so is the maker's way: a new file renamed into place.
* Any committed change to the catalogue (an update adding one picture)
  changes its signature, and the whole cache is made again in the background
  (6 minutes at a million images on a loaded 2-core machine); searches read
  the catalogue's rows meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .calibration import Calibration, shipped_calibration
from .halves import widened
from .index import row_lookup
from .stores.base import ImageRecord

log = logging.getLogger(__name__)

MAGIC = b"SWIMARR1"
#: 2: one row per image holding what a search reads of it side by side (`row_fields`); a cache of
#: another format is ignored and made again.
FORMAT = 2
HEADER = 65536  # bytes reserved for the JSON header; arrays start at multiples of ALIGN after it
ALIGN = 4096
CACHE_ENV = "SWIMSEARCH_CACHE_DIR"  # where caches go instead of the user's cache folder (tests, benchmarks)
#: rec_flags: the record is held here / it has a pHash / it has an error: ask the store for it.
HELD, HAS_PHASH, ASK = 1, 2, 4
RECORDS = ("rec_size", "rec_mtime", "rec_width", "rec_height", "rec_phash", "rec_flags", "rec_path_len", "rec_path")
#: bytes of a relative path held in an image's row at least; a longer one is asked of the store (flag ASK)
MIN_PATH = 256


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
    meta = store.file.meta
    model = meta("model_sha256")
    parts = [FORMAT, store.content_signature(), meta("fitted"), model, meta("embedding_dtype"), meta("embedding_dim"),
             calibration_key(shipped_calibration(model))]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def row_fields(dim: int, width: int, augmented: bool) -> tuple[dict[str, tuple[str, int, int]], int]:
    """Where each value of an image sits in its row: {name: (dtype, byte offset, count)} and the row's bytes.

    The first page(s): the embedding (float16), the same-design vector (float32, `width` > 0 where the
    model has a calibration) and the image record (RECORDS, its relative path in UTF-8 in the room left,
    at least MIN_PATH bytes): what a search reads of each of its few hundred candidates. Then, on a page
    of its own, the augmented vector (float16), which a search reads for its few dozen best only.
    """
    fields: dict[str, tuple[str, int, int]] = {}
    at = 0

    def put(name: str, dtype: str, count: int) -> None:
        nonlocal at
        size = np.dtype(dtype).itemsize
        at = -(-at // size) * size
        fields[name] = (dtype, at, count)
        at += size * count

    put("embeddings", "<f2", dim)
    if width:
        put("whitened", "<f4", width)
    for name, dtype in (("rec_size", "<i8"), ("rec_mtime", "<f8"), ("rec_width", "<i8"), ("rec_height", "<i8"),
                        ("rec_phash", "<u8"), ("rec_flags", "|u1"), ("rec_path_len", "<u2")):
        put(name, dtype, 1)
    end = -(-(at + MIN_PATH) // ALIGN) * ALIGN
    fields["rec_path"] = ("|u1", at, end - at)
    at = end
    if augmented:
        put("augmented", "<f2", dim)
        at = -(-at // ALIGN) * ALIGN
    return fields, at


def row_views(rows: np.ndarray, fields: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each field of `rows` (n, row bytes) uint8 as an (n, count) array (n, for a single value) viewing it."""
    views = {}
    for name, (dtype, at, count) in fields.items():
        part = rows[:, int(at) : int(at) + int(count) * np.dtype(dtype).itemsize].view(np.dtype(dtype))
        views[name] = part if name in ("embeddings", "whitened", "augmented", "rec_path") else part[:, 0]
    return views


@dataclass(frozen=True)
class CachedArrays:
    """The mapped arrays of one cache file (read-only): views of its rows (FORMAT 2, `row_fields`)."""

    path: Path
    signature: str
    ids: np.ndarray  # (n,) int64 sorted: every stored embedding
    embeddings: np.ndarray | None  # (n, D) float16, the store's values; None where `powered` holds them
    powered: np.ndarray | None  # (n, D) float32 the embeddings power-normalised (format 1 only: now None, made on the fly)
    augmented: np.ndarray | None  # (n, D) float16 augmented vectors (a fit on augmented vectors), else None
    whitened: np.ndarray | None = None  # (n, d) float32 same-design vectors (a model with a calibration)
    calibration: str | None = None  # `calibration_key` of the calibration they were made with
    records: dict[str, np.ndarray] | None = None  # RECORDS: the image records of `ids`, as columns
    #: where the rows lie (their offset in the file, each row's bytes, `row_fields`) and the open file
    #: `take` reads them from; None: `take` reads the mapped views
    layout: tuple[int, int, dict[str, Any]] | None = None
    file: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", row_lookup(np.asarray(self.ids)))
        object.__setattr__(self, "_pages", {})
        object.__setattr__(self, "_mapped", threading.Event())  # every page mapped in (mapped_pages.py)
        # the file's size as opened (its header checked against it): `resized` compares with it
        object.__setattr__(self, "_size", os.fstat(self.file.fileno()).st_size if self.file is not None else -1)

    def take(self, names: tuple[str, ...], rows: np.ndarray) -> dict[str, np.ndarray]:
        """Fields (`row_fields`) of rows (all >= 0), each an array of its own.

        Read with one `pread` per 4 KB page of a row (a head candidate's two pages in one where both are new),
        not by touching the mapped pages: a page fault cost ~5.5 µs here, a `pread` ~1.7 µs. Pages read since
        `forget` (each search's start) are not read again. Once every page is mapped into this process
        (`mapped_in`) the views are read: no fault, no system call."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.layout is None or self.file is None or (self._mapped.is_set() and not self.resized()):  # type: ignore[attr-defined]
            views = {**(self.records or {}), "embeddings": self.embeddings, "augmented": self.augmented, "whitened": self.whitened}
            return {name: np.asarray(views[name])[rows] for name in names}
        offset, row_bytes, fields = self.layout
        out: dict[str, np.ndarray] = {}
        memo, fd, pread = self._pages, self.file.fileno(), os.pread  # type: ignore[attr-defined]
        if len(memo) > 8192:  # read outside searches (no `forget`): kept to 32 MB
            memo.clear()
        starts = (rows * row_bytes + offset).tolist()  # each row's first byte in the file
        for page in sorted({int(fields[name][1]) // ALIGN for name in names}):
            get, at = memo.get, page * ALIGN
            keys = (rows * 8 + page).tolist()
            if page:
                # A row's later page (its augmented vector: one of the best few dozen) comes with its first
                # page in the same read when that is not read yet: every candidate's first page is read by
                # the scoring anyway (its same-design vector), so this saves a system call a head row.
                for key, start in zip(keys, starts):
                    if key not in memo and key - page not in memo:
                        both = pread(fd, at + ALIGN, start)
                        for k in range(page + 1):
                            memo[key - page + k] = both[k * ALIGN : (k + 1) * ALIGN]
            # a page already read comes from the memo (b"" is never one: a pread always reads a page here)
            chunks = [get(key) or memo.setdefault(key, pread(fd, ALIGN, start + at)) for key, start in zip(keys, starts)]
            block = np.frombuffer(b"".join(chunks), np.uint8).reshape(len(rows), ALIGN)
            here = {name: (dtype, int(start) - at, count) for name, (dtype, start, count) in fields.items()
                    if name in names and int(start) // ALIGN == page}
            out.update(row_views(block, here))
        return out

    def mapped_in(self) -> None:
        """Every page of the file is mapped into this process (mapped_pages.PageMapper): read the views from now
        on, unless the file changed size since it was opened (its pages past a new end are no longer mapped)."""
        if not self.resized():
            self._mapped.set()  # type: ignore[attr-defined]

    def resized(self) -> bool:
        """Whether the file is no longer the size it was opened at (cut short or written over in place: an fstat).

        The watches ask it as each search begins and drop such a cache (array_watch.py, team_replica.py)."""
        if self.file is None:
            return False
        try:
            return os.fstat(self.file.fileno()).st_size != self._size  # type: ignore[attr-defined]
        except (OSError, ValueError):  # a closed file
            return True

    def forget(self) -> None:
        """Let go of the pages `take` read (a search's start: what it reads is a few hundred pages)."""
        self._pages.clear()  # type: ignore[attr-defined]

    def rows(self, image_ids: np.ndarray) -> np.ndarray:
        """Rows of image ids (-1 where absent): a direct table, as index.row_lookup makes it."""
        return self._rows(np.asarray(image_ids, dtype=np.int64))  # type: ignore[attr-defined]

    def image_records(self, image_ids: list[int], root: str) -> tuple[dict[int, ImageRecord], list[int]]:
        """(records held here, the ids to ask the store for) of `image_ids`; the records are the store's
        (sqlite_images.record), their paths under `root`."""
        if self.records is None or not len(self.ids):
            return {}, list(image_ids)  # none held (an empty cache: every id is asked of the store)
        rows = self.rows(np.asarray(image_ids, dtype=np.int64))
        r = self.take(RECORDS, np.maximum(rows, 0))  # each column gathered once, then plain lists (no per-field indexing)
        flags, lengths = np.where(rows >= 0, r["rec_flags"], ASK).tolist(), r["rec_path_len"].tolist()
        sizes, mtimes = r["rec_size"].tolist(), r["rec_mtime"].tolist()
        widths, heights, phashes = r["rec_width"].tolist(), r["rec_height"].tolist(), r["rec_phash"].tolist()
        paths = r["rec_path"]
        held, ask, prefix = {}, [], os.path.join(root, "") if os.sep == "/" else None  # see `path` below
        for k, image_id in enumerate(image_ids):
            flag = flags[k]
            if not flag & HELD:
                if flag & ASK:
                    ask.append(image_id)
                continue
            rel = paths[k, : lengths[k]].tobytes().decode("utf-8", "surrogatepass")
            width, height = widths[k], heights[k]
            # os.path.join(root, *parts) is root/rel on posix where no part is empty (2 µs an image less)
            path = prefix + rel if prefix is not None and rel[:1] != "/" and "//" not in rel else os.path.join(root, *rel.split("/"))
            held[image_id] = ImageRecord(
                image_id=image_id, relpath=rel, path=path, size=int(sizes[k]),
                width=None if width < 0 else int(width), height=None if height < 0 else int(height),
                phash=int(phashes[k]) if flag & HAS_PHASH else None, error=None, mtime=float(mtimes[k]),
            )
        return held, ask

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """The stored embeddings (float32, exactly the store's float16 values) of rows."""
        if self.embeddings is not None:
            return widened(self.take(("embeddings",), rows)["embeddings"])
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


def _mapped(path: Path, a: dict[str, Any]) -> np.ndarray:
    """One array of the file, mapped read-only, as a plain ndarray view of the map.

    A plain view, because `np.memmap.__getitem__` is Python code run on every
    gather (a search makes a few hundred). The map is told its reads are random
    (MADV_RANDOM, where the platform has it): a search touches a few hundred
    scattered rows, so neither read-ahead nor the kernel's mapping of the pages
    around each fault helps; measured at 1M rows that made a cold gather of 220 rows
    ~10 % cheaper (median) and steadier (p90 -25 %). It keeps no more in memory.
    """
    mapped = np.memmap(path, dtype=np.dtype(a["dtype"]), mode="r", offset=int(a["offset"]), shape=tuple(a["shape"]))
    advise = getattr(mapped._mmap, "madvise", None)  # type: ignore[attr-defined]
    if advise is not None and hasattr(mmap, "MADV_RANDOM"):
        try:
            advise(mmap.MADV_RANDOM)
        except OSError:  # only advice
            pass
    return np.asarray(mapped)  # its base keeps the map open


def open_cache(path: Path) -> CachedArrays:
    """Map a cache file's arrays (its header and size checked; `verify` checks the data)."""
    header = _header(path)
    maps = {
        name: _mapped(path, a) if int(np.prod(a["shape"])) else np.empty(tuple(a["shape"]), np.dtype(a["dtype"]))
        for name, a in header["arrays"].items()
    }
    ids, rows, fields = maps.get("ids"), maps.get("rows"), header.get("fields")
    if ids is None or rows is None or not isinstance(fields, dict) or rows.ndim != 2 or len(rows) != len(ids):
        raise CacheUnusable("lacks its arrays")
    try:
        if any(int(at) < 0 or int(at) + int(count) * np.dtype(dtype).itemsize > rows.shape[1] for dtype, at, count in fields.values()):
            raise ValueError("a field outside its row")
        views = row_views(rows, fields)
    except (ValueError, TypeError) as exc:
        raise CacheUnusable("has a damaged header") from exc
    if "embeddings" not in views or any(name not in views for name in RECORDS):
        raise CacheUnusable("lacks its arrays")
    records = {name: views[name] for name in RECORDS}
    readable = hasattr(os, "pread") and len(ids) > 0  # Windows has no pread: the mapped views are read there
    layout = (int(header["arrays"]["rows"]["offset"]), int(rows.shape[1]), fields) if readable else None
    return CachedArrays(
        path, str(header["signature"]), np.asarray(ids), views["embeddings"], None, views.get("augmented"), views.get("whitened"),
        header.get("calibration"), records, layout, open(path, "rb", buffering=0) if readable else None,
    )


def verify(path: Path, going_on: Callable[[], None] = lambda: None) -> str:
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
                going_on()  # may raise: the checking is no longer wanted
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


def _unpowered(powered: np.ndarray) -> np.ndarray:
    """float16 embeddings from their power-0.5 values: squared in float32 the error is ~2e-7 of the value,
    far inside half a float16 step (5e-4), so each rounds back to the very value stored."""
    return (np.sign(powered) * powered * powered).astype(np.float16)


def calibration_key(calibration: Calibration | None) -> str | None:
    """Which calibration the same-design vectors were made with (a new version of the app may ship another)."""
    return None if calibration is None else hashlib.sha256(calibration.arrays()).hexdigest()

