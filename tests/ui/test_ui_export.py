"""Export and copy: what leaves the window is what the user sees in the grid."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import ui.dialogs
from PyQt5.QtWidgets import QApplication

from ui.results import percent
from ui_helpers import WAIT_MS, drop_and_wait, error_texts, open_catalogue


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
    assert [int(r["similarity"]) for r in rows] == [percent(m.score) for m in shown]  # as the grid shows them
    # what is the same on every row is said once, beside the CSV
    about = json.loads((tmp_path / "exports" / "matches.about.json").read_text(encoding="utf-8"))
    assert about["catalogue"].endswith(".swimsearch.swimcat") and about["model"] == "fake-embedder@32"
    assert about["model_sha256"] == "f" * 64 and about["rows"] == len(shown) and about["exported_at"]
    assert about["filters"] == "the 6 best matches, at least 1% similar" and set(about["columns"]) == set(rows[0])
    assert "model_sha256" not in rows[0] and "code_distance" not in rows[0]
    assert f"Exported {len(shown)} matches" in window.statusBar().currentMessage()
    assert [p.name for p in out.parent.iterdir()] == sorted(["matches.csv", "matches.about.json"]) or sorted(
        p.name for p in out.parent.iterdir()) == ["matches.about.json", "matches.csv"]  # no temporary file left


def test_copy_puts_the_shown_list_on_the_clipboard(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0011.png")
    window.top_spin.setValue(3)
    assert window.copy_action.shortcut().toString() == "Ctrl+Shift+C"
    window.copy_action.trigger()
    lines = QApplication.clipboard().text().splitlines()
    assert lines[0] == f"Query\t{designs / 'img0011.png'}"
    assert lines[1] == "Rank\tSimilarity\tBand\tDuplicate\tPath"
    assert [line.split("\t")[4] for line in lines[2:]] == [m.path for m in window.model.visible_matches()]
    assert lines[2].startswith("1\t100%")


def test_an_export_that_cannot_be_written_is_one_plain_sentence(qtbot, make_window, designs, tmp_path, monkeypatch):
    target = tmp_path / "no such folder" / "out.csv"
    monkeypatch.setattr(ui.dialogs, "choose_csv_path", lambda parent, suggested: str(target))
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0001.png")
    window.export_action.trigger()
    assert error_texts(window) == [f"The file {target} cannot be used: No such file or directory."]


def test_the_next_export_starts_in_the_last_folder_written_not_one_that_failed(
    qtbot, make_window, designs, tmp_path, monkeypatch
):
    """Review round 12, item 21: a failed export's folder was still offered as the place of the next one."""
    written, failed = tmp_path / "written", tmp_path / "no such folder"
    written.mkdir()
    offered, answers = [], [str(written / "a.csv"), str(failed / "b.csv"), str(written / "c.csv")]
    monkeypatch.setattr(ui.dialogs, "choose_csv_path", lambda parent, suggested: offered.append(suggested) or answers.pop(0))
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0001.png")
    window.export_action.trigger()  # written
    window.export_action.trigger()  # fails: no such folder
    assert len(error_texts(window)) == 1
    window.export_action.trigger()
    assert [str(Path(p).parent) for p in offered[1:]] == [str(written), str(written)]


def test_export_and_copy_wait_for_results(qtbot, make_window, designs):
    window = make_window()
    open_catalogue(qtbot, window, designs)
    assert not window.export_action.isEnabled() and not window.copy_action.isEnabled()


def test_export_as_contact_sheet_writes_the_query_and_the_matches_shown(qtbot, make_window, designs, tmp_path, monkeypatch):
    out = tmp_path / "sheets" / "meeting.html"
    out.parent.mkdir()
    asked = []
    monkeypatch.setattr(ui.dialogs, "choose_sheet_path", lambda parent, suggested: asked.append(suggested) or str(out))
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0009.png")
    window.top_spin.setValue(5)
    shown = window.model.visible_matches()
    assert window.export_sheet_action.isEnabled() and window.export_sheet_action.shortcut().toString() == "Ctrl+Shift+E"
    window.export_sheet_action.trigger()
    qtbot.waitUntil(lambda: window.exports.sheet_job is None, timeout=WAIT_MS)
    assert asked and asked[0].endswith("sheet-img0009.pdf")
    page = out.read_text(encoding="utf-8")
    assert page.count("<figure") == len(shown) == 5
    for match in shown:
        assert f"{match.rank}. {match.name}" in page and f">{percent(match.score)}%<" in page
    assert "Query: img0009.png" in page and "Contact sheet — designs" in page
    assert "Filters: the 5 best matches" in page and page.count("data:image/jpeg;base64,") == 6  # query + 5
    assert f"Saved a contact sheet of 5 matches to {out}" in window.statusBar().currentMessage()
    assert sorted(p.name for p in out.parent.iterdir()) == ["meeting.html"]  # written whole, no temporary left


def test_a_contact_sheet_can_be_cancelled_and_leaves_nothing(qtbot, make_window, designs, tmp_path, monkeypatch):
    import ui.exports

    out = tmp_path / "sheet.pdf"
    monkeypatch.setattr(ui.dialogs, "choose_sheet_path", lambda parent, suggested: str(out))
    window = make_window()
    open_catalogue(qtbot, window, designs)
    drop_and_wait(qtbot, window, designs / "img0002.png")
    started = []
    real = ui.exports.SheetWorker.work

    def work(worker):
        started.append(worker)
        worker.cancel()  # as the progress dialog's Cancel does
        return real(worker)

    monkeypatch.setattr(ui.exports.SheetWorker, "work", work)
    window.export_sheet_action.trigger()
    qtbot.waitUntil(lambda: window.exports.sheet_job is None, timeout=WAIT_MS)
    assert started and not out.exists() and list(tmp_path.glob(".sheet.pdf.*")) == []
    assert error_texts(window) == []
