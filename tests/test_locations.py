"""Where a folder's catalogue lives: one rule for the command line and the window (no Qt here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, FakeEmbedder, build_pattern_catalogue
from swimsearch import locations
from swimsearch.catalogue import CATALOGUE_SUFFIX, Catalogue, default_catalogue_path
from swimsearch.locations import (
    catalogue_for_folder,
    display_name,
    fallback_catalogue,
    folder_catalogue,
    platform_data_dir,
    user_data_dir,
)


def read_only(folder: Path) -> bool:
    return False


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "Summer designs"
    folder.mkdir()
    return folder


def test_a_writable_folder_keeps_its_catalogue_inside(folder, tmp_path):
    path = catalogue_for_folder(folder, tmp_path / "user")
    assert path == folder.resolve() / ".swimsearch.swimcat"
    assert path == default_catalogue_path(folder.resolve()) and path.suffix == CATALOGUE_SUFFIX  # the same rule as the engine's


def test_a_read_only_folder_gets_a_per_user_catalogue_named_from_its_path(folder, tmp_path):
    user = tmp_path / "user"
    path = catalogue_for_folder(folder, user, writable=read_only)
    assert path.parent == user / "catalogues"
    assert path.name.startswith("Summer_designs-") and path.suffix == ".swimcat"
    other = tmp_path / "elsewhere" / "Summer designs"
    other.mkdir(parents=True)
    assert catalogue_for_folder(other, user, writable=read_only) != path  # same name, another folder


@pytest.mark.parametrize(
    "folder, name",
    [
        ("/srv/share/Summer 2024", "Summer_2024-f87fabb674.swimcat"),
        ("/srv/share/designs", "designs-102f824782.swimcat"),
        ("/", "catalogue-42099b4af0.swimcat"),
    ],
)
def test_per_user_names_are_the_ones_the_window_always_made(folder, name):
    # made by ui/locations.py before the rule moved to the engine: those catalogues must still be found
    assert fallback_catalogue(folder, "/u") == Path("/u/catalogues") / name


def test_an_existing_catalogue_wins_wherever_it_is(folder, tmp_path):
    user = tmp_path / "user"
    per_user = fallback_catalogue(folder, user)
    per_user.parent.mkdir(parents=True)
    per_user.write_bytes(b"")
    assert catalogue_for_folder(folder, user) == per_user  # the folder became writable: keep the one it has
    inside = folder_catalogue(folder)
    inside.write_bytes(b"")
    assert catalogue_for_folder(folder, user, writable=read_only) == inside.resolve()


def test_the_user_data_folder_override_location_and_platform_default(tmp_path, monkeypatch):
    monkeypatch.delenv(locations.USER_DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    if sys.platform.startswith("linux"):
        assert platform_data_dir() == tmp_path / "home" / ".local" / "share" / "SwimSearch" / "SwimSearch"
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert platform_data_dir() == tmp_path / "xdg" / "SwimSearch" / "SwimSearch"
    assert user_data_dir() == platform_data_dir()
    assert user_data_dir(str(tmp_path / "qt")) == tmp_path / "qt"
    assert user_data_dir("") == platform_data_dir()
    monkeypatch.setenv(locations.USER_DATA_ENV, str(tmp_path / "override"))
    assert user_data_dir(str(tmp_path / "qt")) == tmp_path / "override"
    assert not (tmp_path / "override").exists()  # looking up creates nothing


@pytest.mark.parametrize(
    "catalogue, root, name",
    [
        ("/data/Summer/.swimsearch.swimcat", None, "Summer"),
        ("/u/catalogues/Summer_2024-f87fabb674.swimcat", None, "Summer_2024"),
        ("/u/catalogues/odd-name.swimcat", None, "odd-name"),
        ("/u/sample.swimcat", None, "sample"),
        ("/anywhere/designs.swimcat", None, "designs"),
        ("/u/catalogues/Summer_2024-f87fabb674.swimcat", "/srv/share/Summer 2024", "Summer 2024"),
        ("/x.swimcat", "/", "/"),
    ],
)
def test_display_name(catalogue, root, name):
    assert display_name(catalogue, root) == name


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "swimsearch.cli", *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env,
    )


def test_cli_finds_the_per_user_catalogue_of_a_read_only_folder(tmp_path, small_config, monkeypatch):
    """Where the rule puts a read-only folder's catalogue, `--catalogue FOLDER` finds it.

    (tests/ui/test_ui_locations.py does it for real: a read-only folder, the window's build, a CLI query.)
    """
    user = tmp_path / "user"
    folder = tmp_path / "share"
    folder.mkdir()
    target = catalogue_for_folder(folder, user, writable=read_only)
    build_pattern_catalogue(folder, target, FakeEmbedder(), small_config, 4)
    monkeypatch.setenv(locations.USER_DATA_ENV, str(user))
    done = cli("info", "--catalogue", folder, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert f"catalogue   {target}" in done.stdout and "4 (4 readable" in done.stdout
    assert not folder_catalogue(folder).exists()
    missing = tmp_path / "never-indexed"
    missing.mkdir()
    none = cli("query", "--catalogue", missing, folder / "img0000.png", env=dict(os.environ))
    assert none.returncode == 1 and "There is no catalogue of the folder" in none.stderr
    assert f"swimsearch index {missing}" in none.stderr and "Traceback" not in none.stderr


def test_cli_finds_the_windows_sample_catalogue(tmp_path, monkeypatch):
    """`--catalogue resources/sample` opens the per-user sample catalogue the window made, not a new one in the checkout."""
    user = tmp_path / "user"
    sample = REPO / "resources" / "sample"
    assert catalogue_for_folder(sample, user) == user / "sample.swimcat"
    with Catalogue.create(user / "sample.swimcat", sample):  # what the window makes on first use
        pass
    monkeypatch.setenv(locations.USER_DATA_ENV, str(user))
    done = cli("decisions", "--catalogue", sample, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "no decisions yet" in done.stdout
    info = cli("info", "--catalogue", sample, env=dict(os.environ))
    assert f"catalogue   {user / 'sample.swimcat'}" in info.stdout
    assert not folder_catalogue(sample).exists()


def test_a_damaged_catalogue_is_set_aside_beside_itself_with_its_journal_never_overwriting(tmp_path):
    from swimsearch.locations import set_aside

    catalogue = tmp_path / ".swimsearch.swimcat"
    stamp = 1_700_000_000.0
    for content in (b"first", b"second"):  # twice in the same second: the second gets its own name
        catalogue.write_bytes(content)
        Path(f"{catalogue}-wal").write_bytes(content + b" journal")
        kept = set_aside(catalogue, now=stamp)
        assert not catalogue.exists() and not Path(f"{catalogue}-wal").exists()
        assert kept.read_bytes() == content and Path(f"{kept}-wal").read_bytes() == content + b" journal"
    names = sorted(p.name for p in tmp_path.iterdir())
    first = f".swimsearch.swimcat.damaged-{time.strftime('%Y%m%d-%H%M%S', time.localtime(stamp))}"
    assert names == [first, f"{first}-2", f"{first}-2-wal", f"{first}-wal"]
