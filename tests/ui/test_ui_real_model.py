"""End to end with the real model on real photos: drop a photo, it comes first at 100%."""

from __future__ import annotations

from PyQt5.QtCore import Qt

from swimsearch.config import EngineConfig
from ui.results import percent
from ui.search import open_default_embedder
from ui_helpers import WAIT_MS, drop_and_wait, open_catalogue


def test_real_photos_with_the_real_model(qtbot, make_window, photo_catalogue):
    folder, path = photo_catalogue
    window = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    state = open_catalogue(qtbot, window, path)
    assert state.searchable == 40 and state.can_search_images
    assert state.model_name.startswith("efficientnet-lite2")
    photo = sorted(folder.glob("*.jpg"))[5]
    result = drop_and_wait(qtbot, window, photo)
    shown = window.model.visible_matches()
    assert shown[0].path == str(photo) and percent(shown[0].score) == 100
    assert all(percent(m.score) < 100 for m in shown[1:])
    assert result.embed_ms > 0 and "ms" in window.timing_label.text()
    # clicking through to the best other match needs no new embedding
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        window.search_match(shown[1])
    assert blocker.args[0].matches[0].image_id == shown[1].image_id


def test_a_match_reads_its_band_once_in_the_preview_and_the_tooltip(qtbot, make_window, photo_catalogue):
    folder, path = photo_catalogue
    window = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    open_catalogue(qtbot, window, path)
    drop_and_wait(qtbot, window, sorted(folder.glob("*.jpg"))[5])
    row = 1  # the best match after the query itself
    match = window.model.visible_matches()[row]
    assert match.band
    window.results_view.setCurrentIndex(window.model.index(row))
    # "71% similar · similar" said the band twice; the grid's badge reads "71% · similar"
    assert window.preview.score_label.text() == f"{percent(match.score)}% · {match.band}"
    assert window.model.index(row).data(Qt.ToolTipRole).startswith(f"{match.name}: {percent(match.score)}% · {match.band}")
