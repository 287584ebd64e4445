"""Duplicate review through the real widgets: groups, keepers, synchronised zoom, moves, undo, CSV."""

from __future__ import annotations

import csv
import shutil

import pytest
from PIL import Image

import ui.dialogs
from swimsearch.catalogue import Catalogue, default_catalogue_path
from swimsearch.config import EngineConfig
from ui.duplicate_view import DuplicateReviewDialog
from ui.search import open_default_embedder
from ui_helpers import WAIT_MS, copy_clothing_photos, error_texts, make_pattern_images, open_catalogue


@pytest.fixture
def copies(tmp_path, fake_embedder, small_config):
    """12 designs, two of them with copies: an identical one and a larger re-export in a subfolder."""
    folder = tmp_path / "designs"
    make_pattern_images(folder, 12)
    shutil.copy(folder / "img0001.png", folder / "img0001 copy.png")
    (folder / "big").mkdir()
    Image.open(folder / "img0001.png").resize((96, 96), Image.NEAREST).save(folder / "big" / "img0001.png")
    shutil.copy(folder / "img0005.png", folder / "img0005 copy.png")
    with Catalogue.create(default_catalogue_path(folder), folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    return folder


def review_window(qtbot, window) -> DuplicateReviewDialog:
    window.duplicates_action.trigger()
    dialog = window.findChild(DuplicateReviewDialog)
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: window.duplicates.catalogue_path is not None and not window.duplicates.busy, timeout=WAIT_MS)
    return dialog


def test_review_moves_all_but_the_keeper_aside_updates_the_catalogue_and_undoes(qtbot, make_window, copies, tmp_path,
                                                                                 monkeypatch):
    window = make_window()
    open_catalogue(qtbot, window, copies)
    assert window.duplicates_action.shortcut().toString() == "Ctrl+D"
    dialog = review_window(qtbot, window)
    review = window.duplicates
    groups = {frozenset(p.rsplit("/", 1)[-1] for p in g.paths): g for g in review.groups}
    assert len(review.groups) == 2 and review.movable() == 3
    three = next(g for g in review.groups if len(g.members) == 3)
    keeper = three.members[review.keepers[review.groups.index(three)]]
    assert keeper.path == str(copies / "big" / "img0001.png")  # the largest picture is kept
    assert "2 groups: 3 copies can be moved aside" in dialog.status.text()
    assert dialog.tree.topLevelItemCount() == 2 and groups

    # the two copies side by side, zoomed and panned together
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(review.groups.index(three)))
    qtbot.waitUntil(lambda: dialog.left.view.has_picture() and dialog.right.view.has_picture(), timeout=WAIT_MS)
    assert dialog.left.view.path == keeper.path and dialog.right.view.path != keeper.path
    dialog.command["zoom_in_pair"].trigger()
    dialog.command["zoom_in_pair"].trigger()
    assert dialog.left.view.zoom == dialog.right.view.zoom == pytest.approx(1.5625)
    bar = dialog.left.view.horizontalScrollBar()
    bar.setValue(bar.maximum())
    assert dialog.right.view.position()[0] == pytest.approx(1.0, abs=0.02)
    dialog.command["fit_pair"].trigger()
    assert dialog.right.view.zoom == 1.0

    # a destination inside the catalogue's folder is refused: the files would come back at the next update
    chosen = [str(copies / "big")]
    monkeypatch.setattr(ui.dialogs, "choose_folder", lambda parent, start, title="": chosen[0])
    monkeypatch.setattr(ui.dialogs, "confirm", lambda parent, text, title="": True)
    dialog.command["move_all"].trigger()
    assert any("Choose a folder outside “designs”" in text for text in error_texts(dialog))
    assert (copies / "img0001 copy.png").exists()

    aside = tmp_path / "aside"
    aside.mkdir()
    (aside / "img0001.png").write_bytes(b"someone else's file")  # a name clash at the destination
    chosen[0] = str(aside)
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as ready:
        dialog.command["move_all"].trigger()
    assert ready.args[0].searchable == 12  # the catalogue no longer holds the moved copies
    assert (copies / "big" / "img0001.png").exists() and (copies / "img0005.png").exists()  # keepers stay
    assert not (copies / "img0001.png").exists() and not (copies / "img0001 copy.png").exists()
    assert sorted(p.name for p in aside.iterdir()) == [
        "img0001 (2).png", "img0001 copy.png", "img0001.png", "img0005 copy.png", "moved-by-swimsearch.csv"]
    assert (aside / "img0001.png").read_bytes() == b"someone else's file"
    assert review.groups == [] and "Moved 3 files to" in dialog.note.full_text()
    assert window.settings["duplicates/destination"] == str(aside)

    # undo works after the view was closed and opened again
    dialog.close()
    qtbot.waitUntil(lambda: window.findChild(DuplicateReviewDialog) is None, timeout=WAIT_MS)
    dialog = review_window(qtbot, window)
    assert dialog.command["undo_move"].isEnabled() and dialog.command["undo_move"].shortcut().toString() == "Ctrl+Z"
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as ready:
        dialog.command["undo_move"].trigger()
    assert ready.args[0].searchable == 15
    assert (copies / "img0001.png").exists() and (copies / "img0001 copy.png").exists()
    assert (copies / "img0005 copy.png").exists() and (aside / "img0001.png").read_bytes() == b"someone else's file"
    assert len(review.groups) == 2 and review.movable() == 3 and "Moved 3 files back." in dialog.note.full_text()


