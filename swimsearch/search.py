"""Ranked search: candidates from a searcher, exact rescoring, and the scores a user sees.

`SearchEngine` answers queries against any catalogue store (`CatalogueReader`).
Candidates come from a `Searcher` (searchers.py): the store's own, or an
exact, graph or LSH search of the store's loaded snapshot, chosen by
`choose_searcher`. Whichever found them, ranking.py ranks them (query
expansion on augmented vectors, pHash candidates merged) and scores what a
user reads: the calibrated similarity of the two pictures with its band, the
same whatever the path and the catalogue (the query image itself: 1.0). This
module embeds queries, holds what a search reads, and builds the `Match` list.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .config import EngineConfig
from .errors import CatalogueError, IndexChanged
from .images import ImageError, load_image
from .model import ImageEmbedder, describe_model
from .calibration import Calibration, shipped_calibration
from .phash_index import PhashIndex
from .ranking import RESCORE_MARGIN, find_candidates, score_and_order, shown_percent
from .rescoring import RescoringData
from .searchers import Searcher, SnapshotSearcher, choose_searcher
from .spherical import spherical_hamming
from .stores.base import CatalogueIdentity, CatalogueReader, ImageRecord

log = logging.getLogger(__name__)

__all__ = ["RESCORE_MARGIN", "Match", "SearchEngine", "SearchResult", "open_searcher"]


@dataclass(frozen=True)
class Match:
    """One ranked result."""

    rank: int  # 1 = best
    image_id: int
    path: str  # absolute
    relpath: str  # relative to the catalogue's folder
    #: The similarity of the two pictures, 0..1: calibrated (calibration.py), so the
    #: same pair scores the same in every catalogue; only the picture itself scores 1.0.
    #: (For a model without a calibration: cosine of embeddings centred on the catalogue.)
    score: float
    distance: float  # spherical Hamming distance between the codes (inf: no shared bit)
    duplicate: bool  # pHash says (near-)identical picture
    phash_distance: int | None  # differing pHash bits (of 64)
    width: int | None
    height: int | None
    mirrored: bool = False  # matched the mirrored query better than the query
    #: The score's named band: "same design", "very similar", "similar" or "unrelated"
    #: ("" for a model without a calibration). The list reads band by band.
    band: str = ""

    @functools.cached_property
    def missing(self) -> bool:
        """Whether the file is no longer on disk: checked when first asked, then kept.

        Lazy so that a search makes no file-system call per match: the window
        asks when it paints a result, the CLI and the CSV for what they write.
        """
        return not os.path.exists(self.path)

    @property
    def name(self) -> str:
        return os.path.basename(self.relpath)


@dataclass(frozen=True)
class SearchResult:
    """A ranked match list and how it was made."""

    query: str  # path of the query image, or a description ("pasted image")
    query_image_id: int | None  # when the query is a catalogue image
    matches: tuple[Match, ...]
    method: str  # "exact", "graph", "lsh" or "scan"
    candidates: int
    embed_ms: float
    search_ms: float

    @property
    def total_ms(self) -> float:
        return self.embed_ms + self.search_ms


def open_searcher(reader: CatalogueReader, config: EngineConfig) -> Searcher | None:
    """The searcher for a catalogue: the store's own, else an in-memory one (None before a first fit)."""
    own = reader.own_searcher(config)
    if own is not None:
        return own
    snapshot = reader.load_snapshot()
    return None if snapshot is None else choose_searcher(snapshot, config)


