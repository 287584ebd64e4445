"""The ranking adapted to decisions: it learns which differences matter, and stays put on noise."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_pattern_images
from swimsearch import adaptation
from swimsearch.adaptation import MIN_DECISIONS, difference_covariance, fit_metric, normalised
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine
from swimsearch.stores.verdicts import DIFFERENT, SAME


def two_kinds(n=400, dim=24, seed=0):
    """Points of two kinds that differ along axis 0, with a larger nuisance (a "background") along axis 1."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(2, size=n)
    x = rng.normal(0, 0.15, (n, dim))
    x[:, 0] += np.where(kind == 1, 0.25, -0.25)
    x[:, 1] += rng.choice([-1.2, 1.2], n)  # a background shared across kinds
    return x, kind


def neighbour_pairs(x, k=3):
    sims = normalised(x) @ normalised(x).T
    np.fill_diagonal(sims, -np.inf)
    return [(i, int(j)) for i in range(len(x)) for j in np.argsort(-sims[i])[:k]]


def purity(x, kind, k=5):
    sims = normalised(x) @ normalised(x).T
    np.fill_diagonal(sims, -np.inf)
    return float(np.mean([(kind[np.argsort(-sims[i])[:k]] == kind[i]).mean() for i in range(len(x))]))


def decided(x, kind, count, rng, *, shuffle=False):
    """`count` pairs of neighbours marked by kind (or at random)."""
    pairs = neighbour_pairs(x, 5)
    chosen = [pairs[i] for i in rng.choice(len(pairs), count, replace=False)]
    a, b = np.array([p[0] for p in chosen]), np.array([p[1] for p in chosen])
    same = kind[a] == kind[b] if not shuffle else rng.integers(2, size=count).astype(bool)
    return x[a], x[b], same


def test_marked_pairs_teach_which_differences_matter():
    x, kind = two_kinds()
    basis = np.eye(x.shape[1])[:, :8]
    pairs = np.array(neighbour_pairs(x))
    neighbours = difference_covariance(x[pairs[:, 0]], x[pairs[:, 1]], basis)
    before = purity(x, kind)
    metric = fit_metric(*decided(x, kind, 150, np.random.default_rng(1)), neighbours, basis)
    assert metric is not None and 0 < metric.kept <= 1 and metric.decisions == 150
    after = purity(metric(x), kind)
    assert before < 0.85 and after > before + 0.08
    # the direction that tells the kinds apart is the one stretched most
    stretched = (metric.directions**2) @ metric.weights  # each axis's weight
    assert stretched[0] > 1 and stretched[0] == stretched.max()


def test_random_or_few_verdicts_change_nothing():
    x, kind = two_kinds(seed=3)
    basis = np.eye(x.shape[1])[:, :8]
    pairs = np.array(neighbour_pairs(x))
    neighbours = difference_covariance(x[pairs[:, 0]], x[pairs[:, 1]], basis)
    rng = np.random.default_rng(2)
    true = fit_metric(*decided(x, kind, 150, rng), neighbours, basis)
    kept = []
    for _ in range(10):  # contradictory verdicts: most of their difference is taken for noise
        metric = fit_metric(*decided(x, kind, 150, rng, shuffle=True), neighbours, basis)
        kept.append(0.0 if metric is None else metric.kept)
        if metric is not None:
            assert abs(purity(metric(x), kind) - purity(x, kind)) < 0.035
    assert true is not None and np.mean(kept) < true.kept / 2
    assert fit_metric(*decided(x, kind, MIN_DECISIONS - 1, rng), neighbours, basis) is None


