"""Groups of one design do not chain look-alikes into one group of different garments."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from swimsearch import duplicates
from swimsearch.duplicates import SAME_DESIGN, find_duplicate_groups


def _line_of_look_alikes(monkeypatch, n: int) -> None:
    """n pictures in a row, each same-design with its two neighbours only (a chain of look-alikes)."""
    near, far = min(1.0, SAME_DESIGN + 0.05), SAME_DESIGN / 2
    score = np.full((n, n), far)
    for i in range(n):
        score[i, i] = 1.0
        for j in (i - 1, i + 1):
            if 0 <= j < n:
                score[i, j] = near
    images = duplicates._Images(
        ids=np.arange(1, n + 1),
        phash=np.arange(n, dtype=np.uint64) * np.uint64(0xFFFF),  # far apart: no near-identical files
        scores=lambda row, rows: score[row, rows],
        neighbours=lambda row, k: np.argsort(-score[row], kind="stable")[:k],
        paths=lambda ids: [f"/designs/{i}.jpg" for i in ids],
    )
    monkeypatch.setattr(duplicates, "_searchable_images", lambda engine: images)


def test_every_member_of_a_same_design_group_is_same_design_with_its_first(monkeypatch):
    _line_of_look_alikes(monkeypatch, 12)
    engine = SimpleNamespace(calibrated=True, config=SimpleNamespace(duplicate_distance=4))
    groups = find_duplicate_groups(engine, same_design=True)
    assert groups, "look-alike pairs make groups"
    assert max(len(g.image_ids) for g in groups) <= 3  # a picture and its two look-alikes, never the whole chain
    for group in groups:  # the picture that started the group is same-design with every other member
        centre = min(group.image_ids)
        assert all(abs(i - centre) <= 1 for i in group.image_ids)
    covered = sorted(i for g in groups for i in g.image_ids)
    assert len(covered) == len(set(covered))  # no picture in two groups
