"""The details of a steered search (issue 12) on both stores: regional vectors and colour signatures kept by
builds and updates, gone with their images, searched alike on a catalogue file and a team catalogue, and carried
by `swimsearch copy` both ways."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import FakeMapEmbedder, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.colour import ColourMix
from swimsearch.copying import copy_catalogue, details_digest
from swimsearch.regions import Box
from swimsearch.search import SearchEngine
from swimsearch.stores import pg_schema


def make_folder(folder):
    """36 pictures in two subfolders, in families of three (colourways of one design)."""
    make_pattern_images(folder / "summer", 18, family=3)
    make_pattern_images(folder / "winter", 18, start=100, family=3)
    return folder


def build(location, folder, config):
    with Catalogue.create(location, folder) as catalogue:
        catalogue.update(FakeMapEmbedder(), config)


def ranked(result) -> list[tuple[float, str]]:
    """A result as (score, path), ties put in path order: two stores must agree on this exactly."""
    return sorted(((round(m.score, 5), m.relpath) for m in result.matches), key=lambda x: (-x[0], x[1]))


def queries(location, folder, config) -> dict[str, list]:
    """A detail query and the colour control's two ends, as a user would run them."""
    picture = folder / "summer" / "img0004.png"
    with Catalogue.open(location) as catalogue:
        engine = SearchEngine(catalogue, FakeMapEmbedder(), config)
        return {
            "detail": ranked(engine.search_detail(str(picture), Box(0.1, 0.2, 0.5, 0.5), top_n=12)),
            "detail, match colour": ranked(engine.search_detail(str(picture), Box(0.1, 0.2, 0.5, 0.5), top_n=12,
                                                                colour=ColourMix(1.0))),
            "match colour": ranked(engine.search(picture, top_n=12, colour=ColourMix(1.0))),
            "ignore colour": ranked(engine.search(picture, top_n=12, colour=ColourMix(0.0))),
            "a catalogue design's detail": ranked(engine.search_detail(catalogue.record_by_path(picture).image_id,
                                                                       Box(0.0, 0.0, 0.6, 0.6), top_n=12)),
        }


def test_a_build_keeps_details_and_they_go_with_their_images(store, tmp_path, small_config):
    folder = make_folder(tmp_path / "pics")
    location = store.location()
    build(location, folder, small_config)
    with Catalogue.open(location) as catalogue:
        assert catalogue.detail_counts() == {"regions": 36, "colours": 36}
        basis = catalogue.region_basis()
        assert basis is not None and basis.grid == 7 and basis.channels == 1280
        vectors = np.concatenate([part.vectors for part in catalogue.iter_regions()])
        assert vectors.shape == (36, basis.regions, basis.dim) and vectors.dtype == np.float16
        changed = catalogue.record_by_path(folder / "winter" / "img0103.png").image_id
        before = catalogue.colour_signatures([changed]).signatures[0]
    (folder / "summer" / "img0001.png").unlink()  # a tombstone: left out of search and counts, its details kept
    make_pattern_images(folder / "winter", 1, start=900)[0].replace(folder / "winter" / "img0103.png")  # read again
    with Catalogue.open(location) as catalogue:
        report = catalogue.update(FakeMapEmbedder(), small_config)
        assert (report.updated, report.removed, report.detailed) == (1, 1, 0)
        assert catalogue.detail_counts() == {"regions": 35, "colours": 35}
        assert store.query(location, "SELECT count(*) FROM {s}.regions")[0][0] == 36
        assert catalogue.record_by_path(folder / "winter" / "img0103.png").image_id == changed
        after = catalogue.colour_signatures([changed]).signatures[0]
        assert not np.array_equal(before, after)  # the file's new colours, not its old ones
        gone = catalogue.record_by_path(folder / "winter" / "img0105.png").image_id
        catalogue.writer().remove([gone])
        assert catalogue.detail_counts() == {"regions": 34, "colours": 34}
        for table in ("regions", "colours"):
            assert store.query(location, f"SELECT count(*) FROM {{s}}.{table} WHERE image_id = {gone}")[0][0] == 0
        catalogue.writer().clear_images()
        assert catalogue.detail_counts() == {"regions": 0, "colours": 0}


def test_a_region_or_colour_query_ranks_alike_on_both_stores(pg_database, tmp_path, small_config):
    folder = make_folder(tmp_path / "pics")
    file, team = tmp_path / "c.swimcat", pg_database.url() + "&catalogue=alike"
    build(file, folder, small_config)
    build(team, folder, small_config)
    on_file, on_team = queries(file, folder, small_config), queries(team, folder, small_config)
    for name, ranking in on_file.items():
        assert len(ranking) == 12, name
        assert ranking == on_team[name], name
    # the picture the box was drawn on holds its detail, in its own colours, best
    assert on_file["detail, match colour"][0][1] == "summer/img0004.png"
    assert on_file["detail"] != on_file["detail, match colour"]
    assert on_file["match colour"] != on_file["ignore colour"]  # the control changes the list on both


