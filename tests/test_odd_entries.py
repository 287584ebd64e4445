"""Dangling links, link loops and named pipes in a folder: named as unreadable, never opened, never fatal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import REPO, make_pattern_images
from swimsearch.folderscan import DANGLING_LINK, LINK_LOOP, scan_folder_report

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symbolic links and named pipes (POSIX)")

PIPE = "not a file (a named pipe)"


def odd_folder(folder):
    """Real pictures, plus a broken link, a link to itself and a pipe that look like pictures (and two that do not)."""
    photos = make_pattern_images(folder, 4)
    os.symlink("design that was moved.jpg", folder / "broken link.jpg")
    os.symlink("loop.png", folder / "loop.png")
    os.mkfifo(folder / "pipe.jpg")  # opened for reading, it would wait for a writer for ever
    os.symlink("gone.indd", folder / "old layout.indd")
    os.mkfifo(folder / "notes")
    return photos


def run(*args):
    return subprocess.run([sys.executable, "-m", "swimsearch.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_the_scan_lists_each_odd_picture_entry_with_its_reason(tmp_path):
    odd_folder(tmp_path)
    scan = scan_folder_report(tmp_path)
    reasons = {f.relpath: f.name_error for f in scan.files}
    assert reasons == {
        "img0000.png": None, "img0001.png": None, "img0002.png": None, "img0003.png": None,
        "broken link.jpg": DANGLING_LINK, "loop.png": LINK_LOOP, "pipe.jpg": PIPE,
    }
    # the ones that are no picture by name are counted with the other files not read
    assert scan.skipped == {".indd": 1, "(no extension)": 1}


def test_index_names_each_odd_entry_once_and_the_real_pictures_are_searchable(tmp_path):
    folder = tmp_path / "shared"
    photos = odd_folder(folder)
    catalogue = tmp_path / "cat.swimcat"
    first = run("index", folder, "--catalogue", catalogue)
    assert first.returncode == 0, first.stderr
    assert "4 added, 0 updated, 0 removed, 3 unreadable" in first.stdout and "4 images searchable" in first.stdout
    assert "not read: 1 (no extension), 1 .indd" in first.stdout
    for line in (f"unreadable: broken link.jpg: {DANGLING_LINK}", f"unreadable: loop.png: {LINK_LOOP}",
                 f"unreadable: pipe.jpg: {PIPE}"):
        assert line in first.stdout
    assert "Traceback" not in first.stderr

    # an update passes them by, as it does any unreadable picture that has not changed
    again = run("index", folder, "--catalogue", catalogue)
    assert again.returncode == 0 and "0 unreadable, 7 unchanged" in again.stdout and "unreadable:" not in again.stdout
    info = run("info", "--catalogue", catalogue, "--unreadable")
    assert f"broken link.jpg: {DANGLING_LINK}" in info.stdout and f"pipe.jpg: {PIPE}" in info.stdout

    # the moved design comes back under the link: it is read at the next update
    photos[0].rename(folder / "design that was moved.jpg")
    fixed = run("index", folder, "--catalogue", catalogue)
    assert fixed.returncode == 0 and "1 updated, 0 removed, 0 unreadable" in fixed.stdout, fixed.stderr
    assert "5 images searchable" in fixed.stdout
    still = run("info", "--catalogue", catalogue, "--unreadable").stdout
    assert "broken link.jpg" not in still and "loop.png" in still and "pipe.jpg" in still

    query = run("query", "--catalogue", catalogue, "--top", 1, photos[1])
    assert query.returncode == 0 and "100%" in query.stdout.splitlines()[1] and str(photos[1]) in query.stdout