def test_keeper_rules_the_users_choice_and_the_csv_of_groups(qtbot, make_window, copies, tmp_path, monkeypatch):
    window = make_window()
    open_catalogue(qtbot, window, copies)
    dialog = review_window(qtbot, window)
    review = window.duplicates
    g = next(i for i, grp in enumerate(review.groups) if len(grp.members) == 3)
    monkeypatch.setattr(ui.dialogs, "choose_folder", lambda parent, start, title="": str(copies))
    dialog.rule_box.setCurrentIndex(dialog.rule_box.findData("folder"))
    dialog.rule_box.activated.emit(dialog.rule_box.currentIndex())
    kept = review.groups[g].members[review.keepers[g]].path
    assert kept.startswith(str(copies)) and window.settings["duplicates/keep_rule"] == "folder"
    # the user picks another copy
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(g).child(1))
    dialog.command["keep_right"].trigger()
    chosen = review.groups[g].members[review.keepers[g]].path
    item = next(dialog.tree.topLevelItem(g).child(i) for i in range(3)
                if dialog.tree.topLevelItem(g).child(i).text(1) == "keep")
    assert item.toolTip(0).startswith(chosen)
    out = tmp_path / "groups.csv"
    monkeypatch.setattr(ui.dialogs, "choose_csv_path", lambda parent, suggested: str(out))
    dialog.command["export_groups"].trigger()
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert len(rows) == 5 and {r["group"] for r in rows} == {"1", "2"}
    assert [r["path"] for r in rows if r["keep"] == "yes" and r["group_size"] == "3"] == [chosen]
    assert sum(r["keep"] == "yes" for r in rows) == 2


def test_the_same_design_tier_is_offered_and_says_why_a_model_without_calibration_cannot(qtbot, make_window, copies):
    window = make_window()
    open_catalogue(qtbot, window, copies)
    dialog = review_window(qtbot, window)
    model = dialog.tier_box.model()
    assert model.item(0).isEnabled() and model.item(1).isEnabled() and "same-design band" in model.item(1).toolTip()
    errors = []
    window.duplicates.failed.connect(errors.append)
    dialog.tier_box.setCurrentIndex(1)  # the fake model has no calibration: one plain sentence
    qtbot.waitUntil(lambda: bool(errors) and not window.duplicates.busy, timeout=WAIT_MS)
    assert "calibrated similarity" in errors[0] and window.duplicates.tier == 1 and not window.duplicates.groups
    dialog.tier_box.setCurrentIndex(0)
    qtbot.waitUntil(lambda: len(window.duplicates.groups) == 2 and not window.duplicates.busy, timeout=WAIT_MS)