def test_a_copy_carries_the_details_both_ways(pg_database, tmp_path, small_config):
    folder = make_folder(tmp_path / "pics")
    path, team, back = tmp_path / "original.swimcat", pg_database.url() + "&catalogue=moved", tmp_path / "back.swimcat"
    build(path, folder, small_config)
    (folder / "winter" / "img0107.png").unlink()
    with Catalogue.open(path) as catalogue:  # a tombstone keeps its details, and so does its copy
        catalogue.update(FakeMapEmbedder(), small_config)
    with Catalogue.open(path) as source, Catalogue.create(team, folder) as middle:
        there = copy_catalogue(source, middle.writer())
    with Catalogue.open(team) as middle, Catalogue.create(back, folder) as returned:
        home = copy_catalogue(middle, returned.writer())
    assert (there.regions, there.colours) == (home.regions, home.colours) == (36, 36)
    assert "regional vectors of 36 and colours of 36 images kept" in there.summary()
    with Catalogue.open(path) as a, Catalogue.open(team) as b, Catalogue.open(back) as c:
        assert details_digest(a) == details_digest(b) == details_digest(c)  # basis, vectors and signatures bit-identical
        assert a.detail_counts() == b.detail_counts() == c.detail_counts() == {"regions": 35, "colours": 35}
    assert queries(path, folder, small_config) == queries(team, folder, small_config) == queries(back, folder, small_config)


def test_a_copy_that_changed_a_detail_on_the_way_is_refused(pg_database, tmp_path, small_config, monkeypatch):
    from swimsearch.errors import CatalogueError
    from swimsearch.stores.postgres_details import PgDetails

    folder = make_folder(tmp_path / "pics")
    path, team = tmp_path / "original.swimcat", pg_database.url() + "&catalogue=bent"
    build(path, folder, small_config)
    real = PgDetails.put_details

    def bent(self, ids, regions, colours):
        if colours is not None:
            colours = np.array(colours, copy=True)
            colours[0, 0] ^= 1  # one bit of one signature
        real(self, ids, regions, colours)

    monkeypatch.setattr(PgDetails, "put_details", bent)
    with Catalogue.open(path) as source, Catalogue.create(team, folder) as middle:
        with pytest.raises(CatalogueError, match="regional vectors or colours copied .* differ"):
            copy_catalogue(source, middle.writer())


def test_a_team_catalogue_of_format_4_is_migrated_and_its_updates_fill_the_details(pg_database, tmp_path, small_config):
    folder = make_folder(tmp_path / "pics")
    team = pg_database.url() + "&catalogue=older"
    build(team, folder, small_config)
    with pg_database.connect() as conn:  # as a catalogue made before the details: no tables, no basis, format 4
        conn.execute("DROP TABLE cat_older.regions, cat_older.colours")
        conn.execute("DELETE FROM cat_older.meta WHERE key = 'regions'")
        conn.execute("DELETE FROM cat_older.arrays WHERE name LIKE 'regions.%'")
        conn.execute("UPDATE cat_older.meta SET value = '4' WHERE key = 'schema_version'")
    with Catalogue.open(team) as catalogue:
        assert catalogue.info()["schema_version"] == pg_schema.SCHEMA_VERSION == 5
        assert catalogue.detail_counts() == {"regions": 0, "colours": 0} and catalogue.region_basis() is None
        ids = {r.relpath: r.image_id for r in catalogue.records(range(1, 100)).values()}
        # an update of one folder holds that folder only: it reads again that folder's pictures, not the others'
        report = catalogue.update(FakeMapEmbedder(), small_config, folder=folder / "winter")
        assert report.detailed == 18 and catalogue.detail_counts() == {"regions": 18, "colours": 18}
        report = catalogue.update(FakeMapEmbedder(), small_config)
        assert report.detailed == 18 and report.added == 0 and "read again for their details" in report.summary()
        assert {r.relpath: r.image_id for r in catalogue.records(range(1, 100)).values()} == ids
        assert catalogue.detail_counts() == {"regions": 36, "colours": 36}
        assert catalogue.update(FakeMapEmbedder(), small_config).detailed == 0


def test_a_team_catalogues_check_reads_its_details_and_a_bent_row_is_one_sentence(pg_database, tmp_path, small_config):
    from swimsearch.errors import DamagedCatalogue

    folder = make_folder(tmp_path / "pics")
    team = pg_database.url() + "&catalogue=checked"
    build(team, folder, small_config)
    with Catalogue.open(team) as catalogue:
        assert "36 images' regional vectors and 36 colour signatures" in " ".join(catalogue.check())
    with pg_database.connect() as conn:  # an administrator's hand (or another program) cut a row short
        conn.execute("UPDATE cat_checked.regions SET vectors = substring(vectors from 3) "
                     "WHERE image_id = (SELECT min(image_id) FROM cat_checked.regions)")
    with Catalogue.open(team) as catalogue:
        engine = SearchEngine(catalogue, FakeMapEmbedder(), small_config)
        with pytest.raises(DamagedCatalogue, match=r"is damaged \(regional vectors have the wrong length\)"):
            engine.search_detail(str(folder / "summer" / "img0004.png"), Box(0.1, 0.1, 0.5, 0.5))
        with pytest.raises(DamagedCatalogue, match="regional vectors have the wrong length"):
            catalogue.check()
