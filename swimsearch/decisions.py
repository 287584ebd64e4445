"""Decisions the catalogue remembers: "same design" pins a pair, "not similar" demotes it.

People mark a result *same design* or *not similar* to the query; the store
keeps each verdict with who and when (stores/base.py `Decision`). In a later
search from either image of a pair, the other one is

* pinned right after the pictures searched with, when marked the same design
  (even below the minimum score, even when the candidate search missed it);
* moved to the end of the list, when marked not similar: it stays in sight,
  with its badge, until a better list pushes it out.

Once there are enough decisions, they also adapt the ranking of every search
of the catalogue, for everyone using it (adaptation.py).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np

from .adaptation import Adaptation, Adapted
from .stores.base import CatalogueReader
from .stores.verdicts import DIFFERENT, SAME, Decision

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The ranking adapted to the decisions (adaptation.py), used by steered.py.
Adapter = Adapted


class DecisionBook:
    """A catalogue's decisions, loaded once per change: verdicts by pair, and the adapted ranking (if any)."""

    def __init__(self, decisions: Sequence[Decision] = (), adapter: Adapter | None = None):
        self.decisions = tuple(decisions)
        self.adapter = adapter
        self._by_image: dict[int, dict[int, str]] = {}
        for d in self.decisions:
            self._by_image.setdefault(d.a, {})[d.b] = d.verdict
            self._by_image.setdefault(d.b, {})[d.a] = d.verdict

    @classmethod
    def load(cls, reader: CatalogueReader, adaptation: Adaptation | None) -> "DecisionBook":
        """The catalogue's decisions, and the ranking adapted to them when they say more than noise (adaptation.py)."""
        decisions = reader.decisions()
        return cls(decisions, adaptation.fit(decisions) if adaptation is not None else None)

    def __len__(self) -> int:
        return len(self.decisions)

    def verdict(self, a: int, b: int) -> str | None:
        return self._by_image.get(a, {}).get(b)

    def verdicts(self, image_ids: Iterable[int]) -> dict[int, str]:
        """The verdict on each image decided against any of `image_ids` (same design wins a disagreement)."""
        out: dict[int, str] = {}
        for image_id in image_ids:
            for other, verdict in self._by_image.get(image_id, {}).items():
                if out.get(other) != SAME:
                    out[other] = verdict
        return out


def tiers(ids: np.ndarray, examples: set[int], verdicts: dict[int, str]) -> np.ndarray:
    """Where each image goes before its score counts: 0 a picture searched with, 1 pinned, 2 the rest."""
    out = np.full(len(ids), 2, dtype=np.int64)
    pinned = [i for i, v in verdicts.items() if v == SAME]
    if pinned:
        out[among(ids, pinned)] = 1
    if examples:
        out[among(ids, examples)] = 0
    return out


def among(ids: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """(len(ids),) bool: which ids are one of `values`, as `np.isin` says; by one comparison a value for the
    few a search has (its examples, its decided pairs), where np.isin's sort cost ~20 µs a call."""
    ids, values = np.asarray(ids), list(values)
    if len(values) > 8:
        return np.isin(ids, np.array(values, dtype=np.int64))
    out = np.zeros(len(ids), dtype=bool)
    for value in values:
        out |= ids == value
    return out


def arrange(ordered: Sequence[T], verdict_of: Callable[[T], str | None], top_n: int) -> list[T]:
    """The first `top_n` of a ranked list, with those marked not similar moved to its end (in their order)."""
    shown = list(ordered[:top_n])
    return [x for x in shown if verdict_of(x) != DIFFERENT] + [x for x in shown if verdict_of(x) == DIFFERENT]


def pair_arrays(decisions: Sequence[Decision]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a ids, b ids, 1 for same design / 0 for not similar) of decisions, as arrays."""
    a = np.array([d.a for d in decisions], dtype=np.int64)
    b = np.array([d.b for d in decisions], dtype=np.int64)
    same = np.array([d.verdict == SAME for d in decisions], dtype=np.int64)
    return a, b, same
