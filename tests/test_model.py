"""The committed ONNX trunk: shape, reference outputs, robustness, and plain errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import DATA
from swimsearch.images import load_image
from swimsearch.model import MODEL_CARD, Embedder, ModelError, card_sha256, file_sha256


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def embed_file(embedder, path) -> np.ndarray:
    return embedder.embed(load_image(path, embedder.size).pixels)[0]


def test_batch_gives_n_by_1280_float32(embedder):
    pixels = np.stack([load_image(DATA / f"garment_{c}.jpg", embedder.size).pixels for c in "abc"])
    out = embedder.embed(pixels)
    assert out.shape == (3, 1280)
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()  # ReLU6 then average pool


def test_output_matches_the_export_reference(embedder):
    reference = json.loads((DATA / "trunk_reference.json").read_text())
    assert reference["model_sha256"] == embedder.sha256, "references were made for another model file"
    for name, expected in zip(reference["images"], reference["embedding"]):
        got = embed_file(embedder, DATA.parent.parent / name)
        assert np.abs(got - np.asarray(expected, dtype=np.float32)).max() < 1e-4


def test_model_card_states_the_files_sha256(model_path):
    assert card_sha256(model_path) == file_sha256(model_path)


def test_same_photo_resized_or_exif_rotated_embeds_alike(embedder, tmp_path):
    original = Image.open(DATA / "garment_a.jpg")
    smaller = tmp_path / "smaller.jpg"
    original.resize((original.width // 2, original.height // 2)).save(smaller, quality=80)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer rotates 90 degrees clockwise to show it upright
    original.transpose(Image.Transpose.ROTATE_90).save(rotated, exif=exif, quality=95)

    base = embed_file(embedder, DATA / "garment_a.jpg")
    assert cosine(base, embed_file(embedder, smaller)) > 0.95
    assert cosine(base, embed_file(embedder, rotated)) > 0.95
    # A different garment from the clothing set is much further away.
    other = embed_file(embedder, DATA / "garment_b.jpg")
    assert cosine(base, other) < 0.6


def test_different_garments_from_the_clothing_set_embed_apart(embedder, clothing):
    import csv

    rows = {r["label"]: r for r in csv.DictReader(open(clothing / "labels.csv"))}
    shoe = embed_file(embedder, clothing / rows["Shoes"]["filename"])
    hat = embed_file(embedder, clothing / rows["Hat"]["filename"])
    shirt = embed_file(embedder, clothing / rows["T-Shirt"]["filename"])
    tshirt = embed_file(embedder, DATA / "garment_a.jpg")
    assert cosine(shoe, hat) < cosine(shirt, tshirt)
    assert cosine(shoe, tshirt) < cosine(shirt, tshirt)


def test_damaged_model_is_refused_in_plain_words(tmp_path, model_path):
    copy = tmp_path / model_path.name
    shutil.copy(model_path, copy)
    shutil.copy(model_path.with_name(MODEL_CARD), tmp_path / MODEL_CARD)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or is not the model"):
        Embedder(copy)


def test_missing_model_names_the_file(tmp_path):
    missing = tmp_path / "nowhere.onnx"
    with pytest.raises(ModelError, match="nowhere.onnx is missing"):
        Embedder(missing)


def test_truncated_model_without_check_is_reported_not_crashing(tmp_path, model_path):
    copy = tmp_path / "cut.onnx"
    copy.write_bytes(model_path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="cannot be loaded"):
        Embedder(copy, verify=False)


def test_thread_count_is_configurable(model_path):
    one = Embedder(model_path, threads=1)
    pixels = load_image(DATA / "garment_c.jpg", one.size).pixels
    assert np.allclose(one.embed(pixels), Embedder(model_path, threads=2).embed(pixels), atol=1e-5)
