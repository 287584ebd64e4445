"""What every catalogue store offers: the reader and writer protocols and the plain records they trade.

A store keeps one catalogue: its images, their embeddings, the fitted index
(hash layer, spheres, LSH layout), the codes and re-ranking vectors, and the
LSH buckets. Search reads through `CatalogueReader`; the build writes through
`CatalogueWriter`; nothing above the stores sees SQL, a file format or a
connection, and every failure leaves a store as one plain `CatalogueError`
(a `DamagedCatalogue` when what it read cannot be trusted: stores check what
they read with integrity.py).

`SqliteStore` keeps one catalogue in one file; `PostgresStore` keeps a team
catalogue in a PostgreSQL database that several designers use at once. Where
the server finds candidates with its own index, `own_searcher` returns a
`Searcher` and the engine's in-memory searchers are not built. The rules every
store shares (which files a scan changed: changes.py; which images a fit is
drawn from; a folder's range of paths) are pure functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Iterable, Iterator, Mapping, NamedTuple, Protocol, Sequence, TypedDict

import numpy as np

from ..config import EngineConfig
from ..graph import VectorGraph
from ..index import FittedIndex, IndexSnapshot
from ..neighbours import NeighbourLists
from ..searchers import Searcher
from .details_base import ColourSignatures, DetailCounts, DetailReader, DetailWriter, RegionVectors  # noqa: F401
from .changes import KnownFile, Restored, ScanDiff, diff_scan  # noqa: F401 - the shared diff rules, re-exported
from .sharing import CopyReader, CopyWriter, StoredImage, aligned_phashes, folder_range  # noqa: F401 - re-exported
from .verdicts import SteeringReader, SteeringWriter


@dataclass(frozen=True)
class ImageRecord:
    """One catalogue image as a plain record (never a live cursor)."""

    image_id: int
    relpath: str
    path: str  # absolute, under the catalogue's root
    size: int
    width: int | None
    height: int | None
    phash: int | None  # unsigned 64-bit pHash
    error: str | None  # why the file is unreadable (then it has no embedding)
    mtime: float = 0.0  # modification time of the file as the catalogue read it


@dataclass(frozen=True)
class NewImage:
    """A file a build has read, to be added: what is recorded, and its embedding when readable."""

    relpath: str
    size: int
    mtime: float
    width: int | None = None
    height: int | None = None
    phash: int | None = None
    label: str | None = None  # first-level subfolder, for the hash layer's folder labels
    error: str | None = None  # why it is unreadable (then `embedding` is None)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    fingerprint: int | None = None  # content fingerprint (swimsearch.fingerprint) when it was read
    retry: bool = False  # unreadable for a passing reason: read it again at the next update
    # Details for steering a search (issue 12), made in the same pass as the embedding:
    regions: np.ndarray | None = field(default=None, compare=False, repr=False)  # (R, d) float16 (regions.py)
    colour: np.ndarray | None = field(default=None, compare=False, repr=False)  # (B,) uint8 (colour.py)


@dataclass(frozen=True)
class ModelInfo:
    """The trunk a catalogue's embeddings were made with."""

    name: str
    sha256: str
    dim: int


@dataclass(frozen=True)
class CatalogueIdentity:
    """What a catalogue is: where it is kept, and the model its embeddings belong to."""

    location: str  # the catalogue file, or a server address
    model_name: str | None
    model_sha256: str | None
    embedding_dim: int | None
    embedding_dtype: str  # how embeddings are stored ("<f2"); queries are rounded the same way
    schema_version: int | None


class CatalogueCounts(TypedDict):
    """How many images: all, readable (embedded), unreadable, searchable (indexed)."""

    images: int
    readable: int
    unreadable: int
    searchable: int


