"""Building catalogues from the window: progress, cancel, update, the sample, and plain errors."""

from __future__ import annotations

import threading
import time

import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QMessageBox

from swimsearch.catalogue import Catalogue, default_catalogue_path
from swimsearch.model import ModelError
from ui.locations import sample_folder, sample_target
from ui.progress import describe_progress, duration
from ui.query_panel import file_url_mime
from ui_helpers import (
    WAIT_MS, FakeEmbedder, drop, drop_and_wait, error_texts, gated_model, make_pattern_images, open_catalogue,
)


def test_a_build_in_a_new_folder_reports_progress_and_finishes(qtbot, make_window, tmp_path):
    folder = tmp_path / "new designs"
    make_pattern_images(folder, 60)
    window = make_window()
    progress = []
    window.build_progress_changed.connect(lambda *args: progress.append(args))
    labels = []
    window.build_progress_changed.connect(lambda *args: labels.append(window.progress.label.full_text()))
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        window.open_path(str(folder))
        assert window.progress.isVisible() and window.progress.cancel_button.isEnabled()
    outcome = finished.args[0]
    assert not outcome.cancelled
    assert (outcome.report.added, outcome.report.indexed) == (60, 60)
    assert {"scan", "embed", "index"} <= {phase for phase, _, _ in progress}
    embedded = [done for phase, done, total in progress if phase == "embed"]
    assert embedded == sorted(embedded) and embedded[-1] == 60
    assert any("Reading pictures" in text and "of 60" in text for text in labels)
    state = qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS)
    state.wait()
    assert state.args[0].searchable == 60
    assert default_catalogue_path(folder).is_file()  # the catalogue moves with its folder
    assert not window.progress.isVisible()
    assert "60 designs searchable" in window.statusBar().currentMessage()
    assert window.windowTitle() == "new designs — SwimSearch"
    assert drop_and_wait(qtbot, window, folder / "img0042.png").matches[0].name == "img0042.png"


def test_cancel_stops_the_build_within_a_second_and_keeps_a_usable_catalogue(qtbot, make_window, tmp_path):
    folder = tmp_path / "big"
    make_pattern_images(folder, 120)
    gate = threading.Event()
    window = make_window(open_embedder=gated_model(gate, free_batches=3))  # batches of 8: paused at 24
    progress = []
    window.build_progress_changed.connect(lambda *args: progress.append(args))
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: any(p == "embed" and done >= 24 for p, done, _ in progress), timeout=WAIT_MS)
    assert "of 120" in window.progress.label.full_text()
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(window.progress.cancel_button, Qt.LeftButton)
        assert window.progress.cancel_button.text() == "Stopping…" and not window.progress.cancel_button.isEnabled()
        started = time.monotonic()
        gate.set()  # the batch in hand finishes; the build then stops
    stopped_after = time.monotonic() - started
    outcome = finished.args[0]
    report = outcome.report
    assert outcome.cancelled and 24 <= report.added < 120 and report.indexed == report.added
    assert stopped_after < 1.0
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        pass
    assert opened.args[0].searchable == report.indexed
    assert "Stopped building" in window.statusBar().currentMessage()
    result = drop_and_wait(qtbot, window, folder / "img0003.png")
    assert result.matches[0].name == "img0003.png"

    # F5 goes on from there
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        window.update_action.trigger()
    assert finished.args[0].report.added == 120 - report.added and finished.args[0].report.indexed == 120


