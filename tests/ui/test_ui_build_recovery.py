"""What the window does around a build that is not the plain case: another catalogue opened meanwhile, a design
dropped before anything is searchable, an update that was killed, a folder whose catalogue is damaged."""

from __future__ import annotations

import threading

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QMessageBox

from swimsearch.catalogue import Catalogue, default_catalogue_path
from ui.query_panel import file_url_mime
from ui_helpers import WAIT_MS, FakeEmbedder, drop, drop_and_wait, error_texts, gated_model, make_pattern_images

GARBAGE = b"not a database at all" * 100


def test_a_build_ending_in_the_background_leaves_the_catalogue_opened_meanwhile_on_screen(
    qtbot, make_window, designs, tmp_path, request
):
    other = tmp_path / "other"
    make_pattern_images(other, 40, start=200)
    gate = threading.Event()
    request.addfinalizer(gate.set)  # a failing test does not leave the build waiting
    window = make_window(open_embedder=gated_model(gate, free_batches=1))  # the build pauses after 8 pictures
    progress = []
    window.build_progress_changed.connect(lambda phase, done, total: progress.append((phase, done)))
    window.open_path(str(other))
    qtbot.waitUntil(lambda: any(phase == "embed" and done >= 8 for phase, done in progress), timeout=WAIT_MS)
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        window.open_path(str(default_catalogue_path(designs)))  # the user moves on while "other" is built
    query = designs / "img0004.png"
    drop_and_wait(qtbot, window, query)

    with qtbot.assertNotEmitted(window.catalogue_ready, wait=1000), qtbot.assertNotEmitted(window.results_shown):
        with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
            gate.set()
    assert not finished.args[0].cancelled and finished.args[0].report.indexed == 40
    assert window.windowTitle() == "designs — SwimSearch" and "30 designs" in window.catalogue_label.full_text()
    assert window.model.match_at(0).name == "img0004.png"  # the results there stay
    message = window.statusBar().currentMessage()
    assert message.startswith("“other” is ready: 40 designs searchable") and "Recent catalogues" in message
    other_catalogue = str(default_catalogue_path(other))
    assert other_catalogue in window.settings["catalogue/recent"]
    assert window.settings["catalogue/last"] == str(default_catalogue_path(designs))  # reopened at the next start


def test_a_design_dropped_before_anything_is_searchable_is_searched_when_the_build_is_done(
    qtbot, make_window, tmp_path, request
):
    folder = tmp_path / "fresh"
    make_pattern_images(folder, 40)
    with Catalogue.create(default_catalogue_path(folder), folder):
        pass  # made, nothing read yet (a first build stopped at once, or killed)
    gate = threading.Event()
    request.addfinalizer(gate.set)  # a failing test does not leave the build waiting
    window = make_window(open_embedder=gated_model(gate, free_batches=1))
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        window.open_path(str(folder))
    assert opened.args[0].searchable == 0
    progress = []
    window.build_progress_changed.connect(lambda phase, done, total: progress.append((phase, done)))
    window.update_action.trigger()
    qtbot.waitUntil(lambda: any(phase == "embed" and done >= 8 for phase, done in progress), timeout=WAIT_MS)

    query = folder / "img0017.png"
    assert drop(window.query_panel, file_url_mime(str(query)))
    qtbot.wait(300)  # the search thread would have answered by now
    assert error_texts(window) == []  # not "has no searchable images yet"
    assert "will be searched" in window.statusBar().currentMessage()
    assert window.query_panel.name_label.full_text() == "img0017.png"
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as shown:
        gate.set()
    result = shown.args[0]
    assert result.query == str(query) and result.matches[0].name == "img0017.png"
    assert error_texts(window) == []


