"""Export and copy: what leaves the window is what the user sees in the grid."""

from __future__ import annotations

import csv

import ui.dialogs
from PyQt5.QtWidgets import QApplication

from ui.results import percent
from ui_helpers import drop_and_wait, error_texts, open_catalogue


def test_export_writes_the_csv_the_user_sees(qtbot, make_window, designs, tmp_path, monkeypatch):
    out = tmp_path / "exports" / "matches"
    out.parent.mkdir()
    asked = []
    monkeypatch.setattr(ui.dialogs, "choose_csv_path", lambda parent, suggested: asked.append(suggested) or f"{out}.csv")
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0009.png")
    window.top_spin.setValue(6)
    window.min_slider.setValue(1)
    shown = window.model.visible_matches()
    assert 1 <= len(shown) <= 6

    assert window.export_action.shortcut().toString() == "Ctrl+E"
    window.export_action.trigger()
    assert asked and asked[0].endswith("matches-img0009.csv")
    with open(f"{out}.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [m.path for m in shown]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(shown) + 1))
    assert [percent(float(r["score"])) for r in rows] == [percent(m.score) for m in shown]
    assert {r["query"] for r in rows} == {str(designs / "img0009.png")}
    assert rows[0]["catalogue"].endswith(".swimsearch.swimcat") and rows[0]["model"] == "fake-embedder@32"
    assert f"Exported {len(shown)} matches" in window.statusBar().currentMessage()


def test_copy_puts_the_shown_list_on_the_clipboard(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0011.png")
    window.top_spin.setValue(3)
    assert window.copy_action.shortcut().toString() == "Ctrl+Shift+C"
    window.copy_action.trigger()
    lines = QApplication.clipboard().text().splitlines()
    assert lines[0] == f"Query\t{designs / 'img0011.png'}"
    assert [line.split("\t")[3] for line in lines[2:]] == [m.path for m in window.model.visible_matches()]
    assert lines[2].startswith("1\t100.0%")


def test_an_export_that_cannot_be_written_is_one_plain_sentence(qtbot, make_window, designs, tmp_path, monkeypatch):
    target = tmp_path / "no such folder" / "out.csv"
    monkeypatch.setattr(ui.dialogs, "choose_csv_path", lambda parent, suggested: str(target))
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0001.png")
    window.export_action.trigger()
    assert error_texts(window) == [f"The file {target} cannot be used: No such file or directory."]


def test_export_and_copy_wait_for_results(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    assert not window.export_action.isEnabled() and not window.copy_action.isEnabled()
