"""Steering a search (issue 12), the part that reads a catalogue's details: colour and search by a detail.

`ColourSteer` is the colour control inside ranking.py's two steps (a
`ranking.Steer`): towards *ignore colour* a design's value moves to its best
over the query's hue turns, towards *match colour* `candidate_colours` reads
the colour signatures of the candidates and those unlike the query lose
similarity (colour.py). `DetailSearch`
answers a box on a picture: it frames the box's crop as regions.py says,
embeds it (with its hue turns towards *ignore colour*) in one pass, and
scans every image's regional vectors, held in a `RegionIndex` loaded on the
first detail query (region_index.py), then scores the best of them again
with the query expanded by its best hits. `SearchEngine.search_detail` turns its hits into matches.

Catalogues built before details were kept have none: that is said in one
plain sentence (update the catalogue), never a crash, and a catalogue whose
update was stopped half-way searches what it has and says how many are missing.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from .colour import COLOUR_POOL, HUE_TURNS, ColourMix, colour_signature, colour_similarity, hue_turned, picture_signature
from .errors import CatalogueError
from .examples import picture_note
from .images import ImageError, load_image, load_picture, query_path
from .model import ImageEmbedder
from .ranking import shown_at_least
from .region_index import COARSE_DIM, REFINE, SCAN_CHUNK, RegionIndex, _top
from .regions import Box, RegionBasis, framed_detail
from .stores.base import CatalogueReader

log = logging.getLogger(__name__)

#: A detail query's picture is read with at most this long a side: a box of a
#: tenth of it still has more pixels than the network sees of it.
DETAIL_SIDE = 1600
#: Hue turns of a detail query towards *ignore colour*. Two, not the five of a whole-picture
#: query: every extra framed copy is a network pass, and with the expanded second look
#: (region_index.py) two find as many recoloured details as five (docs/DETAILS.md).
DETAIL_HUE_TURNS = (120, 240)
#: Said when colour cannot be matched: the catalogue keeps no colours (yet).
NO_COLOURS = "Colour cannot be matched in this catalogue yet: update it to keep the colours of its pictures."
def candidate_colours(reader: CatalogueReader, ids: np.ndarray, signature: np.ndarray | None) -> tuple[np.ndarray | None, str]:
    """Colour similarity (n,) of sorted candidate ids to a query's signature, and a note when some are unknown
    (or the query's own: None).

    A candidate without a signature (a catalogue built before colours were
    kept) gets the median of the others, so it is neither pushed down nor
    favoured; with none known, colour changes nothing.
    """
    if signature is None:  # a catalogue image whose colours were not kept yet
        return None, NO_COLOURS
    stored = reader.colour_signatures(ids.tolist())
    if not len(stored.ids):
        return None, NO_COLOURS
    known = colour_similarity(signature, stored.signatures)
    sims = np.full(len(ids), float(np.median(known)))
    sims[np.searchsorted(ids, stored.ids)] = known
    missing = len(ids) - len(stored.ids)
    note = f"{missing:,} of the designs compared have no colours kept yet: update the catalogue to match their colour." if missing else ""
    return sims, note


class ColourSteer:
    """The colour control of one query in the ranking (ranking.Steer).

    Args:
        reader: the catalogue, for the candidates' colour signatures.
        mix: where the control stands.
        signature: the query's colour signature (needed towards *match colour*; None: colour is not matched).
        turns: embeddings (5, D) of the query's hue turns (towards *ignore colour*; None: not searched).
    """

    def __init__(self, reader: CatalogueReader, mix: ColourMix, signature: np.ndarray | None, turns: np.ndarray | None = None):
        self.reader, self.mix, self.signature, self.turns = reader, mix, signature, turns
        self.plain = 0  # leading query rows that are the pictures as they are (`rows` sets it); the rest are hue turns
        self.note = ""  # what the user should know (colours not kept yet), from the last blend

    def rows(self, queries: np.ndarray, *, turns: bool) -> np.ndarray:
        """The query rows to search: `queries`, then (with `turns`) the hue turns, rounded as `queries` are."""
        self.plain = len(queries)
        if not turns or self.turns is None or not len(self.turns):
            return queries
        return np.concatenate([queries, np.asarray(self.turns).astype(queries.dtype)])

    def blend(self, ids: np.ndarray, per_row: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(steered value (m,), plain query row it stands for (m,)) of candidates `ids` from their values per row."""
        per_row = np.asarray(per_row, dtype=np.float64)
        variant = per_row[:, : self.plain].argmax(axis=1)
        plain = per_row[np.arange(len(per_row)), variant]
        turned = per_row.max(axis=1) if per_row.shape[1] > self.plain else None
        colours = None
        if self.mix.match and len(ids):
            order = np.argsort(ids, kind="stable")  # candidate_colours reads sorted ids
            known, self.note = candidate_colours(self.reader, np.asarray(ids)[order], self.signature)
            if known is not None:
                colours = np.empty(len(ids))
                colours[order] = known
        values = self.mix.scores(plain / scale, None if turned is None else turned / scale, colours) * scale
        return values, variant


@dataclass(frozen=True)
class DetailHits:
    """The best designs for a detail, before they become matches."""

    ids: np.ndarray  # (k,) image ids, best first
    scores: np.ndarray  # (k,) similarity a user sees
    label: str  # the query picture's path, or "pasted image"
    query_id: int | None
    scanned: int  # images whose regions were compared
    embed_ms: float
    search_ms: float
    note: str = ""


class DetailSearch:
    """Search by a detail in one catalogue (used from the engine's thread; `reset` after an update)."""

    def __init__(self, reader: CatalogueReader):
        self.reader = reader
        self._index: RegionIndex | None = None
        self._basis: RegionBasis | None = None

    def reset(self) -> None:
        self._index = self._basis = None

    def _ready(self, embedder: ImageEmbedder) -> tuple[RegionBasis, RegionIndex]:
        where = self.reader.location
        if self._index is None:
            self._basis = self.reader.region_basis()
            self._index = RegionIndex.load(self.reader) if self._basis is not None else RegionIndex(np.empty(0), np.empty((0, 0, 0), np.float16))
            log.info("loaded the regional vectors of %d images", len(self._index))
        basis, index = self._basis, self._index
        if basis is None or not len(index):
            raise CatalogueError(
                f"The catalogue {where} was built before SwimSearch kept the details of pictures: "
                "update it (F5 in the window, or swimsearch index) to search by a detail."
            )
        if not getattr(embedder, "has_feature_map", False) or not basis.fits(getattr(embedder, "feature_map_shape", None)):
            raise CatalogueError("The model in use gives no feature map that fits this catalogue, so it cannot search by a detail.")
        return basis, index

    def search(
        self,
        source: str | os.PathLike | Image.Image | int,
        box: Box,
        embedder: ImageEmbedder,
        *,
        top_n: int,
        min_score: float,
        colour: ColourMix,
        expand: bool = True,
    ) -> DetailHits:
        """The designs that hold the detail in `box` of a picture (a file, pasted data, or a catalogue image's id).

        The detail is searched once, then again expanded by the windows that
        hold it best in the first results (region_index.expanded_query;
        `expand=False`: the first look alone, as the benchmark compares).

        Raises:
            ImageError: the picture cannot be read.
            CatalogueError: the catalogue keeps no details (built before), or the model gives no feature map.
        """
        basis, index = self._ready(embedder)
        started = time.perf_counter()
        label, query_id, picture = self._picture(source)
        pixels, window = framed_detail(picture, box.checked(), embedder.size, basis.grid)
        rows = [pixels] + ([hue_turned(pixels, turn) for turn in DETAIL_HUE_TURNS] if colour.ignore else [])
        _, maps = embedder.embed_with_maps(np.stack(rows))  # type: ignore[attr-defined]
        vectors = basis.describe_window(maps, window)
        embed_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        wanted = max(top_n + 30, COLOUR_POOL if colour.match else 0)
        scan = index.scan(vectors, refine=max(REFINE, wanted))
        best = scan.values
        # each row as the colour control counts it: a hue turn only as far as the control leans to *ignore colour*
        values = best[:, :1] + colour.ignore * (np.maximum(best, best[:, :1]) - best[:, :1])
        design = scan.second_look(vectors, values) if expand else values.max(axis=1)
        pool = _top(design, wanted)
        pool = np.sort(pool)  # candidate_colours wants ids in order; index ids are sorted
        # a box on a white margin or on a tiny picture is searched, as a whole picture would be, and said
        crop = picture.crop(box.pixels(picture.width, picture.height))
        notes = [picture_note(crop.width, crop.height, np.asarray(crop), what="the box")]
        colours = None
        if colour.match:
            colours, note = candidate_colours(self.reader, index.ids[pool], picture_signature(crop))
            notes.append(note)
        scores = colour.scores(design[pool], None, colours)
        order = np.argsort(-scores, kind="stable")
        order = order[shown_at_least(scores[order], min_score)][:top_n]  # on the percent shown, as every list
        readable = self.reader.counts()["readable"]
        if readable > len(index):
            notes.append(f"{readable - len(index):,} designs have no details kept yet: update the catalogue to search them by a detail.")
        ids, scores = _own_first(index.ids[pool][order], scores[order], query_id, top_n)
        return DetailHits(
            ids=ids, scores=scores, label=label, query_id=query_id, scanned=len(index),
            embed_ms=embed_ms, search_ms=(time.perf_counter() - started) * 1000, note=" ".join(n for n in notes if n),
        )

    def _picture(self, source: str | os.PathLike | Image.Image | int) -> tuple[str, int | None, Image.Image]:
        if isinstance(source, Image.Image):
            return "pasted image", None, load_picture(source, DETAIL_SIDE)[0]
        if isinstance(source, (int, np.integer)):
            record = self.reader.records([int(source)]).get(int(source))
            if record is None:
                raise CatalogueError("This design is no longer in the catalogue (an update removed it); search again from its file.")
            return record.path, record.image_id, load_picture(record.path, DETAIL_SIDE)[0]
        path = query_path(source)
        record = self.reader.record_by_path(path, unchanged=True)
        return path, record.image_id if record else None, load_picture(path, DETAIL_SIDE)[0]


def _own_first(ids: np.ndarray, scores: np.ndarray, query_id: int | None, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """The query's own catalogue image first at 1.0, once, as a whole-picture search lists it.

    A box's framed window never matches its own picture's region grid exactly, so without this the
    picture the designer drew on often ranks below designs that merely resemble it.
    """
    if query_id is None or top_n < 1:
        return ids, scores
    others = ids != query_id
    ids = np.concatenate([np.asarray([query_id], dtype=ids.dtype), ids[others]])[:top_n]
    scores = np.concatenate([np.ones(1, dtype=scores.dtype), scores[others]])[:top_n]
    return ids, scores


def colour_query(
    reader: CatalogueReader, embedder: ImageEmbedder | None, source: str | os.PathLike | Image.Image | int, mix: ColourMix
) -> ColourSteer | None:
    """The colour control for a query picture (a file, picture data, or a catalogue image's id); None at the middle.

    Towards *ignore colour* the picture's hue turns are embedded (a catalogue
    image's file read again; one gone since is searched without them);
    towards *match colour* its colour signature is the catalogue's, else made
    from the picture.

    Raises:
        ImageError: a file or picture given cannot be read.
    """
    if mix.neutral:
        return None
    signature, loaded = None, None
    if isinstance(source, (int, np.integer)):
        if mix.match:
            kept = reader.colour_signatures([int(source)])
            signature = kept.signatures[0] if len(kept.ids) else None
        record = reader.records([int(source)]).get(int(source))
        if embedder is not None and record is not None and (mix.ignore or (mix.match and signature is None)):
            try:
                loaded = load_image(record.path, embedder.size)
            except ImageError:
                pass
    elif embedder is not None:
        loaded = load_image(source, embedder.size)
    if loaded is not None and mix.match and signature is None:
        signature = colour_signature(loaded.pixels, loaded.width, loaded.height)
    turns = None
    if loaded is not None and mix.ignore and embedder is not None:
        turns = embedder.embed(np.stack([hue_turned(loaded.pixels, turn) for turn in HUE_TURNS])).astype(np.float32)
    return ColourSteer(reader, mix, signature, turns)


#: A detail search in some folders asks the region scan for this many designs at most and keeps those in
#: the folders: the scan ranks every design anyway, and this bounds its exact second step.
DETAIL_FOLDER_ASK = 20_000


def asked_for_folder(top_n: int, total: int, in_folders: int) -> int:
    """How many designs a detail search asks for so that `top_n` of them are likely in folders holding
    `in_folders` of the `total` (their share of the catalogue, with a margin)."""
    if in_folders <= 0:
        return top_n
    return int(min(total, max(top_n, min(DETAIL_FOLDER_ASK, 2 * top_n * total // in_folders + 50))))


__all__: Sequence[str] = (
    "COARSE_DIM", "DETAIL_FOLDER_ASK", "REFINE", "SCAN_CHUNK", "ColourSteer", "DetailSearch", "RegionIndex", "asked_for_folder",
    "candidate_colours", "colour_query",
)
