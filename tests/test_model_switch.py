"""Two shipped models: a catalogue remembers which one built it and never mixes their embeddings."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, copy_clothing_photos
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.errors import CatalogueError
from swimsearch.images import load_image
from swimsearch.model import FP32_MODEL_FILE, INT8_MODEL_FILE, Embedder, default_model_path
from swimsearch.search import SearchEngine


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "swimsearch.cli", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def models() -> dict[str, Embedder]:
    folder = default_model_path().parent
    return {"fp32": Embedder(folder / FP32_MODEL_FILE), "int8": Embedder(folder / INT8_MODEL_FILE)}


@pytest.fixture
def photos(tmp_path, clothing):
    folder = tmp_path / "photos"
    return folder, copy_clothing_photos(clothing, folder, 10, offset=5)


def test_catalogue_of_one_model_names_both_when_searched_with_the_other(tmp_path, photos, models):
    folder, files = photos
    path = tmp_path / "c.swimcat"
    with Catalogue.open_or_create(path, folder) as catalogue:
        catalogue.update(models["int8"], EngineConfig())
        assert catalogue.info()["model"] == models["int8"].name
        assert catalogue.info()["model_sha256"] == models["int8"].sha256
        with pytest.raises(CatalogueError) as refused:
            SearchEngine(catalogue, models["fp32"], EngineConfig()).search(files[0])
    message = str(refused.value)
    assert "was built with another model" in message and "update it to search with this one" in message
    assert f"{models['int8'].name} (sha256 {models['int8'].sha256[:12]}" in message
    assert f"{models['fp32'].name} (sha256 {models['fp32'].sha256[:12]}" in message


def test_updating_with_the_other_model_embeds_every_image_again(tmp_path, photos, models):
    folder, files = photos
    path = tmp_path / "c.swimcat"
    with Catalogue.open_or_create(path, folder) as catalogue:
        catalogue.update(models["int8"], EngineConfig())
        report = catalogue.update(models["fp32"], EngineConfig())
        assert (report.added, report.unchanged) == (len(files), 0)
        assert catalogue.info()["model"] == models["fp32"].name
        engine = SearchEngine(catalogue, models["fp32"], EngineConfig())
        ids = engine.searchable_ids()
        records = catalogue.records(ids)
        stored = catalogue.embeddings(ids)
        result = engine.search(files[3])
    # Every stored vector is the fp32 model's (kept in half precision), none left from int8.
    for image_id in ids:
        own = models["fp32"].embed(load_image(folder / records[int(image_id)].relpath, 224).pixels)[0]
        assert np.allclose(stored[int(image_id)], own, rtol=2e-3, atol=2e-3)
    assert result.matches[0].relpath == files[3].name and result.matches[0].score > 0.999


def test_cli_builds_and_searches_with_either_model_and_refuses_to_mix(tmp_path, photos):
    folder, files = photos
    fp32 = default_model_path().with_name(FP32_MODEL_FILE)
    catalogue = tmp_path / "c.swimcat"
    built = cli("index", folder, "--catalogue", catalogue, "--model", fp32)
    assert built.returncode == 0, built.stderr
    found = cli("query", "--catalogue", catalogue, "--model", fp32, "--top", "3", files[2])
    assert found.returncode == 0, found.stderr
    assert files[2].name in found.stdout.splitlines()[1]
    mixed = cli("query", "--catalogue", catalogue, "--model", default_model_path().with_name(INT8_MODEL_FILE), files[2])
    assert mixed.returncode != 0
    assert "efficientnet-lite2-trunk@224" in mixed.stderr and "efficientnet-lite2-trunk-int8@224" in mixed.stderr
    assert "Traceback" not in mixed.stderr
    # one sentence that names the catalogue's own model file and the command that rebuilds it with the default
    [sentence] = mixed.stderr.splitlines()
    assert sentence.startswith("swimsearch: This catalogue was built with efficientnet-lite2-trunk@224 (sha256 ")
    assert f"search it with --model {fp32}, or rebuild it" in sentence
    int8 = default_model_path().with_name(INT8_MODEL_FILE)
    assert sentence.endswith(f"(every picture is read again): swimsearch index {folder} --catalogue {catalogue} --model {int8}")
    assert cli("query", "--catalogue", catalogue, "--model", fp32, files[2]).returncode == 0  # nothing was changed
    rebuilt = cli("index", folder, "--catalogue", catalogue)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stderr.splitlines()[0] == (
        "swimsearch: This catalogue was built with efficientnet-lite2-trunk@224 (sha256 "
        f"{Embedder(fp32).sha256[:12]}...), so every picture is read again with efficientnet-lite2-trunk-int8@224 "
        f"(sha256 {Embedder(default_model_path()).sha256[:12]}...) (its own model: --model {fp32})."
    )
    assert f"{len(files)} added" in rebuilt.stdout
    assert files[2].name in cli("query", "--catalogue", catalogue, "--top", "3", files[2]).stdout.splitlines()[1]
