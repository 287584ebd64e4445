"""The committed ONNX trunks (fp32 and int8): shape, reference outputs, feature maps, robustness, plain errors."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import DATA
from swimsearch.images import load_image
from swimsearch.model import (
    EMBEDDING_OUTPUT,
    FEATURE_MAP_OUTPUT,
    FP32_MODEL_FILE,
    INT8_MODEL_FILE,
    MODEL_CARD,
    Embedder,
    ModelError,
    card_sha256,
    default_model_path,
    describe_model,
    file_sha256,
    folded_graph_path,
    shipped_model_for,
)

#: Each shipped model, the references its script saved, and how far the
#: embedding and the feature map may stray from them. The fp32 references are
#: PyTorch's outputs (the export reproduced them within 9e-6 and 7e-5). The
#: int8 ones are onnxruntime's own outputs of the int8 file; they were
#: identical on a VNNI CPU and an emulated AVX2-only one, and the margins allow
#: for another onnxruntime rounding a few activations one step (the map's step
#: is about 0.02) the other way.
SHIPPED = {
    "fp32": (FP32_MODEL_FILE, "trunk_reference.json", 1e-4, 5e-4),
    "int8": (INT8_MODEL_FILE, "trunk_int8_reference.json", 2e-3, 0.05),
}


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request, model_path):
    """(embedder, reference dict, (embedding tolerance, map tolerance)) for each shipped model."""
    file, reference, *tolerance = SHIPPED[request.param]
    return Embedder(model_path.with_name(file), threads=2), json.loads((DATA / reference).read_text()), tolerance


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def embed_file(embedder, path) -> np.ndarray:
    return embedder.embed(load_image(path, embedder.size).pixels)[0]


def fixtures(size: int) -> np.ndarray:
    return np.stack([load_image(DATA / f"garment_{c}.jpg", size).pixels for c in "abc"])


def test_batch_gives_n_by_1280_float32(shipped):
    embedder, _, _ = shipped
    out = embedder.embed(fixtures(embedder.size))
    assert out.shape == (3, 1280)
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()  # ReLU6 then average pool


def test_output_matches_the_saved_reference(shipped):
    embedder, reference, (tolerance, map_tolerance) = shipped
    assert reference["model_sha256"] == embedder.sha256, "references were made for another model file"
    pixels = np.stack([load_image(DATA.parent.parent / name, embedder.size).pixels for name in reference["images"]])
    embeddings, maps = embedder.embed_with_maps(pixels)
    assert list(maps.shape[1:]) == reference["feature_map_shape"]
    for i, expected in enumerate(reference["embedding"]):
        assert np.abs(embeddings[i] - np.asarray(expected, dtype=np.float32)).max() < tolerance
        channels = reference["feature_map_channels"][i]
        expected_map = np.asarray(reference["feature_map"][i], dtype=np.float32)
        assert np.abs(maps[i, channels].reshape(len(channels), -1) - expected_map).max() < map_tolerance


def test_feature_map_comes_with_the_same_embedding_and_pools_to_it(shipped):
    embedder, _, _ = shipped
    pixels = fixtures(embedder.size)
    embeddings, maps = embedder.embed_with_maps(pixels)
    assert embedder.has_feature_map and embedder.feature_map_shape == (1280, 7, 7)
    assert maps.shape == (3, 1280, 7, 7) and maps.dtype == np.float32
    assert (maps >= 0).all() and (maps <= 6 + 1e-5).all()  # the head's ReLU6
    assert np.array_equal(embeddings, embedder.embed(pixels))
    assert np.abs(maps.mean(axis=(2, 3)) - embeddings).max() < 1e-5


def test_feature_map_cells_see_where_the_garment_is(shipped):
    """A garment in the top-right quarter of a white picture changes the top-right cells, not the others.

    Top-right, so that a map with rows and columns swapped (bottom-left) fails too.
    """
    embedder, _, _ = shipped
    size = embedder.size
    garment = Image.open(DATA / "garment_b.jpg").convert("RGB").resize((size // 2, size // 2))
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(garment, (size // 2, 0))
    _, maps = embedder.embed_with_maps(np.asarray(canvas)[None])
    _, blank = embedder.embed_with_maps(np.full((1, size, size, 3), 255, dtype=np.uint8))
    change = np.linalg.norm(maps[0] - blank[0], axis=0)  # per cell, how far from plain white
    rows, cols = change.shape
    top_right = change[: rows // 2, cols // 2 + 1 :].mean()
    bottom_left = change[rows // 2 + 1 :, : cols // 2].mean()
    bottom_right = change[rows // 2 + 1 :, cols // 2 + 1 :].mean()
    assert top_right > 3 * max(bottom_left, bottom_right)


def test_int8_embeds_like_fp32(model_path):
    fp32 = Embedder(model_path.with_name(FP32_MODEL_FILE), threads=2)
    int8 = Embedder(model_path.with_name(INT8_MODEL_FILE), threads=2)
    a, b = fp32.embed(fixtures(fp32.size)), int8.embed(fixtures(int8.size))
    assert int8.sha256 != fp32.sha256 and int8.name != fp32.name
    assert min(cosine(x, y) for x, y in zip(a, b)) > 0.97
    # The two garments that differ most stay apart with either model.
    assert cosine(b[0], b[1]) < 0.6


def test_model_card_states_each_files_sha256(model_path):
    for file, *_ in SHIPPED.values():
        path = model_path.with_name(file)
        assert card_sha256(path) == file_sha256(path)
        assert shipped_model_for(file_sha256(path)) == path
    assert shipped_model_for("0" * 64) is None


def test_card_without_a_line_for_the_file_is_refused_in_plain_words(tmp_path, model_path):
    card = model_path.with_name(MODEL_CARD).read_text()
    (tmp_path / MODEL_CARD).write_text("\n".join(line for line in card.splitlines() if INT8_MODEL_FILE not in line))
    shutil.copy(model_path.with_name(INT8_MODEL_FILE), tmp_path / INT8_MODEL_FILE)
    shutil.copy(model_path.with_name(FP32_MODEL_FILE), tmp_path / FP32_MODEL_FILE)
    Embedder(tmp_path / FP32_MODEL_FILE)  # its own line is still there
    with pytest.raises(ModelError, match=f"states no sha256 for {INT8_MODEL_FILE}"):
        Embedder(tmp_path / INT8_MODEL_FILE)


def test_default_model_is_shipped_and_described_in_plain_words():
    path = default_model_path()
    assert path.name in (FP32_MODEL_FILE, INT8_MODEL_FILE) and path.is_file()
    assert describe_model("trunk@224", "ab" * 32) == "trunk@224 (sha256 abababababab...)"


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


def test_thread_count_is_configurable(shipped):
    embedder, _, _ = shipped
    one = Embedder(embedder.path, threads=1)
    pixels = load_image(DATA / "garment_c.jpg", one.size).pixels
    assert np.allclose(one.embed(pixels), embedder.embed(pixels), atol=1e-5)


def _plain_outputs(model_file, embedder, pixels):
    """Both outputs of `model_file` itself (not its folded graph), as onnxruntime gives them."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    return session.run([EMBEDDING_OUTPUT, FEATURE_MAP_OUTPUT], {session.get_inputs()[0].name: embedder._batch(pixels)})


