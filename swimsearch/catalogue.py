"""The catalogue: build and update from a folder, fit the index, load it for search.

A build scans the folder, embeds only new or changed files (decoding in
parallel with inference), commits every batch so a cancel or a kill keeps what
was done, then fits the hash layer and spheres (or reuses them) and writes
codes and LSH buckets. Updating reuses the fitted layer unless the catalogue
has doubled or halved since, or the last fit was made on a cancelled build.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .config import FIT_CHOICES, INDEX_SETTINGS, EngineConfig
from .errors import Cancelled, CatalogueError
from .images import FoundFile, ImageError, LoadedImage, load_image, scan_folder
from .index import FittedIndex, IndexSnapshot, fit_index, row_lookup
from .indexstore import IndexStore
from .store import Store, describe_error, from_blobs, phash_from_sql, phash_to_sql, to_blob

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
StopFn = Callable[[], bool]

# Embeddings are stored in half precision: 2.5 KB instead of 5 KB per image
# (three to an 8 KB page: a million images take 2.8 GB, not 8.3 GB), and the
# rounding moves a score by less than 1e-4. Arithmetic is always done in float32.
# The dtype is recorded in each catalogue (catalogues made before this choice
# hold float32 and stay readable).
EMBEDDING_DTYPE = "<f2"
CATALOGUE_SUFFIX = ".swimcat"


def _never() -> bool:
    return False


def _quiet(phase: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class BuildReport:
    """What a build or update did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: int = 0
    unchanged: int = 0
    indexed: int = 0
    refitted: bool = False
    cancelled: bool = False
    seconds: float = 0.0
    embed_seconds: float = 0.0
    network_seconds: float = 0.0  # of embed_seconds, the time spent inside the network
    errors: tuple[tuple[str, str], ...] = ()  # (relative path, reason) of files unreadable this run

    @property
    def images_per_second(self) -> float:
        done = self.added + self.updated + self.unreadable
        return done / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "done"
        return (
            f"{state}: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unreadable} unreadable, {self.unchanged} unchanged; {self.indexed} images searchable"
        )


@dataclass(frozen=True)
class ImageRecord:
    """One catalogue image as a plain record (never a live cursor)."""

    image_id: int
    relpath: str
    path: str  # absolute, under the catalogue's root
    size: int
    width: int | None
    height: int | None
    phash: int | None
    error: str | None


def default_catalogue_path(folder: str | os.PathLike) -> Path:
    """Where a folder's catalogue lives by default: a hidden file inside it, so it moves with it."""
    return Path(folder) / f".swimsearch{CATALOGUE_SUFFIX}"


