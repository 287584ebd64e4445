"""The plain types the session model, the window's widgets and the search service share (Qt-free).

`SessionView` is what the window shows, as `Session.view()` derives it;
`Filters` cut a result to what the grid shows; `CatalogueState` describes
the open catalogue; `Target` is a catalogue to open or build; `Event` is the
session's Qt-free signal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from swimsearch.locations import display_name
from swimsearch.search import Match

from .formatting import percent
from .history import HistoryEntry
from .queries import Query

log = logging.getLogger(__name__)


class Event:
    """A Qt-free signal: callbacks connected to it are called, in order, on `emit`."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass(frozen=True)
class Filters:
    """The Top-N and minimum-similarity controls: they cut the result locally, with no new search."""

    top_n: int = 50
    min_percent: int = 0

    def visible(self, matches: Sequence[Match]) -> tuple[Match, ...]:
        """The first `top_n` at or above the minimum, the matches marked *not similar* last among them.

        The search ranks a not-similar match after all others it was asked for (200 for the window),
        so cutting to the first `top_n` would drop it from view the moment it is marked: it stays, with
        its badge, at the end of the list, where it can be taken back.
        """
        kept = [m for m in matches if percent(m.score) >= self.min_percent]
        marked = [m for m in kept if m.decision == "different"][: self.top_n]
        others = [m for m in kept if m.decision != "different"][: self.top_n - len(marked)]
        return tuple(others + marked)

    def hidden_below_minimum(self, matches: Sequence[Match]) -> int:
        """Matches within the Top-N that the minimum similarity hides."""
        return sum(1 for m in matches[: self.top_n] if percent(m.score) < self.min_percent)


@dataclass(frozen=True)
class CatalogueState:
    """What the window shows about the open catalogue (a copy made in the search thread)."""

    path: str
    name: str
    root: str
    root_exists: bool
    images: int
    searchable: int
    unreadable: int
    readonly: bool
    model_name: str
    model_sha256: str
    can_search_images: bool  # the model is loaded
    folders: tuple[tuple[str, int], ...] = ()  # (subfolder, readable images under it), "" the folder itself
    built_with: str = ""  # the catalogue's model, in words, when it is not the model in use (else "")
    team: bool = False  # a team catalogue on a PostgreSQL server
    root_note: str = ""  # a team catalogue's folder not found on this computer: what to do (one sentence)
    readonly_reason: str = ""  # why a read-only catalogue cannot be changed (one sentence; "" when it can)
    unfinished: int = 0  # images read but not searchable yet: an update stopped before indexing them (F5 finishes)

    def has_folder(self, folder: str) -> bool:
        return any(name == folder for name, _ in self.folders)


class Target(Protocol):
    """A catalogue to open, and the folder to build it from (`ui.locations.CatalogueTarget`)."""

    @property
    def path(self) -> Path: ...

    @property
    def root(self) -> Path | None: ...

    @property
    def sample(self) -> bool: ...

    @property
    def exists(self) -> bool: ...


@dataclass(frozen=True)
class SessionView:
    """What the window shows, derived from the session's state (see `Session.view`).

    The boolean fields are the rules the actions table's `enabled_when` and
    `checked_when` name.
    """

    window_title: str
    catalogue_text: str  # the status bar's catalogue label
    catalogue_tip: str
    empty_title: str  # what the empty grid says
    empty_body: str
    results_title: str  # "12 matches for img0004.png  ·  3 more below 40%"
    timing_text: str
    min_text: str  # the minimum-similarity control's value
    shown: HistoryEntry | None  # the query and result in the grid
    visible: tuple[Match, ...]  # the matches the grid shows
    filters: Filters
    panel_query: Query | None  # what the query panel shows (None: its empty drop target)
    panel_status: str  # "searching…", "cannot be searched"
    catalogue_open: bool
    searchable: bool
    can_update: bool
    can_go_back: bool
    can_go_forward: bool
    has_results: bool
    mirror: bool
    watching: bool = False  # the open catalogue's folder is watched for changes
    looking_ahead: bool = False  # the window looks ahead at the open catalogue's designs while idle (ui/look_ahead.py)
    folders_text: str = "All folders"  # the folder filter's button: "All folders", "summer", "3 folders"
    has_subfolders: bool = False  # the open catalogue's folder has subfolders to narrow to
    can_decide: bool = False  # the results are for catalogue designs, so "same design" / "not similar" can be kept
    has_unreadable: bool = False  # the open catalogue holds files it could not read
    unreadable_text: str = ""  # "2 unreadable files", the status bar's link to their list
    colour: float = 0.5  # how much colour matters, 0 ignore .. 1 match (the query panel's slider)
    panel_box: tuple[float, float, float, float] | None = None  # the detail the query panel's picture is searched by
    can_draw_box: bool = False  # a box can be drawn on the query panel's picture to search by a detail
    has_box: bool = False  # the query on show is a detail of its picture (Esc searches the whole picture again)
    team_open: bool = False  # the open catalogue is a team catalogue (its shared folder can be mapped)
    readonly_reason: str = ""  # the open catalogue cannot be changed: why, the tooltip of every change action


def target_name(target: Target) -> str:
    """A catalogue's short name before it is open: "sample", else the engine's one display name."""
    return "sample" if target.sample else display_name(target.path, target.root)