def test_reopening_after_an_update_was_killed_says_what_is_not_searchable_yet_and_that_f5_finishes_it(
    qtbot, make_window, designs, small_config
):
    class Killed(Exception):
        pass

    class DiesAfterTwoBatches(FakeEmbedder):  # what kill -9 leaves: batches committed, nothing indexed
        images = 0

        def embed(self, pixels):
            DiesAfterTwoBatches.images += len(pixels)
            if DiesAfterTwoBatches.images > 16:
                raise Killed()
            return super().embed(pixels)

    make_pattern_images(designs, 30, start=100)
    with Catalogue.open(default_catalogue_path(designs)) as catalogue:
        try:
            catalogue.update(DiesAfterTwoBatches(), small_config)
        except Killed:
            pass
        counts = catalogue.counts()
    assert counts["searchable"] == 30 and counts["readable"] == 46

    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        window.open_path(str(designs))
    assert opened.args[0].searchable == 30
    message = window.statusBar().currentMessage()
    assert message.startswith("Opened “designs”: 30 designs searchable.")
    assert "16 more pictures were read but are not searchable yet" in message and "F5" in message


def error_boxes(window) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox, "errorBox") if box.isVisible()]


def damaged_question(qtbot, window, name="damagedBox"):
    """The open "set the damaged (or copied) file aside?" box and its buttons by their words."""
    qtbot.waitUntil(lambda: any(b.isVisible() for b in window.findChildren(QMessageBox, name)), timeout=WAIT_MS)
    [box] = [b for b in window.findChildren(QMessageBox, name) if b.isVisible()]
    return box, {button.text(): button for button in box.buttons()}


def test_a_folders_damaged_catalogue_can_be_set_aside_and_built_again_from_the_window(qtbot, make_window, designs):
    catalogue = default_catalogue_path(designs)
    catalogue.write_bytes(GARBAGE)
    window = make_window()
    window.open_path(str(designs))
    box, buttons = damaged_question(qtbot, window)
    assert box.text().startswith(f"The file {catalogue} is not a SwimSearch catalogue, or it is damaged.")
    assert set(buttons) == {"Set it aside and build a new one", "Leave it"}
    assert box.defaultButton() is buttons["Leave it"]  # Enter changes nothing
    assert error_boxes(window) == []  # one box, the question, not a second one saying the same
    assert "Opening" not in window.statusBar().currentMessage()
    assert "damaged" in window.statusBar().currentMessage()

    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(buttons["Set it aside and build a new one"], Qt.LeftButton)
    assert finished.args[0].report.indexed == 30
    qtbot.waitUntil(lambda: window.session.catalogue is not None, timeout=WAIT_MS)
    [kept] = designs.glob(".swimsearch.swimcat.damaged-*")
    assert kept.read_bytes() == GARBAGE  # renamed, not deleted or overwritten
    assert f"kept beside it as {kept.name}" in window.statusBar().currentMessage()
    assert window.windowTitle() == "designs — SwimSearch" and "30 designs" in window.catalogue_label.full_text()
    assert error_boxes(window) == []


def test_build_on_a_folder_with_a_damaged_catalogue_asks_once_and_leave_it_changes_nothing(
    qtbot, make_window, designs, tmp_path, monkeypatch
):
    import ui.dialogs

    damaged = tmp_path / "damaged"
    make_pattern_images(damaged, 6, start=300)
    catalogue = default_catalogue_path(damaged)
    catalogue.write_bytes(GARBAGE)
    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        window.open_path(str(designs))
    monkeypatch.setattr(ui.dialogs, "choose_folder", lambda parent, folder: str(damaged))
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):  # fails: the file is damaged
        window.build_action.trigger()
    box, buttons = damaged_question(qtbot, window)
    qtbot.wait(200)  # the open's failure and the build's both came: still one question, no error box
    assert len([b for b in window.findChildren(QMessageBox) if b.isVisible()]) == 1
    qtbot.mouseClick(buttons["Leave it"], Qt.LeftButton)
    assert catalogue.read_bytes() == GARBAGE and not list(damaged.glob("*.damaged-*"))
    assert window.windowTitle() == "designs — SwimSearch"  # the catalogue on screen stays

    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):
        window.build_action.trigger()  # asked again, not a dead end
    damaged_question(qtbot, window)


