"""Settings: one registry, remembered across restarts, robust to damaged values."""

from __future__ import annotations

import re
from pathlib import Path

from PyQt5.QtCore import QSettings

from swimsearch.config import EngineConfig
from ui.settings import OPTIONS, Settings
from ui_helpers import WAIT_MS, REPO, open_catalogue


def test_settings_survive_a_restart_of_the_window(qtbot, make_window, designs):
    first = make_window(width=1111, height=777)
    state = open_catalogue(qtbot, first, designs)
    first.top_spin.setValue(7)
    first.min_slider.setValue(30)
    first.mirror_action.trigger()  # off by default: now on
    first.zoom(+1)
    first.splitter.setSizes([400, 700])
    side_width = first.splitter.sizes()[0]
    thumb = first.results_view.delegate.thumb_size
    first.close()

    second = make_window()
    assert (second.top_spin.value(), second.min_slider.value()) == (7, 30)
    assert second.mirror_action.isChecked()
    assert second.results_view.delegate.thumb_size == thumb
    with qtbot.waitSignal(second.catalogue_ready, timeout=WAIT_MS) as opened:
        second.open_start(None)  # no argument: the last catalogue
    assert opened.args[0].path == state.path
    assert second.settings["catalogue/recent"][0] == state.path
    assert second.splitter.sizes()[0] == side_width


def test_geometry_is_restored(qtbot, make_window):
    first = make_window(width=1111, height=777)
    first.close()
    from ui.main_window import MainWindow

    second = MainWindow(Settings(), open_embedder=lambda: None, config=EngineConfig())
    qtbot.addWidget(second)
    try:
        assert (second.width(), second.height()) == (1111, 777)
    finally:
        second.close()


def test_damaged_values_fall_back_to_their_defaults(tmp_path):
    settings = Settings()
    store = QSettings(settings.file_name, QSettings.IniFormat)
    store.setValue("results/top_n", "many")
    store.setValue("results/min_similarity", 250)
    store.setValue("catalogue/recent", "{not json")
    store.setValue("search/mirror", "perhaps")
    store.sync()
    fresh = Settings()
    assert fresh["results/top_n"] == 50
    assert fresh["results/min_similarity"] == 100  # clamped to its range
    assert fresh["catalogue/recent"] == []
    assert fresh["search/mirror"] is False


def test_the_engine_sees_only_a_frozen_config_with_the_users_query_settings():
    settings = Settings()
    settings["search/mirror"] = True
    config = settings.engine_config(EngineConfig(bits=64))
    assert config.mirror is True and config.bits == 64


def test_every_setting_the_app_reads_or_writes_is_declared_once():
    used = set()
    for path in (REPO / "ui").glob("*.py"):
        used |= set(re.findall(r'settings\[\s*"([^"]+)"\s*\]', path.read_text(encoding="utf-8")))
        used |= set(re.findall(r's\[\s*"([^"]+)"\s*\]', path.read_text(encoding="utf-8")))
    assert used and used <= set(OPTIONS), used - set(OPTIONS)
    assert Path(REPO / "ui" / "settings.py").read_text(encoding="utf-8").count("QSettings(") == 1


def test_the_folder_filter_is_remembered_per_catalogue_and_a_damaged_one_searches_everywhere():
    settings = Settings()
    settings.remember_folders("/a.swimcat", ["summer", "winter/tops"])
    settings.remember_folders("/b.swimcat", ["x"])
    settings.remember_folders("/b.swimcat", [])  # all folders again: nothing kept
    fresh = Settings()
    assert fresh.folders_for("/a.swimcat") == ["summer", "winter/tops"] and fresh.folders_for("/b.swimcat") == []
    store = QSettings(settings.file_name, QSettings.IniFormat)
    store.setValue("search/folders", '{"/a.swimcat": "[not json", "/c.swimcat": "{\\"x\\": 1}"}')
    store.sync()
    damaged = Settings()
    assert damaged.folders_for("/a.swimcat") == [] and damaged.folders_for("/c.swimcat") == []
    store.setValue("search/folders", '["a list, not a mapping"]')
    store.sync()
    assert Settings()["search/folders"] == {}


def test_a_minimum_similarity_of_the_old_scale_is_reset_once_and_said(qtbot, make_window):
    """Before issue 11 scores were cosines relative to one catalogue: a saved 28 % could hide every match."""
    settings = Settings()
    store = QSettings(settings.file_name, QSettings.IniFormat)
    store.remove("results/similarity_scale")  # as an older SwimSearch left it
    store.setValue("results/min_similarity", 28)
    store.sync()
    window = make_window()
    assert window.settings["results/min_similarity"] == 0 and window.min_slider.value() == 0
    assert "reset to 0%" in window.statusBar().currentMessage() and "28%" in window.statusBar().currentMessage()
    window.min_slider.setValue(40)
    window.close()
    again = make_window()  # a minimum chosen on the new scale is kept
    assert again.min_slider.value() == 40 and not again.settings.notes
