"""Ranked search: candidates from a searcher, exact rescoring, and the scores a user sees.

`SearchEngine` answers queries against any catalogue store (`CatalogueReader`).
Candidates come from a `Searcher` (searchers.py): the store's own, or an
exact or LSH search of the store's loaded snapshot, chosen by
`choose_searcher`. Whichever found them, the engine then scores the best few
exactly, as the cosine of the centred, L2-normalised trunk embeddings read
from the store, so the query image itself scores 1.0 and scores mean the same
whatever the path; it flags duplicates by pHash and builds the `Match` list.
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

from . import examples
from .adaptation import Adaptation
from .config import EngineConfig
from .decisions import DecisionBook, arrange, tier
from .errors import CatalogueError
from .model import ImageEmbedder, describe_model
from .narrow import narrowed_ids, steered_candidates
from .rescoring import RescoringData
from .searchers import Searcher, choose_searcher
from .spherical import spherical_hamming
from .rocchio import Example, Steering
from .stores.base import CatalogueIdentity, CatalogueReader, ImageRecord
from .stores.verdicts import SAME

log = logging.getLogger(__name__)

#: Candidates scored exactly beyond the number of results asked for. Rescoring
#: 30 beyond the top 10 restored recall@10 against exact cosine from 0.87
#: (re-ranking space alone) to 0.9995 on the clothing set.
RESCORE_MARGIN = 30


@dataclass(frozen=True)
class Match:
    """One ranked result."""

    rank: int  # 1 = best
    image_id: int
    path: str  # absolute
    relpath: str  # relative to the catalogue's folder
    score: float  # cosine similarity of centred, normalised embeddings (query itself: 1.0)
    distance: float  # spherical Hamming distance between the codes (inf: no shared bit)
    duplicate: bool  # pHash says (near-)identical picture
    phash_distance: int | None  # differing pHash bits (of 64)
    width: int | None
    height: int | None
    mirrored: bool = False  # matched the mirrored query better than the query
    decision: str | None = None  # a person's verdict on it and the query: "same" (pinned) or "different" (demoted)

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
    example_ids: tuple[int, ...] = ()  # the catalogue images searched with (a steered search: several)
    unlike_ids: tuple[int, ...] = ()  # the catalogue images searched against ("not like this")
    folders: tuple[str, ...] = ()  # the subfolders searched (none: the whole catalogue)

    @property
    def total_ms(self) -> float:
        return self.embed_ms + self.search_ms

    def is_example(self, image_id: int) -> bool:
        """Whether a match is one of the pictures searched with (the query itself)."""
        return image_id == self.query_image_id or image_id in self.example_ids


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
        self.decisions = DecisionBook()
        self.reload()

    def reload(self) -> None:
        """Re-read the catalogue's index and decisions (after a build or update)."""
        started = time.perf_counter()
        self._identity = self.reader.identity()
        self._searcher = self._given if self._given is not None else open_searcher(self.reader, self.config)
        self._data = RescoringData(self.reader, self.searchable_ids(), self.config.rescore_in_memory_up_to)
        self._adaptation = Adaptation(self.reader, self._searcher) if self._searcher is not None else None
        self.reload_decisions()
        log.info("loaded %d searchable images in %.0f ms", len(self), (time.perf_counter() - started) * 1000)

    def __len__(self) -> int:
        return 0 if self._searcher is None else len(self._searcher)

    def reload_decisions(self) -> None:
        """Read the catalogue's decisions again, and adapt the ranking to them when they are enough."""
        self.decisions = DecisionBook.load(self.reader, self._adaptation)

    def decide(self, a: int, b: int, verdict: str | None) -> None:
        """Record a person's verdict on two catalogue images (None withdraws it); later searches use it."""
        self.reader.decide(a, b, verdict)
        self.reload_decisions()

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

    def records(self, image_ids: np.ndarray) -> dict[int, ImageRecord]:
        """Catalogue records by image id."""
        return self.reader.records(int(i) for i in image_ids)

    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64) aligned with `image_ids`, 0 where unknown."""
        return self.reader.phashes(image_ids)

    # --- queries ------------------------------------------------------------------

    def example(self, image: str | os.PathLike | Image.Image | int, *, mirror: bool | None = None) -> Example:
        """One picture to search with or against: a file, a PIL image, or a catalogue image id.

        A catalogue image's stored embedding is used, so nothing is embedded
        again unless its mirror image is asked for (examples.py).

        Raises:
            ImageError: the picture cannot be read (plain reason inside).
            CatalogueError: nothing is searchable yet, the catalogue used another
                model, or the catalogue image is gone.
        """
        mirror = self.config.mirror if mirror is None else mirror
        if isinstance(image, (int, np.integer)):
            self._check_ready(need_embedder=False)
            return examples.from_catalogue(self.reader, self.embedder, int(image), mirror=mirror)
        embedder = self._check_ready(need_embedder=True)
        assert embedder is not None
        return examples.from_picture(self.reader, embedder, image, mirror=mirror)

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
        started = time.perf_counter()
        example = self.example(image, mirror=mirror)
        embed_ms = (time.perf_counter() - started) * 1000
        return self.search_examples(Steering((example,)), top_n=top_n, min_score=min_score, embed_ms=embed_ms)

    def search_id(
        self, image_id: int, *, top_n: int = 50, min_score: float = -1.0, mirror: bool | None = None
    ) -> SearchResult:
        """Rank the catalogue against one of its own images (its stored embedding: see `example`)."""
        started = time.perf_counter()
        example = self.example(int(image_id), mirror=mirror)
        embed_ms = (time.perf_counter() - started) * 1000
        return self.search_examples(Steering((example,)), top_n=top_n, min_score=min_score, embed_ms=embed_ms)

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

        Args:
            embeddings: (1 or 2, D) float32; each row is searched and the rankings merged.
            phash: the query's pHash, for the duplicate flag.
            query_id: the query's own catalogue id, which then scores exactly 1.0.
        """
        example = Example(np.asarray(embeddings, dtype=np.float32), query_id, label, phash)
        return self.search_examples(Steering((example,)), top_n=top_n, min_score=min_score, embed_ms=embed_ms)

    def search_examples(
        self, steering: Steering, *, top_n: int = 50, min_score: float = -1.0, embed_ms: float = 0.0
    ) -> SearchResult:
        """Rank the catalogue for a steered search: like its examples, unlike its unliked ones, in its folders.

        Liked catalogue images score exactly 1.0 and come first; unliked ones
        are left out. A pair a person marked "same design" is pinned next, one
        marked "not similar" goes to the end of the list (see decisions.py).
        """
        started = time.perf_counter()
        searcher = self._ready_searcher()
        like_ids, unlike_ids = set(steering.like_ids), set(steering.unlike_ids)
        verdicts = self.decisions.verdicts(like_ids)
        allowed = narrowed_ids(searcher, self.reader.ids_in_folders(steering.folders)) if steering.folders else None
        # Score a few more than asked for exactly: the re-ranking space is a
        # reduction of the embeddings and can swap neighbours near the cut.
        wanted = min(len(searcher), top_n + RESCORE_MARGIN)
        space = (np.dtype(self._identity.embedding_dtype), self.decisions.adapter)
        _, prepare, queries, codes, rankings = steered_candidates(searcher, steering, wanted, allowed, *space)
        found = np.unique(np.concatenate([r.ids for r in rankings]))
        # The examples and the designs marked "same" always take part (looked up only when the
        # searcher missed them: a server's searcher reads its list of ids just for this).
        forced = [i for i in like_ids | {i for i, v in verdicts.items() if v == SAME} if not _holds(found, i)]
        if forced:
            pool = searcher.ids if allowed is None else allowed
            found = np.union1d(found, [i for i in forced if _holds(pool, i)])
        ids = np.setdiff1d(found, list(unlike_ids)).astype(np.int64)
        stored = self._data.embedding_matrix(ids.tolist())
        ids = stored.ids
        sims = np.clip(prepare(stored.vectors) @ queries.T, -1.0, 1.0)  # (candidates, variants)
        variant = sims.argmax(axis=1)
        scores = sims[np.arange(len(ids)), variant]
        scores[np.isin(ids, list(like_ids))] = 1.0  # the query itself: exactly 100 %
        tiers = np.array([tier(int(i), like_ids, verdicts) for i in ids], dtype=np.int64)
        keep = np.flatnonzero((scores >= min_score - 1e-9) | (tiers < 2))  # 1.0 passes --min-score 1.0
        keep = keep[np.lexsort((-scores[keep], tiers[keep]))][: top_n + 10]
        records = self._data.records(int(i) for i in ids[keep])
        keep = keep[[int(ids[i]) in records for i in keep]]  # a record removed meanwhile
        # Equal scores (copies of one file) are ordered by path, so the order
        # does not depend on the order in which files were added.
        ordered = sorted(keep, key=lambda i: (tiers[i], -scores[i], records[int(ids[i])].relpath))
        keep = np.asarray(arrange(ordered, lambda i: verdicts.get(int(ids[i])), top_n), dtype=np.int64)
        distances = np.full(len(keep), np.inf, dtype=np.float32)
        for v in range(len(codes)):
            chosen = variant[keep] == v
            if chosen.any():
                distances[chosen] = spherical_hamming(codes[v], searcher.codes(ids[keep[chosen]]))
        phash = steering.like[0].phash
        matches = tuple(
            self._match(rank, records[int(ids[i])], float(scores[i]), float(d), phash, bool(variant[i] == 1), verdicts.get(int(ids[i])))
            for rank, (i, d) in enumerate(zip(keep, distances), start=1)
        )
        return SearchResult(
            query=steering.label,
            query_image_id=steering.like[0].image_id,
            matches=matches,
            method=rankings[0].method,
            candidates=rankings[0].candidates,
            embed_ms=embed_ms,
            search_ms=(time.perf_counter() - started) * 1000,
            example_ids=steering.like_ids,
            unlike_ids=steering.unlike_ids,
            folders=steering.folders,
        )

    def _match(
        self, rank: int, record: ImageRecord, score: float, distance: float, query_phash: int | None, mirrored: bool,
        decision: str | None,
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
            distance=distance,
            duplicate=phash_distance is not None and phash_distance <= self.config.duplicate_distance,
            phash_distance=phash_distance,
            width=record.width,
            height=record.height,
            mirrored=mirrored,
            decision=decision,
        )


def _holds(sorted_ids: np.ndarray, image_id: int) -> bool:
    at = int(np.searchsorted(sorted_ids, image_id))
    return at < len(sorted_ids) and int(sorted_ids[at]) == image_id
