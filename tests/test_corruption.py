"""Silent corruption: random pages of a real catalogue file damaged, never a wrong answer given in silence.

tools/corrupt_pages.py damages one random page per trial (zeroed, random
bytes, a few bytes, a few bits) and compares everything a user sees with the
untouched catalogue. Before checksums, 10 of 60 such trials changed results
without a word (and 2 gave tracebacks); each must now be refused in one
sentence or change nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
def test_random_page_corruptions_are_reported_never_silently_wrong(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "corrupt_pages.py"), "--fake", "--trials", "60", "--images", "120",
         "--seed", "5", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and "summary" in lines[-1], done.stdout[-2000:] + done.stderr[-2000:]
    summary = lines[-1]["summary"]
    bad = [line for line in lines[:-1] if line["outcome"] not in ("refused", "identical")]
    assert not bad, bad
    assert summary["trials"] == 60 and summary["refused"] >= 40


def test_info_check_finds_a_flipped_bit_that_searching_never_reads(tmp_path, fake_embedder, small_config, capsys):
    """A bit flipped in an embedding no search happens to rescore: only `info --check` reads every one."""
    import sqlite3
    from contextlib import closing

    from helpers import make_pattern_images
    from swimsearch import cli
    from swimsearch.catalogue import Catalogue

    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 30)
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    assert cli.main(["info", "--catalogue", str(path), "--check"]) == 0
    assert "check       ok: SQLite's integrity check" in capsys.readouterr().out
    with closing(sqlite3.connect(path)) as conn:
        (blob,) = conn.execute("SELECT vector FROM embeddings WHERE image_id = 17").fetchone()
        flipped = bytearray(blob)
        flipped[100] ^= 0x04
        conn.execute("UPDATE embeddings SET vector = ? WHERE image_id = 17", (bytes(flipped),))
        conn.commit()
    assert cli.main(["info", "--catalogue", str(path)]) == 0  # opening reads no embedding
    capsys.readouterr()
    assert cli.main(["info", "--catalogue", str(path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "is damaged (an embedding fails its checksum)" in err and len(err.strip().splitlines()) == 1