@pytest.fixture
def catalogue(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "pics"
    make_pattern_images(folder, 160, family=8)
    with Catalogue.create(tmp_path / "c.swimcat", folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
        yield catalogue, folder


def test_the_engine_adapts_once_decisions_say_more_than_noise_and_never_scatters_a_family(catalogue, fake_embedder, small_config):
    """Pictures whose families are near-copies: unbounded weights once ranked by a few directions alone."""
    cat, folder = catalogue
    engine = SearchEngine(cat, fake_embedder, small_config)
    family = lambda match: int(match.name[3:7]) // 8  # noqa: E731

    def family_at_8(image_ids) -> float:
        found = []
        for i in image_ids:
            matches = engine.search_id(int(i), top_n=9).matches
            found.append(sum(family(m) == family(matches[0]) for m in matches[1:]))
        return float(np.mean(found))

    # people mark pairs among the top results of 60 queries: one family is one design
    rng, pairs, involved = np.random.default_rng(0), set(), set()
    ids = engine.searchable_ids()
    for n in rng.permutation(len(ids))[:60]:
        result = engine.search_id(int(ids[n]), top_n=12)
        for m in result.matches[1:12:3]:
            pairs.add((result.query_image_id, m.image_id, family(m) == family(result.matches[0])))
            involved |= {result.query_image_id, m.image_id}
    held_out = [i for i in ids if i not in involved]
    plain = family_at_8(held_out)
    before = engine.search(folder / "img0100.png", top_n=20)
    for a, b, same in sorted(pairs):
        cat.decide(a, b, SAME if same else DIFFERENT)
    engine.reload_decisions()
    assert len(engine.decisions) >= MIN_DECISIONS and engine.decisions.adapter is not None
    assert engine.decisions.adapter.weights.max() <= adaptation.MAX_WEIGHT
    assert family_at_8(held_out) >= plain >= 6.9  # (nearly) every other member of the family, before and after
    after = engine.search(folder / "img0100.png", top_n=20)
    assert after.matches[0].name == "img0100.png" and after.matches[0].score == pytest.approx(1.0)
    # withdrawn, the ranking is the plain one again, to the last digit
    for d in cat.decisions():
        cat.decide(d.a, d.b, None)
    engine.reload_decisions()
    assert engine.decisions.adapter is None
    again = engine.search(folder / "img0100.png", top_n=20)
    assert [(m.name, m.score) for m in again.matches] == [(m.name, m.score) for m in before.matches]


def test_the_catalogue_statistics_are_computed_once_per_index(catalogue, fake_embedder, small_config, monkeypatch):
    cat, folder = catalogue
    calls = []
    real = adaptation.neighbour_covariance
    monkeypatch.setattr(adaptation, "neighbour_covariance", lambda *a: calls.append(1) or real(*a))
    engine = SearchEngine(cat, fake_embedder, small_config)
    ids = engine.searchable_ids()
    for n in range(MIN_DECISIONS + 2):
        cat.decide(int(ids[n]), int(ids[n + 1]), SAME if n % 2 else DIFFERENT)
        engine.reload_decisions()
    assert len(calls) == 1


def test_a_design_marked_the_same_as_another_is_ranked_nearer_the_queries_that_find_that_one():
    """The adapted ranking moves a decided design towards its same-design partner, away from a not-similar one."""
    rng = np.random.default_rng(4)
    vectors = normalised(rng.normal(size=(6, 16)))
    identity = adaptation.Metric(np.eye(16)[:, :4], np.ones(4), 1.0, 60)
    adapted = adaptation.Adapted(identity, {1: (2,), 2: (1,)}, {3: (4,), 4: (3,)}, lambda ids: vectors[ids])
    ids = np.arange(6)
    rows = adapted.candidates(ids, vectors)
    query = adapted.query(vectors[2][None])[0]  # a query that finds design 2 ...
    assert rows[1] @ query > vectors[1] @ vectors[2] + 0.3  # ... now finds the design marked the same as it
    query = adapted.query(vectors[4][None])[0]
    assert rows[3] @ query < vectors[3] @ vectors[4] - 0.1  # and less of the one marked not similar to it
    assert np.allclose(rows[[0, 5]], vectors[[0, 5]])  # undecided designs: as they were
