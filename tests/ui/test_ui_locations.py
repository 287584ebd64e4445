"""Where catalogues live: inside the folder, per user for read-only folders, the sample per user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ui.locations
from helpers import PERMISSIONS, REPO, copy_clothing_photos, needs_permissions
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


def test_a_folder_whose_name_is_not_utf8_text_is_one_sentence_to_rename_it(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"d\xe9signs")
    try:
        os.mkdir(folder)
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    with pytest.raises(ValueError) as refused:  # what the window shows in its box (open_path)
        target_for(os.fsdecode(folder))
    assert str(refused.value) == (
        f"The folder {tmp_path}/d\\xe9signs cannot be used: the name “d\\xe9signs” is not valid UTF-8 text, "
        "so rename it and try again."
    )
    assert os.listdir(folder) == []


def test_the_sample_catalogue_lives_per_user_over_the_shipped_photos(tmp_path):
    target = sample_target()
    assert target.sample and target.path.parent == tmp_path / "user-data"
    assert target.root.name == "sample" and len(list(target.root.glob("*.jpg"))) >= 30
    assert (target.root / "README.md").read_text(encoding="utf-8").count("CC0") >= 1


# --- the window and the command line agree (each side in its own process, as a user runs them) ---

WINDOW_BUILDS = """
import sys
from PyQt5.QtCore import QCoreApplication
import app
from swimsearch.config import EngineConfig
from swimsearch.model import Embedder, default_model_path
from ui.build import BuildWorker
from ui.locations import target_for
app.set_application_names()
qt = QCoreApplication(sys.argv[:1])
target = target_for(sys.argv[1])  # what the window opens for a folder given or dropped
outcome = BuildWorker(target, lambda: Embedder(default_model_path()), EngineConfig()).work()
print(outcome.catalogue_path)
print(outcome.name, outcome.report.indexed)
"""

QT_DATA_FOLDER = """
from PyQt5.QtCore import QCoreApplication, QStandardPaths
import app
from swimsearch.locations import platform_data_dir
app.set_application_names()
print(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))
print(platform_data_dir())
"""


def _plain_user_env(home):
    """The environment of a user with this home folder and no SwimSearch overrides."""
    env = {k: v for k, v in os.environ.items() if k not in ("SWIMSEARCH_USER_DATA", "XDG_DATA_HOME")}
    env["HOME"] = str(home)
    return env


def _run(args, env, prefix=()):
    return subprocess.run([*prefix, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("xdg", [False, True])
def test_the_command_line_names_the_data_folder_qt_gives_the_window(tmp_path, xdg):
    env = _plain_user_env(tmp_path / "home")
    if xdg:
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    done = _run([sys.executable, "-c", QT_DATA_FOLDER], env)
    assert done.returncode == 0, done.stderr
    qt, engine = done.stdout.splitlines()
    assert qt == engine and qt.endswith("SwimSearch/SwimSearch")


@needs_permissions
def test_swimsearch_query_finds_the_catalogue_the_window_made_for_a_read_only_folder(tmp_path, clothing):
    """The window indexes a read-only share; `swimsearch query --catalogue SHARE` then searches it."""
    share = tmp_path / "share"
    photos = copy_clothing_photos(clothing, share, 5)
    home = tmp_path / "home"
    home.mkdir()
    env = _plain_user_env(home)
    share.chmod(0o555)
    try:
        # root ignores permission bits; PERMISSIONS drops the capabilities that let it
        built = _run([sys.executable, "-c", WINDOW_BUILDS, share], env, PERMISSIONS)
        assert built.returncode == 0, built.stderr
        path, summary = built.stdout.splitlines()[-2:]
        assert summary == "share 5"
        assert Path(path).parent == home / ".local" / "share" / "SwimSearch" / "SwimSearch" / "catalogues"
        assert not default_catalogue_path(share).exists()  # really read-only: nothing was written inside
        found = _run([sys.executable, "-m", "swimsearch.cli", "query", "--catalogue", share, "--top", "1", photos[2]], env, PERMISSIONS)
    finally:
        share.chmod(0o755)
    assert found.returncode == 0, found.stderr
    best = found.stdout.splitlines()[1]
    assert "100%  same design" in best and str(photos[2]) in best
