"""The catalogue handle: open or create a catalogue, read it, build it.

`Catalogue` is what the CLI, the window and the tests hold: it opens a store
(a SQLite file, `SqliteStore`, or a team catalogue named by a
``postgresql://`` address, `PostgresStore`), answers the reader protocol by
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
from .errors import CatalogueError, OtherFolder
from .folderscan import named_as_text
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
    StoredImage,
)
from .stores.pg_address import is_team_address
from .stores.sqlite import SqliteStore
from .stores.verdicts import StoreSteering

if TYPE_CHECKING:
    from .stores.pg_connection import PasswordPrompt
    from .stores.postgres import PostgresStore

#: A catalogue file, or a team catalogue's address.
Location = str | os.PathLike

__all__ = ["CATALOGUE_SUFFIX", "BuildReport", "Catalogue", "ImageRecord", "as_dict", "default_catalogue_path"]

CATALOGUE_SUFFIX = ".swimcat"


def default_catalogue_path(folder: str | os.PathLike) -> Path:
    """Where a folder's catalogue lives by default: a hidden file inside it, so it moves with it."""
    return Path(folder) / f".swimsearch{CATALOGUE_SUFFIX}"


class Catalogue(DetailViews, StoreSteering):
    """An open catalogue and the folder it describes (a `CatalogueReader`); use it from one thread (its connection
    belongs to the opening thread). `path` is the file, or a team catalogue's address without password (as `location`)."""

    def __init__(self, store: "SqliteStore | PostgresStore"):
        self.store = store
        self.path: Path | str = store.path

    # --- opening and closing -----------------------------------------------------------

    @classmethod
    def create(cls, path: Location, root: str | os.PathLike, *, password_prompt: "PasswordPrompt | None" = None,
               folder_must_exist: bool = True) -> "Catalogue":
        """A new, empty catalogue at `path` (a file or team address) for `root` (a copy's may be elsewhere); never overwrites."""
        if is_team_address(path):
            return cls(_team_store().create(str(path), named_as_text(root), password_prompt=password_prompt, folder_must_exist=folder_must_exist))
        return cls(SqliteStore.create(named_as_text(path, "catalogue"), named_as_text(root), folder_must_exist=folder_must_exist))

    @classmethod
    def open(
        cls, path: Location, *, readonly: bool = False, root: str | os.PathLike | None = None,
        password_prompt: "PasswordPrompt | None" = None,
    ) -> "Catalogue":
        """Open an existing catalogue (a file, or a team catalogue's address); a damaged, newer or foreign one
        is refused in plain words. A team catalogue's folder is at `root` on this computer (default: where it
        was indexed); `password_prompt` asks for its password when the server wants one and none was given."""
        if is_team_address(path):
            return cls(_team_store().open(str(path), root=root, readonly=readonly, password_prompt=password_prompt))
        return cls(SqliteStore.open(named_as_text(path, "catalogue"), readonly=readonly))  # names are kept as text

    @classmethod
    def open_or_create(
        cls, path: Location, root: str | os.PathLike, *, password_prompt: "PasswordPrompt | None" = None
    ) -> "Catalogue":
        """Open the catalogue at `path`, or create it for `root` when there is none (a team catalogue that
        exists opens with the folder it was indexed from; `cli_catalogues` maps another one)."""
        if is_team_address(path):
            if _team_store().exists(str(path), password_prompt=password_prompt):
                return cls.open(path, password_prompt=password_prompt)
            return cls.create(path, root, password_prompt=password_prompt)
        path = Path(path).absolute()
        if not path.exists():
            return cls.create(path, root)
        catalogue = cls.open(path)
        refuse_other_folder(catalogue, root)
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
            raise CatalogueError(self.store.readonly_reason)
        return self.store

    def update(
        self,
        embedder: ImageEmbedder,
        config: EngineConfig,
        *,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        folder: str | os.PathLike | None = None,
        allow_removal: bool = False,
    ) -> BuildReport:
        """Build or update the catalogue from its folder (or only `folder`, inside it): `build_catalogue`
        (`allow_removal`: believe a scan that lost many files at once, see `BuildReport.held`)."""
        folder = Path(folder) if folder else self.root
        report = build_catalogue(self.writer(), folder, embedder, config, progress, should_stop, allow_removal=allow_removal)
        self.store.prune_decisions()  # decisions on files gone go with them
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
            "catalogue": self.location,
            "root": str(self.root),
            "root_exists": self.root.is_dir(),
            "model": identity.model_name,
            "model_sha256": identity.model_sha256,
            "schema_version": identity.schema_version,
            "fitted": fit.as_dict() if fit else None,
            "details": dict(self.detail_counts()),
            **self.counts(),
            **({"team": self.store.team_info()} if not isinstance(self.store, SqliteStore) else {}),
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

    @property
    def searches_itself(self) -> bool:
        return self.store.searches_itself

    def export_images(self, chunk: int = 10_000) -> Iterator[list[StoredImage]]:
        return self.store.export_images(chunk)

    def neighbour_lists(self, image_ids: Iterable[int] | None = None) -> NeighbourLists | None:
        return self.store.neighbour_lists(image_ids)

    def check(self) -> list[str]:
        """Verify every checksum and record (`swimsearch info --check`); what was checked, in words."""
        return self.store.check()


def refuse_other_folder(catalogue: Catalogue, root: str | os.PathLike) -> None:
    """Close `catalogue` and raise OtherFolder when it describes another folder than `root`.

    A folder copied together with its hidden catalogue file (`cp -a`) may
    hold a file that still describes the original folder (its pictures are
    searched there); opened as the copy's, its results would point into the
    original.
    """
    if catalogue.root.resolve() != Path(root).resolve():
        other, path = catalogue.root, catalogue.path
        catalogue.close()
        raise OtherFolder(f"The catalogue {path} belongs to the folder {other}, not {Path(root).resolve()}.")


def _team_store() -> "type[PostgresStore]":
    """The team catalogue's store, imported only when one is named (it brings the PostgreSQL driver)."""
    from .stores.postgres import PostgresStore

    return PostgresStore


if TYPE_CHECKING:

    def _a_catalogue_is_a_reader(catalogue: Catalogue) -> CatalogueReader:
        return catalogue  # mypy checks here that the handle keeps to the reader protocol
