"""Steering from the command line, on generated prints and the real model: --together, --unlike, --folder, decisions."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from helpers import REPO, make_motif_images
from swimsearch.catalogue import Catalogue
from swimsearch.stores.verdicts import DIFFERENT, SAME


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "swimsearch.cli", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def prints(tmp_path_factory):
    """30 generated prints, 6 of each kind (stripes, dots, checks, diagonal, rings), 3 in summer/ and 3 in winter/."""
    folder = tmp_path_factory.mktemp("prints")
    make_motif_images(folder / "summer", 3, start=0)
    make_motif_images(folder / "winter", 3, start=3)
    catalogue = tmp_path_factory.mktemp("cat") / "prints.swimcat"
    built = run("index", folder, "--catalogue", catalogue)
    assert built.returncode == 0, built.stderr
    return folder, catalogue


def ranked(prints, *args, top=30) -> list[list[dict]]:
    """The CSV rows of `swimsearch query`, one list per query, paths relative to the prints folder."""
    folder, catalogue = prints
    done = run("query", "--catalogue", catalogue, "--top", top, "--csv", "-", *args)
    assert done.returncode == 0, done.stderr
    queries: dict[str, list[dict]] = {}
    for row in csv.DictReader(io.StringIO(done.stdout)):
        row["path"] = row["path"].replace(f"{folder}/", "")
        queries.setdefault(row["query"], []).append(row)
    return list(queries.values())


def kind(row) -> str:
    return row["path"].split("/")[-1].split("-")[0]


def test_several_images_are_one_query_with_together_and_each_their_own_without(prints):
    folder, _ = prints
    stripes, rings = folder / "summer" / "stripes-0.png", folder / "summer" / "rings-0.png"
    apart = ranked(prints, stripes, rings, top=6)
    assert len(apart) == 2
    assert apart[0][0]["path"] == "summer/stripes-0.png" and apart[1][0]["path"] == "summer/rings-0.png"
    assert sum(kind(r) == "stripes" for r in apart[0]) >= 5 and sum(kind(r) == "rings" for r in apart[1]) >= 5
    (together,) = ranked(prints, stripes, rings, "--together", top=12)
    assert together[0]["query"].startswith("2 designs")
    assert [r["path"] for r in together[-2:]] == ["summer/stripes-0.png", "summer/rings-0.png"]  # after the new designs
    assert [float(r["score"]) for r in together[-2:]] == [1.0, 1.0] and len(together) == 14
    together_kinds = [kind(r) for r in together]
    assert together_kinds.count("rings") >= 5 and together_kinds.count("stripes") >= 5  # both prints' families


def test_together_with_an_unreadable_picture_is_one_query_not_made(prints, tmp_path):
    folder, catalogue = prints
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    done = run("query", "--catalogue", catalogue, folder / "summer" / "stripes-0.png", broken, "--together")
    assert done.returncode == 1 and not done.stdout and f"cannot read {broken}" in done.stderr
    assert "no search was made with the 2 pictures together" in done.stderr and "queries failed" not in done.stderr


def test_many_examples_together_leave_the_top_to_new_designs(prints):
    """A designer who searches with a whole season wants new designs, not the season back."""
    folder, _ = prints
    season = sorted((folder / "summer").glob("*.png"))
    assert len(season) == 15
    (rows,) = ranked(prints, *season, "--together", top=5)
    summer = {f"summer/{p.name}" for p in season}
    assert len(rows) == 20 and not {r["path"] for r in rows[:5]} & summer  # 5 new designs first
    assert [r["path"] for r in rows[5:]] == [f"summer/{p.name}" for p in season]  # then the examples, as given


def test_unlike_pushes_that_kind_of_print_down(prints):
    folder, _ = prints
    query = folder / "summer" / "stripes-0.png"
    (before,) = ranked(prints, query)
    intruder = next(r for r in before if kind(r) != "stripes")  # the best match that is not a stripe
    unwanted = kind(intruder)
    (after,) = ranked(prints, query, "--unlike", folder / intruder["path"])
    assert intruder["path"] not in [r["path"] for r in after]
    assert [kind(r) for r in after[:6]] == ["stripes"] * 6
    positions = lambda rows: [n for n, r in enumerate(rows) if kind(r) == unwanted]  # noqa: E731
    assert sum(positions(after)) / len(positions(after)) > sum(positions(before)) / len(positions(before)) + 3
    done = run("query", "--catalogue", prints[1], "--unlike", folder / intruder["path"])
    assert done.returncode == 2 and "give at least one IMAGE or --queries LISTFILE to search with" in done.stderr
    # --unlike takes every name after it: the picture meant to search with went with it
    after = run("query", "--catalogue", prints[1], "--unlike", folder / intruder["path"], query)
    assert after.returncode == 2 and "put the IMAGEs before --unlike" in after.stderr and str(query) in after.stderr
    both = run("query", "--catalogue", prints[1], query, "--unlike", folder / intruder["path"], query)
    assert both.returncode == 2 and not both.stdout  # refused before any query, not a list that ignores "not like"
    assert f"{query} is both a picture to search with and one named by --unlike" in both.stderr


def test_folder_narrows_results_to_that_subfolder(prints):
    folder, catalogue = prints
    query = folder / "summer" / "stripes-0.png"
    (winter,) = ranked(prints, query, "--folder", "winter")
    assert len(winter) == 15 and all(r["path"].startswith("winter/") for r in winter)
    assert [kind(r) for r in winter[:3]] == ["stripes"] * 3  # the stripes of that season first
    (both,) = ranked(prints, query, "--folder", "winter", "--folder", str(folder / "summer"))
    assert len(both) == 30 and both[0]["path"] == "summer/stripes-0.png"
    wrong = run("query", "--catalogue", catalogue, "--folder", "autumn", query)
    assert wrong.returncode == 2 and "has no subfolder autumn with pictures (its subfolders: summer, winter)" in wrong.stderr
    outside = run("query", "--catalogue", catalogue, "--folder", "/tmp", query)
    assert outside.returncode == 2 and "is not inside the catalogue's folder" in outside.stderr


def test_decisions_are_listed_exported_and_steer_later_queries(prints, tmp_path):
    folder, catalogue = prints
    with Catalogue.open(catalogue) as cat:
        ids = {r.relpath: r.image_id for r in cat.records(range(1, 100)).values()}
        cat.decide(ids["summer/stripes-0.png"], ids["winter/rings-4.png"], SAME)
        cat.decide(ids["winter/stripes-4.png"], ids["summer/stripes-0.png"], DIFFERENT)
    try:
        (rows,) = ranked(prints, folder / "summer" / "stripes-0.png", top=8)
        assert [(r["path"], r["decision"]) for r in rows[:2]] == [("summer/stripes-0.png", ""), ("winter/rings-4.png", "same design")]
        assert (rows[-1]["path"], rows[-1]["decision"]) == ("winter/stripes-4.png", "not similar")  # was the best match
        listed = run("decisions", "--catalogue", catalogue)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert len(lines) == 2 and lines[0].startswith("same design   summer/stripes-0.png  winter/rings-4.png  (")
        assert lines[1].startswith("not similar   summer/stripes-0.png  winter/stripes-4.png")
        out = tmp_path / "decisions.csv"
        wrote = run("decisions", "--catalogue", catalogue, "--csv", out)
        assert wrote.returncode == 0 and f"wrote 2 decisions to {out}" in wrote.stderr
        exported = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert [(r["verdict"], r["a"], r["b"]) for r in exported] == [
            (SAME, str(folder / "summer/stripes-0.png"), str(folder / "winter/rings-4.png")),
            (DIFFERENT, str(folder / "summer/stripes-0.png"), str(folder / "winter/stripes-4.png")),
        ]
        assert all(r["who"] and r["when"][:2] == "20" for r in exported)
        with Catalogue.open(catalogue) as cat:
            cat.decide(ids["summer/stripes-0.png"], ids["winter/rings-4.png"], None)
        one = run("decisions", "--catalogue", catalogue, "--csv", out)
        assert f"wrote 1 decision to {out}" in one.stderr  # not "1 decisions"
    finally:
        with Catalogue.open(catalogue) as cat:
            for d in cat.decisions():
                cat.decide(d.a, d.b, None)
    assert "no decisions yet" in run("decisions", "--catalogue", catalogue).stdout


def test_region_narrowed_to_a_folder_finds_the_detail_only_there(prints):
    folder, catalogue = prints
    query = folder / "summer" / "stripes-0.png"
    (rows,) = ranked(prints, query, "--region", "0.25,0.25,0.5,0.5", "--folder", "winter", top=5)
    assert len(rows) == 5 and all(r["path"].startswith("winter/") for r in rows)
    (everywhere,) = ranked(prints, query, "--region", "0.25,0.25,0.5,0.5", top=30)
    in_winter = [r["path"] for r in everywhere if r["path"].startswith("winter/")]
    assert [r["path"] for r in rows] == in_winter[:5]  # the detail's own ranking, narrowed to the folder
    together = run("query", "--catalogue", catalogue, query, folder / "winter" / "dots-3.png", "--together", "--region", "0.25,0.25,0.5,0.5")
    assert together.returncode == 2 and "cannot be used with --together or --unlike" in together.stderr
    assert "Traceback" not in together.stderr


def test_a_picture_too_small_or_plain_to_hold_a_design_is_searched_with_a_note(prints, tmp_path):
    from PIL import Image

    folder, catalogue = prints
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tmp_path / "pixel.png")
    Image.new("RGB", (300, 300), (20, 90, 200)).save(tmp_path / "flat.png")
    for name, words in (("pixel.png", "the picture is only 1 x 1 pixels, too small to show a design"),
                        ("flat.png", "the picture is one flat colour with no design in it")):
        done = run("query", "--catalogue", catalogue, tmp_path / name, "--top", 3)
        assert done.returncode == 0 and len(done.stdout.splitlines()) > 1, done.stderr
        assert f"swimsearch: note: {words}, so its matches say little" in done.stderr
    plain = run("query", "--catalogue", catalogue, folder / "summer" / "stripes-0.png", "--top", 3)
    assert plain.returncode == 0 and "note:" not in plain.stderr
