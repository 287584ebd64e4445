"""A picture from outside the catalogue is searched as the catalogue would hold it once added (fold_in.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import swimsearch.ranking
from helpers import built_catalogue, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine


def _names(result, leave: str = "") -> list[str]:
    return [m.relpath.split("/")[-1] for m in result.matches if not m.relpath.endswith(leave) or not leave]


@pytest.mark.parametrize("picture", ["img0041.png", "img0102.png"])
def test_a_new_picture_reads_the_list_it_gets_once_added_and_clicked(tmp_path, fake_embedder, small_config, picture, monkeypatch):
    """Dropped before it is added, a picture lists the catalogue as it does once added and searched from
    the catalogue: the designs that will list it among their nearest lean towards it already."""
    folder, outside = tmp_path / "pics", tmp_path / "outside"
    make_pattern_images(folder, 160, family=4)
    outside.mkdir()
    shutil.move(folder / picture, outside / picture)
    path = built_catalogue(tmp_path / "c.swimcat", folder, fake_embedder, small_config)
    seen: list = []  # (ids, the vectors the dropped search ranked them with, as stored before)
    fold = swimsearch.ranking.folded_in

    def watched(data, fitted, query):
        augmented = fold(data, fitted, query)
        return lambda ids: seen.append((ids, augmented(ids), data.augmented(ids))) or seen[-1][1]

    with Catalogue.open(path) as catalogue:
        monkeypatch.setattr(swimsearch.ranking, "folded_in", watched)
        dropped = SearchEngine(catalogue, fake_embedder, small_config).search(outside / picture, top_n=60)
        monkeypatch.undo()
    shutil.copy(outside / picture, folder / picture)
    with Catalogue.open(path) as catalogue:
        catalogue.update(fake_embedder, small_config)
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        added = next(i for i in engine.searchable_ids().tolist() if catalogue.records([i])[i].relpath == picture)
        clicked = engine.search_id(added, top_n=61)
        assert seen
        changed = 0
        for ids, folded, stored in seen:  # each vector as the update that added the picture made it
            assert np.allclose(folded, engine._data.augmented(ids), atol=2e-3)
            changed += int((np.abs(folded - stored).max(axis=1) > 1e-2).sum())
        assert changed  # some designs lean towards the picture already
    assert clicked.matches[0].image_id == added  # the picture itself first, then the rest as dropped
    assert _names(dropped) == _names(clicked)[1:]
    assert [m.score for m in dropped.matches] == [m.score for m in clicked.matches[1:]]