def test_update_reads_new_files(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    make_pattern_images(designs, 5, start=100)
    assert window.update_action.shortcut().toString() == "F5"
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        window.update_action.trigger()
    assert finished.args[0].report.added == 5
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        pass
    assert opened.args[0].searchable == 35
    assert "35 designs" in window.catalogue_label.full_text()


def test_first_run_builds_and_opens_the_sample_then_a_restart_just_opens_it(qtbot, make_window, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        window.open_start(None)
    state = opened.args[0]
    assert state.name == "sample" and state.searchable == len(list(sample_folder().glob("*.jpg"))) >= 30
    assert state.path == str(sample_target().path) and state.path.startswith(str(tmp_path / "user-data"))
    assert not list(sample_folder().glob(".swimsearch*"))  # nothing written beside the shipped photos
    window.close()

    again = make_window()
    with qtbot.assertNotEmitted(again.build_finished):
        with qtbot.waitSignal(again.catalogue_ready, timeout=WAIT_MS) as opened:
            again.open_start(None)
    assert opened.args[0].name == "sample"


def test_a_sample_catalogue_left_pointing_elsewhere_is_rebuilt(qtbot, make_window, tmp_path, fake_embedder, small_config):
    elsewhere = tmp_path / "old install" / "sample"
    make_pattern_images(elsewhere, 4)
    target = sample_target()
    with Catalogue.create(target.path, elsewhere) as catalogue:
        catalogue.update(fake_embedder, small_config)
    window = make_window()
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):
        window.open_start(None)
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        pass
    assert opened.args[0].root == str(sample_folder().resolve()) and opened.args[0].searchable > 4


def test_a_damaged_catalogue_is_one_plain_sentence(qtbot, make_window, tmp_path):
    damaged = tmp_path / "old.swimcat"
    damaged.write_bytes(b"not a database at all" * 100)
    window = make_window()
    window.open_path(str(damaged))
    qtbot.waitUntil(lambda: bool(error_texts(window)), timeout=WAIT_MS)
    assert error_texts(window) == [f"The file {damaged} is not a SwimSearch catalogue, or it is damaged."]
    assert window.catalogue_label.full_text() == "No catalogue"
    assert damaged.read_bytes().startswith(b"not a database")  # left untouched


def test_a_damaged_catalogue_does_not_close_the_one_on_screen(qtbot, make_window, designs, tmp_path):
    damaged = tmp_path / "old.swimcat"
    damaged.write_bytes(b"not a database at all" * 100)
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0004.png")
    window.open_path(str(damaged))
    qtbot.waitUntil(lambda: bool(error_texts(window)), timeout=WAIT_MS)
    assert "30 designs" in window.catalogue_label.full_text() and window.windowTitle() == "designs — SwimSearch"
    assert window.model.match_at(0).name == "img0004.png"  # the results stay
    assert drop_and_wait(qtbot, window, designs / "img0010.png").matches[0].name == "img0010.png"


def test_a_missing_model_is_reported_and_catalogue_images_can_still_be_browsed(qtbot, make_window, designs):
    def missing_model():
        raise ModelError("The model file /nowhere/model.onnx is missing. Reinstall SwimSearch or restore the file.")

    window = make_window(open_embedder=missing_model)
    state = open_catalogue(qtbot, window, designs)
    assert not state.can_search_images
    qtbot.waitUntil(lambda: bool(error_texts(window)), timeout=WAIT_MS)
    assert "model file /nowhere/model.onnx is missing" in error_texts(window)[0]
    with qtbot.waitSignal(window.query_failed, timeout=WAIT_MS) as failed:
        window.search_file(str(designs / "img0001.png"))
    assert failed.args[0] == "No model is loaded, so images cannot be searched by example."
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        window.random_action.trigger()


@pytest.mark.parametrize(
    "phase, done, total, elapsed, expected",
    [
        ("scan", 0, 0, 0.0, "Looking for pictures…"),
        ("embed", 1000, 5000, 20.0, "Reading pictures, 1,000 of 5,000  ·  50 per second  ·  about 1 min left"),
        ("embed", 5, 5000, 0.1, "Reading pictures, 5 of 5,000"),
        ("embed", 0, 0, 0.0, "Every picture is up to date; checking the index…"),
        ("index", 0, 2500, 1.0, "Indexing 2,500 pictures…"),
    ],
)
def test_progress_line_says_count_rate_and_time_left(phase, done, total, elapsed, expected):
    assert describe_progress(phase, done, total, elapsed) == expected


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (4, 59, 61, 3000, 3600 + 20 * 60)] == ["4 s", "59 s", "1 min", "50 min", "1 h 20 min"]