class Catalogue:
    """An open catalogue file and the folder it describes.

    Use it from one thread (its SQLite connection belongs to the opening thread).
    """

    def __init__(self, store: Store):
        self.store = store
        self.path = store.path
        self.index = IndexStore(store)
        with self._sqlite_errors():
            self.root = self._resolve_root()
            self.embedding_dtype: str = store.meta("embedding_dtype", "<f4")
        self._root_text = str(self.root)

    # --- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, root: str | os.PathLike) -> "Catalogue":
        """A new, empty catalogue file at `path` for the folder `root` (never overwrites).

        The file is made under a temporary name and moved into place once its
        schema is committed, so a crash while creating never leaves a
        half-made file that would then be refused as damaged.
        """
        path = Path(path).absolute()
        if path.exists():
            raise CatalogueError(f"A file already exists at {path}; it was left untouched.")
        root = Path(root).resolve()
        if not root.is_dir():
            raise CatalogueError(f"The folder {root} does not exist.")
        temporary = path.with_name(path.name + ".creating")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise CatalogueError(f"Cannot create the catalogue at {path}: {exc.strerror or exc}.") from exc
        store = Store(temporary, create=True)
        try:
            with store.transaction():
                store.set_meta(
                    root=str(root), root_relative=_relative(root, path.parent), embedding_dtype=EMBEDDING_DTYPE
                )
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise describe_error(exc, path) from exc
        finally:
            store.close()
        try:
            os.link(temporary, path)  # fails rather than overwrite a file that appeared meanwhile
            temporary.unlink()
        except FileExistsError as exc:
            temporary.unlink(missing_ok=True)
            raise CatalogueError(f"A file already exists at {path}; it was left untouched.") from exc
        except OSError:  # file systems without hard links
            os.replace(temporary, path)
        return cls(Store(path))

    @classmethod
    def open(cls, path: str | os.PathLike, *, readonly: bool = False) -> "Catalogue":
        """Open an existing catalogue; a damaged, newer or foreign file is refused in plain words."""
        path = Path(path).absolute()
        if not readonly and path.exists() and not os.access(path, os.W_OK):
            readonly = True
        if not readonly and path.exists() and not os.access(path.parent, os.W_OK):
            readonly = True  # SQLite needs to create the WAL file beside it
        return cls(Store(path, readonly=readonly))

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, root: str | os.PathLike) -> "Catalogue":
        """Open the catalogue at `path`, or create it for `root` when there is none."""
        path = Path(path).absolute()
        if path.exists():
            catalogue = cls.open(path)
            if catalogue.root.resolve() != Path(root).resolve():
                other = catalogue.root
                catalogue.close()
                raise CatalogueError(
                    f"The catalogue {path} belongs to the folder {other}, not {Path(root).resolve()}."
                )
            return catalogue
        return cls.create(path, root)

    def _resolve_root(self) -> Path:
        """The catalogue's folder: where it was made, or where it moved or was copied with the catalogue.

        The folder at the recorded position relative to the catalogue file
        wins when the catalogue's own files are found there, so a folder
        copied with its catalogue inside describes the copy, not the
        original. Otherwise the recorded absolute folder: a catalogue copied
        away on its own must not mistake its new neighbourhood for its folder.
        """
        absolute = Path(self.store.meta("root", str(self.path.parent)))
        relative = self.store.meta("root_relative")
        if relative is not None:
            candidate = (self.path.parent / relative).resolve()
            if candidate.is_dir() and candidate != absolute.resolve() and self._holds_our_files(candidate):
                return candidate
        return absolute

    def _holds_our_files(self, folder: Path, sample: int = 20) -> bool:
        rows = self.store.conn.execute("SELECT path FROM images ORDER BY id LIMIT ?", (sample,)).fetchall()
        return not rows or any((folder / r[0]).exists() for r in rows)

    @property
    def name(self) -> str:
        """A short name for the window title: the catalogue's folder name."""
        return self.root.name or str(self.root)

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Catalogue":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """Turn SQLite failures into one plain CatalogueError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    # --- reading -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many images: all, readable (embedded), unreadable, searchable (indexed)."""
        with self._sqlite_errors():
            q = self.store.conn.execute
            total = q("SELECT count(*) FROM images").fetchone()[0]
            unreadable = q("SELECT count(*) FROM images WHERE error IS NOT NULL").fetchone()[0]
            embedded = q("SELECT count(*) FROM embeddings").fetchone()[0]
            indexed = self.index.searchable()
        return {"images": total, "readable": embedded, "unreadable": unreadable, "searchable": indexed}

    def info(self) -> dict:
        """Identity and state of the catalogue, for `swimsearch info` and the status bar."""
        fitted = self.store.meta("fitted")
        return {
            "catalogue": str(self.path),
            "root": str(self.root),
            "root_exists": self.root.is_dir(),
            "model": self.store.meta("model_name"),
            "model_sha256": self.store.meta("model_sha256"),
            "schema_version": self.store.meta("schema_version"),
            "fitted": fitted,
            **self.counts(),
        }

    def unreadable(self) -> list[tuple[str, str]]:
        """(relative path, reason) of every file recorded as unreadable."""
        with self._sqlite_errors():
            rows = self.store.conn.execute(
                "SELECT path, error FROM images WHERE error IS NOT NULL ORDER BY path"
            ).fetchall()
        return [(p, e) for p, e in rows]

    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]:
        """Image records by id."""
        ids = [int(i) for i in image_ids]
        out: dict[int, ImageRecord] = {}
        with self._sqlite_errors():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self.store.conn.execute(
                    f"SELECT id, path, size, width, height, phash, error FROM images WHERE id IN ({marks})", chunk
                ):
                    out[row[0]] = self._record(row)
        return out

    def record_by_path(self, path: str | os.PathLike, *, unchanged: bool = False) -> ImageRecord | None:
        """The record of a file inside the catalogue's folder, or None.

        Args:
            unchanged: only if the file is as the catalogue read it (same size
                and modification time), so its stored embedding is still its own.
        """
        try:
            rel = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        with self._sqlite_errors():
            row = self.store.conn.execute(
                "SELECT id, path, size, width, height, phash, error, mtime FROM images WHERE path = ?", (rel,)
            ).fetchone()
        if row is None:
            return None
        if unchanged:
            try:
                info = os.stat(path)
            except OSError:
                return None
            if info.st_size != row[2] or abs(info.st_mtime - row[7]) > 1e-6:
                return None
        return self._record(row[:7])

    def with_fit_choices(self, config: EngineConfig, names: Iterable[str] = FIT_CHOICES) -> EngineConfig:
        """`config` with the hash-layer choices (`names`) this catalogue was fitted with.

        A user picks the variant and folder labels once, when indexing; an
        update that does not name them again keeps them instead of refitting
        with the defaults.
        """
        fitted = self.fitted()
        if fitted is None:
            return config
        return config.with_changes(**{name: fitted.settings[name] for name in names if name in fitted.settings})

    def _record(self, row) -> ImageRecord:
        image_id, rel, size, width, height, phash, error = row
        return ImageRecord(
            image_id=image_id,
            relpath=rel,
            path=os.path.join(self._root_text, *rel.split("/")),
            size=size,
            width=width,
            height=height,
            phash=None if phash is None else phash % (1 << 64),
            error=error,
        )

    def embeddings(self, image_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Stored trunk embeddings (float32) by image id."""
        return {image_id: vector for image_id, (vector, _) in self._embedded_records(image_ids, with_records=False).items()}

    def embeddings_and_records(self, image_ids: Iterable[int]) -> dict[int, tuple[np.ndarray, tuple]]:
        """Embedding and raw record row of each embedded image id, in one query (the search's rescoring).

        Turn a raw row into an `ImageRecord` with `record_from_row` (only for
        the rows that are kept: building records costs more than reading them).
        """
        return self._embedded_records(image_ids, with_records=True)

    def record_from_row(self, row: tuple) -> ImageRecord:
        return self._record(row)

    def _embedded_records(self, image_ids: Iterable[int], *, with_records: bool) -> dict:
        ids = [int(i) for i in image_ids]
        found_ids: list[int] = []
        blobs: list[bytes] = []
        rows_out: list[tuple | None] = []
        with self._sqlite_errors():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                if with_records:
                    rows = self.store.conn.execute(
                        "SELECT e.image_id, e.vector, i.id, i.path, i.size, i.width, i.height, i.phash, i.error "
                        f"FROM embeddings e JOIN images i ON i.id = e.image_id WHERE e.image_id IN ({marks})",
                        chunk,
                    )
                else:
                    rows = self.store.conn.execute(
                        f"SELECT image_id, vector FROM embeddings WHERE image_id IN ({marks})", chunk
                    )
                for row in rows:
                    found_ids.append(row[0])
                    blobs.append(row[1])
                    rows_out.append(row[2:] if with_records else None)
        dim = len(blobs[0]) // np.dtype(self.embedding_dtype).itemsize if blobs else 0
        vectors = from_blobs(blobs, self.embedding_dtype, dim).astype(np.float32)
        return {image_id: (vectors[n], rows_out[n]) for n, image_id in enumerate(found_ids)}

    def fitted(self) -> FittedIndex | None:
        """The fitted hash layer, spheres, re-ranking basis and LSH layout, if any."""
        with self._sqlite_errors():
            return self.index.fitted()

    def load_snapshot(self) -> IndexSnapshot | None:
        """Codes, re-ranking vectors and buckets as compact arrays, for searching (None before a first fit)."""
        with self._sqlite_errors():
            return self.index.load_snapshot()

    def random_image_id(self, rng: np.random.Generator | None = None) -> int | None:
        """A random searchable image id (None when nothing is indexed)."""
        with self._sqlite_errors():
            return self.index.random_image_id(rng)

    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        """Perceptual hashes (uint64) of image ids, 0 where unknown; read only when needed."""
        image_ids = np.asarray(image_ids, dtype=np.int64)
        lookup = row_lookup(np.sort(image_ids))
        out = np.zeros(len(image_ids), dtype=np.int64)
        order = np.argsort(image_ids)
        with self._sqlite_errors():
            cursor = self.store.conn.execute("SELECT id, phash FROM images WHERE phash IS NOT NULL ORDER BY id")
            sorted_out = np.zeros(len(image_ids), dtype=np.int64)
            while rows := cursor.fetchmany(50_000):
                found_ids, values = zip(*rows)
                where = lookup(np.array(found_ids, dtype=np.int64))
                hit = where >= 0
                sorted_out[where[hit]] = np.array(values, dtype=np.int64)[hit]
        out[order] = sorted_out
        return phash_from_sql(out)

    # --- building ---------------------------------------------------------------------

    def update(
        self,
        embedder,
        config: EngineConfig,
        *,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> BuildReport:
        """Build or update the catalogue from its folder.

        Embeds new and changed files, drops deleted ones, commits every batch,
        then fits (if needed) and indexes. Progress is reported as
        ``progress(phase, done, total)`` with phases "scan", "embed", "index".

        Raises:
            Cancelled: when `should_stop()` returned True; what was committed
                is kept and indexed, and ``exc.report`` tells how much.
            CatalogueError: folder missing, catalogue read-only/busy/damaged, disk full.
        """
        if self.readonly:
            raise CatalogueError(f"The catalogue {self.path} is read-only: it can be searched but not updated.")
        progress = progress or _quiet
        should_stop = should_stop or _never
        started = time.perf_counter()
        with self.store.writer_lock(), self._sqlite_errors():
            if not self.root.is_dir():
                raise CatalogueError(
                    f"The folder {self.root} of this catalogue no longer exists (moved or renamed?). "
                    "Open the catalogue from inside the moved folder, or build a new one."
                )
            self._adopt_model(embedder)
            progress("scan", 0, 0)
            found = scan_folder(self.root)
            progress("scan", len(found), len(found))
            if not found and self.counts()["images"]:
                raise CatalogueError(
                    f"The folder {self.root} holds no images now (an unplugged drive or a network share that is not "
                    "mounted?). The catalogue was left unchanged; delete it if the folder really is empty."
                )
            todo, stale_ids, unchanged = self._diff(found)
            changed_paths = {r for r, _ in stale_ids}
            removed = len(stale_ids) - sum(1 for f in todo if f.relpath in changed_paths)
            self._remove([i for _, i in stale_ids])
            counts = {"added": 0, "updated": 0, "unreadable": 0, "network_seconds": 0.0}
            errors: list[tuple[str, str]] = []
            embed_started = time.perf_counter()
            cancelled = False
            done = 0
            progress("embed", 0, len(todo))
            for batch in self._decoded_batches(todo, embedder.size, config):
                self._commit_batch(batch, embedder, changed_paths, counts, errors)
                done += len(batch)
                progress("embed", done, len(todo))
                if done < len(todo) and should_stop():
                    cancelled = True
                    break
            embed_seconds = time.perf_counter() - embed_started
            indexed, refitted = self._index(config, complete=not cancelled, progress=progress)
        report = BuildReport(
            added=counts["added"],
            updated=counts["updated"],
            removed=removed,
            unreadable=counts["unreadable"],
            unchanged=unchanged,
            indexed=indexed,
            refitted=refitted,
            cancelled=cancelled,
            seconds=time.perf_counter() - started,
            embed_seconds=embed_seconds,
            network_seconds=counts["network_seconds"],
            errors=tuple(errors),
        )
        log.info("%s: %s", self.path.name, report.summary())
        if cancelled:
            raise Cancelled(report)
        return report

    def _adopt_model(self, embedder) -> None:
        """Record the model; a different model makes every stored embedding stale."""
        known = self.store.meta("model_sha256")
        if known == embedder.sha256:
            return
        with self.store.transaction():
            if known is not None:
                log.warning("%s was built with another model: every image will be embedded again", self.path)
                for table in ("buckets", "code_blocks", "embeddings", "images"):
                    self.store.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
                self.store.set_meta(fitted=None)
            self.store.set_meta(
                model_name=embedder.name,
                model_sha256=embedder.sha256,
                embedding_dim=embedder.dim,
                embedding_dtype=EMBEDDING_DTYPE,  # no embedding is stored yet (or all were dropped)
            )
            self.embedding_dtype = EMBEDDING_DTYPE

    def _diff(self, found: list[FoundFile]) -> tuple[list[FoundFile], list[tuple[str, int]], int]:
        """Files to (re-)read, (path, id) of rows to drop, and how many are unchanged."""
        known = {
            path: (image_id, size, mtime)
            for image_id, path, size, mtime in self.store.conn.execute("SELECT id, path, size, mtime FROM images")
        }
        todo: list[FoundFile] = []
        stale: list[tuple[str, int]] = []
        unchanged = 0
        seen = set()
        for f in found:
            seen.add(f.relpath)
            row = known.get(f.relpath)
            if row is None:
                todo.append(f)
            elif row[1] != f.size or abs(row[2] - f.mtime) > 1e-6:
                stale.append((f.relpath, row[0]))
                todo.append(f)
            else:
                unchanged += 1
        stale.extend((path, row[0]) for path, row in known.items() if path not in seen)
        return todo, stale, unchanged

    def _remove(self, image_ids: list[int]) -> None:
        """Drop images, their embeddings, codes and bucket entries (one transaction)."""
        if not image_ids:
            return
        conn = self.store.conn
        fitted = self.fitted()
        with self.store.transaction():
            if fitted is not None:
                ids, codes = self.index.drop_codes(np.asarray(image_ids, dtype=np.int64), fitted)
                if len(ids):
                    self.index.edit_buckets(fitted.keys(codes), ids, add=False)
            for start in range(0, len(image_ids), 500):
                chunk = image_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for table, column in (("embeddings", "image_id"), ("images", "id")):
                    conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)  # noqa: S608

    def _decoded_batches(
        self, files: list[FoundFile], size: int, config: EngineConfig
    ) -> Iterator[list[tuple[FoundFile, LoadedImage | ImageError]]]:
        """Decode files on a thread pool, ahead of the network, in batches."""
        if not files:
            return
        window = max(config.batch_size * 2, config.decoders * 4)
        root = self.root

        def decode(f: FoundFile) -> LoadedImage | ImageError:
            if f.name_error:
                return ImageError(root / f.relpath, f.name_error)
            try:
                return load_image(root / f.relpath, size)
            except ImageError as exc:
                return exc

        pool = ThreadPoolExecutor(max(1, config.decoders), thread_name_prefix="decode")
        try:
            pending = deque()
            queue = iter(files)
            for f in queue:
                pending.append((f, pool.submit(decode, f)))
                if len(pending) >= window:
                    break
            batch: list[tuple[FoundFile, LoadedImage | ImageError]] = []
            while pending:
                f, future = pending.popleft()
                batch.append((f, future.result()))
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(decode, nxt)))
                if len(batch) == config.batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _commit_batch(self, batch, embedder, changed_paths: set[str], counts: dict, errors: list) -> None:
        """Embed the readable images of one batch and commit rows + embeddings together."""
        good = [r.pixels for _, r in batch if isinstance(r, LoadedImage)]
        started = time.perf_counter()
        vectors = iter(embedder.embed(np.stack(good)) if good else ())
        counts["network_seconds"] += time.perf_counter() - started
        now = time.time()
        conn = self.store.conn
        with self.store.transaction():
            for f, result in batch:
                label = f.relpath.split("/", 1)[0] if "/" in f.relpath else None
                readable = isinstance(result, LoadedImage)
                if readable:
                    values = (f.relpath, f.size, f.mtime, result.width, result.height, phash_to_sql(result.phash), label, None, now)
                else:
                    values = (f.relpath, f.size, f.mtime, None, None, None, label, result.reason, now)
                image_id = conn.execute(
                    "INSERT INTO images(path, size, mtime, width, height, phash, label, error, added) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    values,
                ).fetchone()[0]
                if readable:
                    conn.execute(
                        "INSERT INTO embeddings(image_id, vector) VALUES (?, ?)",
                        (image_id, to_blob(next(vectors), self.embedding_dtype)),
                    )
                    counts["updated" if f.relpath in changed_paths else "added"] += 1
                else:
                    counts["unreadable"] += 1
                    errors.append((f.relpath, result.reason))

    # --- fitting and indexing ---------------------------------------------------------------

    def refit(self, config: EngineConfig, *, progress: ProgressFn | None = None) -> int:
        """Fit the index again from the stored embeddings and re-encode everything (no image is read).

        For new index settings (code length, hash layer, LSH tables); returns
        the number of searchable images.
        """
        if self.readonly:
            raise CatalogueError(f"The catalogue {self.path} is read-only: it can be searched but not updated.")
        with self.store.writer_lock(), self._sqlite_errors():
            return self._index(config, complete=True, progress=progress or _quiet, force=True)[0]

    def _index(
        self, config: EngineConfig, *, complete: bool, progress: ProgressFn, force: bool = False
    ) -> tuple[int, bool]:
        """Fit if needed (or `force`), then encode every embedded image that has no code yet.

        Returns (searchable images, refitted?).
        """
        conn = self.store.conn
        embedded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        fitted = self.fitted()
        wanted = {name: getattr(config, name) for name in INDEX_SETTINGS}
        refit = embedded >= 2 and (
            force
            or fitted is None
            or (fitted.provisional and complete)
            or embedded >= 2 * fitted.count
            or embedded * 2 <= fitted.count
            or fitted.settings != wanted
        )
        if embedded < 2:
            with self.store.transaction():
                self.index.clear()
                self.store.set_meta(fitted=None)
            return 0, False
        if refit:
            progress("index", 0, embedded)
            fitted = self._fit(config, embedded, provisional=not complete)
            pending = None  # every image
        else:
            embedded_ids = np.array([r[0] for r in conn.execute("SELECT image_id FROM embeddings ORDER BY image_id")])
            coded = [ids for _, ids in self.index.coded_ids()]
            pending = np.setdiff1d(embedded_ids, np.concatenate(coded) if coded else [], assume_unique=True)
            pending = [int(i) for i in pending]
            if not pending:
                return self.index.searchable(), False
            progress("index", 0, len(pending))
        with self.store.transaction():
            if refit:
                self.index.save_fit(fitted)
                self.index.clear()
            all_ids, all_keys = [], []
            total = embedded if pending is None else len(pending)
            done = 0
            for ids, embeddings in self._embedding_chunks(pending):
                codes = fitted.codes(embeddings)
                self.index.write_blocks(ids, codes, fitted.vectors(embeddings))
                all_ids.append(ids)
                all_keys.append(fitted.keys(codes))
                done += len(ids)
                progress("index", done, total)
            ids = np.concatenate(all_ids)
            keys = np.concatenate(all_keys)
            if refit:
                self.index.write_buckets(keys, ids)
            else:
                self.index.edit_buckets(keys, ids, add=True)
                self.index.compact_blocks(fitted)
        return self.index.searchable(), refit

    def _embedding_chunks(self, image_ids: list[int] | None, chunk: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, embeddings) in chunks: all embedded images (None) or the given ids."""
        conn = self.store.conn
        dim = self.store.meta("embedding_dim")
        if image_ids is None:
            cursor = conn.execute("SELECT image_id, vector FROM embeddings ORDER BY image_id")
            while rows := cursor.fetchmany(chunk):
                yield np.array([r[0] for r in rows], np.int64), from_blobs([r[1] for r in rows], self.embedding_dtype, dim)
            return
        for start in range(0, len(image_ids), chunk):
            part = image_ids[start : start + chunk]
            found = self.embeddings(part)
            ids = np.array([i for i in part if i in found], np.int64)
            yield ids, np.stack([found[int(i)] for i in ids]) if len(ids) else np.empty((0, dim), np.float32)

    def _fit(self, config: EngineConfig, embedded: int, *, provisional: bool) -> FittedIndex:
        """Fit on a sample of the catalogue drawn in path order with a fixed seed,
        so the same set of images gives the same fit however the build was interrupted."""
        rows = self.store.conn.execute(
            "SELECT i.id, i.label FROM images i JOIN embeddings e ON e.image_id = i.id ORDER BY i.path"
        ).fetchall()
        rng = np.random.default_rng(config.seed)
        if len(rows) > config.fit_sample:
            rows = [rows[i] for i in np.sort(rng.choice(len(rows), config.fit_sample, replace=False))]
        found = self.embeddings([r[0] for r in rows])
        sample = np.stack([found[r[0]] for r in rows])
        labels = None
        if config.folder_labels:
            names = [r[1] or "" for r in rows]
            if len(set(names)) >= 2:
                labels = np.unique(names, return_inverse=True)[1]
        log.info("fitting the %s hash layer on %d of %d images", config.hash_variant, len(sample), embedded)
        return fit_index(sample, config, labels=labels, count=embedded, provisional=provisional)

def _relative(target: Path, start: Path) -> str | None:
    try:
        return os.path.relpath(target, start)
    except ValueError:  # another drive on Windows
        return None


def as_dict(report: BuildReport) -> dict:
    """A JSON-ready dict of a build report."""
    out = asdict(report)
    out["errors"] = [list(e) for e in report.errors]
    out["images_per_second"] = report.images_per_second
    return out
