"""Details a steered search needs (issue 12): kept per image at build time, in the store, and filled in for
catalogues built before; search by a detail and the colour control on generated pictures."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, make_pattern_images, save_with_print
from swimsearch.catalogue import Catalogue
from swimsearch.colour import ColourMix, hue_turned
from swimsearch.config import EngineConfig
from swimsearch.errors import CatalogueError
from swimsearch.regions import Box, covering_window, default_windows, framed_detail
from swimsearch.search import SearchEngine
from swimsearch.steering import DETAIL_HUE_TURNS
from swimsearch.stores.base import NewImage
from swimsearch.stores.sqlite import SqliteStore
from swimsearch.stores.sqlite_schema import SCHEMA_VERSION, meta_crc

SAMPLE = REPO / "resources" / "sample"


def forget_details(catalogue_path) -> None:
    """Make a catalogue look as one built before details were kept: the format before them, no detail tables, no basis."""
    conn = sqlite3.connect(catalogue_path)
    with conn:
        conn.execute("DROP TABLE regions")
        conn.execute("DROP TABLE colours")
        conn.execute("DELETE FROM meta WHERE key = 'regions'")
        conn.execute("DELETE FROM arrays WHERE name LIKE 'regions.%'")
        before = str(SCHEMA_VERSION - 1)
        conn.execute("UPDATE meta SET value = ?, crc = ? WHERE key = 'schema_version'", (before, meta_crc("schema_version", before)))
    conn.close()


# --- boxes and windows ----------------------------------------------------------------------


def test_a_box_is_four_fractions_or_a_plain_error():
    assert Box.parse("0.25, 0.3,0.5,0.4") == Box(0.25, 0.3, 0.5, 0.4)
    assert Box.parse("0.5,0.5,0.5,0.5").text() == "0.5,0.5,0.5,0.5"
    for text, words in (("1,2,3", "four fractions"), ("a,b,c,d", "four fractions"), ("0.8,0,0.5,0.5", "not inside"),
                        ("0,0,0.01,0.5", "too small"), ("-0.1,0,0.5,0.5", "not inside"), ("nan,0,0.5,0.5", "numbers")):
        with pytest.raises(ValueError, match=words):
            Box.parse(text)
    assert Box(0.1, 0.2, 0.5, 0.5).pixels(200, 100) == (20, 20, 120, 70)


def test_the_crop_is_framed_and_its_cells_found():
    picture = Image.new("RGB", (400, 200), (255, 255, 255))
    picture.paste((200, 0, 0), (100, 50, 200, 150))
    pixels, window = framed_detail(picture, Box(0.25, 0.25, 0.25, 0.5), 224, 7, fraction=0.4)
    red = np.argwhere((pixels[..., 0] > 150) & (pixels[..., 1] < 60))
    (top, left), (bottom, right) = red.min(axis=0), red.max(axis=0)
    assert abs((right - left + 1) - 0.4 * 224) <= 2 and abs((bottom - top + 1) - 0.4 * 224) <= 2  # a square crop, 40 %
    assert window == covering_window(left, top, right - left + 1, bottom - top + 1, 224, 7)
    r0, c0, r1, c1 = window
    assert (r0, c0, r1, c1) == (2, 2, 5, 5)
    windows = default_windows(7)
    assert tuple(windows[0]) == (0, 0, 7, 7) and len({tuple(w) for w in windows}) == len(windows)


# --- the store --------------------------------------------------------------------------------


def test_the_store_keeps_and_drops_details(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    store = SqliteStore.create(tmp_path / "c.swimcat", folder)
    regions = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float16)
    colours = np.arange(200, dtype=np.uint8).reshape(2, 100)
    vector = np.ones(16, np.float32)
    ids = store.add_batch([
        NewImage("a.png", 1, 1.0, 10, 10, 1, embedding=vector, regions=regions[0], colour=colours[0]),
        NewImage("b.png", 1, 1.0, 10, 10, 2, embedding=vector, colour=colours[1]),
        NewImage("c.png", 1, 1.0, error="damaged"),
    ])
    assert store.detail_counts() == {"regions": 1, "colours": 2}
    assert store.lacking_details(regions=False) == []
    assert store.lacking_details(regions=True) == [(ids[1], "b.png")]
    found = store.colour_signatures([ids[1], 999, ids[0]])
    assert found.ids.tolist() == [ids[1], ids[0]] and (found.signatures == colours[::-1]).all()
    store.write_details([ids[1]], regions[1:], None)
    assert store.lacking_details(regions=True) == []
    store.remove([ids[0]])
    assert store.detail_counts() == {"regions": 1, "colours": 1}
    store.clear_images()
    assert store.detail_counts() == {"regions": 0, "colours": 0}
    store.close()


def test_a_catalogue_built_before_reads_as_holding_no_details(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "designs"
    make_pattern_images(folder, 12)
    path = tmp_path / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
        assert catalogue.detail_counts() == {"regions": 0, "colours": 12}  # the fake model gives no feature map
    forget_details(path)
    with Catalogue.open(path) as catalogue:  # migrated to the current format, with empty detail tables
        assert catalogue.info()["schema_version"] == SCHEMA_VERSION
        assert catalogue.detail_counts() == {"regions": 0, "colours": 0}
        assert catalogue.region_basis() is None
        assert list(catalogue.iter_regions()) == []
        assert len(catalogue.colour_signatures([1, 2]).ids) == 0


def test_a_catalogue_of_the_format_before_opened_read_only_is_searched_without_details(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "designs"
    make_pattern_images(folder, 12)
    path = tmp_path / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    forget_details(path)
    with Catalogue.open(path, readonly=True) as catalogue:  # read as it is: no detail tables at all
        assert catalogue.info()["schema_version"] == SCHEMA_VERSION - 1
        assert catalogue.detail_counts() == {"regions": 0, "colours": 0}
        assert catalogue.region_basis() is None and list(catalogue.iter_regions()) == []
        assert len(catalogue.colour_signatures([1, 2]).ids) == 0
        assert any("no details" in line for line in catalogue.check())
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        matched = engine.search_id(1, top_n=3, colour=ColourMix(1.0))  # match colour: nothing to match, said once
        assert matched.matches[0].image_id == 1 and "update it to keep the colours" in matched.note


# --- building, searching: the real model ------------------------------------------------------


@pytest.fixture(scope="module")
def motif_folder(tmp_path_factory):
    """The sample photos, and three of them again with a print pasted on, at other places and sizes."""
    folder = tmp_path_factory.mktemp("motif")
    samples = sorted(SAMPLE.glob("*.jpg"))
    for photo in samples:
        shutil.copy(photo, folder / photo.name)
    motif = save_with_print(samples[20:23], folder, (0.45, 0.38, 0.5), ((0.05, 0.1), (0.5, 0.45), (0.3, 0.05)))
    query = Image.new("RGB", (600, 400), (240, 240, 235))
    query.paste(motif.resize((200, 200)), (330, 120))
    query.save(folder.parent / "query-with-print.png")
    return folder


@pytest.fixture(scope="module")
def motif_catalogue(motif_folder, embedder):
    path = motif_folder / "c.swimcat"
    with Catalogue.create(path, motif_folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    return path


def test_a_build_keeps_regions_and_colours_from_one_pass(motif_catalogue, motif_folder):
    with Catalogue.open(motif_catalogue) as catalogue:
        counts = catalogue.counts()
        assert catalogue.detail_counts() == {"regions": counts["readable"], "colours": counts["readable"]}
        basis = catalogue.region_basis()
        assert basis is not None and basis.channels == 1280 and basis.grid == 7
        regions = np.concatenate([part.vectors for part in catalogue.iter_regions()])
        assert regions.shape == (counts["readable"], basis.regions, basis.dim) and regions.dtype == np.float16
        assert np.allclose(np.linalg.norm(regions.astype(np.float32), axis=2), 1.0, atol=2e-3)


def test_a_detail_finds_the_designs_that_hold_it_anywhere(motif_catalogue, motif_folder, embedder):
    query = motif_folder.parent / "query-with-print.png"
    box = Box(330 / 600, 120 / 400, 200 / 600, 200 / 400)
    with Catalogue.open(motif_catalogue) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        detail = engine.search_detail(str(query), box, top_n=40)
        whole = engine.search(str(query), top_n=40)
    printed = {"with-print-0.jpg", "with-print-1.jpg", "with-print-2.jpg"}

    def worst_rank(result) -> int:
        ranks = [n for n, m in enumerate(result.matches, start=1) if m.relpath in printed]
        return max(ranks) if len(ranks) == len(printed) else len(result.matches) + 1

    assert detail.method == "detail" and not detail.note
    # the three designs that hold the print are among the first five (of 40 pictures), the best two first
    assert {m.relpath for m in detail.matches[:2]} <= printed and worst_rank(detail) <= 5
    # the whole picture (mostly a plain background) ranks the last of them much lower
    assert worst_rank(whole) > 2 * worst_rank(detail)


def test_an_older_catalogue_says_to_update_then_the_update_fills_its_details(tmp_path, motif_folder, embedder):
    folder = tmp_path / "older"
    shutil.copytree(motif_folder, folder, ignore=shutil.ignore_patterns("*.swimcat*"))
    path = folder / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
        ids_before = {r.relpath: r.image_id for r in catalogue.records(range(1, 100)).values()}
    forget_details(path)
    query = str(folder / "with-print-0.jpg")
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        with pytest.raises(CatalogueError, match="built before .* update it"):
            engine.search_detail(query, Box(0.1, 0.1, 0.5, 0.5))
        matched = engine.search(query, top_n=5, colour=ColourMix(1.0))
        assert "update" in matched.note and matched.matches[0].relpath == "with-print-0.jpg"
        report = catalogue.update(embedder, EngineConfig())
        assert report.detailed == catalogue.counts()["readable"] and report.added == 0 and "read again" in report.summary()
        assert {r.relpath: r.image_id for r in catalogue.records(range(1, 100)).values()} == ids_before
        engine.reload()
        assert engine.search_detail(query, Box(0.1, 0.1, 0.5, 0.5), top_n=3).matches
        assert catalogue.update(embedder, EngineConfig()).detailed == 0  # nothing left to fill


def test_details_moved_to_another_image_or_damaged_are_refused_in_one_sentence(tmp_path):
    from crafted_catalogues import make_base
    from swimsearch.errors import DamagedCatalogue

    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_base(folder, path)  # built with a fake trunk that has a feature map: regions and colours kept
    with Catalogue.open(path) as catalogue:
        ids = sorted(catalogue.records(range(1, 60)))
        assert catalogue.detail_counts()["regions"] == catalogue.counts()["readable"] > 30
        assert "regional vectors" in " ".join(catalogue.check())
    conn = sqlite3.connect(path)
    with conn:  # every colour signature shifted to the next image: each row's checksum names its own image
        conn.execute("UPDATE colours SET image_id = -image_id")
        conn.execute("UPDATE colours SET image_id = 1 - image_id")
    conn.close()
    with Catalogue.open(path) as catalogue:
        with pytest.raises(DamagedCatalogue, match=r"is damaged \(colour signatures fail their checksum\)"):
            catalogue.colour_signatures(ids)
        with pytest.raises(DamagedCatalogue, match="colour signatures"):
            catalogue.check()


def test_a_detail_of_a_catalogue_picture_lists_that_picture_first_and_once(motif_catalogue, motif_folder, embedder):
    # the designer drew on this picture: it comes first, as a whole-picture search lists the query itself
    pictures = [motif_folder / f"with-print-{n}.jpg" for n in range(3)] + sorted(motif_folder.glob("*.jpg"))[:5]
    boxes = (Box(0.25, 0.25, 0.5, 0.5), Box(0.0, 0.0, 1.0, 1.0))
    with Catalogue.open(motif_catalogue) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        for picture in pictures:
            for box in boxes:
                result = engine.search_detail(str(picture), box, top_n=10)
                paths = [m.relpath for m in result.matches]
                assert result.query_image_id is not None and paths[0] == picture.name, (picture.name, box)
                assert paths.count(picture.name) == 1 and round(result.matches[0].score, 6) == 1.0
                assert len(paths) == 10
        by_id = engine.search_detail(result.query_image_id, boxes[0], top_n=3)
        assert by_id.matches[0].relpath == pictures[-1].name and len(by_id.matches) == 3


def test_a_recoloured_detail_is_found_at_ignore_colour_from_one_network_call_of_three_copies(
    motif_catalogue, motif_folder, embedder, monkeypatch
):
    query = Image.open(motif_folder.parent / "query-with-print.png").convert("RGB")
    recoloured = Image.fromarray(hue_turned(np.asarray(query), 150))  # the print in another colourway
    box = Box(330 / 600, 120 / 400, 200 / 600, 200 / 400)
    calls = []
    network = embedder.embed_with_maps

    def counted(pixels):
        calls.append(len(pixels))
        return network(pixels)

    monkeypatch.setattr(embedder, "embed_with_maps", counted)
    printed = {"with-print-0.jpg", "with-print-1.jpg", "with-print-2.jpg"}
    with Catalogue.open(motif_catalogue) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        ignore = engine.search_detail(recoloured, box, top_n=10, colour=ColourMix(0.0))
        assert calls == [1 + len(DETAIL_HUE_TURNS)] == [3]  # the framed detail and two hue turns, in one pass
        calls.clear()
        engine.search_detail(recoloured, box, top_n=10)
        assert calls == [1]  # the default colour: the detail alone
    assert {m.relpath for m in ignore.matches[:3]} == printed