class SearchEngine:
    """Answers queries against one open catalogue.

    Args:
        reader: an open catalogue store, or a `Catalogue` (used from this engine's thread only).
        embedder: the trunk, for queries given as images (None: only search by id).
        config: query settings (rerank depth, probe radius, duplicates, mirror).
        searcher: candidates from this searcher instead of `open_searcher`'s
            choice (benchmarks and tests hold searchers against each other);
            `reload` keeps it.
    """

    def __init__(
        self,
        reader: CatalogueReader,
        embedder: ImageEmbedder | None,
        config: EngineConfig,
        searcher: Searcher | None = None,
    ):
        self.reader = reader
        self.embedder = embedder
        self.config = config
        self._given = searcher
        self._searcher: Searcher | None
        self._identity: CatalogueIdentity
        self._data: RescoringData
        self._calibration: Calibration | None
        self._phash_index: tuple[PhashIndex, np.ndarray] | None
        self.reload()

    def reload(self) -> None:
        """Re-read the catalogue's index (after a build or update)."""
        started = time.perf_counter()
        self._identity = self.reader.identity()
        self._searcher = self._given if self._given is not None else open_searcher(self.reader, self.config)
        self._calibration = shipped_calibration(self._identity.model_sha256)
        fitted = self._searcher.fitted if self._searcher is not None else None
        # Only an in-memory search holds embeddings and records here: a team catalogue's server brings its candidates'.
        held = self.searchable_ids() if isinstance(self._searcher, SnapshotSearcher) else np.empty(0, np.int64)
        self._data = RescoringData(self.reader, held, self.config.rescore_in_memory_up_to, fitted=fitted, calibration=self._calibration)
        self._phash_index = None
        log.info("loaded %d searchable images in %.0f ms", len(self), (time.perf_counter() - started) * 1000)

    def __len__(self) -> int:
        return 0 if self._searcher is None else len(self._searcher)

    @property
    def root(self) -> Path:
        """The folder of the searched catalogue."""
        return self.reader.root

    @property
    def searcher_name(self) -> str:
        """The kind of candidate search in use ("ExactSearch", "LshSearch", or a store's own)."""
        return type(self._searcher).__name__ if self._searcher is not None else "none"

    def searchable_ids(self) -> np.ndarray:
        """Every searchable image id, sorted."""
        return self._searcher.ids if self._searcher is not None else np.empty(0, np.int64)

    def neighbours(self, image_id: int, k: int) -> np.ndarray:
        """Ids of the k catalogue images nearest to one of its own (candidate order, itself left out)."""
        searcher = self._ready_searcher()
        ids = np.array([image_id], dtype=np.int64)
        ranking = searcher.search(searcher.codes(ids)[0], searcher.vectors(ids)[0], k + 1)
        return ranking.ids[ranking.ids != image_id][:k]

    @property
    def calibrated(self) -> bool:
        """Whether scores are the calibrated similarity with bands (the model ships a calibration)."""
        return self._calibration is not None

    def similarities(self, image_id: int, others: np.ndarray) -> np.ndarray:
        """The shown score (0..1) of one catalogue image with each of `others` (ids with an embedding)."""
        stored = self._data.embedding_matrix([image_id, *map(int, others)])
        if not len(stored.ids) or int(stored.ids[0]) != image_id:
            raise CatalogueError("This design is no longer in the catalogue (an update removed it); search again from its file.")
        percent, _ = shown_percent(stored.vectors[1:], self._data.whitened(stored.ids[1:]), stored.vectors[:1], self._calibration, self._data)
        return np.asarray(percent, dtype=np.float64) / 100.0

    def records(self, image_ids: np.ndarray) -> dict[int, ImageRecord]:
        """Catalogue records by image id."""
        return self.reader.records(int(i) for i in image_ids)

    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64) aligned with `image_ids`, 0 where unknown."""
        return self.reader.phashes(image_ids)

    # --- queries ------------------------------------------------------------------

    def search(
        self,
        image: str | os.PathLike | Image.Image,
        *,
        top_n: int = 50,
        min_score: float = -1.0,
        mirror: bool | None = None,
    ) -> SearchResult:
        """Rank the catalogue against an image file or a PIL image (pasted/dropped data).

        Raises:
            ImageError: the query image cannot be read (plain reason inside).
            CatalogueError: nothing is searchable yet, or the catalogue used another model.
        """
        embedder = self._check_ready(need_embedder=True)
        assert embedder is not None
        started = time.perf_counter()
        mirror = self.config.mirror if mirror is None else mirror
        loaded = load_image(image, embedder.size)
        pixels = [loaded.pixels]
        if mirror:
            pixels.append(np.ascontiguousarray(loaded.pixels[:, ::-1]))
        embeddings = embedder.embed(np.stack(pixels))
        embed_ms = (time.perf_counter() - started) * 1000
        if isinstance(image, Image.Image):
            label, query_id = "pasted image", None
        else:
            label = str(Path(image).absolute())
            # the query is "itself" only while the file is as the catalogue read it
            record = self.reader.record_by_path(image, unchanged=True)
            query_id = record.image_id if record else None
        return self.search_embeddings(
            embeddings, phash=loaded.phash, top_n=top_n, min_score=min_score, label=label, query_id=query_id, embed_ms=embed_ms
        )

    def search_id(
        self, image_id: int, *, top_n: int = 50, min_score: float = -1.0, mirror: bool | None = None
    ) -> SearchResult:
        """Rank the catalogue against one of its own images.

        Its stored embedding is used, so nothing is embedded again unless the
        mirrored query is asked for (then the file is read and flipped; a file
        gone since the build is searched without its mirror image).
        """
        self._check_ready(need_embedder=False)
        started = time.perf_counter()
        stored = self.reader.embedding_matrix([image_id])
        record = self.reader.records([image_id]).get(image_id)
        if not len(stored.ids) or record is None:
            raise CatalogueError("This design is no longer in the catalogue (an update removed it); search again from its file.")
        embeddings = stored.vectors
        mirror = self.config.mirror if mirror is None else mirror
        if mirror and self.embedder is not None:
            try:
                flipped = load_image(record.path, self.embedder.size, mirror=True).pixels
            except ImageError:
                pass
            else:
                embeddings = np.concatenate([embeddings, self.embedder.embed(flipped[None]).astype(np.float32)])
        embed_ms = (time.perf_counter() - started) * 1000
        return self.search_embeddings(
            embeddings, phash=record.phash, top_n=top_n, min_score=min_score, label=record.path,
            query_id=image_id, embed_ms=embed_ms,
        )

    def search_random(
        self, *, top_n: int = 50, min_score: float = -1.0, mirror: bool | None = None, rng: np.random.Generator | None = None
    ) -> SearchResult:
        """Rank the catalogue against a random catalogue image."""
        self._check_ready(need_embedder=False)
        rng = rng or np.random.default_rng()
        ids = self.searchable_ids()
        image_id = int(ids[rng.integers(len(ids))])
        return self.search_id(image_id, top_n=top_n, min_score=min_score, mirror=mirror)

    def _check_ready(self, *, need_embedder: bool) -> ImageEmbedder | None:
        """Refuse, in plain words, what cannot be searched yet; returns the embedder."""
        if len(self) == 0:
            if self.reader.counts()["readable"] == 1:  # similarity is relative to the others: one is not enough
                raise CatalogueError(
                    f"The catalogue {self.reader.location} holds a single readable image; add at least one more to search it."
                )
            raise CatalogueError(
                f"The catalogue {self.reader.location} has no searchable images yet: build or update it first."
            )
        if need_embedder:
            if self.embedder is None:
                raise CatalogueError("No model is loaded, so images cannot be searched by example.")
            if self._identity.model_sha256 != self.embedder.sha256:
                built = describe_model(self._identity.model_name, self._identity.model_sha256)
                using = describe_model(self.embedder.name, self.embedder.sha256)
                raise CatalogueError(
                    f"The catalogue {self.reader.location} was built with another model, {built}, not with {using} "
                    f"that is in use; update it to search with this one."
                )
        return self.embedder

    def _ready_searcher(self) -> Searcher:
        self._check_ready(need_embedder=False)
        assert self._searcher is not None
        return self._searcher

    def search_embeddings(
        self,
        embeddings: np.ndarray,
        *,
        phash: int | None = None,
        top_n: int = 50,
        min_score: float = -1.0,
        label: str = "embedding",
        query_id: int | None = None,
        embed_ms: float = 0.0,
    ) -> SearchResult:
        """Rank the catalogue against trunk embeddings of one query (row 1: its mirror image, if any).

        The two steps of ranking.py: `find_candidates`, then `score_and_order`.

        Args:
            embeddings: (1 or 2, D) float32; each row is searched and the rankings merged.
            phash: the query's pHash: images within `phash_radius` bits join the
                candidates, and those within `duplicate_distance` are flagged and listed first.
            min_score: drop matches whose shown score (0..1) is below it.
            query_id: the query's own catalogue id, which then scores exactly 1.0.
        """
        started = time.perf_counter()
        searcher = self._ready_searcher()
        # Round the query as the catalogue stores embeddings, so that a
        # byte-identical copy scores exactly as high as the stored original.
        queries = np.asarray(embeddings).astype(np.dtype(self._identity.embedding_dtype)).astype(np.float32)
        find = functools.partial(find_candidates, searcher, self._data, queries, self.config, top_n=top_n, phash=phash,
                                 phash_index=self._phash_table, query_id=query_id)
        try:
            candidates = find()
        except IndexChanged:  # another user refitted a team catalogue: its searcher holds the new fit; once more with it
            self._data.fitted = self._data.fitted if self._data.in_memory else searcher.fitted
            candidates = find()
        scored = score_and_order(
            candidates, self._data, queries, self._calibration, self.config, top_n=top_n, min_score=min_score,
            phash=phash, phashes=self._phashes_of, query_id=query_id,
        )
        head = np.arange(min(len(scored.ids), top_n + 10))
        records = self._data.records(int(i) for i in scored.ids[head])
        head = head[[int(scored.ids[i]) in records for i in head]]  # a record removed meanwhile
        # Ties (copies of one file) are ordered by path, so the order does not
        # depend on the order in which files were added.
        head = np.asarray(
            sorted(head, key=lambda i: (*scored.keys[i].tolist(), records[int(scored.ids[i])].relpath))[:top_n], dtype=np.int64
        )
        codes = searcher.fitted.codes(searcher.fitted.prepare(queries))
        distances = np.full(len(head), np.inf, dtype=np.float32)
        for v in range(len(codes)):
            chosen = scored.variant[head] == v
            if chosen.any():
                distances[chosen] = spherical_hamming(codes[v], searcher.codes(scored.ids[head[chosen]]))
        matches = tuple(
            self._match(rank, records[int(scored.ids[i])], float(scored.scores[i]), scored.bands[i], float(distance), phash,
                        bool(scored.variant[i] == 1))
            for rank, (i, distance) in enumerate(zip(head, distances), start=1)
        )
        return SearchResult(
            query=label,
            query_image_id=query_id,
            matches=matches,
            method=candidates.method,
            candidates=candidates.looked_at,
            embed_ms=embed_ms,
            search_ms=(time.perf_counter() - started) * 1000,
        )

    def _phash_table(self) -> tuple[PhashIndex, np.ndarray] | None:
        """The pHash multi-index over every searchable image (made on first use) and each row's image id."""
        if self._phash_index is None:
            ids = self.searchable_ids()
            self._phash_index = (PhashIndex.build(self.reader.phashes(ids)), ids)
        return self._phash_index

    def _phashes_of(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64, 0 where unknown) of searchable ids, from the pHash index."""
        held = self._phash_table()
        assert held is not None
        index, ids = held
        at = np.minimum(np.searchsorted(ids, image_ids), max(len(ids) - 1, 0))
        return np.where(ids[at] == image_ids, index.phashes[at], np.uint64(0)) if len(ids) else np.zeros(len(image_ids), np.uint64)

    def _match(
        self, rank: int, record: ImageRecord, score: float, band: str, distance: float, query_phash: int | None, mirrored: bool
    ) -> Match:
        phash_distance = None
        if query_phash is not None and record.phash is not None:
            phash_distance = (int(query_phash) ^ record.phash).bit_count()
        return Match(
            rank=rank,
            image_id=record.image_id,
            path=record.path,
            relpath=record.relpath,
            score=score,
            band=band,
            distance=distance,
            duplicate=phash_distance is not None and phash_distance <= self.config.duplicate_distance,
            phash_distance=phash_distance,
            width=record.width,
            height=record.height,
            mirrored=mirrored,
        )

