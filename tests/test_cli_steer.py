"""The query command's steering options (issue 12 items 2-3) on generated pictures, with the real model:
`--region X,Y,W,H` (search by a detail) and `--colour-weight W` (how much colour matters)."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import subprocess
import sys

import pytest

from helpers import REPO, make_steering_designs
from swimsearch.regions import Box
from test_details import forget_details


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "swimsearch.cli", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def ranked(csv_path) -> list[str]:
    """The file names of a one-query CSV, best first."""
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    return [r["path"].rsplit("/", 1)[-1] for r in rows]


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    """The generated steering designs (helpers.make_steering_designs), the catalogue built by `swimsearch index`."""
    folder = tmp_path_factory.mktemp("steer") / "designs"
    query, box = make_steering_designs(folder)
    catalogue = folder.parent / "designs.swimcat"
    done = run("index", folder, "--catalogue", catalogue)
    assert done.returncode == 0, done.stderr
    return folder, catalogue, query, Box(*box).text()


def test_region_finds_the_designs_that_hold_the_detail_anywhere(steered, tmp_path):
    folder, catalogue, query, region_box = steered
    region, whole = tmp_path / "region.csv", tmp_path / "whole.csv"
    done = run("query", "--catalogue", catalogue, query, "--region", region_box, "--top", 10, "--csv", region)
    assert done.returncode == 0, done.stderr
    assert run("query", "--catalogue", catalogue, query, "--top", 10, "--csv", whole).returncode == 0
    printed = {"with-print-0.jpg", "with-print-1.jpg", "with-print-2.jpg"}
    by_detail, by_whole = ranked(region), ranked(whole)
    assert set(by_detail[:3]) == printed  # the three designs carrying the print, first
    assert by_whole[0] == "dress-02.jpg"  # the whole picture finds the dress the print is on first
    assert f"by the detail {region_box} of the picture" in (tmp_path / "region.about.json").read_text()


def test_region_as_a_printed_list_and_bad_boxes_in_one_sentence(steered):
    folder, catalogue, query, region_box = steered
    done = run("query", "--catalogue", catalogue, query, "--region", region_box, "--top", 3)
    assert done.returncode == 0 and "detail" in done.stdout.splitlines()[0]
    assert sum("with-print-" in line for line in done.stdout.splitlines()[1:]) == 3
    for box, words in (("0.5,0.5", "four fractions"), ("0.8,0.1,0.5,0.5", "not inside the picture"), ("0,0,0.01,0.5", "too small"),
                       ("-0.1,0,0.5,0.5", "not inside the picture")):  # a leading '-' is a value, not an option
        bad = run("query", "--catalogue", catalogue, query, "--region", box)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    bad = run("query", "--catalogue", catalogue, query, "--colour-weight", "-inf")
    assert bad.returncode == 2 and "from 0 (ignore colour) to 1" in bad.stderr, bad.stderr


def test_colour_weight_ignore_ranks_the_other_colourway_next_and_match_ranks_the_same_colours_next(steered):
    folder, catalogue, query, region_box = steered
    orders = {}
    for weight in ("0", "0.5", "1"):
        out = folder.parent / f"colour-{weight}.csv"
        done = run("query", "--catalogue", catalogue, folder / "tshirt-01.jpg", "--colour-weight", weight, "--top", 4, "--csv", out)
        assert done.returncode == 0, done.stderr
        orders[weight] = ranked(out)
    assert orders["0"][:3] == ["tshirt-01.jpg", "tee-other-colourway.jpg", "tee-cropped.jpg"]  # ignore colour
    assert orders["1"][:3] == ["tshirt-01.jpg", "tee-cropped.jpg", "tee-other-colourway.jpg"]  # match colour
    for weight in ("-0.1", "2", "red", "nan"):
        bad = run("query", "--catalogue", catalogue, folder / "tshirt-01.jpg", "--colour-weight", weight)
        assert bad.returncode == 2 and "from 0 (ignore colour) to 1 (match colour)" in bad.stderr, bad.stderr


def test_region_on_a_catalogue_built_before_details_says_to_update_it(steered, tmp_path):
    folder, catalogue, query, region_box = steered
    older = tmp_path / "older.swimcat"
    shutil.copy(catalogue, older)
    forget_details(older)
    done = run("query", "--catalogue", older, query, "--region", region_box)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "built before SwimSearch kept the details of pictures: update it" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    with sqlite3.connect(older) as conn:  # it was migrated, not damaged
        assert conn.execute("SELECT count(*) FROM images").fetchone()[0] > 20


def test_colour_weight_steers_a_search_steered_away_from_a_design_too(steered):
    """--colour-weight beside --unlike (the steered search of steered.py): the same two orders as without it."""
    folder, catalogue, query, region_box = steered
    orders = {}
    for weight in ("0", "1"):
        out = folder.parent / f"unlike-colour-{weight}.csv"
        done = run("query", "--catalogue", catalogue, folder / "tshirt-01.jpg", "--unlike", folder / "dress-05.jpg",
                   "--colour-weight", weight, "--top", 4, "--csv", out)
        assert done.returncode == 0, done.stderr
        orders[weight] = ranked(out)
        assert "dress-05.jpg" not in orders[weight]
    assert orders["0"][:3] == ["tshirt-01.jpg", "tee-other-colourway.jpg", "tee-cropped.jpg"]  # ignore colour
    assert orders["1"][:3] == ["tshirt-01.jpg", "tee-cropped.jpg", "tee-other-colourway.jpg"]  # match colour


def test_region_with_a_steered_search_is_a_usage_error(steered):
    folder, catalogue, query, region_box = steered
    done = run("query", "--catalogue", catalogue, query, "--region", region_box, "--unlike", folder / "dress-05.jpg")
    assert done.returncode == 2 and "--region searches by a detail of one picture" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_box_on_a_white_margin_or_a_one_pixel_picture_is_searched_with_a_note(steered, tmp_path):
    from PIL import Image

    folder, catalogue, query, region_box = steered
    framed = Image.new("RGB", (600, 600), "white")
    framed.paste(Image.open(query).convert("RGB").resize((250, 250)), (330, 330))
    framed.save(tmp_path / "framed.png")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tmp_path / "pixel.png")
    margin = run("query", "--catalogue", catalogue, tmp_path / "framed.png", "--region", "0,0,0.4,0.4", "--top", 3)
    assert margin.returncode == 0 and "the box is one flat colour with no design in it" in margin.stderr
    assert "Traceback" not in margin.stderr and len(margin.stdout.strip().splitlines()) == 4  # searched all the same
    pixel = run("query", "--catalogue", catalogue, tmp_path / "pixel.png", "--region", "0.2,0.2,0.5,0.5", "--top", 3)
    assert pixel.returncode == 0 and "the box is only 1 x 1 pixels, too small to show a design" in pixel.stderr
    design = run("query", "--catalogue", catalogue, tmp_path / "framed.png", "--region", "0.5,0.5,0.45,0.45", "--top", 3)
    assert design.returncode == 0 and "note:" not in design.stderr  # a box on the design: no note
