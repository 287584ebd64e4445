"""The `swimsearch` command line: exit codes, plain errors, and the CSV others rely on.

The commands on a built catalogue run twice: on a catalogue file and on a
team catalogue (postgresql://...) in the session's embedded server.
"""

from __future__ import annotations

import csv
import io
import shlex
import shutil
import subprocess
import sys

import pytest

from helpers import REPO, copy_clothing_photos
from swimsearch.stores.pg_address import display_address


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "swimsearch.cli", *map(str, args)],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def indexed(request, tmp_path_factory, clothing):
    folder = tmp_path_factory.mktemp("cli-photos")
    photos = copy_clothing_photos(clothing, folder, 12, offset=3)
    shutil.copy(photos[0], folder / "copy of first.jpg")
    (folder / "broken.jpg").write_bytes(b"nope")
    if request.param == "sqlite":
        catalogue = tmp_path_factory.mktemp("cli-cat") / "cat.swimcat"
    else:
        catalogue = request.getfixturevalue("pg_module_database").url() + "&catalogue=cli"
    first = run("index", folder, "--catalogue", catalogue)
    return folder, catalogue, photos, first


def test_index_builds_and_summarises(indexed):
    folder, catalogue, photos, first = indexed
    assert first.returncode == 0, first.stderr
    assert "13 added, 0 updated, 0 removed, 1 unreadable" in first.stdout
    assert first.stdout.startswith(display_address(str(catalogue)) + ": done")
    assert "broken.jpg" in first.stdout
    again = run("index", folder, "--catalogue", catalogue)
    assert again.returncode == 0 and "0 added, 0 updated, 0 removed, 0 unreadable, 14 unchanged" in again.stdout


@pytest.mark.parametrize("held", [{}, {"brief.txt": b"notes", "sub/moodboard.indd": b"\0" * 10}])
def test_index_of_a_folder_without_pictures_says_so_and_leaves_no_catalogue(tmp_path, held):
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, data in held.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    done = run("index", folder)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"swimsearch: The folder {folder} holds no pictures SwimSearch can read (")
    assert "nothing to index, so no catalogue was made" in line
    assert line.endswith("it is empty." if not held else "it holds 1 .indd and 1 .txt files.")
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before  # no hidden catalogue left behind
    elsewhere = tmp_path / "cat.swimcat"
    assert run("index", folder, "--catalogue", elsewhere).returncode == 1 and not elsewhere.exists()


