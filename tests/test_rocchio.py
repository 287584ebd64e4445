"""Steering a search: several examples, "not like this", decisions a catalogue remembers, narrowing to folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import FakeEmbedder, make_pattern_images
from swimsearch import narrow
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine
from swimsearch.rocchio import Steering
from swimsearch.stores.verdicts import DIFFERENT, SAME

FAMILY = 8  # img0000-0007 are one design family, img0008-0015 the next, ...


def family(match_or_name) -> int:
    name = getattr(match_or_name, "name", match_or_name)
    return int(name[3:7]) // FAMILY


@pytest.fixture
def catalogue(tmp_path, fake_embedder, small_config):
    """An open catalogue of 200 designs in families of 8 (img0000.png ...), and its folder."""
    folder = tmp_path / "pics"
    make_pattern_images(folder, 200, family=FAMILY)
    with Catalogue.create(tmp_path / "c.swimcat", folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
        yield catalogue, folder


def ids_by_name(catalogue) -> dict[str, int]:
    return {r.relpath: r.image_id for r in catalogue.records(range(1, 10_000)).values()}


def test_one_example_searches_exactly_as_the_single_picture_search(catalogue, fake_embedder, small_config):
    cat, folder = catalogue
    engine = SearchEngine(cat, fake_embedder, small_config)
    for n in (0, 77):
        plain = engine.search(folder / f"img{n:04d}.png", top_n=12)
        steered = engine.search_examples(Steering((engine.example(folder / f"img{n:04d}.png"),)), top_n=12)
        assert [(m.image_id, m.score, m.duplicate) for m in steered.matches] == [
            (m.image_id, m.score, m.duplicate) for m in plain.matches
        ]
        assert steered.query == plain.query == str(folder / f"img{n:04d}.png")


def test_two_designs_from_two_families_find_both_families_first(catalogue, fake_embedder, small_config):
    cat, folder = catalogue
    engine = SearchEngine(cat, fake_embedder, small_config)
    alone = engine.search(folder / "img0000.png", top_n=16)
    assert {family(m) for m in alone.matches[:8]} == {0} and 1 not in {family(m) for m in alone.matches}
    both = engine.search_examples(
        Steering((engine.example(folder / "img0000.png"), engine.example(folder / "img0009.png"))), top_n=14
    )
    names = [m.name for m in both.matches]
    assert names[-2:] == ["img0000.png", "img0009.png"]  # the pictures searched with, at 100 %, after the 14 new ones
    assert [m.score for m in both.matches[-2:]] == [1.0, 1.0] and both.is_example(both.matches[-1].image_id)
    assert not any(both.is_example(m.image_id) for m in both.matches[:14])
    assert {family(n) for n in names} == {0, 1} and len(set(names)) == 16  # every member of both, nothing else
    assert both.query.startswith("2 designs") and len(both.example_ids) == 2


def test_not_like_this_pushes_that_design_and_its_family_down(catalogue, fake_embedder, small_config):
    cat, folder = catalogue
    engine = SearchEngine(cat, fake_embedder, small_config)
    query = engine.example(folder / "img0010.png")
    before = engine.search_examples(Steering((query,)), top_n=60)
    intruder = next(m for m in before.matches if family(m) != 1)  # the best match of another family
    others = [m.name for m in before.matches if family(m) == family(intruder)]
    after = engine.search_examples(Steering((query,), unlike=(engine.example(intruder.image_id),)), top_n=60)
    names = [m.name for m in after.matches]
    assert intruder.name not in names and after.unlike_ids == (intruder.image_id,)
    assert {family(n) for n in names[:8]} == {1}  # the query's own family still leads
    rank = lambda result, name: next((m.rank for m in result.matches if m.name == name), 61)  # noqa: E731
    assert sum(rank(after, n) for n in others) > sum(rank(before, n) for n in others) + 5 * len(others)


def test_not_like_this_reranks_without_a_new_network_pass(catalogue, small_config, tmp_path):
    cat, folder = catalogue
    outside = shutil.copy(folder / "img0010.png", tmp_path / "query.png")  # a catalogue file would need no pass

    class CountingEmbedder(FakeEmbedder):
        calls = 0

        def embed(self, pixels):
            CountingEmbedder.calls += 1
            return super().embed(pixels)

    engine = SearchEngine(cat, CountingEmbedder(), small_config)
    query = engine.example(outside)  # a file from outside the catalogue: embedded once
    result = engine.search_examples(Steering((query,)), top_n=20)
    unlike = tuple(engine.example(m.image_id) for m in result.matches[8:10])  # catalogue images: stored embeddings
    engine.search_examples(Steering((query,), unlike=unlike), top_n=20)
    assert CountingEmbedder.calls == 1


def test_same_design_is_pinned_and_not_similar_goes_to_the_end(catalogue, fake_embedder, small_config):
    cat, folder = catalogue
    engine = SearchEngine(cat, fake_embedder, small_config)
    ids = ids_by_name(cat)
    plain = engine.search(folder / "img0010.png", top_n=10)
    far = engine.search(folder / "img0010.png", top_n=200).matches[-1]  # the least similar design of all
    nearest = plain.matches[1]
    engine.decide(ids["img0010.png"], far.image_id, SAME)
    engine.decide(nearest.image_id, ids["img0010.png"], DIFFERENT)

    result = engine.search(folder / "img0010.png", top_n=10, min_score=0.5)
    names = [m.name for m in result.matches]
    assert names[:2] == ["img0010.png", far.name]  # pinned, though far below the minimum score
    assert result.matches[1].decision == SAME and result.matches[1].score < 0.5
    assert names[-1] == nearest.name and result.matches[-1].decision == DIFFERENT
    assert [m.decision for m in result.matches[2:-1]] == [None] * (len(names) - 3)
    # decisions hold both ways, and for a search from the catalogue image itself
    back = engine.search_id(far.image_id, top_n=5)
    assert back.matches[1].name == "img0010.png" and back.matches[1].decision == SAME
    # a fresh engine on the catalogue (another window, the CLI) sees them too; withdrawing one takes it back
    other = SearchEngine(cat, fake_embedder, small_config)
    assert other.search(folder / "img0010.png", top_n=10).matches[1].name == far.name
    engine.decide(ids["img0010.png"], far.image_id, None)
    assert far.name not in [m.name for m in engine.search(folder / "img0010.png", top_n=10).matches]


def test_a_folder_narrows_the_search_and_still_fills_the_list(tmp_path, fake_embedder, small_config):
    """A small season in a large catalogue: the LSH search alone finds none of it near the top."""
    folder = tmp_path / "pics"
    make_pattern_images(folder, 300, family=FAMILY)
    season = make_pattern_images(folder / "season", 12, start=5000, family=4)
    with Catalogue.create(tmp_path / "c.swimcat", folder) as cat:
        cat.update(fake_embedder, small_config)
        engine = SearchEngine(cat, fake_embedder, small_config.with_changes(exact_below=0))
        assert engine.searcher_name == "LshSearch"
        query = engine.example(folder / "img0100.png")
        everywhere = engine.search_examples(Steering((query,)), top_n=10)
        assert not any(m.relpath.startswith("season/") for m in everywhere.matches)
        narrowed = engine.search_examples(Steering((query,), folders=("season",)), top_n=10)
        assert len(narrowed.matches) == 10 and all(m.relpath.startswith("season/") for m in narrowed.matches)
        exact = SearchEngine(cat, fake_embedder, small_config).search(folder / "img0100.png", top_n=400)
        want = [m.name for m in exact.matches if m.relpath.startswith("season/")][:10]
        assert [m.name for m in narrowed.matches] == want and narrowed.folders == ("season",)
        # a folder too large to score whole is searched deeper, with the same answer
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(narrow, "EXACT_SUBSET", 5)
            deep = engine.search_examples(Steering((query,), folders=("season",)), top_n=3)
        assert [m.name for m in deep.matches] == want[:3]
        # a search from one of the season's own designs puts it first, as any search does
        inside = engine.search_examples(Steering((engine.example(season[0]),), folders=("season",)), top_n=3)
        assert inside.matches[0].name == season[0].name and inside.matches[0].score == 1.0
