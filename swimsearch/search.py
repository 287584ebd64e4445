"""Ranked search: LSH candidates or an exact scan, cosine re-ranking, and the scores a user sees.

One search interface, two implementations, held against each other in tests
and benchmarks:

* `ExactSearch` ranks every catalogue image by cosine of its re-ranking vector
  (the engine uses it below `exact_below` images, where it is also faster);
* `LshSearch` probes the LSH buckets (multi-probe), ranks the candidates by
  the distance of their codes (Hamming: it measured better than the
  spherical Hamming distance), keeps the best M and re-ranks those by cosine;
  when the buckets give too few candidates it scans every code instead.

Either way the engine then scores the best few exactly, as the cosine of the
centred, L2-normalised trunk embeddings (read from the catalogue), so the
query image itself scores 1.0 and scores mean the same whatever the path.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
from PIL import Image

from .catalogue import Catalogue
from .index import IndexSnapshot
from .config import EngineConfig
from .errors import CatalogueError
from .images import ImageError, load_image
from .spherical import hamming, spherical_hamming

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
    missing: bool = False  # the file is no longer on disk

    @property
    def name(self) -> str:
        return os.path.basename(self.relpath)


@dataclass(frozen=True)
class SearchResult:
    """A ranked match list and how it was made."""

    query: str  # path of the query image, or a description ("pasted image")
    query_image_id: int | None  # when the query is a catalogue image
    matches: tuple[Match, ...]
    method: str  # "exact", "lsh" or "scan"
    candidates: int
    embed_ms: float
    search_ms: float

    @property
    def total_ms(self) -> float:
        return self.embed_ms + self.search_ms


class Ranking(NamedTuple):
    rows: np.ndarray  # snapshot rows, best first
    similarities: np.ndarray  # cosine in the re-ranking space
    candidates: int
    method: str


class Searcher(Protocol):
    """The shared signature of the exact and the LSH search."""

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking: ...


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first (stable for ties)."""
    k = min(k, len(values))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-values, k - 1)[:k] if k < len(values) else np.arange(len(values))
    return part[np.argsort(-values[part], kind="stable")]


class ExactSearch:
    """Brute force: cosine with every re-ranking vector."""

    def __init__(self, snapshot: IndexSnapshot):
        self._vectors = snapshot.vectors.astype(np.float32)  # float16 products are ~30x slower

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        sims = self._vectors @ vector.astype(np.float32)
        top = _top(sims, k)
        return Ranking(top, sims[top], len(sims), "exact")


class LshSearch:
    """LSH candidates -> code distance (Hamming by default) -> best M -> cosine re-rank."""

    def __init__(self, snapshot: IndexSnapshot, *, rerank_depth: int, probe_radius: int, code_distance: str = "hamming"):
        self.snapshot = snapshot
        self.rerank_depth = rerank_depth
        self.probe_radius = probe_radius
        if code_distance not in ("hamming", "spherical"):
            raise ValueError(f"unknown code distance {code_distance!r} (choose hamming or spherical)")
        self._distance = hamming if code_distance == "hamming" else spherical_hamming

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        snap = self.snapshot
        depth = min(max(self.rerank_depth, k), len(snap))
        rows, _ = snap.tables.probe(code, enough=depth, max_radius=self.probe_radius)
        method = "lsh"
        if len(rows) < depth:  # thin buckets: scan every code instead
            rows = np.arange(len(snap), dtype=np.int64)
            method = "scan"
        candidates = len(rows)
        if len(rows) > depth:
            distances = self._distance(code, snap.codes[rows])
            rows = rows[np.argpartition(distances, depth - 1)[:depth]]
        sims = snap.vectors[rows].astype(np.float32) @ vector.astype(np.float32)
        top = _top(sims, k)
        return Ranking(rows[top], sims[top], candidates, method)