def _folded_copy(tmp_path, model_path):
    """The int8 file, its folded graph and the card, copied into tmp_path."""
    for name in (model_path.name, folded_graph_path(model_path).name, MODEL_CARD):
        shutil.copy(model_path.with_name(name), tmp_path / name)
    return tmp_path / model_path.name


def test_the_int8_model_runs_its_folded_graph_and_gives_the_same_numbers(model_path, clothing):
    """The default model runs the graph with its padding folded in (about 3 ms faster a picture), and every
    output is the very number the model file gives: catalogues embedded by it stay valid."""
    embedder = Embedder(model_path)
    assert model_path.name == INT8_MODEL_FILE and embedder.graph == folded_graph_path(model_path)
    assert embedder.sha256 == file_sha256(model_path) and embedder.name == "efficientnet-lite2-trunk-int8@224"
    photos = [DATA / f"garment_{c}.jpg" for c in "abc"] + sorted((clothing / "images").glob("*.jpg"))[::900]
    pixels = np.stack([load_image(p, embedder.size).pixels for p in photos])
    embeddings, maps = embedder.embed_with_maps(pixels)
    plain_embeddings, plain_maps = _plain_outputs(model_path, embedder, pixels)
    assert np.array_equal(embeddings, plain_embeddings) and np.array_equal(maps, plain_maps)


def test_a_damaged_folded_graph_is_not_run_and_the_model_still_embeds(tmp_path, model_path, caplog):
    copy = _folded_copy(tmp_path, model_path)
    folded = folded_graph_path(copy)
    data = bytearray(folded.read_bytes())
    data[len(data) // 2] ^= 0xFF
    folded.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="swimsearch.model"):
        embedder = Embedder(copy)
    assert embedder.graph == copy and "does not match its line in the model card" in caplog.text
    pixels = fixtures(embedder.size)
    assert np.array_equal(embedder.embed(pixels), Embedder(model_path).embed(pixels))


def test_a_folded_graph_left_from_another_model_file_is_not_run(tmp_path, model_path):
    """The model made again (other weights, its card line rewritten) beside a folded graph of the old one:
    the new file is run, not the old numbers."""
    copy = _folded_copy(tmp_path, model_path)
    fp32 = model_path.with_name(FP32_MODEL_FILE)
    shutil.copy(fp32, copy)  # other weights under the int8 file's name
    card = (tmp_path / MODEL_CARD).read_text().replace(card_sha256(model_path), file_sha256(fp32))
    (tmp_path / MODEL_CARD).write_text(card)
    embedder = Embedder(copy)
    assert embedder.graph == copy
    pixels = fixtures(embedder.size)
    assert np.array_equal(embedder.embed(pixels), _plain_outputs(fp32, embedder, pixels)[0])


def test_the_folded_graph_named_as_a_model_is_refused_in_plain_words(model_path):
    """Run as a model of its own it would be another identity: an int8 catalogue embedded again, no calibration."""
    with pytest.raises(ModelError, match=r"not a model of its own.*--model .*efficientnet-lite2-trunk-int8\.onnx"):
        Embedder(folded_graph_path(model_path))


@pytest.mark.parametrize("damage", ["not onnx, its card line right", "a folder"])
def test_a_folded_graph_that_cannot_be_run_leaves_the_model_file_running(tmp_path, model_path, caplog, damage):
    copy = _folded_copy(tmp_path, model_path)
    folded = folded_graph_path(copy)
    if damage == "a folder":
        folded.unlink()
        folded.mkdir()
    else:
        folded.write_bytes(b"not an onnx file")
        card = (tmp_path / MODEL_CARD).read_text().replace(card_sha256(folded), file_sha256(folded))
        (tmp_path / MODEL_CARD).write_text(card)
    with caplog.at_level(logging.WARNING, logger="swimsearch.model"):
        embedder = Embedder(copy)
    assert embedder.graph == copy
    assert ("cannot be loaded" if damage != "a folder" else "is not a file") in caplog.text
    pixels = fixtures(embedder.size)
    assert np.array_equal(embedder.embed(pixels), Embedder(model_path).embed(pixels))
