"""Flat pictures (colour swatches) of different colours are neither near-identical copies nor the same design.

A new user's review (round 12): five plain swatches (red, navy, green, white,
black) were one group of near-identical files, *Review duplicates* offered to
move four aside, and a search by the red one read the others 96-98 % *same
design*, each a duplicate. imagehash's pHash of every flat picture is the same
value, so the pHash called them copies, and a copy stood without the look at
the pictures. Real model, real photos.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers import copy_clothing_photos
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.duplicates import find_duplicate_groups
from swimsearch.images import load_image
from swimsearch.phash_index import UNKNOWN, copy_distances, informative
from swimsearch.search import SearchEngine

#: imagehash's pHash of a flat picture of any colour but black (black's is 0, "unknown" in a catalogue).
FLAT = 0x8000_0000_0000_0000
SWATCHES = {"red": (200, 0, 0), "navy": (0, 0, 128), "green": (0, 128, 0), "white": (255, 255, 255), "black": (0, 0, 0)}


def _phash(picture: Image.Image, kind: str | None = None, **options) -> int:
    if kind is not None:  # through a file, as a catalogue reads it
        data = io.BytesIO()
        picture.save(data, kind, **options)
        picture = Image.open(io.BytesIO(data.getvalue()))
    return load_image(picture, 64).phash


def test_the_pHash_of_a_flat_picture_is_one_value_that_says_nothing(clothing):
    rng = np.random.default_rng(0)
    noisy = np.clip(200 + rng.normal(0, 1, (600, 600, 3)), 0, 255).astype(np.uint8)
    faint = np.tile(np.linspace(120, 136, 600), (600, 1)).astype(np.uint8)  # a ramp of 16 grey levels
    flat = {
        **{name: _phash(Image.new("RGB", (600, 600), colour), "JPEG", quality=90) for name, colour in SWATCHES.items()},
        "transparent PNG": _phash(Image.new("RGBA", (400, 533), (0, 0, 0, 0)), "PNG"),
        "one red pixel": _phash(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"),
        "grey TIFF": _phash(Image.new("L", (300, 300), 128), "TIFF"),
        "JPEG noise on a flat fill": _phash(Image.fromarray(noisy), "JPEG", quality=60),
        "a faint ramp": _phash(Image.fromarray(faint).convert("RGB")),
    }
    assert {name: value for name, value in flat.items() if value != FLAT} == {"black": 0}
    assert not informative(np.array(list(flat.values()), np.uint64)).any()
    assert (copy_distances(FLAT, np.array([FLAT, 0], np.uint64)) == UNKNOWN).all()
    photos = sorted((clothing / "images").glob("*.jpg"))[::50][:40]
    hashes = np.array([load_image(p, 64).phash for p in photos], np.uint64)
    assert informative(hashes).all()  # every photo's pHash holds its picture (32 of 64 bits set)
    resaved = io.BytesIO()
    ImageOps.exif_transpose(Image.open(photos[0])).convert("RGB").save(resaved, "JPEG", quality=85)
    assert copy_distances(int(hashes[0]), np.array([load_image(Image.open(resaved), 64).phash], np.uint64))[0] <= 2


@pytest.fixture(scope="module")
def swatches(tmp_path_factory, clothing, embedder):
    """12 photos and a re-export of one; five swatches of different colours and a byte-identical copy of the red one."""
    folder = tmp_path_factory.mktemp("swatches")
    photos = copy_clothing_photos(clothing, folder, 12)
    ImageOps.exif_transpose(Image.open(photos[0])).convert("RGB").save(folder / "zz-reexport.jpg", quality=85)
    for name, colour in SWATCHES.items():
        Image.new("RGB", (600, 600), colour).save(folder / f"swatch-{name}.jpg", quality=90)
    shutil.copy(folder / "swatch-red.jpg", folder / "zz-red-copy.jpg")
    path = folder / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    return folder, path, photos[0]


def _groups(engine: SearchEngine, **options) -> list[set[str]]:
    return [{p.rsplit("/", 1)[-1] for p in group.paths} for group in find_duplicate_groups(engine, **options)]


def test_swatches_of_different_colours_are_not_duplicates_but_a_byte_identical_copy_is(swatches, embedder):
    folder, path, photo = swatches
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        # the catalogue keeps imagehash's values as ever: the rule is where pHashes are compared (no rebuild)
        by_name = {r.relpath: r.phash for r in engine.records(engine.searchable_ids()).values()}
        assert {by_name[f"swatch-{name}.jpg"] for name in SWATCHES} == {FLAT, 0}
        near_identical, one_design = _groups(engine), _groups(engine, same_design=True)
    assert sorted(map(sorted, near_identical)) == [[photo.name, "zz-reexport.jpg"], ["swatch-red.jpg", "zz-red-copy.jpg"]]
    for groups in (near_identical, one_design):
        for group in groups:
            assert len({name for name in group if name.startswith("swatch-")}) <= 1, group  # never two colours
    assert {"swatch-red.jpg", "zz-red-copy.jpg"} in one_design


def test_a_swatch_reads_other_colours_below_same_design_and_its_copy_as_itself(swatches, embedder):
    folder, path, _ = swatches
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        by_file = engine.search(folder / "swatch-red.jpg", top_n=10).matches
        for matches in (by_file, engine.search_id(by_file[0].image_id, top_n=10).matches):
            assert [m.name for m in matches[:2]] == ["swatch-red.jpg", "zz-red-copy.jpg"]
            copy = matches[1]
            assert (copy.score, copy.band, copy.duplicate) == (1.0, "same design", True)  # the very same picture
            others = [m for m in matches if m.name.startswith("swatch-") and m.name != "swatch-red.jpg"]
            assert len(others) == 4
            for m in others:  # the look at the pictures takes them out of *same design*: no design to match
                assert m.band != "same design" and not m.duplicate and m.phash_distance is None, m
                assert m.score < 0.9, m


def test_a_photo_and_its_re_export_stay_duplicates(swatches, embedder):
    folder, path, photo = swatches
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        matches = engine.search(photo, top_n=5).matches
    export = next(m for m in matches if m.name == "zz-reexport.jpg")
    assert export.duplicate and export.band == "same design" and export.phash_distance is not None
    assert export.phash_distance <= EngineConfig().duplicate_distance
    assert not any(m.duplicate for m in matches if m.name.startswith("swatch-"))
