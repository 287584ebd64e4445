"""*Same design* only for the same picture: the band's pairs on a returned page are looked at (copy_check.py).

The embeddings put a pair in *same design* (calibration.py); a query's best
matches then hold look-alike garments there too. Here the pairs a page would
show as *same design* are checked on the pictures themselves, in the order
the list reads them, until the page is full; a pair that fails reads its
garment score (`Calibration.percent` below the edge: at most 89 %, the top of
*very similar*). Not read, and passing as they are: the query itself, a
byte-identical copy, and a pair whose pHashes are near-identical
(`duplicate_distance`; never a flat picture's pHash, which says nothing:
phash_index.copy_distances). A candidate whose file cannot be read (moved,
missing, a team catalogue whose folder does not map here) cannot be shown as
*same design* unless the pHashes agree, and nothing is raised. Below the
edge the first of *very similar* and the best-scored candidate are looked at
too (`BELOW_EDGE`): one that passes is raised to the edge. A search made
from embeddings alone (no picture and no catalogue image: benchmarks of
synthetic catalogues) has nothing to look at and keeps the embedding band.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from PIL import Image

from .calibration import BAND_PERCENT, Calibration, band_levels, whole_percents
from .config import EngineConfig
from .copy_check import Both, Picture, file_features, looked_at
from .feature_cache import FeatureCache, shared
from .look_verdicts import LookVerdicts, file_key
from .phash_index import copy_distances
from .rocchio import Example
from .stores.base import Embeddings, ImageRecord

if TYPE_CHECKING:
    from .rescoring import RescoringData

log = logging.getLogger(__name__)

#: (candidate ids, the query row that scored each) -> whether each is the same picture as that row's example.
LooksSame = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Rows below *same design* a search also looks at, the first of *very similar* in the list's order and the most alike
#: of every lower band (one row when both are the same), while its page's band has room: of
#: 1,000 copies (200 a kind) the embeddings put two just below the edge (a crop at 80 %, a rotation at 77 %), and
#: each was the first of *very similar* (bench/copy_check_research.py measures the look-alikes there).
BELOW_EDGE = 1
#: Below *very similar* the most alike row is looked at only when it reads this many whole points more than the
#: list's first row below *same design* (round 10's lead for the best-scored match, bench/best_scored_rule.py): looking
#: at every list's best-scored row cost 0.46 more pairs a query and 4-5 ms of a new picture's 37 (round 12).
LEAD = 3


class PictureCheck:
    """The engine's same-picture check: features of queries and catalogue files, kept while they are used."""

    def __init__(self, records: Callable[[list[int]], dict[int, ImageRecord]]):
        self._records = records
        self.cache = FeatureCache()
        #: False: bands from the embeddings alone, as before the check (benchmarks measure both in one run)
        self.enabled = True
        self.looked = 0  # pairs looked at, not known from kept verdicts (tests and benchmarks read it)
        self._given: OrderedDict[bytes, Image.Image | str | Picture] = OrderedDict()  # pictures given as data, by embedding
        #: verdicts kept between searches and sessions (look_verdicts.py); opened on the first look; None: none kept
        self.verdicts: LookVerdicts | None | bool = True

    def remember(self, example: Example, picture: Image.Image | str | os.PathLike) -> Example:
        """The picture a query was made from (pasted data is looked at as it is, never re-read; a file when
        first needed). Returns `example`."""
        key = _key(example)
        if key not in self._given:  # asked again (steering the same picture): the first copy stands
            self._given[key] = picture.copy() if isinstance(picture, Image.Image) else os.fspath(picture)
        self._given.move_to_end(key)
        while len(self._given) > 8:
            self._given.popitem(last=False)
        return example

    def has_picture(self, example: Example) -> bool:
        """Whether a query has a picture to look at (given, a catalogue image, or a file); nothing is read."""
        given = self._given.get(_key(example), False)
        return given is not False or example.image_id is not None or bool(example.label and os.path.isfile(example.label))

    def query(self, example: Example) -> Picture | None:
        """The features of a query's picture and its mirror image (None: it has none, or it cannot be read)."""
        key = _key(example)
        given = self._given.get(key, False)
        if isinstance(given, Image.Image):
            features = file_features(given)  # the picture already decoded: no file read
            if features is not None:
                self._given[key] = features
            return features
        if isinstance(given, Picture):
            return given
        file = self.query_file(example)
        return None if file is None else self.cache.of(file)

    def query_file(self, example: Example) -> str | None:
        """The file a query's picture is read from (None: pasted data, or none)."""
        given = self._given.get(_key(example), False)
        if isinstance(given, str):
            return given
        if given is not False:
            return None
        if example.image_id is not None:
            record = self._records([int(example.image_id)]).get(int(example.image_id))
            return None if record is None else record.path
        return example.label if example.label and os.path.isfile(example.label) else None

    def close(self) -> None:
        """Close the kept verdicts' file (opened again if another look comes)."""
        if isinstance(self.verdicts, LookVerdicts):
            self.verdicts.close()
            self.verdicts = True

    def kept(self) -> LookVerdicts | None:
        """The kept verdicts (opened now if not yet; None: switched off)."""
        if self.verdicts is True:
            self.verdicts = LookVerdicts.default()
        return self.verdicts or None

    def looks_same(self, examples: Sequence[Example], row_example: np.ndarray) -> LooksSame | None:
        """The check of one search's candidates (None: no example has a picture, so nothing is checked).
        A query's picture is read only when a candidate is to be checked (most searches have none)."""
        if not self.enabled or not any(self.has_picture(e) for e in examples):
            return None
        found: dict[int, Picture | None] = {}

        query_keys: dict[int, int | None] = {}
        verdicts = self.kept()

        def check(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
            records = self._records([int(i) for i in ids])
            which = [int(row_example[min(int(row), len(row_example) - 1)]) for row in rows.tolist()]
            pairs = _file_pairs(self, examples, ids, which, records, query_keys) if verdicts is not None else [None] * len(ids)
            known = verdicts.get([p for p in pairs if p is not None]) if verdicts is not None else {}
            out = np.zeros(len(ids), bool)
            todo = [n for n, p in enumerate(pairs) if p is None or p not in known]
            for n in set(range(len(ids))) - set(todo):
                out[n] = known[pairs[n]]  # type: ignore[index]
            for k in {which[n] for n in todo} - set(found):
                try:
                    found[k] = self.query(examples[k])
                except Exception as exc:  # noqa: BLE001 - a query that cannot be looked at: nothing shown as same
                    log.warning("same-design check: the query cannot be looked at (%s)", exc)
                    found[k] = None

            def look(n: int, both: Both | None = None) -> tuple[bool, bool]:  # (the same picture, both looked at)
                query, record = found[which[n]], records.get(int(ids[n]))
                other = None if query is None or record is None else self.cache.of(record.path)
                if other is None or query is None:
                    return False, False
                seen = looked_at(query, other, both=both)
                return bool(seen), seen is not None  # a look that failed is kept as no verdict

            looked: dict[tuple[int, int], bool] = {}
            # shared by this thread and the look's reading thread (the other core is idle once the network is done):
            # 2.7 ms less a new picture's query at the median, 8.5 on average (round 14)
            # (one pair alone: its two orientations on the two threads)
            for n, (same, both) in zip(todo, [look(todo[0], shared)] if len(todo) == 1 else shared(look, todo)):
                out[n] = same
                pair = pairs[n]
                if pair is not None and both:  # both looked at: kept
                    looked[pair] = same
            if verdicts is not None and looked:
                verdicts.put(looked)
            self.looked += len(todo)
            return out

        return check


def _file_pairs(check: PictureCheck, examples: Sequence[Example], ids: np.ndarray, which: list[int],
                records: dict[int, ImageRecord], query_keys: dict[int, int | None]) -> list[tuple[int, int] | None]:
    """Each candidate's pair of files as kept verdicts know it (None: pasted data, or a file not there)."""
    for k in set(which) - set(query_keys):
        file = check.query_file(examples[k])
        query_keys[k] = None if file is None else file_key(file)
    pairs: list[tuple[int, int] | None] = []
    for image_id, k in zip(ids.tolist(), which):
        record = records.get(int(image_id))
        query, other = query_keys[k], None if record is None else file_key(record.path)
        pairs.append(None if query is None or other is None else (query, other))
    return pairs


def _key(example: Example) -> bytes:
    """How a query's picture is found again: its first embedding row's bytes."""
    return np.asarray(example.embeddings, np.float32)[0].tobytes()


def checked_page(
    looks_same: LooksSame,
    ids: np.ndarray,
    percent: np.ndarray,
    variant: np.ndarray,
    exempt: np.ndarray,
    garment: Callable[[np.ndarray], np.ndarray],
    limit: int,
    ranking: np.ndarray | None = None,
    below: int = 0,
) -> np.ndarray:
    """Rows of the *same design* band that fail the look, checked in the band's order (most alike first)
    until `limit` rows of it stand; their `percent` (in place) becomes their garment score. Then, while the
    band has room, the `below` first rows of *very similar* in the list's order (`ranking`) and the `below` most
    alike of all lower bands (ties in the list's order) are looked at too: one that passes is the same picture
    the embeddings put below the edge (a crop or a rotation can read 71-80 %), and reads the band's edge,
    BAND_PERCENT[0] (listed in *same design*, after those reading more; config.best_scored_within lifted the
    best-scored blindly before, whatever the picture).

    Args:
        exempt: rows that stand without a look (the query itself, an identical copy, pHash near-identical).
        garment: rows -> their garment percent (below the same-design band).

    Returns: the rows whose `percent` changed (failed, then raised).
    """
    band = np.flatnonzero(band_levels(percent) == 0)
    band = band[np.argsort(-percent[band], kind="stable")]
    standing = int(exempt[band].sum())
    near = _below_edge(percent, exempt, ranking, below)
    if len(band) < limit:
        # the band cannot fill the page, so every pair to look at is known now: looked at together, the two cores
        # share them (PictureCheck.looks_same); failed rows are not among `near`, so it reads as the loop below would
        rows = band[~exempt[band]]
        both = np.concatenate([rows, near])
        ok = looks_same(ids[both], variant[both]) if len(both) else np.zeros(0, bool)
        return _settled(percent, rows[~ok[: len(rows)]], near[ok[len(rows):]], garment)
    failed: list[int] = []
    for start in range(0, len(band), 8):
        if standing >= limit:
            break
        rows = band[start : start + 8]
        rows = rows[~exempt[rows]][: max(0, limit - standing)]
        if not len(rows):
            continue
        ok = looks_same(ids[rows], variant[rows])
        standing += int(ok.sum())
        failed.extend(rows[~ok].tolist())
    if standing >= limit or not len(near):
        return _settled(percent, np.asarray(failed, np.int64), near[:0], garment)
    return _settled(percent, np.asarray(failed, np.int64), near[looks_same(ids[near], variant[near])], garment)


def _settled(percent: np.ndarray, failed: np.ndarray, raised: np.ndarray, garment: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`checked_page`'s changes: `failed` rows read their garment score, `raised` ones the band's edge. Returns both."""
    if len(failed):
        percent[failed] = np.minimum(percent[failed], garment(failed))
    percent[raised] = BAND_PERCENT[0]
    return np.concatenate([failed.astype(np.int64), raised.astype(np.int64)])


def _below_edge(percent: np.ndarray, exempt: np.ndarray, ranking: np.ndarray | None, below: int) -> np.ndarray:
    """The rows below *same design* `checked_page` looks at (before any look: a band row that fails is never one)."""
    if ranking is None or below <= 0:
        return np.zeros(0, np.int64)
    level = band_levels(percent)
    lower = np.flatnonzero(level >= 1)
    lower = lower[~exempt[lower] & np.isfinite(ranking[lower])]
    near = lower[level[lower] == 1]
    # the `below` first of *very similar* in the list's order and the `below` most alike of every lower band (ties in
    # the list's order): the list weighs each design's look-alikes, so a copy at 79 % can stand behind a look-alike at
    # 75 % (a new user's rotated crop), and a crop's original reading 71.5 % (*similar*, the best score of its list)
    # stood 233rd; a benchmark crop stood first in the list behind a more alike look-alike; one look when both name it
    first = near[np.argsort(-ranking[near], kind="stable")][:below]
    alike = lower[np.lexsort((-ranking[lower], -percent[lower]))][:below]
    head = lower[np.lexsort((-ranking[lower], level[lower]))][:1]  # the list's first row below the band
    if len(head):  # below *very similar*, only a *similar* match reading LEAD points more than the list's first: a
        shown = whole_percents(percent)  # copy's original does (71.5 % against 67.7 %); most lists' best does not
        alike = alike[(level[alike] == 1) | ((level[alike] == 2) & (shown[alike] >= shown[head[0]] + LEAD))]
    return np.concatenate([first, alike[~np.isin(alike, first)]]).astype(np.int64)


def garment_percents(calibration: Calibration, candidates: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(m,) the best garment score (percent, below *same design*) of each candidate embedding over the query rows."""
    a = calibration.centred(np.asarray(candidates, np.float32))
    b = calibration.centred(np.asarray(queries, np.float32))
    cosines = np.stack([(a * b[j]).sum(axis=1) for j in range(len(b))], axis=1)  # row by row: the same whatever else is scored
    return np.asarray(calibration.percent(np.full(cosines.shape, -1.0), np.clip(cosines, -1.0, 1.0))).max(axis=1)


def demote_failed(
    looks_same: LooksSame | None, data: "RescoringData", calibration: Calibration | None, embeddings: np.ndarray, ids: np.ndarray,
    percent: np.ndarray, scores: np.ndarray, variant: np.ndarray, exempt: np.ndarray, limit: int, settled: np.ndarray | None,
    ranking: np.ndarray | None = None,
) -> np.ndarray:
    """`checked_page` for ranking.score_and_order (`ranking`: the candidates', the list's order inside a band):
    the changed rows' `percent` and `scores` (0..1) in place, and `settled` (score_bounds.py: rows whose exact
    score is still to come) False for them: their garment scores, or the band's edge, are exact. Returns them.
    Nothing is looked at without a check or a calibration."""
    if looks_same is None or calibration is None:
        return np.zeros(0, np.int64)

    def garment(rows: np.ndarray) -> np.ndarray:
        stored = data.embedding_matrix(ids[rows].tolist())
        at = {int(i): n for n, i in enumerate(stored.ids)}
        vectors = stored.vectors[[at[int(i)] for i in ids[rows]]]  # every candidate here was scored from its stored row
        return garment_percents(calibration, vectors, embeddings)

    failed = checked_page(looks_same, ids, percent, variant, exempt, garment, limit, ranking, BELOW_EDGE)
    scores[failed] = percent[failed] / 100.0
    if settled is not None:
        settled[failed] = False
    return failed


def look_at_scores(
    check: PictureCheck, calibration: Calibration | None, phashes: np.ndarray, config: EngineConfig, stored: Embeddings,
    percent: np.ndarray,
) -> np.ndarray:
    """`SearchEngine.similarities`' look at the pairs in *same design* of one catalogue image (`stored`'s
    first row) with the others (their `percent` changed in place). `phashes`: of `stored.ids` (0: unknown);
    near-identical pairs stand without a look, and the very same picture (the same embedding) reads 100 %,
    as in a search (ranking.py), whatever its pHash says. Returns `percent`."""
    ids, vectors = stored.ids, stored.vectors
    identical = np.all(vectors[1:] == vectors[:1], axis=1)
    percent[identical] = 100.0
    looks = None if calibration is None else check.looks_same([Example(vectors[:1], int(ids[0]), "", None)], np.zeros(1, np.int64))
    if looks is None or calibration is None:
        return percent
    near = identical | (copy_distances(int(phashes[0]), phashes[1:]) <= config.duplicate_distance)
    checked_page(looks, np.asarray(ids[1:], np.int64), percent, np.zeros(len(ids) - 1, np.int64), near,
                 lambda rows: garment_percents(calibration, vectors[1:][rows], vectors[:1]), len(ids) - 1)
    return percent