def test_index_of_a_folder_whose_only_picture_cannot_be_read_is_refused_and_leaves_no_catalogue(tmp_path):
    """Review round 12, item 14: a 0-byte .jpg beside documents made a catalogue of 0 searchable images."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "brief.txt").write_text("notes")
    done = run("index", folder)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line == (
        f"swimsearch: No picture in the folder {folder} could be read (empty.jpg: the file is empty (0 bytes)): "
        "there is nothing to index, so no catalogue was made; it also holds 1 .txt file."
    )
    assert sorted(p.name for p in folder.iterdir()) == ["brief.txt", "empty.jpg"]  # no hidden catalogue left behind


def test_index_holds_back_a_mass_removal_in_one_sentence_until_allow_removal(tmp_path, clothing):
    folder = tmp_path / "share"
    photos = copy_clothing_photos(clothing, folder, 12, offset=40)
    assert run("index", folder).returncode == 0
    aside = tmp_path / "aside"
    aside.mkdir()
    for photo in photos[:10]:  # most of the folder gone at once: a share mounted half-way looks like this
        photo.rename(aside / photo.name)
    held = run("index", folder)
    assert held.returncode == 1 and "10 gone files kept until confirmed" in held.stdout
    [sentence] = held.stderr.splitlines()  # said once: no log line repeating it
    assert sentence == (f"swimsearch: 10 of the catalogue's 12 files are gone from its folder (a drive or network share that "
                        f"is not mounted?). They were kept in the catalogue. If they really were deleted, update again "
                        f"with: swimsearch index {folder} --allow-removal")
    confirmed = run("index", folder, "--allow-removal")
    assert confirmed.returncode == 0 and "10 removed" in confirmed.stdout and "2 images searchable" in confirmed.stdout


def test_query_csv_columns_rank_and_absolute_paths(indexed, tmp_path):
    folder, catalogue, photos, _ = indexed
    out = tmp_path / "matches.csv"
    listfile = tmp_path / "queries.txt"
    listfile.write_text(f"# two queries\n{photos[1]}\n\n{photos[2]}\n")
    done = run("query", "--catalogue", catalogue, "--top", 3, "--csv", out, photos[0], "--queries", listfile)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert out.read_text().split("\r\n", 1)[0].startswith("query,rank,path,score")
    assert len(rows) == 9
    first = [r for r in rows if r["query"] == str(photos[0])]
    assert [r["rank"] for r in first] == ["1", "2", "3"]
    assert first[0]["path"] == str(photos[0]) and first[0]["score"] == "1.0" and first[0]["band"] == "same design"
    assert first[1]["path"] == str(folder / "copy of first.jpg") and first[1]["duplicate"] == "yes"
    assert first[1]["band"] == "same design" and float(first[1]["score"]) >= 0.9  # a copy: same design, not 100 %
    assert all(r["path"].startswith("/") for r in rows)


def test_query_prints_a_readable_list(indexed):
    _, catalogue, photos, _ = indexed
    done = run("query", "--catalogue", catalogue, "--top", 2, photos[3])
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith(str(photos[3])) and "ms embed" in lines[0]
    assert "100%  same design" in lines[1] and str(photos[3]) in lines[1]


def test_unreadable_query_is_one_plain_line_and_exit_1(indexed, tmp_path):
    _, catalogue, photos, _ = indexed
    done = run("query", "--catalogue", catalogue, photos[0], tmp_path / "nowhere.jpg")
    assert done.returncode == 1
    assert "cannot read" in done.stderr and "nowhere.jpg: the file does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert "1 of 2 queries failed" in done.stderr


def test_a_csv_is_not_overwritten_when_no_query_could_be_searched(indexed, tmp_path):
    """Every query failing wrote a CSV of its header alone over the one asked for (a reviewer, round 13)."""
    _, catalogue, _, _ = indexed
    out = tmp_path / "matches.csv"
    out.write_text("kept from the last meeting\n")
    done = run("query", "--catalogue", catalogue, tmp_path / "nowhere.jpg", tmp_path / "gone.png", "--csv", out)
    assert done.returncode == 1 and "matches.csv not written: no query could be searched" in done.stderr
    assert out.read_text() == "kept from the last meeting\n"


def test_missing_and_damaged_catalogues(tmp_path):
    missing = run("query", "--catalogue", tmp_path / "none.swimcat", tmp_path / "q.jpg")
    assert missing.returncode == 1 and "There is no catalogue" in missing.stderr
    bad = tmp_path / "bad.swimcat"
    bad.write_bytes(b"garbage" * 100)
    damaged = run("info", "--catalogue", bad)
    assert damaged.returncode == 1 and "not a SwimSearch catalogue" in damaged.stderr
    assert bad.read_bytes() == b"garbage" * 100
    assert "Traceback" not in damaged.stderr + missing.stderr


def test_bad_arguments_exit_2(indexed, tmp_path):
    _, catalogue, _, _ = indexed
    assert run("query", "--catalogue", catalogue).returncode == 2  # no image given
    assert run("query", "--catalogue", catalogue, "--top", "zero", "x.jpg").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("index", tmp_path / "not-there").returncode == 2
    # a minimum is a fraction or a percent: "50" (meant as percent) or nan would silently find nothing
    for wrong in ("50", "nan"):
        done = run("query", "--catalogue", catalogue, "--min-score", wrong, "x.jpg")
        assert done.returncode == 2 and "0.5 or 50% keeps the matches shown 50% or more" in done.stderr
        assert "-1" not in done.stderr


def test_min_score_keeps_what_is_shown_at_the_minimum(indexed):
    """--min-score is on the percent a user reads, as the window's minimum: a match shown "50%" at 0.496
    passes a minimum of 50% (or 0.5), and nothing shown below it does."""
    folder, catalogue, photos, _ = indexed
    everything = run("query", "--catalogue", catalogue, "--top", "14", "--csv", "-", *photos[:6])
    assert everything.returncode == 0, everything.stderr
    rows = list(csv.DictReader(io.StringIO(everything.stdout)))
    rounded_up = [r for r in rows if 100 * float(r["score"]) < int(r["similarity"]) < 100]
    assert rounded_up, "no match of six queries reads a percent its score rounds up to"
    row = rounded_up[0]
    shown = int(row["similarity"])
    for minimum in (f"{shown}%", str(shown / 100)):
        cut = run("query", "--catalogue", catalogue, "--top", "14", "--min-score", minimum, "--csv", "-", row["query"])
        assert cut.returncode == 0, cut.stderr
        kept = list(csv.DictReader(io.StringIO(cut.stdout)))
        assert row["path"] in [r["path"] for r in kept]
        assert all(int(r["similarity"]) >= shown for r in kept)
        expected = [r["path"] for r in rows if r["query"] == row["query"] and int(r["similarity"]) >= shown]
        assert [r["path"] for r in kept] == expected


def test_a_query_list_saved_with_a_bom_and_a_copy_at_min_score_1(indexed, tmp_path):
    folder, catalogue, photos, _ = indexed
    listfile = tmp_path / "queries.txt"
    listfile.write_text(f"{photos[0]}\r\n", encoding="utf-8-sig")  # as Notepad saves it
    outside = tmp_path / "outside.jpg"  # the same bytes, from outside the catalogue's folder
    shutil.copy(photos[0], outside)
    done = run("query", "--catalogue", catalogue, "--queries", listfile, outside, "--min-score", "1", "--csv", "-")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    by_query = {q: sorted(r["path"] for r in rows if r["query"] == q) for q in (str(photos[0]), str(outside))}
    identical = sorted([str(photos[0]), str(folder / "copy of first.jpg")])
    assert by_query[str(photos[0])] == identical and by_query[str(outside)] == identical


def test_info_and_duplicates(indexed):
    folder, catalogue, photos, _ = indexed
    info = run("info", "--catalogue", catalogue, "--unreadable")
    assert info.returncode == 0
    assert "14 (13 readable, 1 unreadable, 13 searchable)" in info.stdout
    assert "broken.jpg" in info.stdout
    dups = run("duplicates", "--catalogue", catalogue)
    assert dups.returncode == 0
    assert "group 1: 2 files" in dups.stdout
    assert str(photos[0]) in dups.stdout and "copy of first.jpg" in dups.stdout


def test_eval_reports_the_figures_of_exact_ranking_with_unlabelled_distractors(indexed, tmp_path):
    import json

    import numpy as np

    from swimsearch.catalogue import Catalogue
    from swimsearch.inputs import read_labels
    from swimsearch.metrics import exact_cosine_hits, quality

    folder, catalogue, photos, _ = indexed
    labels_csv = folder / "labels.csv"  # "copy of first.jpg" and broken.jpg stay unlabelled
    rows = ["path,label,sender"] + [f"{p.name},{'AB'[i % 2]},{i // 4}" for i, p in enumerate(photos)]
    labels_csv.write_text("\n".join(rows) + "\n")
    out, plot = tmp_path / "eval.json", tmp_path / "eval.png"
    done = run("eval", "--catalogue", catalogue, "--labels", labels_csv, "--exclude-column", "sender", "--json", out, "--plot", plot,
               "--baseline")  # the earlier search (before issue 11): exact cosine at this size
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert "mAP@10" in done.stdout and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures["embed_ms"]["median"] > 0 and figures["total_ms"]["p95"] >= figures["total_ms"]["median"]

    labels = read_labels(labels_csv, label_column="label", exclude_column="sender")
    with Catalogue.open(str(catalogue)) as cat:
        ids = [cat.record_by_path(p).image_id for p in labels.paths]
        stored = cat.embeddings(ids)
        everything = cat.embedding_matrix(cat.load_snapshot().ids).vectors.astype(np.float64)
        centred = np.stack([stored[i] for i in ids]).astype(np.float64) - everything.mean(axis=0)
    vectors = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    hits = exact_cosine_hits(vectors, labels, max_rank=len(photos) - 1)
    expected = quality(np.pad(hits, ((0, 0), (0, 100 - hits.shape[1]))), labels.relevant_counts())
    assert figures["queries"] == len(photos)
    for key, value in expected.as_dict().items():
        assert figures[key] == pytest.approx(value, abs=1e-6), key
    compared = run("eval", "--catalogue", catalogue, "--labels", labels_csv, "--exclude-column", "sender", "--json", out)
    assert compared.returncode == 0, compared.stderr
    methods = json.loads(out.read_text())["methods"]
    assert list(methods) == ["this catalogue's search", "the earlier search (without neighbour lists)", "exact cosine"]
    assert "the earlier search (without neighbour lists)" in compared.stdout and "issue" not in compared.stdout
    assert methods["exact cosine"]["map@10"] == pytest.approx(expected.map10, abs=1e-6)
    assert "including same sender" in compared.stdout and "per label" in compared.stdout


def test_duplicates_csv_lists_each_file_of_each_group(indexed, tmp_path):
    folder, catalogue, photos, _ = indexed
    out = tmp_path / "copies.csv"
    done = run("duplicates", "--catalogue", catalogue, "--csv", out)
    assert done.returncode == 0, done.stderr
    text = out.read_bytes().decode("utf-8")
    assert text.startswith("group,path,group_size,max_phash_distance\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["path"] for r in rows) == sorted([str(photos[0]), str(folder / "copy of first.jpg")])
    assert {(r["group"], r["group_size"], r["max_phash_distance"]) for r in rows} == {("1", "2", "0")}
    assert "wrote 2 rows for 1 groups" in done.stderr
    to_stdout = run("duplicates", "--catalogue", catalogue, "--csv", "-", cwd=tmp_path)  # as query --csv - does
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.replace("\r\n", "\n") == text.replace("\r\n", "\n")  # the rows only, no list after them
    assert not (tmp_path / "-").exists()


def test_eval_and_query_read_the_same_list_files(indexed, tmp_path):
    import json

    folder, catalogue, photos, _ = indexed
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("path,label\n" + "".join(f"{p},{'AB'[i % 2]}\n" for i, p in enumerate(photos)))
    listfile = tmp_path / "queries.txt"  # as Notepad saves it, with a comment and a blank line
    listfile.write_text(f"# three of them\r\n{photos[1]}\r\n\r\n{photos[2]}\r\n{photos[5]}\r\n", encoding="utf-8-sig")
    done = run("eval", "--catalogue", catalogue, "--labels", labels_csv, "--queries", listfile, "--json", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout[done.stdout.index("{"):])["queries"] == 3
    query = run("query", "--catalogue", catalogue, "--queries", listfile, "--top", "1", "--csv", "-")
    assert query.returncode == 0 and len(list(csv.DictReader(io.StringIO(query.stdout)))) == 3

    listfile.write_bytes(f"{photos[1]}\n/designs/\xe9t\xe9.jpg\n".encode("latin-1"))
    for command in ("eval", "query"):
        args = ("--labels", labels_csv) if command == "eval" else ()
        bad = run(command, "--catalogue", catalogue, *args, "--queries", listfile)
        assert bad.returncode == 2 and f"line 2 of the list {listfile} is not UTF-8" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    wrong = run("eval", "--catalogue", catalogue, "--labels", labels_csv, "--group-column", "kind")
    assert wrong.returncode == 2 and "has no column 'kind'" in wrong.stderr and "Traceback" not in wrong.stderr
    nothing = tmp_path / "other.csv"
    nothing.write_text("path,label\n/elsewhere/a.jpg,A\n")
    none = run("eval", "--catalogue", catalogue, "--labels", nothing)
    assert none.returncode == 1 and "no labelled image of the CSV is in this catalogue" in none.stderr
    relative = tmp_path / "relative.csv"  # names as the catalogue's folder has them, but beside the CSV they are not
    relative.write_text(f"path,label\n{photos[0].name},A\n{photos[1].name},B\n")
    elsewhere = run("eval", "--catalogue", catalogue, "--labels", relative)
    assert elsewhere.returncode == 1 and elsewhere.stderr.splitlines() == [
        f"swimsearch: no labelled image of the CSV is in this catalogue of {folder.resolve()}: the CSV's paths were looked "
        f"for as written, relative ones from the CSV's folder (the first as {tmp_path.resolve() / photos[0].name})"
    ]


def test_query_writes_one_contact_sheet_with_a_section_per_query(indexed, tmp_path):
    import re

    folder, catalogue, photos, _ = indexed
    html_out, pdf_out = tmp_path / "meeting.html", tmp_path / "meeting.pdf"
    for out in (html_out, pdf_out):
        done = run("query", "--catalogue", catalogue, "--top", 3, "--min-score", "0.2", "--sheet", out, photos[0], photos[4])
        assert done.returncode == 0, done.stderr
        assert "wrote a contact sheet of" in done.stderr and "for 2 queries" in done.stderr
    page = html_out.read_text(encoding="utf-8")
    assert page.count("<section>") == 2 and page.count("<figure") <= 6
    assert f"Query: {photos[0].name}" in page and f"Query: {photos[4].name}" in page
    assert "Contact sheet — " in page and "Filters: the 3 best matches per query, at least 20% similar" in page
    assert f">1. {photos[0].name}<" in page and ">100% same design<" in page and "the query itself" in page
    assert "duplicate" in page  # "copy of first.jpg" is a copy of photos[0]
    pdf = pdf_out.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert re.findall(rb"/Count (\d+)", pdf) == [b"2"]  # two pages: each query starts one
    assert pdf.count(b"/Subtype /Image") >= 3 and b"/FontFile2" in pdf  # thumbnails and an embedded Unicode font
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meeting.html", "meeting.pdf"]  # no temporary left
    wrong = run("query", "--catalogue", catalogue, "--sheet", tmp_path / "sheet.docx", photos[0])
    assert wrong.returncode == 2 and "--sheet writes a contact sheet, so its name ends in .pdf or .html" in wrong.stderr
    assert wrong.stderr.startswith("usage: swimsearch query")


def test_the_csv_has_per_match_columns_and_a_sidecar_with_the_identity(indexed, tmp_path):
    import json

    folder, catalogue, photos, _ = indexed
    out = tmp_path / "matches.csv"
    done = run("query", "--catalogue", catalogue, "--top", 2, "--csv", out, photos[0])
    assert done.returncode == 0, done.stderr
    header = out.read_bytes().split(b"\r\n", 1)[0].decode()
    assert header == "query,rank,path,score,similarity,band,file_name,folder,width,height,duplicate,mirrored,missing,decision"
    about = json.loads((tmp_path / "matches.about.json").read_text(encoding="utf-8"))
    assert about["catalogue"] == display_address(str(catalogue)) and len(about["model_sha256"]) == 64 and about["queries"] == 1
    assert about["filters"] == "the 2 best matches per query" and about["columns"]["similarity"]


def test_every_argument_says_what_it_is_and_errors_show_the_commands_own_usage(indexed):
    _, catalogue, _, _ = indexed
    for command in ("query", "info", "duplicates", "eval"):
        text = run(command, "--help").stdout
        assert "the catalogue file, or the folder it was built from" in text, command
    assert "picture files to search with" in run("query", "--help").stdout
    eval_help = " ".join(run("eval", "--help").stdout.split())
    assert "relative paths are read from the CSV's own folder" in eval_help and "issue" not in eval_help
    done = run("query", "--catalogue", catalogue)  # no image given
    assert done.returncode == 2 and done.stderr.startswith("usage: swimsearch query")
    assert "give at least one IMAGE" in done.stderr


def test_the_eval_plot_is_titled_by_what_was_measured_not_by_a_folder(indexed, tmp_path, monkeypatch):
    import swimsearch.plot
    from PIL import Image

    from swimsearch import cli

    folder, catalogue, photos, _ = indexed
    labels_csv = tmp_path / "machine-specific-folder-name" / "labels.csv"
    labels_csv.parent.mkdir()
    labels_csv.write_text("path,label,sender\n" + "".join(f"{p},{'AB'[i % 2]},{i // 4}\n" for i, p in enumerate(photos)))
    titles = []
    real = swimsearch.plot.draw_quality_plot
    monkeypatch.setattr(swimsearch.plot, "draw_quality_plot", lambda report, out, **kw: titles.append(kw["title"]) or real(report, out, **kw))
    plot = tmp_path / "eval.png"
    assert cli.main(["eval", "--catalogue", str(catalogue), "--labels", str(labels_csv), "--plot", str(plot)]) == 0
    assert titles == [f"labels.csv: {len(photos)} queries"] and plot.read_bytes()[:4] == b"\x89PNG"
    # the chart says which matches its figures count, as the text output does
    assert Image.open(plot).text["Protocol"] == "counting every match (no --exclude-column)"
    assert cli.main(["eval", "--catalogue", str(catalogue), "--labels", str(labels_csv), "--plot", str(plot),
                     "--title", "Spring range", "--exclude-column", "sender"]) == 0
    assert titles[-1] == "Spring range"
    written = Image.open(plot).text
    assert written["Title"] == "Spring range" and written["Protocol"].startswith("excluding same sender:")


def test_the_eval_plot_draws_its_protocol_under_the_headline():
    """The protocol is on the picture, not only in the file's text: someone sent the PNG reads it."""
    import io

    from PIL import Image

    from swimsearch.metrics import QualityReport
    from swimsearch.plot import draw_quality_plot

    curve = tuple(1 - i / 200 for i in range(100))
    report = QualityReport(0.5, 0.6, 0.5, 0.4, curve, tuple(i / 100 for i in range(100)), 10)
    band = (40, 56, 900, 80)  # under the headline, above the panels' titles

    def inked(protocol: str) -> int:
        out = io.BytesIO()
        draw_quality_plot(report, out, title="labels.csv: 10 queries", protocol=protocol)
        return sum(Image.open(out).convert("L").crop(band).histogram()[:128])  # dark pixels

    assert inked("") == 0
    assert inked("excluding same sender_id: matches sharing the query's sender_id are left out") > 500


