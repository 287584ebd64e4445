"""Steering from the window, through the real widgets: several designs, "not like this", decisions, folders."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QApplication, QDialogButtonBox

from ui_helpers import WAIT_MS, FakeEmbedder, drop, drop_and_wait, make_pattern_images, open_catalogue
from ui import style
from ui.folder_dialog import FolderDialog
from ui.query_panel import file_url_mime
from ui.results import IS_QUERY_ROLE


def family(match) -> int:
    return int(match.name[3:7]) // 3  # the designs fixture comes in families of 3


def row_of(window, name: str) -> int:
    return next(row for row, m in enumerate(window.model.visible_matches()) if m.name == name)


def click(qtbot, window, row: int, modifier=Qt.NoModifier) -> None:
    view = window.results_view
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, modifier, view.visualRect(window.model.index(row)).center())


def menu_action(window, match, text):
    return next(a for a in window.context_menu(match).actions() if a.text() == text)


def test_ctrl_click_selects_several_designs_and_one_search_uses_them_all(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0004.png")
    other = next(m for m in window.model.visible_matches() if family(m) not in (1,))  # a design of another family
    window.results_view.clearSelection()
    with qtbot.assertNotEmitted(window.results_shown, wait=QApplication.doubleClickInterval() + 300):
        click(qtbot, window, 0, Qt.ControlModifier)  # the query itself
        click(qtbot, window, row_of(window, other.name), Qt.ControlModifier)
    assert [m.name for m in window.results_view.selected_matches()] == ["img0004.png", other.name]
    assert menu_action(window, other, "Search with the selected designs").isEnabled()
    assert window.search_selected_action.shortcut().toString() == "Ctrl+Return"
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        window.search_selected_action.trigger()
    result = blocker.args[0]
    assert len(result.example_ids) == 2
    names = [m.name for m in window.model.visible_matches()]
    assert set(names[-2:]) == {"img0004.png", other.name}  # the examples after the new designs, not among them
    assert all(window.model.index(r).data(IS_QUERY_ROLE) for r in (len(names) - 2, len(names) - 1))
    assert not any(window.model.index(r).data(IS_QUERY_ROLE) for r in range(len(names) - 2))
    assert {family(m) for m in window.model.visible_matches()[:4]} == {1, family(other)}  # both families first
    assert window.results_label.full_text().startswith("28 matches for 2 designs (with 1 more design)")
    assert "with 1 more design" in window.query_panel.details()
    window.back_action.trigger()
    assert window.model.match_at(0).name == "img0004.png" and len(window.model.result.example_ids) == 1


def test_shift_click_selects_a_run_of_designs_and_one_search_uses_them_all(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0004.png")
    window.results_view.clearSelection()
    with qtbot.assertNotEmitted(window.results_shown, wait=QApplication.doubleClickInterval() + 300):
        click(qtbot, window, 2, Qt.ControlModifier)
        click(qtbot, window, 5, Qt.ShiftModifier)  # rows 2 to 5
    run = [window.model.match_at(r).name for r in range(2, 6)]
    assert [m.name for m in window.results_view.selected_matches()] == run
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        window.search_selected_action.trigger()
    assert len(blocker.args[0].example_ids) == 4
    assert set(m.name for m in window.model.visible_matches()[-4:]) == set(run)  # the four examples after the new designs


def test_several_files_dropped_at_once_are_one_search(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        assert drop(window.query_panel, file_url_mime(str(designs / "img0001.png"), str(designs / "img0025.png")))
    result = blocker.args[0]
    assert result.query.startswith("2 designs") and len(result.example_ids) == 2
    assert [m.name for m in result.matches[-2:]] == ["img0001.png", "img0025.png"]  # in the order dropped, after the rest
    assert {family(m) for m in result.matches[:4]} == {0, 8}


def test_a_dropped_file_that_is_no_picture_is_named_in_the_status_bar(qtbot, make_window, designs, tmp_path):
    """Review round 12, item 15: 2 pictures and a text file dropped; the text file was left out without a word."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    window = make_window()
    open_catalogue(qtbot, window, designs)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        assert drop(window.query_panel, file_url_mime(str(designs / "img0001.png"), str(notes), str(designs / "img0025.png")))
    assert len(blocker.args[0].example_ids) == 2
    assert window.statusBar().currentMessage() == "notes.txt is not a picture: left out."
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:  # one picture and the note: said too
        assert drop(window.query_panel, file_url_mime(str(notes), str(designs / "img0004.png")))
    assert blocker.args[0].query.endswith("img0004.png") and len(blocker.args[0].example_ids) == 1
    assert window.statusBar().currentMessage() == "notes.txt is not a picture: left out."
    drop_and_wait(qtbot, window, designs / "img0007.png")  # nothing left out: the note does not stay on
    assert "notes.txt" not in window.statusBar().currentMessage()