@dataclass(frozen=True)
class FitState:
    """What a catalogue records about its fitted index, beside the arrays."""

    variant: str
    count: int  # embedded images when it was fitted
    provisional: bool  # fitted on a cancelled build: refit once a build completes
    settings: dict[str, Any]  # the index settings (config.INDEX_SETTINGS) it was fitted with
    iterations: int | None = None
    at: float | None = None  # when (seconds since the epoch)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "FitState":
        return cls(
            variant=state["variant"],
            count=int(state["count"]),
            provisional=bool(state.get("provisional", False)),
            settings=dict(state.get("settings", {})),
            iterations=state.get("iterations"),
            at=state.get("at"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "count": self.count,
            "provisional": self.provisional,
            "settings": self.settings,
            "iterations": self.iterations,
            "at": self.at,
        }


class Embeddings(NamedTuple):
    """Stored trunk embeddings of the asked ids that have one, in the order asked."""

    ids: np.ndarray  # (n,) int64
    vectors: np.ndarray  # (n, D) float32


class FitSample(NamedTuple):
    """The images a hash layer is fitted on."""

    ids: np.ndarray  # (n,) int64
    labels: list[str | None]  # first-level subfolder of each
    embeddings: np.ndarray  # (n, D) float32


def sample_positions(count: int, limit: int, seed: int) -> np.ndarray:
    """Which of `count` images (in path order) a fit is drawn from: all, or `limit` chosen with `seed`.

    Drawn in path order with a fixed seed, so the same set of images gives
    the same fit however a build was interrupted and resumed.
    """
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def relative_to_root(path: str | os.PathLike, root: Path) -> str | None:
    """`path` as a catalogue's relative path (posix), or None when it lies outside `root`."""
    try:
        # os.path.realpath, not Path.resolve: on Python < 3.13 a symlink loop makes resolve() raise
        # RuntimeError, where the query must reach the reader and be refused in a sentence
        return Path(os.path.realpath(path)).relative_to(os.path.realpath(root)).as_posix()
    except ValueError:
        return None


class CatalogueReader(CopyReader, SteeringReader, DetailReader, Protocol):
    """Reading one catalogue. Use it from the thread that opened it."""

    @property
    def location(self) -> str:
        """The catalogue file, or a server address (for messages)."""
        ...

    @property
    def root(self) -> Path:
        """The folder the catalogue describes; records' paths lie under it."""
        ...

    @property
    def readonly(self) -> bool: ...

    def identity(self) -> CatalogueIdentity: ...

    def counts(self) -> CatalogueCounts: ...

    def fit_state(self) -> FitState | None: ...

    def fitted(self) -> FittedIndex | None:
        """The fitted hash layer, spheres, re-ranking basis and LSH layout (None before a first fit)."""
        ...

    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]: ...

    def record_by_path(self, path: str | os.PathLike, *, unchanged: bool = False) -> ImageRecord | None:
        """The record of a file inside the root; with `unchanged`, only while its size and mtime are as read."""
        ...

    def unreadable(self) -> list[tuple[str, str]]:
        """(relative path, reason) of every file recorded as unreadable."""
        ...

    def embedding_matrix(self, image_ids: Iterable[int]) -> Embeddings: ...

    def iter_embeddings(self, image_ids: Sequence[int] | None = None, chunk: int = 8192) -> Iterator[Embeddings]:
        """Stored embeddings in chunks: of every embedded image (None, in id order) or of the given ids."""
        ...

    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64) aligned with `image_ids`, 0 where unknown."""
        ...

    def load_snapshot(self) -> IndexSnapshot | None:
        """Codes, re-ranking vectors and buckets as compact arrays (None before a first fit)."""
        ...

    def own_searcher(self, config: EngineConfig) -> Searcher | None:
        """A searcher that finds candidates inside the store, or None to search a loaded snapshot."""
        ...

    @property
    def searches_itself(self) -> bool:
        """Whether the store finds candidates itself once a catalogue is large (`own_searcher`): it needs no graph."""
        ...

    def neighbour_lists(self, image_ids: Iterable[int] | None = None) -> NeighbourLists | None:
        """The neighbour lists (neighbours.py) of the given ids that have one, or of every image (None).

        None when the store keeps no lists at all (a catalogue of an older
        format opened read-only); empty lists before a fit on augmented vectors.
        """
        ...

    def check(self) -> list[str]:
        """Verify everything the store holds (`swimsearch info --check`): what was checked, in words.

        Raises:
            DamagedCatalogue: at the first damage found.
        """
        ...

    def close(self) -> None: ...


class CatalogueWriter(CatalogueReader, CopyWriter, SteeringWriter, DetailWriter, Protocol):
    """Building and updating one catalogue. Each method is all-or-nothing on its own;
    `transaction()` makes several one."""

    def writer_lock(self, scope: str = "") -> ContextManager[None]:
        """Hold the catalogue (or the folder `scope` of it, relative to the root) for one build;
        CatalogueBusy when someone else holds it."""
        ...

    def embedded_ids(self) -> np.ndarray:
        """Ids of every image with an embedding that is not being removed (what `iter_embeddings(None)` reads), sorted."""
        ...

    def index_lock(self) -> ContextManager[None]:
        """Wait for, then hold, the right to fit the index and write codes (one writer at a time)."""
        ...

    def transaction(self) -> ContextManager[None]: ...

    def set_model(self, model: ModelInfo) -> None:
        """Record the trunk (only while no embedding is stored: see `clear_images`)."""
        ...

    def clear_images(self) -> None:
        """Drop every image, embedding, code and bucket and the fit (another model makes them stale)."""
        ...

    def known_files(self, scope: str = "") -> dict[str, KnownFile]:
        """Every record (tombstones too) under the folder `scope` ("" for all) by relative path, for `diff_scan`."""
        ...

    def add_batch(self, images: Sequence[NewImage]) -> list[int]:
        """Add records and their embeddings in one transaction; returns their image ids.

        A path the catalogue holds (searchable or a tombstone) keeps its image
        id and gets the new record and embedding. Its code, if any, stays
        until `write_codes` replaces it (`uncoded_ids` lists it meanwhile), so
        a changed image stays searchable until its new code is committed; an
        image that is now unreadable leaves search at once.
        """
        ...

    def restore(self, entries: Sequence[Restored]) -> None:
        """Point records at found files without reading them (came back, moved, fingerprinted), in one transaction.

        A tombstone restored is searchable again once `write_codes` gives it a code.
        """
        ...

    def tombstone(self, image_ids: Sequence[int], at: float) -> None:
        """Files found gone: out of search (codes and buckets dropped), record and embedding kept, marked gone `at`."""
        ...

    def flag_retry(self, image_ids: Sequence[int]) -> None:
        """Read these again at the next update (a passing failure); records and embeddings stay as they are."""
        ...

    def remove(self, image_ids: Sequence[int]) -> None:
        """Drop images with their embeddings, codes, bucket entries and neighbour lists, in one transaction."""
        ...

    def fit_sample(self, limit: int, seed: int) -> FitSample:
        """At most `limit` embedded images, chosen by `sample_positions` from all of them in path order."""
        ...

    def uncoded_ids(self) -> np.ndarray:
        """Embedded images that are not gone and have no code, or a code of an older embedding (sorted)."""
        ...

    def save_fit(self, fitted: FittedIndex) -> None:
        """Keep a new fit; every code and bucket of the previous fit is dropped with it."""
        ...

    def clear_index(self) -> None:
        """No fit, no codes, no buckets (too few images left to search)."""
        ...

    def write_codes(self, image_ids: np.ndarray, codes: np.ndarray, vectors: np.ndarray) -> None:
        """Store packed codes (n, words) and re-ranking vectors (n, R), replacing (with their bucket entries) any they had."""
        ...

    def write_buckets(self, keys: np.ndarray, image_ids: np.ndarray, *, merge: bool) -> None:
        """Put images in their LSH buckets, from their keys (n, L): into empty tables, or `merge`d with what is there."""
        ...

    def write_neighbours(self, lists: NeighbourLists, *, replace: bool) -> None:
        """Keep these neighbour lists, each replacing the image's own; `replace`: drop every other list first.

        `remove` drops the lists of removed images; `save_fit`, `clear_index`
        and `clear_images` drop them all.
        """
        ...

    def drop_codes(self, image_ids: np.ndarray) -> None:
        """Forget the codes, re-ranking vectors and bucket entries of images that get new ones
        (an update changed their augmented vectors); `write_codes` and `write_buckets(merge=True)` follow."""
        ...

    def write_graph(self, graph: VectorGraph | None) -> None:
        """Keep this graph over the re-ranking vectors with the index (None: keep none), replacing any.

        `load_snapshot` gives it back as `IndexSnapshot.graph`. A store whose
        `own_searcher` finds candidates itself may ignore it. A new fit
        (`save_fit`) and `clear_index` drop it with the codes.
        """
        ...
