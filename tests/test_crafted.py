"""Crafted and damaged catalogues (tests/crafted_catalogues.py): one plain sentence or the right results, always.

The generator runs in a child process under an address-space limit (a
catalogue that makes SwimSearch allocate 16 GB fails there instead of taking
the machine down) and a time limit (a view that recurses for ever would hang
it), and reports each variant's outcome. Every variant must be refused in
plain words or give results identical to the untouched catalogue's.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from helpers import TESTS

#: Address space the child may use beyond what it starts with: far below what a crafted id of 2^31 allocates (16 GB).
MEMORY_LIMIT = 3 * 1024**3


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.slow
def test_every_crafted_catalogue_is_refused_in_plain_words_or_searched_right(tmp_path):
    done = subprocess.run(
        [sys.executable, str(TESTS / "crafted_catalogues.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=600, preexec_fn=_limit_memory,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines and "summary" in lines[-1], done.stdout[-3000:] + done.stderr[-3000:]
    summary = lines[-1]["summary"]
    bad = [line for line in lines[:-1] if line["outcome"] not in ("refused", "identical")]
    assert not bad, json.dumps(bad[:5], indent=1)
    assert summary["variants"] >= 250 and summary["traceback"] == summary["silently_wrong"] == summary["unclear"] == 0
    assert summary["refused"] >= 0.9 * summary["variants"]  # nearly all are caught; the rest change nothing seen
    assert summary["slowest_s"] < 10


def test_a_catalogue_that_is_a_recursive_view_is_refused_before_any_query(tmp_path):
    """The red team's hang, on its own: every command on it hung for ever."""
    import sqlite3
    from contextlib import closing

    from crafted_catalogues import make_base
    from swimsearch.catalogue import Catalogue
    from swimsearch.errors import DamagedCatalogue

    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_base(folder, path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("DROP TABLE images")
        conn.execute("CREATE VIEW images AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) "
                     "SELECT x AS id, 'a' AS path FROM r")
    with pytest.raises(DamagedCatalogue, match="it holds view images that SwimSearch never makes"):
        Catalogue.open(path)


def test_a_path_that_climbs_out_of_the_folder_is_never_shown_or_opened(tmp_path):
    import sqlite3
    from contextlib import closing

    from crafted_catalogues import make_base, resum
    from helpers import FakeEmbedder
    from crafted_catalogues import config
    from swimsearch.catalogue import Catalogue
    from swimsearch.errors import DamagedCatalogue
    from swimsearch.search import SearchEngine

    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_base(folder, path)
    secret = tmp_path / "outside" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(b"not yours")
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("UPDATE images SET path = '../outside/secret.jpg' WHERE id = 3")
        resum(conn)  # a crafted file: its checksums agree
    with Catalogue.open(path) as catalogue:
        with pytest.raises(DamagedCatalogue, match="path outside its folder"):
            # a catalogue this small has its records read when the engine is made (rescoring.py)
            SearchEngine(catalogue, FakeEmbedder(), config()).search_id(3, top_n=50)