def test_moving_many_copies_aside_removes_them_without_asking_whether_they_are_gone(
        qtbot, make_window, tmp_path, fake_embedder, small_config, monkeypatch):
    folder = tmp_path / "exports"
    make_pattern_images(folder, 12)
    for n in range(12):  # every design exported twice: half the folder is copies
        shutil.copy(folder / f"img{n:04d}.png", folder / f"img{n:04d} copy.png")
    with Catalogue.create(default_catalogue_path(folder), folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    window = make_window()
    open_catalogue(qtbot, window, folder)
    dialog = review_window(qtbot, window)
    assert window.duplicates.movable() == 12
    aside = tmp_path / "aside"
    aside.mkdir()
    monkeypatch.setattr(ui.dialogs, "choose_folder", lambda parent, start, title="": str(aside))
    monkeypatch.setattr(ui.dialogs, "confirm", lambda parent, text, title="": True)
    with qtbot.waitSignal(window.build_finished, timeout=WAIT_MS) as finished:
        dialog.command["move_all"].trigger()
    assert (finished.args[0].report.removed, finished.args[0].report.held) == (12, 0)  # SwimSearch moved them itself
    qtbot.waitUntil(lambda: window.session.catalogue is not None and window.session.catalogue.searchable == 12,
                    timeout=WAIT_MS)
    assert not window.findChildren(ui.dialogs.QMessageBox, "removalBox")  # no "are they really gone?" question


def test_move_all_moves_only_near_identical_files_and_look_alikes_move_one_group_at_a_time(
        qtbot, make_window, tmp_path, clothing, embedder, monkeypatch):
    """Real photos, the real model: a re-saved copy (near-identical) and a mirrored copy (same design only).
    The bulk move takes the re-save's copy and never a same-design group; Move others… still moves the group
    shown (on the 5,398 clothing photos, same-design groups also join different, very alike garments)."""
    folder = tmp_path / "photos"
    photos = copy_clothing_photos(clothing, folder, 8)
    resaved, mirrored = folder / "resaved.jpg", folder / "mirrored.jpg"
    with Image.open(photos[0]) as im:
        im.convert("RGB").save(resaved, quality=85)
    with Image.open(photos[1]) as im:
        im.transpose(Image.FLIP_LEFT_RIGHT).save(mirrored, quality=95)
    with Catalogue.create(default_catalogue_path(folder), folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    files_before = sorted(p.name for p in folder.glob("*.jpg"))
    window = make_window(open_embedder=open_default_embedder, config=EngineConfig())
    open_catalogue(qtbot, window, folder)
    dialog = review_window(qtbot, window)
    review = window.duplicates
    aside = tmp_path / "aside"
    aside.mkdir()
    asked = []
    monkeypatch.setattr(ui.dialogs, "choose_folder", lambda parent, start, title="": str(aside))
    monkeypatch.setattr(ui.dialogs, "confirm", lambda parent, text, title="": asked.append(text) or True)

    # same design: the mirror pair is a group of look-alikes to check, never moved all at once
    dialog.tier_box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: review.tier == 1 and review.catalogue_path is not None and not review.busy,
                    timeout=WAIT_MS)
    names = [{p.rsplit("/", 1)[-1] for p in g.paths} for g in review.groups]
    assert any({photos[1].name, "mirrored.jpg"} <= n for n in names), names
    assert not dialog.command["move_all"].isEnabled() and dialog.command["move_group"].isEnabled()
    assert "look-alikes to check" in dialog.status.text() and "different garments" in dialog.status.text()
    assert "look-alikes to check" in dialog.tree.topLevelItem(0).text(0)
    assert "Ctrl+M" in dialog.command["move_all"].toolTip()
    dialog.move_all()  # even called directly (a stale shortcut), nothing is asked and nothing moves
    assert "one group at a time" in review.move_others(str(aside), None)
    assert "one group at a time" in review.move_others(str(aside), list(range(len(review.groups))))
    assert not asked and not review.busy and sorted(p.name for p in folder.glob("*.jpg")) == files_before

    # near-identical files: Move all others moves the re-save's copy, and the dialog counts only it
    dialog.tier_box.setCurrentIndex(0)
    qtbot.waitUntil(lambda: review.tier == 0 and review.catalogue_path is not None and not review.busy,
                    timeout=WAIT_MS)
    assert [{p.rsplit("/", 1)[-1] for p in g.paths} for g in review.groups] == [{photos[0].name, "resaved.jpg"}]
    assert dialog.command["move_all"].isEnabled()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        dialog.command["move_all"].trigger()
    assert len(asked) == 1 and asked[0].startswith("Move 1 near-identical file to")
    moved = {p.name for p in aside.glob("*.jpg")}
    assert len(moved) == 1 and moved <= {photos[0].name, "resaved.jpg"}
    assert photos[1].exists() and mirrored.exists()  # the same-design pair is not touched
    assert len(list(folder.glob("*.jpg"))) == len(files_before) - 1

    # Move others… on the same-design group shown still moves that group's others
    dialog.tier_box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: review.tier == 1 and review.catalogue_path is not None and not review.busy,
                    timeout=WAIT_MS)
    g = next(i for i, grp in enumerate(review.groups)
             if {photos[1].name, "mirrored.jpg"} <= {p.rsplit("/", 1)[-1] for p in grp.paths})
    group = review.groups[g]
    kept = group.members[review.keepers[g]].path
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(g))
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS):
        dialog.command["move_group"].trigger()
    assert len(asked) == 1  # one group the user is looking at: no bulk confirmation
    others = {p.rsplit("/", 1)[-1] for p in group.paths if p != kept}
    assert others <= {p.name for p in aside.glob("*.jpg")} and (folder / kept.rsplit("/", 1)[-1]).exists()
    assert len(list(folder.glob("*.jpg"))) == len(files_before) - 1 - len(others)
