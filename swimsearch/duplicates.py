"""Groups of near-identical files in a catalogue (re-exports, resized copies, re-saves).

Candidate pairs come from each image's nearest neighbours in the search index
(duplicates are always close in embedding space); a pair is kept when the
perceptual hashes differ in at most `max_distance` of 64 bits. Pairs are then
joined into groups (union-find), so a design saved five times is one group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .search import SearchEngine


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


def find_duplicate_groups(
    engine: SearchEngine,
    *,
    max_distance: int | None = None,
    neighbours: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> list[DuplicateGroup]:
    """All groups of two or more near-identical images, largest first."""
    snap = engine.snapshot
    if snap is None or len(snap) < 2:
        return []
    max_distance = engine.config.duplicate_distance if max_distance is None else max_distance
    vectors = snap.vectors.astype(np.float32)
    phash = engine.catalogue.phashes(snap.ids)
    parent: dict[int, int] = {}
    worst: dict[tuple[int, int], int] = {}
    total = len(snap)
    for row in range(total):
        ranking = engine.searcher.search(snap.codes[row], vectors[row], neighbours + 1)
        others = ranking.rows[ranking.rows != row]
        if len(others):
            diff = np.bitwise_count(phash[others] ^ phash[row]).astype(int)
            for other, d in zip(others[diff <= max_distance], diff[diff <= max_distance]):
                a, b = _find(parent, row), _find(parent, int(other))
                if a != b:
                    parent[max(a, b)] = min(a, b)
                worst[(row, int(other))] = int(d)
        if progress and (row % 256 == 0 or row == total - 1):
            progress(row + 1, total)
    groups: dict[int, list[int]] = {}
    for row in parent:
        groups.setdefault(_find(parent, row), []).append(row)
    result = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        ids = [int(snap.ids[r]) for r in members]
        records = engine.catalogue.records(ids)
        member_set = set(members)
        distance = max((d for (a, b), d in worst.items() if a in member_set and b in member_set), default=0)
        result.append(DuplicateGroup(tuple(ids), tuple(records[i].path for i in ids), distance))
    result.sort(key=lambda g: (-len(g.image_ids), g.paths[0]))
    return result
