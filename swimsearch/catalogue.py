"""The catalogue handle: open or create a catalogue, read it, build it.

`Catalogue` is what the CLI, the window and the tests hold: it opens a store
(today a SQLite file, `SqliteStore`), answers the reader protocol by
delegating to it (so a `SearchEngine` can be given a `Catalogue`), and
builds through `build_catalogue` with the store as writer. The build
pipeline lives in build.py, the SQL in stores/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from .build import BuildReport, ProgressFn, StopFn, as_dict, build_catalogue
from .catalogue_details import DetailViews
from .config import FIT_CHOICES, EngineConfig
from .errors import CatalogueError
from .index import FittedIndex, IndexSnapshot
from .model import ImageEmbedder
from .neighbours import NeighbourLists
from .searchers import Searcher
from .stores.base import (
    CatalogueCounts,
    CatalogueIdentity,
    CatalogueReader,
    CatalogueWriter,
    Embeddings,
    FitState,
    ImageRecord,
)
from .stores.sqlite import SqliteStore
from .stores.verdicts import StoreSteering

__all__ = ["CATALOGUE_SUFFIX", "BuildReport", "Catalogue", "ImageRecord", "as_dict", "default_catalogue_path"]

CATALOGUE_SUFFIX = ".swimcat"


def default_catalogue_path(folder: str | os.PathLike) -> Path:
    """Where a folder's catalogue lives by default: a hidden file inside it, so it moves with it."""
    return Path(folder) / f".swimsearch{CATALOGUE_SUFFIX}"


class Catalogue(DetailViews, StoreSteering):
    """An open catalogue and the folder it describes (a `CatalogueReader`).

    Use it from one thread (its SQLite connection belongs to the opening thread).
    """

    def __init__(self, store: SqliteStore):
        self.store = store
        self.path = store.path

    # --- opening and closing -----------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, root: str | os.PathLike) -> "Catalogue":
        """A new, empty catalogue file at `path` for the folder `root` (never overwrites)."""
        return cls(SqliteStore.create(path, root))

    @classmethod
    def open(cls, path: str | os.PathLike, *, readonly: bool = False) -> "Catalogue":
        """Open an existing catalogue; a damaged, newer or foreign file is refused in plain words."""
        return cls(SqliteStore.open(path, readonly=readonly))

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, root: str | os.PathLike) -> "Catalogue":
        """Open the catalogue at `path`, or create it for `root` when there is none."""
        path = Path(path).absolute()
        if not path.exists():
            return cls.create(path, root)
        catalogue = cls.open(path)
        if catalogue.root.resolve() != Path(root).resolve():
            other = catalogue.root
            catalogue.close()
            raise CatalogueError(f"The catalogue {path} belongs to the folder {other}, not {Path(root).resolve()}.")
        return catalogue

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Catalogue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        return self.store.location

    @property
    def root(self) -> Path:
        """The folder the catalogue describes (where it moved with it, if it did)."""
        return self.store.root

    @property
    def name(self) -> str:
        """A short name for the window title: the catalogue's folder name."""
        return self.root.name or str(self.root)

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    # --- building ----------------------------------------------------------------------

    def writer(self) -> CatalogueWriter:
        """The store, for writing (build.py); refused for a read-only catalogue."""
        if self.readonly:
            raise CatalogueError(f"The catalogue {self.path} is read-only: it can be searched but not updated.")
        return self.store

    def update(
        self,
        embedder: ImageEmbedder,
        config: EngineConfig,
        *,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        allow_removal: bool = False,
    ) -> BuildReport:
        """Build or update the catalogue from its folder: `build_catalogue` with this catalogue as writer.

        Decisions on a file go when the update finds it gone (made a tombstone
        or removed); once the whole folder is read, any decision left on a file
        the catalogue no longer holds is forgotten too.

        Args:
            allow_removal: remove files even when so many are gone at once that
                the folder may be only partly there (see `BuildReport.held`).
        """
        report = build_catalogue(
            self.writer(), self.root, embedder, config, progress, should_stop, allow_removal=allow_removal
        )
        self.store.prune_decisions()
        return report

    def with_fit_choices(self, config: EngineConfig, names: Iterable[str] = FIT_CHOICES) -> EngineConfig:
        """`config` with the hash-layer choices (`names`) this catalogue was fitted with.

        A user picks the variant and folder labels once, when indexing; an
        update that does not name them again keeps them instead of refitting
        with the defaults.
        """
        fit = self.fit_state()
        if fit is None:
            return config
        return config.with_changes(**{name: fit.settings[name] for name in names if name in fit.settings})

    # --- reading -----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Identity and state of the catalogue, for `swimsearch info` and the status bar."""
        identity = self.identity()
        fit = self.fit_state()
        return {
            "catalogue": str(self.path),
            "root": str(self.root),
            "root_exists": self.root.is_dir(),
            "model": identity.model_name,
            "model_sha256": identity.model_sha256,
            "schema_version": identity.schema_version,
            "fitted": fit.as_dict() if fit else None,
            "details": dict(self.detail_counts()),
            **self.counts(),
        }

    def embeddings(self, image_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Stored trunk embeddings (float32) by image id."""
        found = self.store.embedding_matrix(image_ids)
        return {int(i): vector for i, vector in zip(found.ids, found.vectors)}

    def identity(self) -> CatalogueIdentity:
        return self.store.identity()

    def counts(self) -> CatalogueCounts:
        """How many images: all, readable (embedded), unreadable, searchable (indexed)."""
        return self.store.counts()

    def fit_state(self) -> FitState | None:
        return self.store.fit_state()

    def fitted(self) -> FittedIndex | None:
        """The fitted hash layer, spheres, re-ranking basis and LSH layout, if any."""
        return self.store.fitted()

    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]:
        """Image records by id."""
        return self.store.records(image_ids)

    def record_by_path(self, path: str | os.PathLike, *, unchanged: bool = False) -> ImageRecord | None:
        """The record of a file inside the catalogue's folder, or None.

        Args:
            unchanged: only if the file is as the catalogue read it (same size
                and modification time), so its stored embedding is still its own.
        """
        return self.store.record_by_path(path, unchanged=unchanged)

    def unreadable(self) -> list[tuple[str, str]]:
        """(relative path, reason) of every file recorded as unreadable."""
        return self.store.unreadable()

    def embedding_matrix(self, image_ids: Iterable[int]) -> Embeddings:
        return self.store.embedding_matrix(image_ids)

    def iter_embeddings(self, image_ids: Sequence[int] | None = None, chunk: int = 8192) -> Iterator[Embeddings]:
        return self.store.iter_embeddings(image_ids, chunk)

    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        """Perceptual hashes (uint64) of image ids, 0 where unknown."""
        return self.store.phashes(image_ids)

    def load_snapshot(self) -> IndexSnapshot | None:
        """Codes, re-ranking vectors and buckets as compact arrays, for searching (None before a first fit)."""
        return self.store.load_snapshot()

    def own_searcher(self, config: EngineConfig) -> Searcher | None:
        return self.store.own_searcher(config)

    def neighbour_lists(self, image_ids: Iterable[int] | None = None) -> NeighbourLists | None:
        return self.store.neighbour_lists(image_ids)

    def check(self) -> list[str]:
        """Verify every checksum and record (`swimsearch info --check`); what was checked, in words."""
        return self.store.check()


if TYPE_CHECKING:

    def _a_catalogue_is_a_reader(catalogue: Catalogue) -> CatalogueReader:
        return catalogue  # mypy checks here that the handle keeps to the reader protocol
