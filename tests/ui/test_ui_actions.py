"""The commands table: menus, toolbar, keys and what is enabled, as a user sees them."""

from __future__ import annotations

from dataclasses import fields
from functools import reduce

from ui.actions import ACTIONS, MENUS
from ui.session_types import SessionView
from ui_helpers import drop_and_wait, open_catalogue


def entries(actions) -> list[str]:
    return [action.text() if not action.isSeparator() else "—" for action in actions]


def test_menus_and_toolbar_read_as_before(make_window):
    window = make_window()
    menus = {action.text(): entries(action.menu().actions()) for action in window.menuBar().actions()}
    assert list(menus) == list(MENUS)
    assert menus == {
        "&File": ["Open design…", "Paste design", "—", "Export matches…", "Export as contact sheet…",
                  "Copy match list", "—", "Quit"],
        "&Catalogue": ["Build catalogue…", "Update catalogue", "Watch the folder for changes", "Open catalogue…",
                       "Connect to team catalogue…", "Map shared folder…", "Recent catalogues", "Open the sample catalogue", "—", "Review duplicates…",
                       "Unreadable files…"],
        "&Search": ["Random design", "Back", "Forward", "Search with the selected designs", "—", "Not like this",
                    "Same design as the query", "Not similar to the query", "—", "Search in folders…",
                    "Match mirrored designs", "Look ahead while idle", "—", "Search the whole picture"],
        "&View": ["Larger thumbnails", "Smaller thumbnails"],
        "&Help": ["Keyboard shortcuts", "About SwimSearch"],
    }
    toolbar = [a.iconText() if not a.isSeparator() else "—" for a in window.toolbar.actions()]
    assert toolbar == ["←", "→", "—", "Open…", "Paste", "Random", "—", "Build…", "Update", "—",
                       "Export…", "Copy list"]
    assert window.export_action.toolTip() == "Save the matches shown as a CSV file (Ctrl+E)"
    assert [k.toString() for k in window.zoom_in_action.shortcuts()] == ["Ctrl++", "Ctrl+="]
    assert window.mirror_action.isCheckable() and not window.open_image_action.isCheckable()


def test_every_row_names_a_slot_and_a_rule_that_exist(make_window):
    window = make_window()
    rules = {f.name for f in fields(SessionView) if f.type in ("bool", bool)}
    for spec in ACTIONS:
        assert callable(reduce(getattr, spec.slot.split("."), window)), spec.slot
        assert spec.enabled_when in rules | {""} and spec.checked_when in rules | {""}, spec.name
        assert spec.menu in MENUS and spec.section >= 0 and spec.toolbar >= 0


def test_commands_are_enabled_when_they_can_act(qtbot, make_window, designs):
    window = make_window()
    waiting = [window.back_action, window.forward_action, window.random_action, window.update_action,
               window.export_action, window.copy_action]
    assert not any(action.isEnabled() for action in waiting)
    assert window.open_image_action.isEnabled() and window.build_action.isEnabled()
    open_catalogue(qtbot, window, designs)
    assert window.random_action.isEnabled() and window.update_action.isEnabled()
    assert not window.export_action.isEnabled() and not window.back_action.isEnabled()
    drop_and_wait(qtbot, window, designs / "img0004.png")
    assert window.export_action.isEnabled() and window.copy_action.isEnabled()
    window.min_slider.setValue(100)  # only the query itself is left
    assert window.export_action.isEnabled()
    window.top_spin.setValue(1)
    drop_and_wait(qtbot, window, designs / "img0010.png")
    assert window.back_action.isEnabled() and not window.forward_action.isEnabled()
    window.back_action.trigger()
    assert window.forward_action.isEnabled() and window.query_panel.name_label.full_text() == "img0004.png"