def test_back_after_an_update_searches_again_without_the_removed_files(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    first = drop_and_wait(qtbot, window, designs / "img0004.png")
    assert "img0005.png" in {m.name for m in first.matches[:3]}
    drop_and_wait(qtbot, window, designs / "img0020.png")
    (designs / "img0005.png").unlink()
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):  # the update, then the query again
        window.update_action.trigger()
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as blocker:
        window.back_action.trigger()
    again = blocker.args[0]
    assert again.query == str(designs / "img0004.png")
    assert "img0005.png" not in {m.name for m in again.matches}
    assert len(window.history) == 2 and window.forward_action.isEnabled()


def test_building_another_folder_switches_to_it_and_runs_the_query_again_there(qtbot, make_window, designs, tmp_path):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0010.png")
    query = designs / "img0004.png"
    drop_and_wait(qtbot, window, query)
    other = tmp_path / "other"
    make_pattern_images(other, 12, start=200)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS) as shown:
        window.open_path(str(other))
        assert window.catalogue_label.full_text() == "other  ·  building…"
        assert window.model.rowCount() == 0 and window.results_view.empty_title == "Building the catalogue “other”…"
        assert window.filter_bar.title.full_text() == "" and window.timing_label.text() == ""
        assert not window.back_action.isEnabled()  # the last catalogue's results are not for this one
        assert window.query_panel.name_label.full_text() == "img0004.png"  # the query stays
    result = shown.args[0]
    assert result.query == str(query) and {m.path for m in result.matches} <= {str(p) for p in other.iterdir()}
    assert window.windowTitle() == "other — SwimSearch" and "12 designs" in window.catalogue_label.full_text()
    assert not window.back_action.isEnabled()  # the other catalogue's history is gone


def test_build_from_a_folder_with_a_catalogue_opens_it_and_updates_it(qtbot, make_window, designs, monkeypatch):
    import ui.dialogs

    monkeypatch.setattr(ui.dialogs, "choose_folder", lambda parent, folder: str(designs))
    make_pattern_images(designs, 3, start=300)
    window = make_window()
    assert window.build_action.shortcut().toString() == "Ctrl+B"
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        window.build_action.trigger()
    assert (finished.args[0].report.added, finished.args[0].report.unchanged) == (3, 30)
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        pass
    assert opened.args[0].searchable == 33


def removal_question(qtbot, window):
    """The open "remove them from the catalogue?" box and its buttons by their words."""
    from PyQt5.QtWidgets import QMessageBox

    qtbot.waitUntil(lambda: any(b.isVisible() for b in window.findChildren(QMessageBox, "removalBox")), timeout=WAIT_MS)
    [box] = [b for b in window.findChildren(QMessageBox, "removalBox") if b.isVisible()]
    return box, {button.text(): button for button in box.buttons()}


def test_an_update_that_holds_back_removals_asks_and_removes_them_only_when_confirmed(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    gone = sorted(designs.glob("img*.png"))[:20]  # two thirds gone at once: an unmounted share looks like this
    for path in gone:
        path.unlink()
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        window.update_action.trigger()
    assert (finished.args[0].report.removed, finished.args[0].report.held) == (0, 20)
    box, buttons = removal_question(qtbot, window)
    assert box.text().startswith(f"20 pictures are no longer in {designs}.")
    assert "20 of the catalogue's 30 files are gone" in box.text()
    assert set(buttons) == {"Remove them from the catalogue", "Keep them"}
    assert box.defaultButton() is buttons["Keep them"]  # Enter changes nothing

    qtbot.mouseClick(buttons["Keep them"], Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.findChildren(type(box), "removalBox"), timeout=WAIT_MS)
    assert not window.builds.busy
    with Catalogue.open(default_catalogue_path(designs)) as catalogue:
        assert catalogue.info()["images"] == 30  # kept: a share that comes back is not read again

    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):
        window.update_action.trigger()  # asked again on the next update
    box, buttons = removal_question(qtbot, window)
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(buttons["Remove them from the catalogue"], Qt.LeftButton)
    assert (finished.args[0].report.removed, finished.args[0].report.held) == (20, 0)
    qtbot.waitUntil(lambda: window.session.catalogue is not None and window.session.catalogue.searchable == 10,
                    timeout=WAIT_MS)
    assert "20 removed" in window.statusBar().currentMessage()
    assert not [b for b in window.findChildren(type(box), "removalBox") if b.isVisible()]  # not asked again


