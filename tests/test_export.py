"""CSV export: what a spreadsheet user sees, never a formula."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest

from swimsearch.export import COLUMNS, as_text, neutralise, write_csv
from swimsearch.search import Match, SearchResult


def result(paths, query="/q/=query.jpg"):
    matches = tuple(
        Match(rank=i + 1, image_id=i, path=p, relpath=p.rsplit("/", 1)[-1], score=1.0 - 0.1 * i, distance=0.5 * i,
              duplicate=i == 0, phash_distance=i * 3, width=400, height=600, mirrored=i == 2,
              band="same design" if i < 2 else "similar")
        for i, p in enumerate(paths)
    )
    return SearchResult(query=query, query_image_id=None, matches=matches, method="exact", candidates=9,
                        embed_ms=10.0, search_ms=2.0)


HOSTILE = ["/d/=HYPERLINK(\"evil\").jpg", "/d/+1.jpg", "/d/-2.jpg", "/d/@SUM(A1).jpg", "/d/maillot été.jpg"]


def test_formula_cells_are_neutralised():
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("+1") == "'+1" and neutralise("-1") == "'-1" and neutralise("@x") == "'@x"
    assert neutralise("\tx") == "'\tx"
    assert neutralise("plain.jpg") == "plain.jpg"


def test_csv_round_trips_through_the_csv_module(tmp_path):
    out = tmp_path / "matches.csv"
    rows = write_csv([result(HOSTILE)], out, catalogue="=cat.swimcat", model="trunk@224", model_sha256="ab" * 32)
    assert rows == len(HOSTILE)
    text = out.read_bytes().decode("utf-8")
    assert text.startswith("query,rank,path,score,similarity,band,file_name,folder,width,height,duplicate,mirrored,missing,decision\r\n")
    back = list(csv.DictReader(io.StringIO(text)))
    assert list(back[0].keys()) == list(COLUMNS)
    assert [r["rank"] for r in back] == ["1", "2", "3", "4", "5"]
    assert back[4]["path"] == "/d/maillot été.jpg" and back[4]["file_name"] == "maillot été.jpg"
    assert back[0]["file_name"] == "'=HYPERLINK(\"evil\").jpg"
    assert back[1]["file_name"] == "'+1.jpg" and back[2]["file_name"] == "'-2.jpg" and back[3]["file_name"] == "'@SUM(A1).jpg"
    for row in back:  # no cell a spreadsheet would evaluate
        assert not any(str(v).startswith(("=", "+", "@")) for v in row.values())
    assert back[0]["score"] == "1.0" and back[1]["score"] == "0.9"  # full precision
    assert back[0]["duplicate"] == "yes" and back[1]["duplicate"] == "no" and back[2]["mirrored"] == "yes"
    assert back[0]["width"] == "400" and back[0]["similarity"] == "100" and back[1]["similarity"] == "90"
    assert back[0]["band"] == "same design" and back[2]["band"] == "similar"
    assert back[0]["folder"] == "" and [r["query"] for r in back] == ["/q/=query.jpg"] * 5  # "/" first: not a formula
    # the identity, the same for every row, is written once beside the CSV, with what each column means
    about = json.loads((tmp_path / "matches.about.json").read_text(encoding="utf-8"))
    assert about["catalogue"] == "=cat.swimcat" and about["model_sha256"] == "ab" * 32 and about["exported_at"]
    assert about["rows"] == 5 and list(about["columns"]) == list(COLUMNS) and all(about["columns"].values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matches.about.json", "matches.csv"]


def test_a_folder_column_names_the_subfolder_and_a_spreadsheet_never_runs_it(tmp_path):
    res = result(["/d/tops/a.jpg"])
    res = SearchResult(res.query, None, (replace(res.matches[0], relpath="=SUM(1)/a.jpg"),), "exact", 1, 0.0, 0.0)
    buffer = io.StringIO()
    write_csv([res], buffer, catalogue="c", model="m", model_sha256="0")
    assert list(csv.DictReader(io.StringIO(buffer.getvalue())))[0]["folder"] == "'=SUM(1)"


def test_a_failed_write_leaves_the_previous_file_whole_and_no_temporary(tmp_path):
    out = tmp_path / "matches.csv"
    out.write_text("the previous export\n")

    def exploding():
        yield result(["/d/a.jpg"])
        raise OSError(28, "No space left on device")

    try:
        write_csv(exploding(), out, catalogue="c", model="m", model_sha256="0")
    except OSError:
        pass
    assert out.read_text() == "the previous export\n" and [p.name for p in tmp_path.iterdir()] == ["matches.csv"]


@pytest.mark.parametrize("where, said", [("nowhere/out.csv", "No such file or directory"), ("isdir.csv", "Is a directory")])
def test_an_export_that_cannot_be_written_names_the_file_asked_for(tmp_path, where, said):
    """Into a missing folder, or over a folder's name: the message names the name asked for, never the
    temporary file beside it (a reviewer read '.isdir.csv.acbbmgqn.part cannot be used'), and nothing is left."""
    from swimsearch.export import atomic_output

    target = tmp_path / where
    if where == "isdir.csv":
        target.mkdir()
    with pytest.raises(OSError) as raised:
        with atomic_output(target) as fh:
            fh.write("x")
    assert raised.value.filename == str(target) and raised.value.strerror == said
    assert [p.name for p in tmp_path.iterdir()] == ([] if where.startswith("nowhere") else ["isdir.csv"])


def test_clipboard_text_lists_rank_score_and_path():
    text = as_text(result(["/d/a.jpg", "/d/b.jpg"], query="/q/x.jpg"))
    lines = text.splitlines()
    assert lines[0] == "Query\t/q/x.jpg"
    assert lines[1] == "Rank\tSimilarity\tBand\tDuplicate\tPath"
    assert lines[2] == "1\t100%\tsame design\tduplicate\t/d/a.jpg"  # the one rounding rule, as the window shows it
    assert lines[3] == "2\t90%\tsame design\t\t/d/b.jpg"


def test_duplicate_groups_csv_keeps_its_columns_and_neutralises_paths(tmp_path):
    from swimsearch.duplicates import DuplicateGroup
    from swimsearch.export import write_duplicates_csv

    groups = [
        DuplicateGroup((1, 4, 9), ("/d/a.jpg", "=HYPERLINK(\"evil\")", "/d/maillot été.jpg"), 3),
        DuplicateGroup((2, 5), ("/d/b.png", "/d/b small.png"), 0),
    ]
    out = tmp_path / "copies.csv"
    assert write_duplicates_csv(groups, out) == 5
    raw = out.read_bytes()
    assert raw.startswith(b"group,path,group_size,max_phash_distance\r\n") and raw.count(b"\r\n") == 6
    back = list(csv.reader(io.StringIO(raw.decode("utf-8"))))[1:]
    assert back[0] == ["1", "/d/a.jpg", "3", "3"] and back[1] == ["1", "'=HYPERLINK(\"evil\")", "3", "3"]
    assert [r[0] for r in back] == ["1", "1", "1", "2", "2"] and [r[2] for r in back] == ["3", "3", "3", "2", "2"]
    assert back[2][1] == "/d/maillot été.jpg" and back[3] == ["2", "/d/b.png", "2", "0"]
    buffer = io.StringIO()
    assert write_duplicates_csv([], buffer) == 0 and buffer.getvalue() == "group,path,group_size,max_phash_distance\r\n"


def test_an_export_to_a_named_pipe_writes_into_it_and_leaves_it_a_pipe(tmp_path):
    # `--csv /dev/null` once replaced /dev/null with an ordinary file (run as root): the rename of the
    # atomic write went over the device. A named pipe stands for any such target a test may make.
    import os
    import stat
    import threading

    pipe = tmp_path / "matches.csv"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    rows = write_csv([result(["/d/a.jpg", "/d/b.jpg"])], pipe, catalogue="c", model="m", model_sha256="ab" * 32)
    reader.join(timeout=10)
    assert rows == 2 and stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert received and received[0].decode("utf-8").count("\r\n") == 3  # header and two rows went through it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matches.csv"]  # no sidecar, no temporary left
