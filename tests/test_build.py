"""The build pipeline on its own: the refit decision, honest counts, and building through the writer."""

from __future__ import annotations

import json

import pytest

from helpers import make_pattern_images
from swimsearch.build import as_dict, build_catalogue, refit_reason
from swimsearch.catalogue import Catalogue
from swimsearch.config import INDEX_SETTINGS, EngineConfig
from swimsearch.errors import CatalogueError
from swimsearch.stores.base import FitState

WANTED = {name: getattr(EngineConfig(), name) for name in INDEX_SETTINGS}


def fit(count: int = 100, *, provisional: bool = False, **settings) -> FitState:
    return FitState(variant="pca", count=count, provisional=provisional, settings={**WANTED, **settings})


@pytest.mark.parametrize(
    "embedded, state, complete, force, expected",
    [
        (150, fit(100), True, False, None),  # grew by half: keep the fit, encode the new ones
        (51, fit(100), True, False, None),  # shrank by less than half
        (199, fit(100), True, False, None),
        (200, fit(100), True, False, "grown from 100 to 200"),
        (50, fit(100), True, False, "shrunk from 100 to 50"),
        (100, None, True, False, "no fit yet"),
        (100, fit(100, provisional=True), True, False, "cancelled build"),
        (120, fit(100, provisional=True), False, False, None),  # still cancelled: keep the provisional fit
        (100, fit(100, bits=64), True, False, "settings changed"),
        (100, fit(100), True, True, "asked for"),
    ],
)
def test_refit_reason(embedded, state, complete, force, expected):
    reason = refit_reason(embedded=embedded, fit=state, wanted=WANTED, complete=complete, force=force)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_build_through_the_writer_reports_whole_numbers(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "pics"
    make_pattern_images(folder, 12)
    (folder / "broken.png").write_bytes(b"not a picture")
    with Catalogue.create(tmp_path / "c.swimcat", folder) as catalogue:
        report = build_catalogue(catalogue.writer(), catalogue.root, fake_embedder, small_config)
    assert (report.added, report.unreadable, report.indexed) == (12, 1, 12)
    # `swimsearch index --json` prints counts as counts, never 12.0
    text = json.dumps(as_dict(report))
    assert '"added": 12,' in text and '"unreadable": 1,' in text
    assert all(type(getattr(report, name)) is int for name in ("added", "updated", "removed", "unreadable", "unchanged", "indexed"))


def test_a_read_only_catalogue_refuses_a_writer(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "pics"
    make_pattern_images(folder, 4)
    path = tmp_path / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    with Catalogue.open(path, readonly=True) as catalogue:
        with pytest.raises(CatalogueError, match="read-only: it can be searched but not updated"):
            catalogue.writer()
        with pytest.raises(CatalogueError, match="read-only"):
            build_catalogue(catalogue.store, catalogue.root, fake_embedder, small_config)


def test_the_summary_counts_files_it_does_not_read_by_kind(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "pics"
    make_pattern_images(folder, 4)
    for name in ("brief.indd", "layout.indd", "notes.txt", "sub/board.indd"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"not read by SwimSearch")
    with Catalogue.create(tmp_path / "c.swimcat", folder) as catalogue:
        report = build_catalogue(catalogue.writer(), catalogue.root, fake_embedder, small_config)
    assert report.skipped == {".indd": 3, ".txt": 1}
    assert report.added == 4 and report.unreadable == 0  # skipped files are not "unreadable" images
    assert "not read: 3 .indd, 1 .txt" in report.summary()
    assert json.loads(json.dumps(as_dict(report)))["skipped"] == {".indd": 3, ".txt": 1}
