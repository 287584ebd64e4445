"""Every command of the window declared once: its words, keys, slot, menu and toolbar place, and when it is on.

MusicBrainz Picard's `picard/ui/...actions` pattern: the window does not
build actions by hand; `create_actions` makes one QAction per row of
`ACTIONS` (kept as `window.<name>_action`), `fill_menu_bar` and
`fill_toolbar` place them, and `apply_view` enables and checks them from the
session's view (`SessionView`), whose boolean fields the `enabled_when` and
`checked_when` columns name. `MATCH_ACTIONS` is the same for the menu of one
result. A new command is a new row (and its slot on the window).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import reduce
from itertools import groupby
from typing import Any, Callable

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QMainWindow, QMenu, QMenuBar, QToolBar

from swimsearch.search import Match

from .queries import RandomQuery

log = logging.getLogger(__name__)

#: The menu bar, left to right.
MENUS = ("&File", "&Catalogue", "&Search", "&View", "&Help")


@dataclass(frozen=True)
class ActionSpec:
    """One command of the window.

    Attributes:
        name: the window keeps the QAction as `<name>_action` (a submenu as `<name>_menu`).
        text: the menu text.
        slot: the window's method the command calls, or its session's ("session.go_back");
            a submenu: the window's method that fills it as it opens.
        shortcuts: key sequences, the first one shown in menus and tips.
        tip: the tooltip and status-bar tip (default: the text).
        short: the toolbar's shorter label.
        menu: the menu it is in (one of MENUS; "" for none).
        section: menu section; a separator goes between sections.
        toolbar: toolbar section (0: not on the toolbar); a separator goes between sections.
        enabled_when: a boolean field of SessionView; "" for always enabled.
        checked_when: a boolean field of SessionView; makes the action checkable,
            and the slot receives the new checked state.
        args: arguments the slot is called with.
        submenu: the row is a submenu, filled by `slot` each time it opens.
        changes: it changes the catalogue: on a read-only one (a viewer's) it is disabled and its tooltip
            says why (SessionView.readonly_reason), instead of being refused when chosen.
    """

    name: str
    text: str
    slot: str
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    short: str = ""
    menu: str = ""
    section: int = 0
    toolbar: int = 0
    enabled_when: str = ""
    checked_when: str = ""
    args: tuple[Any, ...] = ()
    submenu: bool = False
    changes: bool = False


A = ActionSpec
ACTIONS: tuple[ActionSpec, ...] = (
    A("open_image", "Open design…", "choose_image", ("Ctrl+O",), "Search with a design from a file", "Open…",
      menu="&File", section=1, toolbar=2),
    A("paste", "Paste design", "paste", ("Ctrl+V",), "Search with a picture from the clipboard", "Paste",
      menu="&File", section=1, toolbar=2),
    A("export", "Export matches…", "exports.csv", ("Ctrl+E",), "Save the matches shown as a CSV file", "Export…",
      menu="&File", section=2, toolbar=4, enabled_when="has_results"),
    A("export_sheet", "Export as contact sheet…", "exports.sheet", ("Ctrl+Shift+E",),
      "Save the query and the matches shown as a PDF or web page for a meeting", "Sheet…",
      menu="&File", section=2, enabled_when="has_results"),
    A("copy", "Copy match list", "exports.copy_list", ("Ctrl+Shift+C",), "Copy the matches shown as text", "Copy list",
      menu="&File", section=2, toolbar=4, enabled_when="has_results"),
    A("quit", "Quit", "close", ("Ctrl+Q",), menu="&File", section=3),
    A("build", "Build catalogue…", "choose_folder_to_build", ("Ctrl+B",), "Build a catalogue from a folder of designs",
      "Build…", menu="&Catalogue", toolbar=3),
    A("update", "Update catalogue", "session.update", ("F5",), "Read new and changed files of the catalogue's folder",
      "Update", menu="&Catalogue", toolbar=3, enabled_when="can_update", changes=True),
    A("watch", "Watch the folder for changes", "watch.set_enabled",
      tip="Update this catalogue by itself when pictures in its folder are added, changed or removed",
      menu="&Catalogue", enabled_when="can_update", checked_when="watching", changes=True),
    A("open_catalogue", "Open catalogue…", "choose_catalogue", ("Ctrl+Shift+O",), "Open an existing catalogue file",
      menu="&Catalogue"),
    A("connect_team", "Connect to team catalogue…", "team.connect", tip="Open a catalogue the team shares on a PostgreSQL server",
      menu="&Catalogue"),
    A("map_root", "Map shared folder…", "team.map_root",
      tip="Show SwimSearch where the team catalogue's shared folder is on this computer", menu="&Catalogue",
      enabled_when="team_open"),
    A("recent", "Recent catalogues", "fill_recent_menu", menu="&Catalogue", submenu=True),
    A("sample", "Open the sample catalogue", "open_sample", menu="&Catalogue"),
    A("duplicates", "Review duplicates…", "duplicates.show", ("Ctrl+D",),
      "Find near-identical files, keep one copy of each and move the others aside",
      menu="&Catalogue", section=2, enabled_when="searchable"),
    A("unreadable", "Unreadable files…", "show_unreadable", tip="The files the catalogue could not read, and why",
      menu="&Catalogue", section=2, enabled_when="has_unreadable"),
    A("random", "Random design", "session.search", ("Ctrl+R",), "Search from a random design of the catalogue", "Random",
      menu="&Search", section=1, toolbar=2, enabled_when="searchable", args=(RandomQuery(),)),
    A("back", "Back", "session.go_back", ("Alt+Left",), "Previous query", "←",
      menu="&Search", section=1, toolbar=1, enabled_when="can_go_back"),
    A("forward", "Forward", "session.go_forward", ("Alt+Right",), "Next query", "→",
      menu="&Search", section=1, toolbar=1, enabled_when="can_go_forward"),
    A("search_selected", "Search with the selected designs", "steering.search_selected", ("Ctrl+Return", "Ctrl+Enter"),
      "Search with all the results selected (Ctrl- or Shift-click to select several)", menu="&Search", section=1,
      enabled_when="has_results"),
    A("not_like", "Not like this", "steering.not_like_current", ("Ctrl+Shift+N",),
      "Push the result in focus and designs like it down the list", menu="&Search", section=2,
      enabled_when="has_results"),
    A("mark_same", "Same design as the query", "steering.mark_same_current", ("Ctrl+Shift+S",),
      "Keep in the catalogue that the result in focus is the same design as the query (again: take it back)",
      menu="&Search", section=2, enabled_when="can_decide", changes=True),
    A("mark_different", "Not similar to the query", "steering.mark_different_current", ("Ctrl+Shift+D",),
      "Keep in the catalogue that the result in focus is not similar to the query (again: take it back)",
      menu="&Search", section=2, enabled_when="can_decide", changes=True),
    A("folders", "Search in folders…", "steering.choose_folders", ("Ctrl+Shift+F",),
      "Search only in some subfolders of the catalogue (a collection, a season)", menu="&Search", section=3,
      enabled_when="has_subfolders"),
    A("mirror", "Match mirrored designs", "set_mirror", tip="Also find designs that match the query flipped left to right",
      menu="&Search", section=3, checked_when="mirror"),
    A("look_ahead", "Look ahead while idle", "look_ahead.set_enabled",
      tip="While nobody searches, look at the pairs a click on each design would show as same design, so its search is "
          "quicker (half of one core at most; kept between sessions)", menu="&Search", section=3, checked_when="looking_ahead"),
    A("whole_picture", "Search the whole picture", "session.clear_detail", ("Esc",),
      "Clear the box drawn on the query and search with all of its picture again",
      menu="&Search", section=4, enabled_when="has_box"),
    A("zoom_in", "Larger thumbnails", "zoom", ("Ctrl++", "Ctrl+="), menu="&View", args=(+1,)),
    A("zoom_out", "Smaller thumbnails", "zoom", ("Ctrl+-",), menu="&View", args=(-1,)),
    A("shortcuts", "Keyboard shortcuts", "show_shortcuts", ("F1",), "Every key of the window", menu="&Help"),
    A("about", "About SwimSearch", "show_about", menu="&Help"),
)


@dataclass(frozen=True)
class MatchAction:
    """One command of a result's context menu: text, the window's slot (called with the Match), section.

    Slots and predicates are the window's methods or its parts' ("steering.not_like").

    Attributes:
        needs_file: disabled when the match's file is missing.
        enabled_when: a predicate called with the match; disabled when it says False.
        checked_when: a predicate called with the match; makes the row checkable, checked when True.
        changes: it changes the catalogue: disabled on a read-only one, its tooltip saying why.
    """

    text: str
    slot: str
    section: int = 1
    needs_file: bool = False
    enabled_when: str = ""
    checked_when: str = ""
    changes: bool = False


MATCH_ACTIONS: tuple[MatchAction, ...] = (
    MatchAction("Search from this design", "search_match", needs_file=True),
    MatchAction("Search with the selected designs", "steering.search_selected", enabled_when="steering.several_selected"),
    MatchAction("Open", "open_match", needs_file=True),
    MatchAction("Show in folder", "reveal_match"),
    MatchAction("Not like this", "steering.not_like", section=2, enabled_when="steering.can_steer_from"),
    MatchAction("Same design as the query", "steering.mark_same", section=2, enabled_when="steering.can_decide",
                checked_when="steering.is_same", changes=True),
    MatchAction("Not similar to the query", "steering.mark_different", section=2, enabled_when="steering.can_decide",
                checked_when="steering.is_different", changes=True),
    MatchAction("Copy path", "copy_path", section=3),
)


def create_actions(window: QMainWindow, specs: tuple[ActionSpec, ...] = ACTIONS) -> dict[str, QAction]:
    """One QAction per row (submenus excepted), kept on the window as `<name>_action` and returned by name."""
    actions = {}
    for spec in specs:
        if spec.submenu:
            continue
        action = QAction(spec.text, window)
        if spec.short:
            action.setIconText(spec.short)
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        keys = action.shortcut().toString(QKeySequence.NativeText)
        tip = spec.tip or spec.text
        action.setToolTip(f"{spec.tip or spec.text.replace('…', '')} ({keys})" if keys else tip)
        action.setStatusTip(tip)
        action.setProperty(_OWN_TIPS, (action.toolTip(), tip))  # given back when a read-only catalogue closes
        action.setCheckable(bool(spec.checked_when))
        action.triggered.connect(_slot(window, spec))
        window.addAction(action)  # shortcuts work with the toolbar hidden too
        setattr(window, f"{spec.name}_action", action)
        actions[spec.name] = action
    return actions


def fill_menu_bar(window: QMainWindow, menu_bar: QMenuBar, actions: dict[str, QAction],
                  specs: tuple[ActionSpec, ...] = ACTIONS) -> None:
    """The menus of MENUS, each with its rows in table order and a separator between sections."""
    for title in MENUS:
        menu = menu_bar.addMenu(title)
        rows = [spec for spec in specs if spec.menu == title]
        for n, (_, section) in enumerate(groupby(rows, key=lambda spec: spec.section)):
            if n:
                menu.addSeparator()
            for spec in section:
                if spec.submenu:
                    submenu = menu.addMenu(spec.text)
                    submenu.aboutToShow.connect(getattr(window, spec.slot))
                    setattr(window, f"{spec.name}_menu", submenu)
                else:
                    menu.addAction(actions[spec.name])


def fill_toolbar(toolbar: QToolBar, actions: dict[str, QAction], specs: tuple[ActionSpec, ...] = ACTIONS) -> None:
    """The toolbar's sections in order, rows in table order within a section, separators between them."""
    rows = sorted((spec for spec in specs if spec.toolbar), key=lambda spec: spec.toolbar)
    for n, (_, section) in enumerate(groupby(rows, key=lambda spec: spec.toolbar)):
        if n:
            toolbar.addSeparator()
        for spec in section:
            toolbar.addAction(actions[spec.name])


def apply_view(actions: dict[str, QAction], view: Any, specs: tuple[ActionSpec, ...] = ACTIONS) -> None:
    """Enable and check the actions as the session's view says."""
    for spec in specs:
        action = actions.get(spec.name)
        if action is None:
            continue
        if spec.enabled_when:
            action.setEnabled(bool(getattr(view, spec.enabled_when)))
        if spec.changes:
            _say_why_not(action, getattr(view, "readonly_reason", ""))
        if spec.checked_when:
            action.setChecked(bool(getattr(view, spec.checked_when)))


def match_menu(window: QMainWindow, match: Match) -> QMenu:
    """The context menu of one result, from MATCH_ACTIONS (the window's slots get the match)."""
    menu = QMenu(window)
    menu.setToolTipsVisible(True)  # a disabled change says why (a viewer's window)
    refused = window.session.view().readonly_reason
    for n, (_, section) in enumerate(groupby(MATCH_ACTIONS, key=lambda row: row.section)):
        if n:
            menu.addSeparator()
        for row in section:
            action = menu.addAction(row.text, lambda checked=False, slot=_attribute(window, row.slot): slot(match))
            enabled = not (row.needs_file and match.missing)
            if row.enabled_when:
                enabled = enabled and bool(_attribute(window, row.enabled_when)(match))
            if row.changes and refused:
                enabled = False
                action.setToolTip(refused)
            action.setEnabled(enabled)
            if row.checked_when:
                action.setCheckable(True)
                action.setChecked(bool(_attribute(window, row.checked_when)(match)))
    return menu


_OWN_TIPS = "swimsearch_own_tips"


def _say_why_not(action: QAction, refused: str) -> None:
    """A change of a read-only catalogue: disabled, and its tooltip and status tip say why ("": its own tips)."""
    if refused:
        action.setEnabled(False)
        action.setToolTip(refused)
        action.setStatusTip(refused)
        return
    own = action.property(_OWN_TIPS)
    if own:
        action.setToolTip(own[0])
        action.setStatusTip(own[1])


def _attribute(window: QMainWindow, dotted: str) -> Any:
    return reduce(getattr, dotted.split("."), window)


def _slot(window: QMainWindow, spec: ActionSpec) -> Callable[[bool], None]:
    method = reduce(getattr, spec.slot.split("."), window)
    if spec.checked_when:
        return lambda checked=False: method(checked)
    return lambda checked=False: method(*spec.args)
