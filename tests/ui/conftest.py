"""Qt fixtures for the window tests (pytest-qt, offscreen; the platform is set in tests/conftest.py).

Every test gets its own QSettings file and per-user data folder under
tmp_path, and fails if it leaves a worker thread or a thumbnail decoder
running.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for ui_helpers, as pytest does for test modules

from ui_helpers import FakeEmbedder, make_pattern_images  # noqa: E402


@pytest.fixture(autouse=True)
def private_settings_and_data(tmp_path, monkeypatch):
    """QSettings and the per-user data folder (sample catalogue, log) live in tmp_path."""
    from PyQt5.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("SWIMSEARCH_USER_DATA", str(tmp_path / "user-data"))
    return tmp_path


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test(private_settings_and_data):
    """Fail the test if it leaves a worker thread, a decoder or a Python thread running."""
    before = set(threading.enumerate())
    yield
    from ui.thumbnails import busy_caches
    from ui.workers import running_threads

    leftovers = [t.objectName() or "QThread" for t in running_threads()]
    leftovers += ["thumbnail decoders"] * len(busy_caches())
    leftovers += [
        t.name for t in threading.enumerate()
        if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
        and not t.name.startswith("look-reader")  # the look's reading thread, started once a process (feature_cache)
    ]
    if leftovers:
        pytest.fail(f"threads still running after the test: {', '.join(leftovers)}")


@pytest.fixture
def make_window(qtbot, small_config):
    """Make shown main windows (fake model, small index settings by default); closed after the test."""
    from ui.main_window import MainWindow
    from ui.settings import Settings

    windows = []

    def make(*, open_embedder=FakeEmbedder, config=small_config, width=1200, height=800):
        window = MainWindow(Settings(), open_embedder=open_embedder, config=config)
        qtbot.addWidget(window)
        window.resize(width, height)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def designs(tmp_path, fake_embedder, small_config):
    """A folder of 30 generated designs in families of 3, with its catalogue already built."""
    from swimsearch.catalogue import Catalogue, default_catalogue_path

    folder = tmp_path / "designs"
    make_pattern_images(folder, 30, family=3)
    with Catalogue.create(default_catalogue_path(folder), folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    return folder