class SearchEngine:
    """Answers queries against one open catalogue.

    Args:
        catalogue: an open catalogue (used from this engine's thread only).
        embedder: the trunk, for queries given as images (None: only search by id).
        config: query settings (rerank depth, probe radius, duplicates, mirror).
    """

    def __init__(self, catalogue: Catalogue, embedder, config: EngineConfig):
        self.catalogue = catalogue
        self.embedder = embedder
        self.config = config
        self.snapshot: IndexSnapshot | None = None
        self.reload()

    def reload(self) -> None:
        """Re-read the catalogue's index (after a build or update)."""
        started = time.perf_counter()
        self.snapshot = self.catalogue.load_snapshot()
        snap = self.snapshot
        self.exact = ExactSearch(snap) if snap is not None and len(snap) < self.config.exact_below else None
        self.lsh = (
            LshSearch(
                snap,
                rerank_depth=self.config.rerank_depth,
                probe_radius=self.config.probe_radius,
                code_distance=self.config.code_distance,
            )
            if snap is not None
            else None
        )
        self.searcher: Searcher | None = self.exact or self.lsh
        log.info("loaded %d searchable images in %.0f ms", len(self), (time.perf_counter() - started) * 1000)

    def __len__(self) -> int:
        return 0 if self.snapshot is None else len(self.snapshot)

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
        self._check_ready(need_embedder=True)
        started = time.perf_counter()
        mirror = self.config.mirror if mirror is None else mirror
        loaded = load_image(image, self.embedder.size)
        pixels = [loaded.pixels]
        if mirror:
            pixels.append(np.ascontiguousarray(loaded.pixels[:, ::-1]))
        embeddings = self.embedder.embed(np.stack(pixels))
        embed_ms = (time.perf_counter() - started) * 1000
        if isinstance(image, Image.Image):
            label, query_id = "pasted image", None
        else:
            label = str(Path(image).absolute())
            # the query is "itself" only while the file is as the catalogue read it
            record = self.catalogue.record_by_path(image, unchanged=True)
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
        stored = self.catalogue.embeddings([image_id])
        record = self.catalogue.records([image_id]).get(image_id)
        if image_id not in stored or record is None:
            raise CatalogueError("This design is no longer in the catalogue (an update removed it); search again from its file.")
        embeddings = stored[image_id][None]
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
        self, *, top_n: int = 50, min_score: float = -1.0, mirror: bool | None = None, rng=None
    ) -> SearchResult:
        """Rank the catalogue against a random catalogue image."""
        self._check_ready(need_embedder=False)
        rng = rng or np.random.default_rng()
        image_id = int(self.snapshot.ids[rng.integers(len(self.snapshot))])
        return self.search_id(image_id, top_n=top_n, min_score=min_score, mirror=mirror)

    def _check_ready(self, *, need_embedder: bool) -> None:
        if self.snapshot is None or len(self.snapshot) == 0:
            if self.catalogue.counts()["readable"] == 1:  # similarity is relative to the others: one is not enough
                raise CatalogueError(
                    f"The catalogue {self.catalogue.path} holds a single readable image; add at least one more to search it."
                )
            raise CatalogueError(
                f"The catalogue {self.catalogue.path} has no searchable images yet: build or update it first."
            )
        if need_embedder:
            if self.embedder is None:
                raise CatalogueError("No model is loaded, so images cannot be searched by example.")
            built_with = self.catalogue.store.meta("model_sha256")
            if built_with != self.embedder.sha256:
                raise CatalogueError(
                    f"The catalogue {self.catalogue.path} was built with another model; update it to search with this one."
                )

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
        query_phash = phash
        started = time.perf_counter()
        snap = self.snapshot
        fitted = snap.fitted
        codes = fitted.codes(embeddings)
        vectors = fitted.vectors(embeddings)
        # Score a few more than asked for exactly: the re-ranking space is a
        # reduction of the embeddings and can swap neighbours near the cut.
        wanted = min(len(snap), top_n + RESCORE_MARGIN)
        rankings = [self.searcher.search(codes[j], vectors[j], wanted) for j in range(len(embeddings))]
        rows = np.unique(np.concatenate([r.rows for r in rankings]))
        if query_id is not None:  # the query itself always takes part
            own = snap.rows_of(np.array([query_id]))
            rows = np.union1d(rows, own[own >= 0])
        stored = self.catalogue.embeddings_and_records(snap.ids[rows])
        rows = np.array([r for r in rows if int(snap.ids[r]) in stored], dtype=np.int64)
        ids = snap.ids[rows]
        full = np.stack([stored[int(i)][0] for i in ids]) if len(ids) else np.empty((0, embeddings.shape[1]), np.float32)
        full = _normalise(full.astype(np.float64) - fitted.mean)
        # Round the query as the catalogue stores embeddings, so that a
        # byte-identical copy scores exactly as high as the stored original.
        stored_as = np.dtype(self.catalogue.embedding_dtype)
        query = _normalise(embeddings.astype(stored_as).astype(np.float64) - fitted.mean)
        sims = np.clip(full @ query.T, -1.0, 1.0)  # (candidates, variants)
        variant = sims.argmax(axis=1)
        scores = sims[np.arange(len(rows)), variant]
        if query_id is not None:
            scores[ids == query_id] = 1.0  # the query itself: exactly 100 %
        keep = np.flatnonzero(scores >= min_score - 1e-9)  # a score of 1.0 passes --min-score 1.0
        keep = keep[np.argsort(-scores[keep], kind="stable")][: top_n + 10]
        records = {int(i): self.catalogue.record_from_row(stored[int(i)][1]) for i in ids[keep]}
        # Equal scores (copies of one file) are ordered by path, so the order
        # does not depend on the order in which files were added.
        keep = sorted(keep, key=lambda i: (-scores[i], records[int(ids[i])].relpath))[:top_n]
        keep = np.asarray(keep, dtype=np.int64)
        distances = np.full(len(keep), np.inf, dtype=np.float32)
        for v in range(len(codes)):
            chosen = variant[keep] == v
            if chosen.any():
                distances[chosen] = spherical_hamming(codes[v], snap.codes[rows[keep[chosen]]])
        matches = []
        for rank, (i, distance) in enumerate(zip(keep, distances), start=1):
            record = records[int(ids[i])]
            phash_distance = None
            if query_phash is not None and record.phash is not None:
                phash_distance = (int(query_phash) ^ record.phash).bit_count()
            matches.append(
                Match(
                    rank=rank,
                    image_id=record.image_id,
                    path=record.path,
                    relpath=record.relpath,
                    score=float(scores[i]),
                    distance=float(distance),
                    duplicate=phash_distance is not None and phash_distance <= self.config.duplicate_distance,
                    phash_distance=phash_distance,
                    width=record.width,
                    height=record.height,
                    mirrored=bool(variant[i] == 1),
                    missing=not os.path.exists(record.path),
                )
            )
        search_ms = (time.perf_counter() - started) * 1000
        return SearchResult(
            query=label,
            query_image_id=query_id,
            matches=tuple(matches),
            method=rankings[0].method,
            candidates=rankings[0].candidates,
            embed_ms=embed_ms,
            search_ms=search_ms,
        )


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
