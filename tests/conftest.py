"""Shared fixtures. Qt runs headless: the platform is set before anything imports Qt."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="swimsearch-xdg-"))
# array caches of large catalogues (array_cache.py) go to a folder of this run, never the user's cache folder
os.environ["SWIMSEARCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="swimsearch-cache-")
os.environ.pop("SWIMSEARCH_TEAM_CACHE_DIR", None)  # a team catalogue's go under it too
# the caches of tests are a few KB: the margin a user's disk keeps (10 GB of a large one) would fail them on a
# shared machine with less free; the margin's own rule is tested with the variable removed
os.environ["SWIMSEARCH_CACHE_MARGIN_GB"] = "0.5"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from helpers import CLOTHING, FakeEmbedder, copy_clothing_photos  # noqa: E402
from pg_server import pg_database, pg_module_database, pg_server  # noqa: E402,F401  (fixtures: one PostgreSQL server per session)
from stores import store  # noqa: E402,F401  (fixture: each behaviour test on both stores)


@pytest.fixture(scope="session")
def model_path() -> Path:
    from swimsearch.model import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def embedder(model_path):
    """The real ONNX trunk (opened once per test session)."""
    from swimsearch.model import Embedder

    return Embedder(model_path)


@pytest.fixture(scope="session")
def clothing() -> Path:
    """The shared clothing photo set (5,398 public-domain photos)."""
    if not (CLOTHING / "labels.csv").is_file():
        pytest.fail(f"the shared data set is missing: {CLOTHING} (clone the project beside ../shared)")
    return CLOTHING


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    """The folder search caches go to in this test (SWIMSEARCH_CACHE_DIR; a team catalogue's under team/)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def small_config():
    """Engine settings sized for catalogues of a few hundred generated images."""
    from swimsearch.config import EngineConfig

    return EngineConfig(hash_dim=32, rerank_dim=32, bits=64, lsh_tables=8, lsh_key_bits=8, batch_size=8, decoders=2)


@pytest.fixture(scope="session")
def photo_catalogue(tmp_path_factory, clothing, embedder):
    """A real catalogue of 40 clothing photos built with the real model: (folder, catalogue path)."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig

    folder = tmp_path_factory.mktemp("photos")
    copy_clothing_photos(clothing, folder, 40)
    path = folder / "photos.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    return folder, path