def test_a_dropped_picture_that_cannot_be_read_is_named_and_the_others_are_searched(qtbot, make_window, designs, tmp_path):
    """Review round 13: 2 pictures, a text file and a damaged PDF dropped stopped the search with an error box
    while the status bar said the others were searched."""
    notes, damaged = tmp_path / "notes.txt", tmp_path / "broken.pdf"
    notes.write_text("not a picture")
    damaged.write_bytes(b"%PDF-1.4 cut short")
    window = make_window()
    open_catalogue(qtbot, window, designs)
    files = [str(designs / "img0001.png"), str(notes), str(damaged), str(designs / "img0025.png")]
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        assert drop(window.query_panel, file_url_mime(*files))
    assert len(blocker.args[0].example_ids) == 2  # the two photos, searched together
    said = window.statusBar().currentMessage()
    assert said.startswith("notes.txt is not a picture: left out. broken.pdf cannot be read (")
    assert said.endswith("): searched with the other 2.")


def test_not_like_this_reranks_at_once_without_the_network(qtbot, make_window, designs):
    embeds = []

    class CountingEmbedder(FakeEmbedder):
        def embed(self, pixels):
            embeds.append(len(pixels))
            return super().embed(pixels)

    window = make_window(open_embedder=CountingEmbedder)
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0010.png")  # a file: embedded once
    before = list(window.model.visible_matches())
    intruder = next(m for m in before if family(m) != 3)
    neighbours = [m.name for m in before if family(m) == family(intruder) and m != intruder]
    embedded = len(embeds)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        menu_action(window, intruder, "Not like this").trigger()
    result = blocker.args[0]
    assert len(embeds) == embedded  # re-ranked from what was known: no new network pass
    assert result.unlike_ids == (intruder.image_id,) and intruder.name not in [m.name for m in window.model.visible_matches()]
    assert [family(m) for m in window.model.visible_matches()[:3]] == [3, 3, 3]
    assert sum(row_of(window, n) for n in neighbours) > sum(before.index(m) for m in before if m.name in neighbours)
    assert window.results_label.full_text().startswith("29 matches for img0010.png (not like 1 design)")
    assert "not like 1 design" in window.query_panel.details()
    assert not menu_action(window, window.model.match_at(0), "Not like this").isEnabled()  # not the query itself
    window.back_action.trigger()
    assert intruder.name in [m.name for m in window.model.visible_matches()]


def badge_colour_shown(window, row: int, colour) -> bool:
    """Whether the card at `row` shows a badge of `colour` (rendered by the real delegate)."""
    view = window.results_view
    image = view.viewport().grab(view.visualRect(window.model.index(row))).toImage()
    pixels = {image.pixel(x, y) & 0xFFFFFF for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)}
    return colour.rgb() & 0xFFFFFF in pixels