def test_a_damaged_sample_catalogue_is_built_again(qtbot, make_window):
    target = sample_target()
    target.path.write_bytes(b"garbage" * 50)
    window = make_window()
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):
        window.open_start(None)
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as opened:
        pass
    assert opened.args[0].name == "sample" and opened.args[0].searchable >= 30


class OtherModel(FakeEmbedder):
    """The same fake network with other weights: what the fp32 and int8 trunks are to each other."""

    name = "other-embedder@32"
    sha256 = "e" * 64


def test_a_catalogue_of_another_model_says_so_and_is_rebuilt_only_when_asked(qtbot, make_window, designs):
    window = make_window(open_embedder=OtherModel)
    open_catalogue(qtbot, window, designs)
    qtbot.waitUntil(lambda: any(b.isVisible() for b in window.findChildren(QMessageBox, "modelBox")), timeout=WAIT_MS)
    [box] = window.findChildren(QMessageBox, "modelBox")
    buttons = {button.text(): button for button in box.buttons()}
    assert box.text().startswith("“designs” was built with another model, fake-embedder@32 (sha256 ffffffffffff...), "
                                 "not with other-embedder@32")
    assert "Every picture is read again (30 pictures)" in box.text() and box.defaultButton() is buttons["Not now"]
    assert "another model" in window.catalogue_label.full_text()
    assert "fake-embedder@32" in window.catalogue_label.toolTip()

    qtbot.mouseClick(buttons["Not now"], Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.findChildren(QMessageBox, "modelBox"), timeout=WAIT_MS)
    assert not window.builds.busy
    with qtbot.waitSignal(window.query_failed, timeout=WAIT_MS) as failed:
        drop(window.query_panel, file_url_mime(str(designs / "img0004.png")))
    assert "was built with another model" in failed.args[0]  # never searched against the other model's vectors
    with Catalogue.open(default_catalogue_path(designs)) as catalogue:
        assert catalogue.info()["model"] == "fake-embedder@32"  # nothing changed without the user's word
    open_catalogue(qtbot, window, designs)
    assert not [b for b in window.findChildren(QMessageBox, "modelBox") if b.isVisible()]  # asked once

    window.session.model_differs.emit(window.session.catalogue)  # as on the first opening
    [box] = [b for b in window.findChildren(QMessageBox, "modelBox") if b.isVisible()]
    [rebuild] = [b for b in box.buttons() if b.text() == "Rebuild now"]
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(rebuild, Qt.LeftButton)
    assert (finished.args[0].report.added, finished.args[0].report.unchanged) == (30, 0)
    qtbot.waitUntil(lambda: "another model" not in window.catalogue_label.full_text(), timeout=WAIT_MS)
    assert drop_and_wait(qtbot, window, designs / "img0004.png").matches[0].name == "img0004.png"


def test_cancelling_an_update_before_it_reads_anything_says_so(qtbot, make_window, designs):
    loading = threading.Event()

    def slow_model():  # the build's model loads while the user already clicks Cancel
        if threading.current_thread() is not threading.main_thread() and loading.is_set():
            time.sleep(0.5)
        return FakeEmbedder()

    window = make_window(open_embedder=slow_model)
    open_catalogue(qtbot, window, designs)
    loading.set()
    window.update_action.trigger()
    window.update_action.trigger()  # F5 twice: the first update gives way to the second
    qtbot.mouseClick(window.progress.cancel_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.builds.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "Stopped" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert window.statusBar().currentMessage() == "Stopped. What was read so far is kept; press F5 to go on."
    assert not window.progress.isVisible() and "30 designs" in window.catalogue_label.full_text()