def test_a_copied_folders_catalogue_of_the_original_is_not_opened_as_the_copys(qtbot, make_window, designs, tmp_path):
    """Review round 12, item 5: `cp -a` of a folder, most files deleted in the copy: the window opened the original's
    catalogue as the copy's (its title, its results in the original folder). The CLI's sentence, and a way out."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(designs, copy)  # the hidden catalogue file goes along
    for picture in sorted(copy.glob("img*.png")):  # none of its pictures left: the copy no longer looks like its own
        picture.unlink()  # folder (while any is, the catalogue describes the copy: test_reliability.py)
    make_pattern_images(copy, 5, prefix="other", start=100)
    copied = default_catalogue_path(copy)
    before = copied.read_bytes()
    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        window.open_path(str(designs))
    window.open_path(str(copy))
    box, buttons = damaged_question(qtbot, window, "copiedBox")
    assert box.text().startswith(f"The catalogue {copied} belongs to the folder {designs}, not {copy}.")
    assert set(buttons) == {"Set it aside and build a new one", "Leave it"}
    assert box.defaultButton() is buttons["Leave it"]
    assert error_boxes(window) == []
    qtbot.mouseClick(buttons["Leave it"], Qt.LeftButton)
    assert copied.read_bytes() == before and not list(copy.glob("*.copied-*"))  # nothing touched without a yes
    qtbot.waitUntil(lambda: window.windowTitle() == "designs — SwimSearch", timeout=WAIT_MS)  # the one on screen stays
    assert "30 designs" in window.catalogue_label.full_text() and error_boxes(window) == []
    assert window.statusBar().currentMessage() == "The catalogue file was left as it is."  # not the question again

    window.open_path(str(copy))  # asked again; closed by the title bar's X: as Leave it (a reviewer, round 14)
    box, buttons = damaged_question(qtbot, window, "copiedBox")
    box.close()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "The catalogue file was left as it is.", timeout=WAIT_MS)
    assert copied.read_bytes() == before

    window.open_path(str(copy))  # and asked again after that
    box, buttons = damaged_question(qtbot, window, "copiedBox")
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as ready:
        qtbot.mouseClick(buttons["Set it aside and build a new one"], Qt.LeftButton)
    assert ready.args[0].searchable == 5 and window.windowTitle() == "copy — SwimSearch"
    [kept] = copy.glob(".swimsearch.swimcat.copied-*")
    assert kept.read_bytes() == before  # renamed, not deleted or overwritten
    assert f"The copied catalogue was kept beside it as {kept.name}" in window.statusBar().currentMessage()
    result = drop_and_wait(qtbot, window, copy / "other0102.png")
    assert all(str(m.path).startswith(str(copy)) for m in result.matches)


def test_designs_whose_files_were_deleted_since_the_build_are_shown_missing_with_a_hint_to_press_f5(qtbot, make_window, designs):
    """A reviewer (round 13): a folder whose files were partly deleted opened with "file missing" tiles, and nothing
    said what to do."""
    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        window.open_path(str(designs))
    for picture in sorted(designs.glob("img*.png"))[5:8]:
        picture.unlink()
    result = drop_and_wait(qtbot, window, designs / "img0004.png")
    assert any(m.missing for m in result.matches[:24])
    assert window.statusBar().currentMessage() == "Some of these designs' files are no longer in the folder: press F5 to read it again."
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):  # F5: the list is made again, the summary stays
        window.update_action.trigger()
    qtbot.waitUntil(lambda: window.model.rowCount() == 27, timeout=WAIT_MS)
    qtbot.wait(300)
    said = window.statusBar().currentMessage()
    assert "3 removed" in said and "press F5" not in said, said  # (it was cleared as the list came: a reviewer)


def test_no_f5_hint_when_the_whole_folder_went_away_after_opening(qtbot, make_window, designs, tmp_path):
    """A reviewer (round 14): a folder renamed (a share unmounted) after the catalogue opened showed every match
    missing and said to press F5, which then said the folder no longer exists."""
    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        window.open_path(str(designs))
    probe = tmp_path / "probe.png"
    (designs / "img0004.png").rename(probe)
    designs.rename(tmp_path / "elsewhere")
    result = drop_and_wait(qtbot, window, probe)
    assert result.matches and all(m.missing for m in result.matches)
    assert "press F5" not in window.statusBar().currentMessage()
