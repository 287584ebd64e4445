"""Shared fixtures. Qt runs headless: the platform is set before anything imports Qt."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="swimsearch-xdg-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent
CLOTHING = REPO.parent / "shared" / "datasets" / "clothing"


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