# --- team catalogues: another computer's mount, passwords, copies -----------------------------------


@pytest.fixture
def team_photos(tmp_path, clothing, pg_database):
    """Eight photos indexed into a team catalogue by an editor with a password; the folder and the address."""
    from swimsearch.stores.pg_schema import CatalogueNames

    folder = tmp_path / "share"
    copy_clothing_photos(clothing, folder / "summer", 8, offset=5)
    editor = pg_database.create_role("anna", password="pa55word")
    with pg_database.connect() as conn:
        conn.execute(f'GRANT CREATE ON DATABASE "{pg_database.name}" TO "{editor}"')
        conn.execute(f'ALTER ROLE "{editor}" CREATEROLE')
    names = CatalogueNames.of("shared", pg_database.name)
    pg_database.roles += [names.editor, names.viewer]
    address = pg_database.url(editor, "pa55word") + "&catalogue=shared"
    done = run("index", folder, "--catalogue", address)
    assert done.returncode == 0, done.stderr
    return folder, address


def test_another_computer_names_its_own_mount_with_root(team_photos, tmp_path):
    folder, address = team_photos
    mount = tmp_path / "Volumes" / "share"
    shutil.copytree(folder, mount)
    photo = sorted((mount / "summer").glob("*.jpg"))[2]
    shutil.rmtree(folder)  # on this computer the share is only at `mount`
    lost = run("query", "--catalogue", address, photo, "--top", 1)
    assert lost.returncode == 0 and lost.stderr.count("not reachable here") == 1 and "--root PATH" in lost.stderr
    out = tmp_path / "found.csv"
    found = run("query", "--catalogue", address, "--root", mount, photo, "--top", 1, "--csv", out)
    assert found.returncode == 0, found.stderr
    row = next(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert row["path"] == str(photo) and float(row["score"]) == 1.0
    about = (tmp_path / "found.about.json").read_text(encoding="utf-8")
    assert "pa55word" not in found.stdout + found.stderr + about and '"catalogue": "postgresql://anna_' in about
    info = run("info", "--catalogue", address, "--root", mount)
    assert f"indexed as  {folder}" in info.stdout and "(login anna_" in info.stdout and "editor" in info.stdout
    assert "changed     " in info.stdout and "(login anna_" in info.stdout and " added or re-read 8 files (first summer/" in info.stdout
    assert "{" not in info.stdout and "unreadable 0" not in info.stdout  # sentences, not the change log's raw fields
    update = run("index", mount / "summer", "--catalogue", address)  # the mount found from the folder given
    assert update.returncode == 0 and "8 unchanged" in update.stdout, update.stderr


def test_copy_a_team_catalogue_to_a_file_and_back(team_photos, tmp_path):
    folder, address = team_photos
    as_file = tmp_path / "copy.swimcat"
    out = run("copy", "--catalogue", address, "--to", as_file)
    assert out.returncode == 0, out.stderr
    assert "8 images copied (8 with embeddings, 8 searchable); embeddings identical (sha256 " in out.stdout
    assert "fitted index kept" in out.stdout
    back_address = address.replace("catalogue=shared", "catalogue=back")
    back = run("copy", "--catalogue", as_file, "--to", back_address)
    assert back.returncode == 0, back.stderr
    digest = out.stdout.split("sha256 ")[1][:16]
    assert f"sha256 {digest}" in back.stdout
    photo = sorted((folder / "summer").glob("*.jpg"))[4]
    lists = [run("query", "--catalogue", c, photo, "--top", 5, "--csv", "-").stdout for c in (address, as_file, back_address)]
    ranked = [[(r["rank"], r["path"], r["score"]) for r in csv.DictReader(io.StringIO(text))] for text in lists]
    assert ranked[0] == ranked[1] == ranked[2] and len(ranked[0]) == 5
    again = run("copy", "--catalogue", as_file, "--to", back_address)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_copy_reads_the_catalogue_not_the_pictures_and_root_means_what_it_means_everywhere(team_photos, tmp_path):
    folder, address = team_photos
    shutil.move(folder, tmp_path / "elsewhere")  # the shared folder is not mounted on this computer
    exists = run("copy", "--catalogue", address, "--to", address)  # onto an existing catalogue: that is the problem
    assert exists.returncode == 1 and "already exists" in exists.stderr and "not reachable" not in exists.stderr
    as_file = tmp_path / "away.swimcat"
    away = run("copy", "--catalogue", address, "--to", as_file)
    assert away.returncode == 0, away.stderr
    assert "8 images copied" in away.stdout and away.stderr.count("not reachable here") == 1
    assert f"folder      {folder}  (missing!)" in run("info", "--catalogue", as_file).stdout  # the same folder, named
    back = run("copy", "--catalogue", as_file, "--to", address.replace("catalogue=shared", "catalogue=again"))
    assert back.returncode == 0 and "8 images copied" in back.stdout, back.stderr
    assert back.stderr.count("is not on this computer") == 1
    mapped = tmp_path / "mapped.swimcat"
    found = run("copy", "--catalogue", address, "--to", mapped, "--root", tmp_path / "elsewhere")
    assert found.returncode == 0 and found.stderr == "", found.stderr
    assert f"folder      {tmp_path / 'elsewhere'}\n" in run("info", "--catalogue", mapped).stdout
    photo = sorted((tmp_path / "elsewhere" / "summer").glob("*.jpg"))[0]
    for command in (["query", "--catalogue", as_file, "--root", tmp_path, photo],
                    ["copy", "--catalogue", as_file, "--to", tmp_path / "x.swimcat", "--root", tmp_path]):
        refused = run(*command)  # a catalogue file finds its own folder: --root is refused alike by every command
        assert refused.returncode == 2 and "--root is for team catalogues" in refused.stderr, command
    assert not (tmp_path / "x.swimcat").exists()


def test_info_on_a_half_updated_team_catalogue_says_what_is_left_and_its_command_finishes_it(tmp_path, clothing, pg_database):
    import signal
    import time

    folder = tmp_path / "share"
    copy_clothing_photos(clothing, folder, 40)
    address = pg_database.url() + "&catalogue=half"
    update = subprocess.Popen([sys.executable, "-m", "swimsearch.cli", "index", str(folder), "--catalogue", address],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    with pg_database.connect() as conn:  # killed once part of the pictures are stored, before the index is written
        while update.poll() is None and time.monotonic() < deadline:
            if conn.execute("SELECT to_regclass('cat_half.embeddings') IS NOT NULL").fetchone()[0] and \
                    conn.execute("SELECT count(*) FROM cat_half.embeddings").fetchone()[0] >= 8:
                break
            time.sleep(0.01)
    assert update.poll() is None, "the update finished before it could be killed"
    update.send_signal(signal.SIGKILL)
    update.wait()
    info = run("info", "--catalogue", address, "--check")
    assert info.returncode == 0, info.stderr
    assert "not searchable yet" in info.stdout and "the next update finishes it: swimsearch index" in info.stdout
    assert "check       records sound: " in info.stdout and "check       ok" not in info.stdout  # sound, not finished
    command = info.stdout.split("the next update finishes it: ", 1)[1].splitlines()[0]
    finished = subprocess.run(command.replace("swimsearch", f"{shlex.quote(sys.executable)} -m swimsearch.cli", 1), shell=True,
                              cwd=REPO, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0 and "40 images searchable" in finished.stdout, finished.stderr
    after = run("info", "--catalogue", address, "--check")
    assert "unfinished" not in after.stdout and "check       ok: " in after.stdout


def test_a_team_update_that_lost_a_subfolder_is_held_and_says_how_to_confirm_it(tmp_path, pg_database):
    from helpers import make_pattern_images

    folder = tmp_path / "share"
    make_pattern_images(folder / "mounted", 20)
    make_pattern_images(folder, 3, start=900)
    editor = pg_database.create_role("anna", password="pa55word")
    with pg_database.connect() as conn:
        conn.execute(f'GRANT CREATE ON DATABASE "{pg_database.name}" TO "{editor}"')
        conn.execute(f'ALTER ROLE "{editor}" CREATEROLE')
    address = pg_database.url(editor, "pa55word") + "&catalogue=held"
    assert run("index", folder, "--catalogue", address).returncode == 0
    (folder / "mounted").rename(tmp_path / "unmounted")
    held = run("index", folder, "--catalogue", address)
    assert held.returncode == 1 and "20 of the catalogue's 23 files are gone" in held.stderr
    hint = held.stderr.split("update again with: ", 1)[1].strip()
    assert hint == f"swimsearch index {folder} --catalogue {display_address(address)} --allow-removal"
    assert "pa55word" not in held.stdout + held.stderr
    confirmed = run("index", folder, "--catalogue", address, "--allow-removal")
    assert confirmed.returncode == 0 and "20 removed" in confirmed.stdout, confirmed.stderr


@pytest.mark.parametrize("typo", ["postgressql://anna:secret@/designs", "postgresql:/anna:secret@/designs", "postgresql//anna:secret@/designs"])
def test_a_mistyped_team_address_is_refused_without_making_folders_or_repeating_its_password(tmp_path, clothing, typo):
    folder = tmp_path / "designs"
    copy_clothing_photos(clothing, folder, 2)
    done = run("index", str(folder), "--catalogue", typo, cwd=tmp_path)
    assert done.returncode == 2
    assert "secret" not in done.stdout + done.stderr and "mistyped" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["designs"]  # no folders named after the address


def test_info_on_a_catalogue_with_nothing_indexed_yet_says_so(tmp_path):
    from swimsearch.catalogue import Catalogue

    Catalogue.create(tmp_path / "empty.swimcat", tmp_path).close()  # what a copy stopped before its end leaves
    out = run("info", "--catalogue", tmp_path / "empty.swimcat")
    assert out.returncode == 0, out.stderr
    assert "model       none yet (nothing indexed)" in out.stdout and "None" not in out.stdout
