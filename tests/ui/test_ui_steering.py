"""Steering a search from the window (issue 12 items 2-3), through the real widgets and the real model:
a box dragged on the query picture searches by that detail; the colour slider re-ranks the query on show."""

from __future__ import annotations

import pytest
from PyQt5.QtCore import QPoint, Qt
from PyQt5.QtWidgets import QApplication

from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.regions import Box
from ui.search import open_default_embedder
from ui_helpers import WAIT_MS, drop_and_wait, open_catalogue

import helpers

PRINTED = {"with-print-0.jpg", "with-print-1.jpg", "with-print-2.jpg"}


@pytest.fixture(scope="module")
def steering_catalogue(tmp_path_factory):
    from swimsearch.model import Embedder, default_model_path

    folder = tmp_path_factory.mktemp("window-steer") / "designs"
    query, box = helpers.make_steering_designs(folder)
    path = folder / "designs.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(Embedder(default_model_path()), EngineConfig())
    return folder, path, query, Box(*box)


def names(result) -> list[str]:
    return [m.relpath for m in result.matches]


def drag(qtbot, widget, start: QPoint, end: QPoint) -> None:
    """Press, move in steps and release the left button on `widget`, as a hand does."""
    qtbot.mousePress(widget, Qt.LeftButton, pos=start)
    for step in range(1, 5):
        qtbot.mouseMove(widget, start + (end - start) * step / 4)
    qtbot.mouseRelease(widget, Qt.LeftButton, pos=end)


def test_a_box_dragged_on_the_query_searches_by_that_detail_and_esc_searches_the_whole_picture(
    qtbot, make_window, steering_catalogue
):
    folder, path, query, box = steering_catalogue
    window = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    open_catalogue(qtbot, window, path)
    whole = drop_and_wait(qtbot, window, query)
    assert names(whole)[0] == "dress-02.jpg"  # the whole picture: the dress the print is on
    picture = window.query_panel.picture
    qtbot.waitUntil(lambda: picture.picture_rect() is not None, timeout=WAIT_MS)
    on_screen = picture.box_rect(box)
    start, end = on_screen.topLeft().toPoint() + QPoint(1, 1), on_screen.bottomRight().toPoint() - QPoint(1, 1)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        drag(qtbot, picture, start, end)
    detail = blocker.args[0]
    assert detail.method == "detail" and set(names(detail)[:3]) == PRINTED  # the designs carrying the print, first
    drawn = window.history.current.request.box
    assert drawn is not None and all(abs(a - b) < 0.03 for a, b in zip(drawn, box))
    assert picture.box == drawn  # the box stays drawn over the query picture
    assert "for a detail of query-with-print.png" in window.results_pane.filter_bar.title.full_text()
    assert window.whole_picture_action.isEnabled() and window.whole_picture_action.shortcut().toString() == "Esc"
    # Esc: the whole picture again, as a new entry; Back returns to the detail with its box
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        window.whole_picture_action.trigger()
    assert blocker.args[0].method != "detail" and names(blocker.args[0])[0] == "dress-02.jpg"
    assert window.history.current.request.box is None and picture.box is None
    window.back_action.trigger()  # the history shows its kept result at once
    assert window.history.current.result.method == "detail" and picture.box == drawn
    assert window.model.match_at(0).relpath in PRINTED


def _query_shown_with_file_dialog_watched(qtbot, make_window, steering_catalogue, monkeypatch):
    """The window with the steering query shown; `asked` collects each file dialog opened (answered "cancelled")."""
    folder, path, query, box = steering_catalogue
    window = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    open_catalogue(qtbot, window, path)
    drop_and_wait(qtbot, window, query)
    picture = window.query_panel.picture
    qtbot.waitUntil(lambda: picture.picture_rect() is not None, timeout=WAIT_MS)
    import ui.dialogs

    asked: list = []
    monkeypatch.setattr(ui.dialogs, "choose_image", lambda parent, folder, cache=None: asked.append(folder) or None)
    return window, picture, box, asked


def test_a_click_without_a_drag_draws_no_box(qtbot, make_window, steering_catalogue, monkeypatch):
    window, picture, box, asked = _query_shown_with_file_dialog_watched(qtbot, make_window, steering_catalogue, monkeypatch)
    centre = picture.box_rect(box).center().toPoint()
    with qtbot.assertNotEmitted(window.query_panel.detail_drawn):
        qtbot.mouseClick(picture, Qt.LeftButton, pos=centre)
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=WAIT_MS)
    assert window.history.current.request.box is None and picture.box is None


def test_a_drag_started_beside_the_picture_draws_a_box_clamped_to_it_and_opens_no_file(
    qtbot, make_window, steering_catalogue, monkeypatch
):
    window, picture, box, asked = _query_shown_with_file_dialog_watched(qtbot, make_window, steering_catalogue, monkeypatch)
    shown = picture.picture_rect()
    assert shown.top() > 2 or shown.left() > 2  # the picture is letterboxed: there is a margin to start in
    start = QPoint(1, 1)  # in the margin, above and left of the picture's corner
    end = QPoint(int(shown.left() + shown.width() / 2), int(shown.top() + shown.height() / 2))
    with qtbot.waitSignal(window.query_panel.detail_drawn, timeout=WAIT_MS) as blocker:
        drag(qtbot, picture, start, end)
    drawn = blocker.args[0]
    assert drawn[0] == 0 and drawn[1] == 0 and abs(drawn[2] - 0.5) < 0.03 and abs(drawn[3] - 0.5) < 0.03
    qtbot.wait(QApplication.doubleClickInterval() + 300)
    assert asked == []  # the drag is no click: no file dialog


def test_the_colour_slider_reranks_the_query_on_show_and_is_remembered(qtbot, make_window, steering_catalogue):
    folder, path, query, box = steering_catalogue
    window = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    open_catalogue(qtbot, window, path)
    drop_and_wait(qtbot, window, folder / "tshirt-01.jpg")
    slider = window.query_panel.colour_control.slider
    assert slider.value() == 50  # as the network sees it
    slider.setFocus()
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(slider, Qt.Key_End)  # match colour
    assert names(blocker.args[0])[:3] == ["tshirt-01.jpg", "tee-cropped.jpg", "tee-other-colourway.jpg"]
    assert window.history.current.request.colour == 1.0 and len(window.history) == 1  # the same query, in its place
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(slider, Qt.Key_Home)  # ignore colour
    ignored = blocker.args[0]
    assert names(ignored)[:3] == ["tshirt-01.jpg", "tee-other-colourway.jpg", "tee-cropped.jpg"]
    assert ignored.matches[1].score > 0.97  # the other colourway scores as its own colour would
    window.close()
    again = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    assert again.query_panel.colour_control.colour() == 0.0 and again.session.colour == 0.0