def test_decisions_show_as_badges_pin_and_demote_and_are_remembered(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0010.png")
    result = window.search_match(window.model.match_at(0)) or None  # search from the catalogue design itself
    qtbot.waitUntil(lambda: window.model.result.example_ids != (), timeout=WAIT_MS)
    matches = list(window.model.visible_matches())
    far, best = matches[-1], matches[1]
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        menu_action(window, far, "Same design as the query").trigger()
    assert window.model.match_at(1).name == far.name and window.model.match_at(1).decision == "same"
    assert "marked same design" in window.model.index(1).data(Qt.ToolTipRole)
    assert badge_colour_shown(window, 1, style.SAME_DESIGN_BADGE) and not badge_colour_shown(window, 2, style.SAME_DESIGN_BADGE)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        menu_action(window, best, "Not similar to the query").trigger()
    last = window.model.rowCount() - 1
    assert window.model.match_at(last).name == best.name and window.model.match_at(last).decision == "different"
    window.results_view.scrollToBottom()
    assert badge_colour_shown(window, last, style.NOT_SIMILAR_BADGE)
    assert menu_action(window, window.model.match_at(1), "Same design as the query").isChecked()
    # a later search, in another window on the same catalogue, shows them
    window.close()
    again = make_window()
    open_catalogue(qtbot, again, designs)
    drop_and_wait(qtbot, again, designs / "img0010.png")
    assert [(m.name, m.decision) for m in again.model.visible_matches()[:2]] == [("img0010.png", None), (far.name, "same")]
    # choosing it again takes it back
    with qtbot.waitSignal(again.results_shown, timeout=WAIT_MS):
        menu_action(again, again.model.match_at(1), "Same design as the query").trigger()
    assert again.model.match_at(1).name != far.name
    # a dropped file outside the catalogue has no decisions to keep
    outside = make_pattern_images(designs.parent / "new", 1, start=900)[0]
    drop_and_wait(qtbot, again, outside)
    assert not menu_action(again, again.model.match_at(0), "Same design as the query").isEnabled()


@pytest.fixture
def seasons(tmp_path, fake_embedder, small_config):
    """A catalogue folder with two seasons: summer/ (20 designs) and winter/ (20), and 20 at its top."""
    from swimsearch.catalogue import Catalogue, default_catalogue_path

    folder = tmp_path / "seasons"
    make_pattern_images(folder, 20, family=4)
    make_pattern_images(folder / "summer", 20, start=100, family=4)
    make_pattern_images(folder / "winter", 20, start=200, family=4)
    with Catalogue.create(default_catalogue_path(folder), folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    return folder


def open_folder_dialog(qtbot, window) -> FolderDialog:
    """Click the folder button; returns the dialog it opens."""
    qtbot.mouseClick(window.results_pane.folder_button, Qt.LeftButton)
    shown = [d for d in window.findChildren(FolderDialog) if d.isVisible()]
    assert len(shown) == 1
    return shown[0]


def choose_folders(qtbot, window, *folders: str, all_folders: bool = False) -> FolderDialog:
    dialog = open_folder_dialog(qtbot, window)
    for folder in folders:
        dialog.set_checked(folder)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        if all_folders:
            qtbot.mouseClick(dialog.all_button, Qt.LeftButton)
        else:
            qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.Ok), Qt.LeftButton)
    return dialog


def test_the_folder_filter_narrows_every_search_and_is_remembered_per_catalogue(qtbot, make_window, seasons):
    window = make_window()
    open_catalogue(qtbot, window, seasons)
    assert window.results_pane.folder_button.text() == "All folders" and window.results_pane.folder_button.isEnabled()
    drop_and_wait(qtbot, window, seasons / "img0005.png")
    assert {m.relpath.split("/")[0] for m in window.model.visible_matches()} > {"summer", "winter"}
    dialog = open_folder_dialog(qtbot, window)
    assert sorted(dialog.items) == ["summer", "winter"] and dialog.items["winter"].text(1) == "20"
    dialog.reject()
    choose_folders(qtbot, window, "winter")
    shown = window.model.visible_matches()
    assert len(shown) == 20 and all(m.relpath.startswith("winter/") for m in shown)
    assert window.results_pane.folder_button.text() == "winter"
    assert window.results_label.full_text().startswith("20 matches for img0005.png in winter")
    # a new window on the catalogue narrows its searches the same way
    window.close()
    again = make_window()
    open_catalogue(qtbot, again, seasons)
    assert again.results_pane.folder_button.text() == "winter"
    result = drop_and_wait(qtbot, again, seasons / "summer" / "img0101.png")
    assert result.folders == ("winter",) and all(m.relpath.startswith("winter/") for m in result.matches)
    choose_folders(qtbot, again, "summer")  # winter stays ticked
    assert again.results_pane.folder_button.text() == "2 folders" and len(again.model.visible_matches()) == 40
    assert again.model.match_at(0).name == "img0101.png"  # the query, now inside what is searched
    choose_folders(qtbot, again, all_folders=True)
    assert again.results_pane.folder_button.text() == "All folders" and len(again.model.result.matches) == 60


