"""The SQLite store: one catalogue file beside (or inside) the folder it describes.

`SqliteStore` implements `CatalogueReader` and `CatalogueWriter` over one
`SqliteFile` (sqlite_file.py: opening, checking, migrating), its
`ImageTables` (sqlite_images.py: records, embeddings, tombstones) and its
`IndexTables` (sqlite_index.py: fit, codes, buckets). Together they are the
only place that knows the catalogue's tables; everything read is checked
(checksums, types, bounds) before it leaves them, and every SQLite failure
leaves this store as one plain `CatalogueError`. Use it from the thread that
opened it. Copies in and out are sqlite_copy.py. A file on a network file
system is opened for searching only (network_fs.py says why).

The catalogue's folder (its root) is found from where the file is: a folder
moved or copied together with its catalogue describes itself, not the
original (see `_resolve_root`).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..config import EngineConfig
from ..errors import CatalogueError
from ..fingerprint import still_the_same
from ..graph import VectorGraph
from ..index import FittedIndex, IndexSnapshot
from ..searchers import Searcher
from .base import (
    CatalogueCounts,
    CatalogueIdentity,
    Embeddings,
    FitSample,
    FitState,
    ImageRecord,
    KnownFile,
    ModelInfo,
    NewImage,
    Restored,
    relative_to_root,
    sample_positions,
)
from .integrity import safe_relpath
from .sqlite_arrays import ArrayReads
from .network_fs import network_file_system, refuse_network_folder, updates_refused
from .sqlite_copy import CopyRows
from .sqlite_file import SQLITE_ERRORS, SqliteFile, create_file, describe_error, plain_errors as _plain
from .sqlite_details import DetailMethods, DetailTables
from .sqlite_images import ImageTables
from .sqlite_decisions import SqliteDecisions
from .sqlite_folders import SqliteFolders
from .sqlite_index import IndexTables
from .sqlite_neighbours import NeighbourMethods
from .sqlite_phashes import PhashMethods

log = logging.getLogger(__name__)

# Embeddings are stored in half precision: 2.5 KB instead of 5 KB per image
# (three to an 8 KB page: a million images take 2.8 GB, not 8.3 GB), and the
# rounding moves a score by less than 1e-4. Arithmetic is always done in float32.
# The dtype is recorded in each catalogue (catalogues made before this choice
# hold float32 and stay readable).
EMBEDDING_DTYPE = "<f2"

class SqliteStore(DetailMethods, CopyRows, SqliteDecisions, SqliteFolders, NeighbourMethods, PhashMethods, ArrayReads):
    """A catalogue kept in one SQLite file (reader and writer); details, copies in and out, decisions, subfolders,
    neighbour lists and the reads of the array cache are in their own modules (sqlite_details.py, sqlite_copy.py,
    sqlite_decisions.py, sqlite_folders.py, sqlite_neighbours.py, sqlite_arrays.py)."""

    def __init__(self, file: SqliteFile, *, network_fs: str | None = None):
        self.file = file
        self.path = file.path
        self.network_fs = network_fs  # the network file system the file is on (then it is only read)
        self._index = IndexTables(file)
        self._images = ImageTables(file, self._index, lambda: self._dtype)
        self._details = DetailTables(file)
        try:
            self._dtype: str = file.meta("embedding_dtype", "<f4")
            self._root = self._resolve_root()
        except SQLITE_ERRORS as exc:
            file.close()
            raise describe_error(exc, self.path) from exc
        self._root_text = str(self._root)

    # --- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, root: str | os.PathLike, *, folder_must_exist: bool = True) -> "SqliteStore":
        """A new, empty catalogue file at `path` for the folder `root` (never overwrites; `root` may be missing
        only when not `folder_must_exist`: a copy of a catalogue whose folder is elsewhere)."""
        path = Path(path).absolute()
        root = Path(root).resolve() if Path(root).exists() or folder_must_exist else Path(root).absolute()
        if path.exists():
            raise CatalogueError(f"A file already exists at {path}; it was left untouched.")
        if folder_must_exist and not root.is_dir():
            raise CatalogueError(f"The folder {root} does not exist.")
        refuse_network_folder(path.parent)
        create_file(path, root=str(root), root_relative=_relative(root, path.parent), embedding_dtype=EMBEDDING_DTYPE)
        return cls(SqliteFile(path))

    @classmethod
    def open(cls, path: str | os.PathLike, *, readonly: bool = False) -> "SqliteStore":
        """Open an existing catalogue file; a damaged, newer or foreign file is refused in plain words."""
        path = Path(path).absolute()
        network = network_file_system(path) if path.exists() else None
        if network:
            log.info("%s is on a network file system (%s): opened for searching only", path, network)
            return cls(SqliteFile(path, immutable=True), network_fs=network)
        if not readonly and path.exists() and not os.access(path, os.W_OK):
            readonly = True
        if not readonly and path.exists() and not os.access(path.parent, os.W_OK):
            readonly = True  # SQLite needs to create the WAL file beside it
        return cls(SqliteFile(path, readonly=readonly))

    def _resolve_root(self) -> Path:
        """The catalogue's folder: where it was made, or where it moved or was copied with the catalogue.

        The folder at the recorded position relative to the catalogue file
        wins when the catalogue's own files are found there, so a folder
        copied with its catalogue inside describes the copy, not the
        original. Otherwise the recorded absolute folder: a catalogue copied
        away on its own must not mistake its new neighbourhood for its folder.
        """
        absolute = Path(self.file.meta("root", str(self.path.parent)))
        relative = self.file.meta("root_relative")
        if relative is not None:
            candidate = (self.path.parent / relative).resolve()
            if candidate.is_dir() and candidate != absolute.resolve() and self._holds_our_files(candidate):
                return candidate
        return absolute

    def _holds_our_files(self, folder: Path, sample: int = 40) -> bool:
        """Whether any of `sample` of the catalogue's pictures, spread over all of them, is in `folder` (the first
        20 alone took a copied folder whose first pictures were deleted for another folder: a reviewer)."""
        conn = self.file.conn
        low, high = conn.execute("SELECT min(id), max(id) FROM images").fetchone()
        if low is None:
            return True
        ids = sorted({int(i) for i in np.linspace(low, high, sample).round()})
        rows = conn.execute(f"SELECT path FROM images WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
        rows += conn.execute("SELECT path FROM images ORDER BY id LIMIT 20").fetchall()
        return any(safe_relpath(r[0]) and (folder / r[0]).exists() for r in rows)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def root(self) -> Path:
        return self._root

    @property
    def readonly(self) -> bool:
        return self.file.readonly

    @property
    def readonly_reason(self) -> str:
        """Why an update is refused (one sentence), for a read-only catalogue."""
        if self.network_fs:
            return updates_refused(self.path, self.network_fs)
        return f"The catalogue {self.path} is read-only: it can be searched but not updated."

    def close(self) -> None:
        self.file.close()

    # --- reading -------------------------------------------------------------------

    @_plain
    def identity(self) -> CatalogueIdentity:
        meta = self.file.meta
        return CatalogueIdentity(
            location=self.location,
            model_name=meta("model_name"),
            model_sha256=meta("model_sha256"),
            embedding_dim=meta("embedding_dim"),
            embedding_dtype=self._dtype,
            schema_version=meta("schema_version"),
        )

    @_plain
    def counts(self) -> CatalogueCounts:
        images, readable, unreadable = self._images.counts()
        return CatalogueCounts(images=images, readable=readable, unreadable=unreadable, searchable=self._index.searchable())

    @_plain
    def fit_state(self) -> FitState | None:
        return self._index.fit_state()

    @_plain
    def fitted(self) -> FittedIndex | None:
        return self._index.fitted()

    @_plain
    def load_snapshot(self, *, every_bucket: bool = False) -> IndexSnapshot | None:
        return self._index.load_snapshot(every_bucket=every_bucket)

    def own_searcher(self, config: EngineConfig) -> Searcher | None:
        return None  # candidates are found in a loaded snapshot

    searches_itself = False  # the engine searches a loaded snapshot (and keeps a graph for it)

    @_plain
    def unreadable(self) -> list[tuple[str, str]]:
        rows = self._images.rows("WHERE error IS NOT NULL AND gone IS NULL ORDER BY path")
        return [(row[1], row[8]) for row in rows]

    @_plain
    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]:
        rows = self._images.rows_by_id([int(i) for i in image_ids])
        return {image_id: self._images.record(row, self._root_text) for image_id, row in rows.items()}

    @_plain
    def record_by_path(self, path: str | os.PathLike, *, unchanged: bool = False) -> ImageRecord | None:
        rel = relative_to_root(path, self._root)
        if rel is None:
            return None
        row = next(self._images.rows("WHERE path = ?", (rel,)), None)
        if row is None or row[11] is not None:  # not recorded, or a tombstone
            return None
        record = self._images.record(row, self._root_text)
        if unchanged and not still_the_same(path, record.size, record.mtime, row[9]):
            return None
        return record

    @_plain
    def embedding_matrix(self, image_ids: Iterable[int]) -> Embeddings:
        return self._images.embedding_matrix([int(i) for i in image_ids])

    @_plain
    def embedded_ids(self) -> np.ndarray:
        return self._images.embedded_ids()

    def iter_embeddings(self, image_ids: Sequence[int] | None = None, chunk: int = 8192) -> Iterator[Embeddings]:
        try:
            if image_ids is not None:
                for start in range(0, len(image_ids), chunk):
                    yield self.embedding_matrix(image_ids[start : start + chunk])
                return
            for ids, vectors in self._images.embeddings("WHERE i.gone IS NULL ORDER BY e.image_id", ()):
                yield Embeddings(np.array(ids, np.int64), vectors)
        except SQLITE_ERRORS as exc:
            raise describe_error(exc, self.path) from exc

    @_plain
    def check(self) -> list[str]:
        """Verify everything the catalogue holds (`swimsearch info --check`); what was checked, in words."""
        from .sqlite_checks import full_check

        return full_check(self.file, self)

    def check_images(self) -> int:
        return self._images.check_all()

    # --- writing -------------------------------------------------------------------

    @contextmanager
    def writer_lock(self, scope: str = "") -> Iterator[None]:
        """The whole file, whatever the folder: one build at a time per catalogue file."""
        if self.readonly:
            raise CatalogueError(self.readonly_reason)
        with self.file.writer_lock():
            yield

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        yield  # the writer lock is already exclusive

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.file.transaction():
                yield
        except SQLITE_ERRORS as exc:
            raise describe_error(exc, self.path) from exc

    @_plain
    def set_model(self, model: ModelInfo) -> None:
        with self.file.transaction():
            self.file.set_meta(
                model_name=model.name, model_sha256=model.sha256, embedding_dim=model.dim, embedding_dtype=EMBEDDING_DTYPE
            )
        self._dtype = EMBEDDING_DTYPE

    @_plain
    def clear_images(self) -> None:
        with self.file.transaction():
            for table in ("buckets", "code_blocks", "embeddings", "images", "neighbours", *DetailTables.TABLES):
                self.file.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._index.clear_graph()
            self.file.set_meta(fitted=None)

    @_plain
    def known_files(self, scope: str = "") -> dict[str, KnownFile]:
        return self._images.known_files(scope)

    @_plain
    def add_batch(self, images: Sequence[NewImage]) -> list[int]:
        with self.file.transaction():
            ids = self._images.add_batch(images, self._index.fitted())
            self._details.replace(ids, images)  # a file read again: its old details go with its old embedding
            return ids

    @_plain
    def restore(self, entries: Sequence[Restored]) -> None:
        with self.file.transaction():
            before = self._paths_of(e.image_id for e in entries)
            self._images.restore(entries)
            self.move_decisions({before[e.image_id]: e.file.relpath for e in entries if e.image_id in before})

    @_plain
    def tombstone(self, image_ids: Sequence[int], at: float) -> None:
        if len(image_ids):
            with self.file.transaction():
                self.forget_decisions(image_ids)
                self._images.tombstone(image_ids, at, self._index.fitted())

    @_plain
    def flag_retry(self, image_ids: Sequence[int]) -> None:
        with self.file.transaction():
            self._images.flag_retry(image_ids)

    @_plain
    def remove(self, image_ids: Sequence[int]) -> None:
        if len(image_ids):
            with self.file.transaction():
                self.forget_decisions(image_ids)
                self._images.remove(image_ids, self._index.fitted())
                self._details.remove(image_ids)

    @_plain
    def fit_sample(self, limit: int, seed: int) -> FitSample:
        rows = self.file.conn.execute(
            "SELECT i.id, i.label FROM images i JOIN embeddings e ON e.image_id = i.id WHERE i.gone IS NULL ORDER BY i.path"
        ).fetchall()
        rows = [rows[i] for i in sample_positions(len(rows), limit, seed)]
        found = self.embedding_matrix(r[0] for r in rows)
        return FitSample(found.ids, [r[1] for r in rows], found.vectors)

    @_plain
    def uncoded_ids(self) -> np.ndarray:
        return self._images.uncoded_ids()

    @_plain
    def save_fit(self, fitted: FittedIndex) -> None:
        with self.file.transaction():
            self._index.save_fit(fitted)
            self._index.clear()

    @_plain
    def clear_index(self) -> None:
        with self.file.transaction():
            self._index.clear()
            self.file.set_meta(fitted=None)

    @_plain
    def write_codes(self, image_ids: np.ndarray, codes: np.ndarray, vectors: np.ndarray) -> None:
        with self.file.transaction():
            self._images.drop_codes(self._images.recoded_among(image_ids), self._index.fitted())  # replaced, not doubled
            self._index.write_blocks(image_ids, codes, vectors)
            self._index.compact_blocks(codes.shape[1], vectors.shape[1])
            self._images.codes_written(image_ids)

    @_plain
    def write_graph(self, graph: VectorGraph | None) -> None:
        with self.file.transaction():
            self._index.write_graph(graph)

    @_plain
    def write_buckets(self, keys: np.ndarray, image_ids: np.ndarray, *, merge: bool) -> None:
        with self.file.transaction():
            if merge:
                self._index.edit_buckets(keys, image_ids, add=True)
            else:
                self._index.write_buckets(keys, image_ids)


def _relative(target: Path, start: Path) -> str | None:
    try:
        return os.path.relpath(target, start)
    except ValueError:  # another drive on Windows
        return None
