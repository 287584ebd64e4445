"""Calibrated similarity: fixed statistics per model, one meaning in every catalogue, measured bands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers import REPO
from swimsearch.calibration import (
    BAND_PERCENT,
    Calibration,
    CalibrationError,
    band,
    band_levels,
    calibration_path,
    display_percent,
    label_agreement_edge,
    load_calibration,
    same_design_edge,
    save_calibration,
)
from swimsearch.copies import COPY_KINDS, transformed_copy
from swimsearch.images import load_image

SAMPLE = REPO / "resources" / "sample"


def _toy(edges=(0.8, 0.6, 0.4, 0.1)) -> Calibration:
    return Calibration("a" * 64, 1.0, np.zeros(4), edges, {"made_by": "test"})


def test_percent_is_monotone_reads_100_only_at_cosine_1_and_each_edge_starts_its_band():
    cal = _toy()
    cos = np.linspace(-1, 1, 2001)
    pct = cal.percent(cos)
    assert (np.diff(pct) >= 0).all()
    assert pct[-1] == 100.0 and pct[-2] < 100.0
    assert cal.percent(-0.5) == 0.0
    for edge, lower, name in zip(cal.edges, BAND_PERCENT, ("same design", "very similar", "similar", "unrelated")):
        assert cal.percent(edge) == pytest.approx(lower)
        assert band(float(cal.percent(edge))) == name
    assert band(float(cal.percent(cal.edges[0] - 1e-6))) == "very similar"


def test_one_rounding_rule_never_shows_100_for_a_copy():
    assert display_percent(59.8) == "60 %"
    assert display_percent(59.4) == "59 %"
    assert display_percent(99.7) == "99 %"
    assert display_percent(100.0) == "100 %"
    assert display_percent(-3.0) == "0 %"


def test_a_score_reads_the_band_of_the_percent_it_shows():
    # 74.6 shows "75 %": it must not read "75 % · similar" beside a legend where very similar starts at 75
    assert band(74.6) == "very similar" and band(74.4) == "similar"
    assert band(49.6) == "similar" and band(49.4) == "unrelated"
    assert band(99.9) == "same design" and band(float("nan")) == "unrelated"
    shown = [49.5, 49.49, 74.5, 89.0, 90.0, 100.0, -4.0]
    assert band_levels(np.array(shown)).tolist() == [2, 3, 1, 1, 0, 0, 3]


def test_edges_must_fall_from_one():
    with pytest.raises(ValueError):
        _toy((0.9, 0.4, 0.6, 0.1))


def test_file_round_trip_and_plain_errors(tmp_path):
    cal = Calibration("b" * 64, 0.5, np.linspace(0, 1, 8), (0.9, 0.7, 0.5, 0.2), {"made_by": "x"},
                      projection=np.eye(8)[:, :3], ranking_mean=np.full(8, 0.25, np.float32))
    path = tmp_path / "m.calibration.json"
    save_calibration(cal, path)
    back = load_calibration(path, "b" * 64)
    assert back.edges == cal.edges and back.power == 0.5
    assert np.allclose(back.mean, cal.mean) and np.allclose(back.projection, cal.projection)
    assert np.allclose(back.ranking_mean, 0.25)
    x = np.random.default_rng(0).random((4, 8))
    assert np.allclose(back.similarity(x, x), cal.similarity(x, x))
    with pytest.raises(CalibrationError, match="another model"):
        load_calibration(path, "c" * 64)
    (tmp_path / "m.calibration.npz").write_bytes(b"changed")
    with pytest.raises(CalibrationError, match="damaged"):
        load_calibration(path)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="damaged"):
        load_calibration(path)
    with pytest.raises(CalibrationError, match="cannot be read"):
        load_calibration(tmp_path / "missing.json")


def test_edge_rules_on_known_data():
    rng = np.random.default_rng(0)
    copies = rng.uniform(0.7, 1.0, 10_000)
    assert same_design_edge(copies) == pytest.approx(0.703, abs=0.002)  # 99 % of copies reach it
    cos = rng.uniform(-1, 1, 50_000)
    agree = rng.random(50_000) < (cos + 1) / 2  # agreement rises linearly with the cosine
    # from t up, pairs agree (3 + t) / 4 of the time
    assert label_agreement_edge(cos, agree, 0.9) == pytest.approx(0.6, abs=0.05)
    assert label_agreement_edge(cos, agree, 0.75) == pytest.approx(0.0, abs=0.05)
    assert label_agreement_edge(cos, agree, 0.99) > 0.9  # never reached: only the very top


# --- the shipped calibration of the real model ---------------------------------------------


@pytest.fixture(scope="module", params=["efficientnet-lite2-trunk.onnx", "efficientnet-lite2-trunk-int8.onnx"])
def model_embedder(request):
    """Each shipped trunk (fp32 and int8); each has its own calibration, made by the same command."""
    from swimsearch.model import Embedder, default_model_path

    return Embedder(default_model_path().with_name(request.param))


@pytest.fixture(scope="module")
def shipped(model_embedder):
    return load_calibration(calibration_path(model_embedder.path), model_embedder.sha256)


def _embed(embedder, picture):
    return embedder.embed(load_image(picture, embedder.size).pixels[None])[0]


def test_shipped_calibration_names_its_command_and_figures(shipped, model_embedder):
    data = json.loads(calibration_path(model_embedder.path).read_text())
    assert "make_calibration.py" in data["figures"]["made_by"]
    held_out = data["figures"]["evaluation_half"]
    assert held_out["copies_in_same_design"]["all kinds"] >= 0.99
    assert held_out["different_photos_in_same_design"]["all pairs, different senders"] < 0.005


def test_transformed_copies_score_same_design_and_different_garments_do_not(shipped, model_embedder):
    embedder = model_embedder
    photos = sorted(SAMPLE.glob("*.jpg"))
    embeddings = np.stack([_embed(embedder, p) for p in photos])
    for n, photo in enumerate(photos[:6]):
        original = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
        for kind in COPY_KINDS:
            copy = _embed(embedder, transformed_copy(original, kind, np.random.default_rng(n)))
            score = float(shipped.similarity(embeddings[n][None], copy[None])[0, 0])
            assert band(score) == "same design", f"{photo.name} {kind}: {score:.1f} %"
    scores = shipped.similarity(embeddings, embeddings)
    assert np.allclose(np.diag(scores), 100.0)  # the picture itself
    names = [p.name for p in photos]
    reexport = names.index("shorts-04-reexport.jpg"), names.index("shorts-04.jpg")
    assert band(float(scores[reexport])) == "same design"  # the sample's re-saved file
    different = ~np.eye(len(photos), dtype=bool)
    different[reexport] = different[reexport[::-1]] = False
    off = scores[different]
    assert (off < BAND_PERCENT[0]).all(), f"two different sample garments scored {off.max():.1f} %"


def test_a_pair_scores_the_same_whatever_the_catalogue_around_it(shipped, model_embedder, clothing):
    """Today's score moves with the catalogue's mean; the calibrated one cannot."""
    embedder = model_embedder
    sample = np.stack([_embed(embedder, p) for p in sorted(SAMPLE.glob("*.jpg"))])
    others = np.stack([_embed(embedder, p) for p in sorted((clothing / "images").glob("*.jpg"))[:120]])
    small, large = sample, np.concatenate([sample, others])
    a, b = sample[0], sample[1]

    def today(catalogue):
        x, y = a - catalogue.mean(0), b - catalogue.mean(0)
        return 100 * float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert abs(today(small) - today(large)) > 2  # the problem a user saw
    in_small = shipped.similarity(small, small)[0, 1]  # scored among the 36, as a catalogue would
    in_large = shipped.similarity(large, large)[0, 1]
    assert abs(in_small - in_large) < 1e-6
    assert abs(in_small - float(shipped.similarity(a[None], b[None])[0, 0])) < 1e-6


def test_scores_read_from_the_store_equal_the_held_ones_whether_or_not_a_candidate_can_be_same_design(shipped):
    """Above the in-memory size only candidates that might be *same design* are whitened exactly
    (ranking.shown_percent); every score must still equal the one computed from held whitened vectors."""
    from swimsearch.ranking import shown_percent, whitened_vectors

    rng = np.random.default_rng(3)
    dim = len(shipped.mean)

    def pictures(n):  # sparse non-negative, as the trunk's pooled ReLU6 outputs are
        return (rng.exponential(1.0, (n, dim)) * (rng.random((n, dim)) < 0.2)).astype(np.float32)

    query = pictures(1).astype(np.float16).astype(np.float32)
    copies = query + 0.02 * np.abs(rng.standard_normal((30, dim))).astype(np.float32)  # re-exports
    others = pictures(200)  # other pictures
    candidates = np.concatenate([copies, others]).astype(np.float16).astype(np.float32)
    held, _ = shown_percent(candidates, whitened_vectors(shipped, candidates), query, shipped, None)
    read, _ = shown_percent(candidates, None, query, shipped, None)
    assert np.array_equal(held, read)
    assert (held[:30] >= 90).all() and (held[30:] < 90).all()  # both kinds of candidate were there
    possible = shipped.could_be_same(shipped.powered(candidates), whitened_vectors(shipped, query))
    assert possible[:30].all() and not possible[30:].any()  # and the cheap test told them apart