def test_not_like_this_and_decisions_from_the_keyboard_act_on_the_result_in_focus(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0010.png")
    window.search_match(window.model.match_at(0))  # from the catalogue design: decisions can be kept
    qtbot.waitUntil(lambda: window.model.result.example_ids != (), timeout=WAIT_MS)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    view = window.results_view
    view.setFocus()
    far = window.model.match_at(window.model.rowCount() - 1)
    view.setCurrentIndex(window.model.index(window.model.rowCount() - 1))
    assert window.mark_same_action.isEnabled()
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        qtbot.keyClick(view, Qt.Key_S, Qt.ControlModifier | Qt.ShiftModifier)
    assert (window.model.match_at(1).name, window.model.match_at(1).decision) == (far.name, "same")
    intruder = next(m for m in window.model.visible_matches() if family(m) != 3 and m.decision is None)
    view.setCurrentIndex(window.model.index(row_of(window, intruder.name)))
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(view, Qt.Key_N, Qt.ControlModifier | Qt.ShiftModifier)
    assert blocker.args[0].unlike_ids == (intruder.image_id,)
    assert intruder.name not in [m.name for m in window.model.visible_matches()]
    view.setCurrentIndex(window.model.index(0))  # the query itself: nothing to push away or decide
    with qtbot.assertNotEmitted(window.results_shown, wait=300):
        qtbot.keyClick(view, Qt.Key_N, Qt.ControlModifier | Qt.ShiftModifier)
        qtbot.keyClick(view, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)


def test_a_dropped_catalogue_file_whose_time_changed_is_still_the_catalogues_picture(qtbot, make_window, designs):
    """Touched (a sync tool, a copy back): by its content it is still itself, so it cannot also be "not like this"."""
    import os

    window = make_window()
    open_catalogue(qtbot, window, designs)
    touched = designs / "img0010.png"
    os.utime(touched, (2e9, 2e9))
    result = drop_and_wait(qtbot, window, touched)
    assert len(result.example_ids) == 1
    names = [m.name for m in window.model.visible_matches()]
    assert names[0] == "img0010.png" and names.count("img0010.png") == 1  # listed once, as the query
    assert window.model.index(0).data(IS_QUERY_ROLE)
    assert not menu_action(window, window.model.match_at(0), "Not like this").isEnabled()


def test_a_remembered_folder_that_was_deleted_is_let_go_and_said(qtbot, make_window, seasons):
    """Deleted with the window closed (an update holds back removing most of a folder at once): not narrowed to it, silently."""
    import shutil

    window = make_window()
    open_catalogue(qtbot, window, seasons)
    drop_and_wait(qtbot, window, seasons / "img0005.png")
    choose_folders(qtbot, window, "summer", "winter")
    assert window.results_pane.folder_button.text() == "2 folders"
    window.close()
    shutil.rmtree(seasons / "winter")
    again = make_window()
    open_catalogue(qtbot, again, seasons)
    assert again.results_pane.folder_button.text() == "summer"
    assert "folder filter let go of the folder winter" in again.statusBar().currentMessage()
    result = drop_and_wait(qtbot, again, seasons / "img0005.png")
    assert result.folders == ("summer",) and all(m.relpath.startswith("summer/") for m in result.matches)
    shutil.rmtree(seasons / "summer")
    third = make_window()
    open_catalogue(qtbot, third, seasons)  # the last one gone too: every folder searched
    assert third.results_pane.folder_button.text() == "All folders"
    assert "searching all folders" in third.statusBar().currentMessage()


def test_a_dropped_one_pixel_picture_is_searched_and_the_status_bar_says_its_matches_say_little(qtbot, make_window, designs, tmp_path):
    from PIL import Image

    window = make_window()
    open_catalogue(qtbot, window, designs)
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tmp_path / "pixel.png")
    result = drop_and_wait(qtbot, window, tmp_path / "pixel.png")
    assert result.matches and "only 1 x 1 pixels, too small to show a design" in result.note
    assert "too small to show a design" in window.statusBar().currentMessage()
    result = drop_and_wait(qtbot, window, designs / "img0010.png")  # an ordinary design: no such note
    assert "too small" not in result.note and "too small" not in window.statusBar().currentMessage()


def test_a_match_marked_not_similar_stays_at_the_end_of_a_list_cut_to_a_few(qtbot, make_window, designs):
    # the window asks for 200 matches and shows the N best: the one marked must not fall out of view
    window = make_window()
    open_catalogue(qtbot, window, designs)
    window.results_pane.top_spin.setValue(5)
    drop_and_wait(qtbot, window, designs / "img0010.png")
    window.search_match(window.model.match_at(0))  # from the catalogue design: decisions can be kept
    qtbot.waitUntil(lambda: window.model.result.example_ids != (), timeout=WAIT_MS)
    assert len(window.model.result.matches) > 5 and window.model.rowCount() == 5
    second = window.model.match_at(2)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        menu_action(window, second, "Not similar to the query").trigger()
    assert window.model.rowCount() == 5
    last = window.model.match_at(4)
    assert (last.name, last.decision) == (second.name, "different")
    assert badge_colour_shown(window, 4, style.NOT_SIMILAR_BADGE)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):  # taken back: it is ranked as before
        menu_action(window, last, "Not similar to the query").trigger()
    assert window.model.match_at(2).name == second.name and window.model.match_at(2).decision is None
