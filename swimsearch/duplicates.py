"""Groups of near-identical files in a catalogue (re-exports, resized copies, re-saves), or of one design.

Candidate pairs come from each image's nearest neighbours in the search index
(duplicates are always close in embedding space); a pair is kept when the
perceptual hashes differ in at most `max_distance` of 64 bits (never where
a pHash says nothing about its picture, as a flat colour's: then only the
very same picture, the same embedding, is a copy; phash_index.py), or (the
*same design* tier) when their calibrated similarity is in the same-design
band (calibration.py: crops, recolours, mirror images and small rotations of
one picture too, which the pHash misses), the pictures looked at as a search
does (`SearchEngine.similarities`, same_picture.py), so a look-alike garment
is not grouped with another. Pairs are then joined into groups (union-find),
so a design saved five times is one group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from .calibration import BAND_PERCENT
from .errors import Cancelled, CatalogueError
from .phash_index import UNKNOWN, copy_distances
from .search import SearchEngine

#: The lowest score (0..1) of the same-design band.
SAME_DESIGN = BAND_PERCENT[0] / 100.0


@dataclass(frozen=True)
class DuplicateGroup:
    """Image ids of one group, the first being the earliest added; paths alongside."""

    image_ids: tuple[int, ...]
    paths: tuple[str, ...]
    max_phash_distance: int


def _find(parent: dict[int, int], x: int) -> int:
    while parent.setdefault(x, x) != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


class _Images(NamedTuple):
    ids: np.ndarray  # image ids of the searchable images, one per row
    phash: np.ndarray  # their perceptual hashes, uint64, one per row
    scores: Callable[[int, np.ndarray], np.ndarray]  # (row, rows) -> shown scores 0..1 of the pairs
    neighbours: Callable[[int, int], np.ndarray]  # (row, k) -> rows of the k nearest images, best first
    paths: Callable[[list[int]], list[str]]  # image ids -> their absolute paths


def _searchable_images(engine: SearchEngine) -> _Images | None:
    """What duplicate finding needs of the engine, through its public methods (None: nothing searchable)."""
    ids = engine.searchable_ids()
    if not len(ids):
        return None

    def neighbours(row: int, k: int) -> np.ndarray:
        # the k nearest counting the image itself, which the engine leaves out; a team
        # catalogue's server may also find designs added since `ids` was read: left out
        found = engine.neighbours(int(ids[row]), k - 1)
        rows = np.searchsorted(ids, found)
        known = rows < len(ids)
        known[known] = ids[rows[known]] == found[known]
        return rows[known]

    def paths(image_ids: list[int]) -> list[str]:
        records = engine.records(np.asarray(image_ids, dtype=np.int64))
        return [records[i].path for i in image_ids]

    def scores(row: int, rows: np.ndarray) -> np.ndarray:
        return engine.similarities(int(ids[row]), ids[rows])

    return _Images(ids, engine.phashes(ids), scores, neighbours, paths)


def find_duplicate_groups(
    engine: SearchEngine,
    *,
    max_distance: int | None = None,
    neighbours: int = 10,
    same_design: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[DuplicateGroup]:
    """All groups of two or more near-identical images (or, `same_design`, of one design), largest first.

    Raises:
        Cancelled: `should_stop()` said stop (checked every 256 images).
        CatalogueError: `same_design` for a model without a similarity calibration.
    """
    if same_design and not engine.calibrated:
        raise CatalogueError(
            "Groups of one design need the calibrated similarity, and this catalogue's model comes without one; "
            "near-identical files can still be grouped."
        )
    images = _searchable_images(engine)
    if images is None or len(images.ids) < 2:
        return []
    max_distance = engine.config.duplicate_distance if max_distance is None else max_distance
    parent: dict[int, int] = {}
    worst: dict[tuple[int, int], int] = {}
    total = len(images.ids)
    for row in range(total):
        pairs = _close_pairs(images, row, neighbours, max_distance, same_design)
        if same_design:
            _join_star(parent, worst, row, pairs)
            pairs = []
        for other, d in pairs:
            a, b = _find(parent, row), _find(parent, other)
            if a != b:
                parent[max(a, b)] = min(a, b)
            worst[(row, other)] = d
        if row % 256 == 0 or row == total - 1:
            if progress:
                progress(row + 1, total)
            if should_stop and should_stop():
                raise Cancelled()
    result = [_group(images, members, worst) for members in _members(parent) if len(members) > 1]
    result.sort(key=lambda g: (-len(g.image_ids), g.paths[0]))
    return result


def _join_star(parent: dict[int, int], worst: dict[tuple[int, int], int], row: int, pairs: list[tuple[int, int]]) -> None:
    """Groups of one design as stars: a picture not yet in a group starts one and takes its
    same-design neighbours not yet in one. Joining through pairs (as near-identical files are)
    chains look-alikes into groups of hundreds of different garments, whose ends are not alike."""
    if row in parent:
        return
    parent[row] = row
    for other, d in pairs:
        if other not in parent:
            parent[other] = row
            worst[(row, other)] = d


def _close_pairs(images: _Images, row: int, neighbours: int, max_distance: int, same_design: bool) -> list[tuple[int, int]]:
    """(row, pHash distance) of the nearest neighbours of `row` whose pHash is within `max_distance`
    (or, `same_design`, whose score is in the same-design band). Where a pHash is unknown or says
    nothing (a flat picture's), only the very same picture is a copy: it scores exactly 1.0, as in a search."""
    found = images.neighbours(row, neighbours + 1)
    others = found[found != row]
    if not len(others):
        return []
    diff = copy_distances(int(images.phash[row]), images.phash[others])
    if same_design:
        close = images.scores(row, others) >= SAME_DESIGN - 1e-12
    else:
        close, unknown = diff <= max_distance, diff == UNKNOWN
        if unknown.any():
            close[unknown] = images.scores(row, others[unknown]) >= 1.0
            diff[unknown & close] = 0
    return [(int(o), int(d)) for o, d in zip(others[close], diff[close])]


def _members(parent: dict[int, int]) -> list[list[int]]:
    """The rows of each union-find group, in row order."""
    groups: dict[int, list[int]] = {}
    for row in parent:
        groups.setdefault(_find(parent, row), []).append(row)
    return [sorted(members) for members in groups.values()]


def _group(images: _Images, members: list[int], worst: dict[tuple[int, int], int]) -> DuplicateGroup:
    ids = [int(images.ids[r]) for r in members]
    member_set = set(members)
    distance = max((d for (a, b), d in worst.items() if a in member_set and b in member_set), default=0)
    return DuplicateGroup(tuple(ids), tuple(images.paths(ids)), distance)
