"""Where catalogues live: inside the folder, per user for read-only folders, the sample per user."""

from __future__ import annotations

import pytest

import ui.locations
from swimsearch.catalogue import default_catalogue_path
from ui.locations import catalogue_for_folder, sample_target, target_for, user_data_dir


def test_a_folder_gets_a_hidden_catalogue_inside_it(tmp_path):
    folder = tmp_path / "designs"
    folder.mkdir()
    target = target_for(str(folder))
    assert target.path == default_catalogue_path(folder.resolve()) and target.root == folder.resolve()
    assert not target.exists and not target.sample


def test_a_read_only_folder_gets_its_catalogue_in_the_user_data_folder(tmp_path, monkeypatch):
    folder = tmp_path / "share"
    folder.mkdir()
    monkeypatch.setattr(ui.locations.os, "access", lambda path, mode: False)
    path = catalogue_for_folder(folder)
    assert path.parent == user_data_dir() / "catalogues" and path.name.startswith("share-")
    assert path.suffix == ".swimcat"


def test_a_catalogue_file_opens_itself_and_a_missing_path_is_plain_words(tmp_path):
    catalogue = tmp_path / "x.swimcat"
    catalogue.write_bytes(b"")
    assert target_for(str(catalogue)).path == catalogue and target_for(str(catalogue)).root is None
    with pytest.raises(ValueError, match="There is no folder or catalogue at"):
        target_for(str(tmp_path / "nowhere"))


def test_the_sample_catalogue_lives_per_user_over_the_shipped_photos(tmp_path):
    target = sample_target()
    assert target.sample and target.path.parent == tmp_path / "user-data"
    assert target.root.name == "sample" and len(list(target.root.glob("*.jpg"))) >= 30
    assert (target.root / "README.md").read_text(encoding="utf-8").count("CC0") >= 1
