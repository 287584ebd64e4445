"""Ranked search: candidates from a searcher, exact rescoring, and the scores a user sees.

`SearchEngine` answers queries against any catalogue store (`CatalogueReader`). Candidates come from a `Searcher`
(searchers.py): the store's own, or an exact, graph or LSH search of the store's loaded snapshot, chosen by
`choose_searcher`. Whichever found them, ranking.py ranks them (query expansion on augmented vectors, pHash
candidates merged) and scores what a user reads: the calibrated similarity of the two pictures with its band
(*same design* only for the same picture: same_picture.py), the same whatever the path and the catalogue (the query
itself: 1.0). This module embeds queries, holds what a search reads (a large catalogue's from its search cache:
array_watch.py, team_replica.py), and builds the `Match` list."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from . import examples, halves
from .adaptation import Adaptation
from .calibration import Calibration, shipped_calibration
from .colour import ColourMix
from .config import EngineConfig
from .decisions import DecisionBook
from .errors import CatalogueError, IndexChanged
from .matches import Match, SearchResult
from .model import ImageEmbedder, describe_model
from .other_writes import OtherWrites
from .phash_index import PhashIndex
from .phash_source import PhashSource
from .ranking import RESCORE_MARGIN, shown_percent
from .regions import Box
from .rescoring import RescoringData
from .rocchio import Example, Steering
from .same_picture import PictureCheck, look_at_scores
from .searchers import Searcher, SnapshotSearcher, choose_searcher
from .steered import rank_steered
from .steering import ColourSteer, DetailSearch, asked_for_folder, colour_query
from .team_replica import cache_watch, search_done
from .stores.base import CatalogueIdentity, CatalogueReader, ImageRecord

log = logging.getLogger(__name__)

__all__ = ["RESCORE_MARGIN", "Match", "SearchEngine", "SearchResult", "open_searcher"]


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
        searcher: candidates from this searcher instead of `open_searcher`'s choice (benchmarks and
            tests hold searchers against each other); `reload` keeps it.
    """

    def __init__(self, reader: CatalogueReader, embedder: ImageEmbedder | None, config: EngineConfig, searcher: Searcher | None = None):
        self.reader = reader
        self.embedder = embedder
        self.config = config
        self._given = searcher
        self._searcher: Searcher | None
        self._identity: CatalogueIdentity
        self._data: RescoringData
        self._calibration: Calibration | None
        self._phash_source: PhashSource
        self._watch: Any = None  # ArrayWatch or TeamReplica (team_replica.cache_watch)
        self._others = OtherWrites(reader)  # what another process committed since this engine read the catalogue
        self.refreshes = 0  # designs re-read after another process changed them (the window's count follows)
        self.decisions = DecisionBook()
        self._details, self.picture_check = DetailSearch(reader), PictureCheck(lambda ids: self._data.records(ids))
        self.reload()

    def reload(self) -> None:
        """Re-read the catalogue's index and decisions (after a build or update)."""
        started = time.perf_counter()
        fit = self.reader.fit_state()
        self._others.reading(fit.count if fit is not None else 0)
        self._identity = self.reader.identity()
        phashes = PhashSource(self.reader, fit.count if fit is not None else 0)  # a large one's are read while its index loads
        self._searcher = self._given if self._given is not None else open_searcher(self.reader, self.config)
        self._calibration = shipped_calibration(self._identity.model_sha256)
        fitted = self._searcher.fitted if self._searcher is not None else None
        # Only an in-memory search holds embeddings and records here: a team catalogue's server brings its candidates'.
        held = self.searchable_ids() if isinstance(self._searcher, SnapshotSearcher) else np.empty(0, np.int64)
        if self._watch is not None:
            self._watch.stop()
        self._watch = watch = cache_watch(self.reader, self._searcher, held, self.config)  # a large catalogue's search cache
        if watch is not None:  # a large catalogue: OpenCV's float16 conversions (~150 ms once a process, halves.py)
            halves.warm_up()
        self._data = RescoringData(self.reader, held, self.config.rescore_in_memory_up_to, fitted, self._calibration, watch)
        self._phash_source = phashes.given(self.searchable_ids())
        self._details.reset()
        self._adaptation = Adaptation(self._searcher, self._data.augmented) if self._searcher is not None else None
        self.reload_decisions()
        log.info("loaded %d searchable images in %.0f ms", len(self), (time.perf_counter() - started) * 1000)

    def refresh(self) -> bool:
        """Re-read what another process committed to the catalogue since it was read (other_writes.py)."""
        return self._others.follow(self)

    def close(self) -> None:
        """Stop what runs beside the searches: the mapping in of the search cache's pages (mapped_pages.py)."""
        getattr(self._watch, "close", lambda: None)()

    array_watch = property(lambda self: self._watch, doc="The search cache's watch, if any (benchmarks and tests wait on it).")
    written_since = property(lambda self: self._others.written_since(), doc="What another connection committed since it was read (None: nothing).")
    holds_designs = property(lambda self: isinstance(self._searcher, SnapshotSearcher), doc="Whether searched in memory.")

    def __len__(self) -> int:
        return 0 if self._searcher is None else len(self._searcher)

    def reload_decisions(self) -> None:
        """Read the catalogue's decisions again, and adapt the ranking to them when they are enough."""
        self.decisions = DecisionBook.load(self.reader, self._adaptation)

    def decide(self, a: int, b: int, verdict: str | None) -> None:
        """Record a person's verdict on two catalogue images (None withdraws it); later searches use it."""
        self.decide_pairs([(a, b)], verdict)

    def decide_pairs(self, pairs: Sequence[tuple[int, int]], verdict: str | None) -> None:
        """`decide` for several pairs, the ranking adapted once after them all."""
        for a, b in pairs:
            self.reader.decide(a, b, verdict)
        self._others.own_write(self._watch)  # a decision changes no array: the search cache is kept
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

    @property
    def calibrated(self) -> bool:
        """Whether scores are the calibrated similarity with bands (the model ships a calibration)."""
        return self._calibration is not None

    def similarities(self, image_id: int, others: np.ndarray) -> np.ndarray:
        """The shown score (0..1) of one catalogue image with each of `others` (ids with an embedding)."""
        self._data.new_search()
        stored = self._data.embedding_matrix([image_id, *map(int, others)])
        if not len(stored.ids) or int(stored.ids[0]) != image_id:
            raise CatalogueError("This design is no longer in the catalogue (an update removed it); search again from its file.")
        percent, _ = shown_percent(stored.vectors[1:], self._data.whitened(stored.ids[1:]), stored.vectors[:1], self._calibration, self._data)
        return look_at_scores(self.picture_check, self._calibration, self._phashes_of(stored.ids), self.config, stored, percent) / 100.0

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
        self.refresh()
        if isinstance(image, (int, np.integer)):
            self._check_ready(need_embedder=False)
            return examples.from_catalogue(self.reader, self.embedder, int(image), mirror=mirror)
        embedder = self._check_ready(need_embedder=True)
        assert embedder is not None
        check = self.picture_check
        return examples.from_picture(self.reader, embedder, image, mirror=mirror,
                                     decoding=check.cache.prefetch if check.enabled else None)

    def search(
        self,
        image: str | os.PathLike | Image.Image,
        *,
        top_n: int = 50,
        min_score: float = -1.0,
        mirror: bool | None = None,
        colour: ColourMix = ColourMix(),
    ) -> SearchResult:
        """Rank the catalogue against an image file or a PIL image (pasted/dropped data).

        `colour` says how much colour matters (colour.py: 0.5, the default, ranks as the network sees it).

        Raises:
            ImageError: the query image cannot be read (plain reason inside).
            CatalogueError: nothing is searchable yet, or the catalogue used another model.
        """
        started = time.perf_counter()
        example = self.picture_check.remember(self.example(image, mirror=mirror), image)  # for the look at *same design*
        steer = colour_query(self.reader, self.embedder, image, colour)  # hue turns and colours, when colour is steered
        embed_ms = (time.perf_counter() - started) * 1000
        return self.search_examples(Steering((example,)), top_n=top_n, min_score=min_score, embed_ms=embed_ms, colour=steer)

    def search_id(
        self, image_id: int, *, top_n: int = 50, min_score: float = -1.0, mirror: bool | None = None,
        colour: ColourMix = ColourMix(),
    ) -> SearchResult:
        """Rank the catalogue against one of its own images (its stored embedding: see `example`)."""
        started = time.perf_counter()
        example = self.example(int(image_id), mirror=mirror)
        steer = colour_query(self.reader, self.embedder, int(image_id), colour)
        embed_ms = (time.perf_counter() - started) * 1000
        return self.search_examples(Steering((example,)), top_n=top_n, min_score=min_score, embed_ms=embed_ms, colour=steer)

    def search_random(
        self, *, top_n: int = 50, min_score: float = -1.0, mirror: bool | None = None, rng: np.random.Generator | None = None,
        colour: ColourMix = ColourMix(),
    ) -> SearchResult:
        """Rank the catalogue against a random catalogue image."""
        self.refresh()
        self._check_ready(need_embedder=False)
        rng = rng or np.random.default_rng()
        ids = self.searchable_ids()
        image_id = int(ids[rng.integers(len(ids))])
        return self.search_id(image_id, top_n=top_n, min_score=min_score, mirror=mirror, colour=colour)

    def search_detail(
        self, source: str | os.PathLike | Image.Image | int, box: Box, *, top_n: int = 50, min_score: float = -1.0,
        colour: ColourMix = ColourMix(), folders: Sequence[str] = (), expand: bool = True,
    ) -> SearchResult:
        """Rank the catalogue by how clearly each design holds the detail in `box` of a picture, anywhere.

        `source` is a file, picture data or a catalogue image's id; `box` is in fractions of the picture
        (steering.py); `folders`: only designs in these subfolders (all when empty); `expand=False`: without
        the expanded second look, for comparison. Raises ImageError or CatalogueError in plain words, as
        `search` does.
        """
        self.refresh()
        embedder = self._check_ready(need_embedder=True)
        allowed = self.reader.ids_in_folders(folders) if folders else None
        asked = top_n if allowed is None else asked_for_folder(top_n, len(self), len(allowed))
        hits = self._details.search(
            source, box, embedder, top_n=asked, min_score=min_score, colour=colour, expand=expand,  # type: ignore[arg-type]
        )
        inside = np.ones(len(hits.ids), bool) if allowed is None else np.isin(hits.ids, allowed)
        records = self.reader.records(hits.ids[inside].tolist())
        kept = [(int(i), float(score)) for i, score in zip(hits.ids[inside], hits.scores[inside]) if int(i) in records][:top_n]
        matches = tuple(
            self._match(rank, records[i], score, "", float("inf"), None, False) for rank, (i, score) in enumerate(kept, start=1)
        )
        return SearchResult(hits.label, hits.query_id, matches, "detail", hits.scanned, hits.embed_ms, hits.search_ms, note=hits.note,
                            folders=tuple(folders))

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
        example = Example(np.asarray(embeddings, dtype=np.float32), query_id, label, phash)
        return self.search_examples(Steering((example,)), top_n=top_n, min_score=min_score, embed_ms=embed_ms)

    def search_examples(
        self, steering: Steering, *, top_n: int = 50, min_score: float = -1.0, embed_ms: float = 0.0,
        colour: ColourSteer | None = None,
    ) -> SearchResult:
        """Rank the catalogue for a steered search: like its examples, unlike its unliked ones, in its folders.

        One example, nothing unliked, no folder and no adapted ranking is the
        plain search (ranking.py's two steps); the rest is in steered.py.
        Liked catalogue images come first; unliked ones are left out. A pair
        a person marked "same design" is pinned next, one marked "not similar"
        goes to the end of the list (decisions.py). `colour`: the colour control (steering.colour_query).
        """
        started = time.perf_counter()
        self.refresh()
        searcher = self._ready_searcher()
        self._data.new_search()
        rank = lambda: rank_steered(self, searcher, steering, top_n, min_score, colour)  # noqa: E731
        try:  # ranked again if another user's decisions came with the candidates (other_writes.py)
            matches, found = self._others.ranked(self, searcher, rank)
        except IndexChanged:  # another user changed a team catalogue (its fit, or what the replica holds): once more
            self._data.fitted = self._data.fitted if self._data.in_memory else searcher.fitted
            self._data.new_search()  # its neighbour lists changed with the fit; a stale replica is not taken
            matches, found = self._others.ranked(self, searcher, rank)
        finally:
            search_done(self._watch)  # a search outside this one (neighbours, adaptation) brings its rows
        return SearchResult(
            query=steering.label,
            query_image_id=steering.like[0].image_id,
            matches=matches,
            method=found.method,
            candidates=found.looked_at,
            embed_ms=embed_ms,
            search_ms=(time.perf_counter() - started) * 1000,
            example_ids=steering.like_ids,
            unlike_ids=steering.unlike_ids,
            folders=steering.folders,
            note=" ".join(dict.fromkeys(n for n in (*(e.note for e in steering.like), colour.note if colour is not None else "") if n)),
        )

    def _phash_table(self) -> tuple[PhashIndex, np.ndarray] | None:
        """The pHash multi-index over every searchable image and each row's image id (phash_source.py)."""
        return self._phash_source.index(), self._phash_source.ids

    def _phashes_of(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64, 0 where unknown) of searchable ids."""
        return self._phash_source.of(np.asarray(image_ids, dtype=np.int64))

    def _match(
        self, rank: int, record: ImageRecord, score: float, band: str, distance: float, phash_distance: int | None, mirrored: bool,
        decision: str | None = None,
    ) -> Match:
        """`phash_distance`: the ranking's (ranking.Scored), None where unknown or a pHash says nothing."""
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
            decision=decision,
        )
