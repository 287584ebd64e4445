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
    assert window.preview.score_label.full_text() == f"{percent(match.score)}% · {match.band}"
    assert window.model.index(row).data(Qt.ToolTipRole).startswith(f"{match.name}: {percent(match.score)}% · {match.band}")


def test_a_duplicate_and_a_decided_match_read_in_full_on_their_cards(qtbot, make_window, photo_catalogue, embedder, tmp_path):
    """A screenshot showed Duplicate on top of "99% · same design" and a pinned Same design card reading "36% · unrelated"."""
    import shutil

    from PIL import Image

    from swimsearch.catalogue import Catalogue, default_catalogue_path

    photos = sorted(photo_catalogue[0].glob("*.jpg"))[:8]
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    query = folder / photos[5].name
    copy = folder / "Summer 2027 capsule - relaxed linen drawstring, final colourway v12 (approved by Anna).jpg"
    Image.open(query).convert("RGB").save(copy, quality=80)  # a re-export: a duplicate
    with Catalogue.create(default_catalogue_path(folder), folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    for thumb in (96, 168, 320):
        window = make_window(open_embedder=open_default_embedder, config=EngineConfig(), width=900)
        open_catalogue(qtbot, window, folder)
        window.results_view.set_thumb_size(thumb)
        drop_and_wait(qtbot, window, query)
        matches = window.model.visible_matches()
        row = next(n for n, m in enumerate(matches) if m.path == str(copy))
        assert matches[row].duplicate and matches[row].band == "same design"
        view = window.results_view
        for r in range(len(matches)):
            cell = view.visualRect(window.model.index(r))
            card, _ = view.delegate.geometry(cell, view.font())
            badges = view.delegate.badges_of(window.model.index(r), cell, view.font())
            assert all(card.contains(b.rect) for b in badges), (thumb, r)
            assert not any(a.rect.intersects(b.rect) for n, a in enumerate(badges) for b in badges[n + 1:]), (thumb, r)
        texts = [b.text for b in view.delegate.badges_of(window.model.index(row), view.visualRect(window.model.index(row)), view.font())]
        score = " · ".join(t for t in texts if t != "Duplicate")
        assert "Duplicate" in texts and score == f"{percent(matches[row].score)}%" + (" · same design" if thumb > 96 else "")
        if thumb < 320:
            window.close()
    # pin the least similar match as the same design: its card and words read the decision, not "unrelated"
    far = matches[-1]
    assert far.band == "unrelated"
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        window.steering.mark_same(far)
    pinned = window.model.visible_matches()[1]
    assert (pinned.path, pinned.decision) == (far.path, "same")
    view = window.results_view
    badges = [b.text for b in view.delegate.badges_of(window.model.index(1), view.visualRect(window.model.index(1)), view.font())]
    assert badges == [f"{percent(far.score)}%", "Same design"]
    window.results_view.setCurrentIndex(window.model.index(1))
    assert window.preview.score_label.full_text() == f"{percent(far.score)}% · marked same design"
    assert "unrelated" not in window.model.index(1).data(Qt.ToolTipRole)

