"""`evaluate()` on a real catalogue (40 clothing photos, the real model): the pipeline before issue 11
(`baseline_engine`) held against exact cosine ranking, and the comparison `swimsearch eval` prints."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from swimsearch.catalogue import Catalogue
from swimsearch.comparison import METHODS, baseline_engine, compare
from swimsearch.config import EngineConfig
from swimsearch.evaluation import EvaluationError, evaluate
from swimsearch.inputs import Labels, read_labels
from swimsearch.metrics import exact_cosine_hits, quality
from swimsearch.search import SearchEngine

LABELLED = 30  # of the catalogue's 40 photos; the other 10 are unlabelled distractors


@pytest.fixture(scope="module")
def labelled(photo_catalogue, clothing, tmp_path_factory):
    """A labels CSV for 30 of the catalogue's photos (cross-sender, as the clothing set is measured)."""
    folder, path = photo_catalogue
    by_name = {}
    with open(clothing / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_name[row["filename"].rsplit("/", 1)[-1]] = row
    photos = sorted(folder.glob("*.jpg"))
    labels_csv = tmp_path_factory.mktemp("labels") / "labels.csv"
    with open(labels_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "sender_id"])
        for photo in photos[:LABELLED]:
            writer.writerow([photo, by_name[photo.name]["label"], by_name[photo.name]["sender_id"]])
    return path, photos, read_labels(labels_csv, exclude_column="sender_id")


@pytest.fixture(scope="module")
def catalogue_engine(labelled, embedder):
    path, _, _ = labelled
    with Catalogue.open(path) as catalogue:
        yield SearchEngine(catalogue, embedder, EngineConfig())


@pytest.fixture(scope="module")
def engine(catalogue_engine):
    """The catalogue searched as before issue 11 (index on the raw embeddings, made in memory): exact at this size."""
    return baseline_engine(catalogue_engine)


def assert_same_quality(report, expected):
    for key, value in expected.as_dict().items():
        assert report.as_dict()[key] == pytest.approx(value, abs=1e-9), key


def exact_figures(path, labels: Labels):
    """What a perfect search gives: exact cosine of the centred embeddings, labelled images only."""
    with Catalogue.open(path) as cat:
        ids = [cat.record_by_path(p).image_id for p in labels.paths]
        stored = cat.embeddings(ids)
        everything = cat.embedding_matrix(cat.load_snapshot().ids).vectors.astype(np.float64)
        centred = np.stack([stored[i] for i in ids]).astype(np.float64) - everything.mean(axis=0)
    vectors = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    hits = exact_cosine_hits(vectors, labels, max_rank=len(labels.paths) - 1)
    return np.pad(hits, ((0, 0), (0, 100 - hits.shape[1]))), labels.relevant_counts()


def test_evaluate_gives_the_figures_of_exact_ranking(labelled, engine):
    path, _, labels = labelled
    calls = []
    report = evaluate(engine, labels, progress=lambda done, total: calls.append((done, total)))
    hits, relevant = exact_figures(path, labels)
    expected = quality(hits, relevant)
    assert report.quality.queries == LABELLED
    assert_same_quality(report.quality, expected)
    assert report.quality.map10 > 0.1  # the model does see garments (not a vacuous comparison of zeros)
    assert report.searchable_images == 40 and report.method == "ExactSearch" and not report.mirror
    assert len(report.embed_ms) == len(report.search_ms) == LABELLED and min(report.embed_ms) > 0
    assert report.timing("total_ms")["p95"] >= report.timing("total_ms")["median"] > 0
    assert calls == [(n, LABELLED) for n in range(1, LABELLED + 1)]
    figures = report.as_dict()
    assert list(figures)[:4] == ["searchable_images", "method", "mirror", "queries"]
    assert figures["map@10"] == report.quality.map10 and figures["embed_ms"] == report.timing("embed_ms")


def test_chosen_queries_and_a_limit(labelled, engine, monkeypatch):
    path, photos, labels = labelled
    hits, relevant = exact_figures(path, labels)
    chosen = [4, 11, 17]
    monkeypatch.chdir(photos[0].parent)  # relative paths in a query list are taken from the current folder
    report = evaluate(engine, labels, [photos[17].name, str(photos[4]), str(photos[11]), str(photos[35])])
    assert_same_quality(report.quality, quality(hits[chosen], relevant[chosen]))
    limited = evaluate(engine, labels, limit=5)
    assert_same_quality(limited.quality, quality(hits[:5], relevant[:5]))


def test_unlabelled_images_count_as_wrong_only_when_asked(labelled, engine):
    path, photos, labels = labelled
    skipped = evaluate(engine, labels, limit=10)
    kept = evaluate(engine, labels, limit=10, keep_unlabelled=True)
    # the 10 unlabelled photos are wrong answers now: precision cannot rise, and on real photos it falls
    assert kept.quality.p10 <= skipped.quality.p10 and kept.quality.map10 < skipped.quality.map10
    everything = Labels(  # the same photos with each unlabelled one its own label and sender: never relevant
        paths=tuple(str(p) for p in photos),
        labels=np.concatenate([labels.labels, np.arange(10) + labels.labels.max() + 1]),
        groups=np.concatenate([labels.groups, np.arange(10) + labels.groups.max() + 1]),
        names=labels.names + tuple(f"unlabelled {n}" for n in range(10)),
    )
    hits, relevant = exact_figures(path, everything)
    assert_same_quality(kept.quality, quality(hits[:10], relevant[:10]))


def test_nothing_to_evaluate_is_a_plain_sentence(labelled, engine, tmp_path):
    _, photos, labels = labelled
    elsewhere = Labels(paths=(str(tmp_path / "a.jpg"),), labels=np.zeros(1, np.int64), groups=None, names=("Hat",))
    with pytest.raises(EvaluationError, match="no labelled image of the CSV is in this catalogue"):
        evaluate(engine, elsewhere)
    with pytest.raises(EvaluationError):
        evaluate(engine, labels, [str(photos[35])])  # in the catalogue, but unlabelled


def test_eval_sets_the_catalogues_search_beside_exact_cosine_and_the_earlier_search(labelled, catalogue_engine):
    path, _, labels = labelled
    reports = compare(catalogue_engine, labels)
    assert list(reports) == list(METHODS)
    hits, relevant = exact_figures(path, labels)
    assert_same_quality(reports["exact cosine"].quality, quality(hits, relevant))
    assert_same_quality(reports[METHODS[1]].quality, quality(hits, relevant))  # exact at this size
    own = reports[METHODS[0]]
    assert_same_quality(own.quality, evaluate(catalogue_engine, labels).quality)
    assert own.quality.map10 > 0.1 and own.quality.map10 != reports["exact cosine"].quality.map10  # another method
    for report in reports.values():  # same-sender too (the sender's other photos count), and per label
        assert report.without_exclusions is not None and report.without_exclusions.queries == LABELLED
        assert set(report.per_label) == {labels.names[c] for c in np.unique(labels.labels)}
        counts = np.bincount(labels.labels)
        weighted = sum(report.per_label[labels.names[c]] * counts[c] for c in np.unique(labels.labels)) / LABELLED
        assert weighted == pytest.approx(report.quality.map10)
