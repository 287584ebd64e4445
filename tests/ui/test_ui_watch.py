"""Watched folders: the open catalogue follows its folder by itself, with F5's progress and summary."""

from __future__ import annotations

import threading

from ui.main_window import MainWindow
from ui.settings import Settings
from ui_helpers import WAIT_MS, FakeEmbedder, gated_model, make_pattern_images, open_catalogue


def watched(qtbot, window, designs):
    """Open `designs`, turn watching on and wait for its catching-up update to end."""
    open_catalogue(qtbot, window, designs)
    window.watch.quiet.setInterval(150)  # the quiet period after a burst of changes, short for the test
    assert window.watch_action.isEnabled() and not window.watch_action.isChecked()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        window.watch_action.trigger()  # catches up once: the folder may have changed while nobody watched
    assert window.watch_action.isChecked() and window.watch.watching
    qtbot.waitUntil(lambda: window.watch.job is None and bool(window.watch.listings), timeout=WAIT_MS)


def test_new_and_removed_pictures_are_read_by_themselves_with_a_summary(qtbot, make_window, designs):
    window = make_window()
    watched(qtbot, window, designs)
    progress = []
    window.build_progress_changed.connect(lambda *args: progress.append(args))
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as ready:
        make_pattern_images(designs / "new", 3, start=100)  # a new subfolder, watched from now on
    assert ready.args[0].searchable == 33
    assert any(phase == "embed" for phase, _, _ in progress)  # F5's progress line
    assert window.statusBar().currentMessage().startswith("The folder changed: “designs” is ready: 33 designs")
    qtbot.waitUntil(lambda: str(designs / "new") in window.watch.watcher.directories(), timeout=WAIT_MS)
    (designs / "new" / "img0101.png").unlink()
    qtbot.waitUntil(lambda: window.session.catalogue.searchable == 32, timeout=WAIT_MS)


def test_files_that_are_not_pictures_never_start_an_update(qtbot, make_window, designs):
    window = make_window()
    watched(qtbot, window, designs)
    with qtbot.assertNotEmitted(window.build_finished, wait=1500):
        (designs / "notes.txt").write_text("a meeting note")
        (designs / ".hidden.png").write_bytes(b"hidden")
    assert not window.watch.update_due


def test_watching_is_remembered_per_catalogue(qtbot, make_window, designs, tmp_path):
    window = make_window()
    watched(qtbot, window, designs)
    other = tmp_path / "other"
    make_pattern_images(other, 4)
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS):
        window.open_path(str(other))
    qtbot.waitUntil(lambda: window.session.catalogue is not None and window.session.catalogue.root == str(other),
                    timeout=WAIT_MS)
    assert not window.watch_action.isChecked() and not window.watch.watching
    window.close()
    again = MainWindow(Settings(), open_embedder=FakeEmbedder, config=window._config)
    qtbot.addWidget(again)
    again.show()
    try:
        open_catalogue(qtbot, again, designs)
        assert again.watch_action.isChecked() and again.watch.watching
    finally:
        again.close()


def test_a_change_during_a_build_waits_for_the_build_and_is_read_after_it(qtbot, make_window, designs):
    gate = threading.Event()
    window = make_window(open_embedder=gated_model(gate, free_batches=0))
    open_catalogue(qtbot, window, designs)
    window.watch.quiet.setInterval(150)
    make_pattern_images(designs, 2, start=200)
    phases = []
    window.build_progress_changed.connect(lambda phase, done, total: phases.append(phase))
    window.update_action.trigger()  # F5: held by the gate while it reads the two new pictures
    qtbot.waitUntil(lambda: "embed" in phases, timeout=WAIT_MS)  # its scan is done: it cannot see what comes next
    window.watch_action.trigger()
    qtbot.waitUntil(lambda: window.watch.job is None and bool(window.watch.listings), timeout=WAIT_MS)
    make_pattern_images(designs, 1, start=300)  # changed while the build runs
    qtbot.waitUntil(lambda: window.watch.update_due == "The folder changed", timeout=WAIT_MS)
    assert window.builds.busy and not window.builds.has_pending  # nothing started beside the build
    finished = []
    window.build_finished.connect(finished.append)
    gate.set()
    qtbot.waitUntil(lambda: len(finished) >= 2 and not window.builds.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.session.catalogue is not None and window.session.catalogue.searchable == 33,
                    timeout=WAIT_MS)
