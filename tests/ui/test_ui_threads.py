"""Long work stays off the GUI thread, stale queries are dropped, and closing stops every thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from PyQt5.QtCore import QTimer

from swimsearch.catalogue import Catalogue, default_catalogue_path
from ui.workers import running_threads
from ui_helpers import WAIT_MS, gated_model, make_pattern_images, open_catalogue


def test_the_gui_thread_answers_quickly_while_a_build_runs(qtbot, make_window, tmp_path):
    folder = tmp_path / "many"
    make_pattern_images(folder, 800, size=96)
    window = make_window()
    late = []
    expected = [0.0]
    interval = 10

    def tick():
        now = time.perf_counter()
        if expected[0]:
            late.append((now - expected[0]) * 1000)
        expected[0] = now + interval / 1000

    timer = QTimer()
    timer.setInterval(interval)
    timer.timeout.connect(tick)
    timer.start()
    try:
        with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
            window.open_path(str(folder))
    finally:
        timer.stop()
    assert finished.args[0].report.indexed == 800
    assert len(late) > 10
    # A build done on the GUI thread would freeze it for the whole build (well over a second here).
    assert max(late) < 250, f"the GUI thread was late by up to {max(late):.0f} ms"


def test_a_burst_of_queries_shows_only_the_last(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    shown = []
    window.results_shown.connect(shown.append)
    for n in (1, 4, 7, 10, 13):
        window.search_file(str(designs / f"img{n:04d}.png"))
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    with qtbot.assertNotEmitted(window.results_shown, wait=300):
        pass
    assert [result.matches[0].name for result in shown] == ["img0013.png"]
    assert window.query_panel.name_label.full_text() == "img0013.png"


def test_closing_the_window_during_a_build_cancels_and_waits_for_every_thread(qtbot, make_window, tmp_path):
    folder = tmp_path / "big"
    make_pattern_images(folder, 120)
    gate = threading.Event()
    window = make_window(open_embedder=gated_model(gate, free_batches=2))
    progress = []
    window.build_progress_changed.connect(lambda *args: progress.append(args))
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: any(p == "embed" and done >= 16 for p, done, _ in progress), timeout=WAIT_MS)
    # Release the model only once closing has asked the build to stop (close() blocks
    # this thread while it waits), or the fake model could finish all 120 first.
    release = threading.Timer(0.3, gate.set)
    release.start()
    window.close()
    release.join()
    assert running_threads() == []
    with Catalogue.open(default_catalogue_path(folder)) as catalogue:
        counts = catalogue.counts()
    assert 16 <= counts["searchable"] < 120 and counts["searchable"] == counts["readable"]


def test_many_short_jobs_beside_a_busy_gui_thread_never_hang():
    # A hang here is what a user saw as a window frozen for good after a few duplicate reviews.
    # Two runs of 3,000 jobs (~2 s each): the code before the fix hung in 3 of 4 such runs.
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(root))
    for _ in range(2):
        try:
            done = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("job_churn.py")), "3000"],
                cwd=root, env=env, capture_output=True, text=True, timeout=90,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("3,000 short jobs beside a GUI thread that connects labels did not finish in 90 s (deadlock)")
        assert done.returncode == 0, done.stderr
        assert "done 3000 results 3000" in done.stdout


def test_a_job_started_just_as_the_previous_one_ends_still_runs(qtbot):
    # The window's "remove them" answer starts a build while the update that asked may be ending: if it ended
    # between the runner's "still running?" and its waiting for the end, the new build never started.
    from ui.workers import Job, JobRunner, Worker

    class Quick(Worker):
        def work(self) -> str:
            return "done"

    runner = JobRunner()
    first = Job(Quick(), "first")
    runner.start(first)
    assert first.wait(10_000)
    answers = []
    second_worker = Quick()
    second_worker.result_ready.connect(answers.append)
    looked = []

    def ended_just_after_the_look() -> bool:
        looked.append(True)
        return len(looked) == 1  # "still running" once, as seen a moment before its end

    first.is_running = ended_just_after_the_look
    runner.start(Job(second_worker, "second"))
    qtbot.waitUntil(lambda: answers == ["done"], timeout=10_000)
    runner.stop()


def test_no_job_starts_once_the_runner_is_stopped(qtbot):
    # Closing the window stops its builds; an update its last events ask for afterwards (a finished build's
    # "idle" reaching the watch's due update) must not start a build that outlives the window.
    from ui.workers import Job, JobRunner, Worker

    class Quick(Worker):
        def work(self) -> str:
            return "done"

    runner = JobRunner()
    runner.stop()
    late = Job(Quick(), "late")
    runner.start(late)
    qtbot.wait(50)
    assert not late.is_running() and not runner.busy and runner.job is None


def test_closing_the_window_while_its_array_cache_is_mapped_in_leaves_no_thread(
        qtbot, make_window, designs, small_config, monkeypatch, tmp_path):
    """A large catalogue's array cache is mapped in on a thread of its own (mapped_pages.py): closing the
    window stops it between two chunks, not once a whole file is mapped."""
    from helpers import slow_mapping
    from ui_helpers import drop_and_wait

    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    slow_mapping(monkeypatch, 60)
    window = make_window(config=small_config.with_changes(rescore_in_memory_up_to=0, array_cache_from=1))
    open_catalogue(qtbot, window, designs)
    mapping = lambda: [t for t in threading.enumerate() if t.name == "array-pages" and t.is_alive()]  # noqa: E731
    for _ in range(200):  # the second search starts the maker, a search after its answer takes the cache
        drop_and_wait(qtbot, window, designs / "img0004.png")
        if mapping():
            break
        qtbot.wait(100)
    threads = mapping()
    assert threads, "the array cache was not taken"
    window.close()
    assert not any(t.is_alive() for t in threads)
