"""One registry of every user setting, stored with QSettings.

Each setting is declared once here, with its type, default and allowed range
(Picard's `options.py`); the rest of the app reads and writes them only
through `Settings`, and the engine only ever sees the frozen `EngineConfig`
that `Settings.engine_config` makes. A damaged or hand-edited value falls back
to its default instead of breaking the window.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import QByteArray, QSettings

from swimsearch.config import EngineConfig

log = logging.getLogger(__name__)

ORGANISATION = "SwimSearch"
APPLICATION = "SwimSearch"

#: The most results the window ever shows; the engine is asked for this many
#: once per query, and the Top-N and minimum-similarity controls filter locally.
MAX_RESULTS = 200
MAX_RECENT = 8

#: The scale "results/min_similarity" is on. 2 (issue 11): the calibrated similarity,
#: the same for a pair in every catalogue. A minimum saved on the scale before
#: (cosines relative to one catalogue: 28 % there could hide every match of
#: another) is reset to 0 once, and the window says so.
SIMILARITY_SCALE = 2
SCALE_NOTE = (
    "Similarity scores are now calibrated: the same two pictures score the same in every catalogue, "
    "and each score is named (same design, very similar, similar, unrelated). Your saved minimum similarity "
    "of {old}% was on the old scale, so it was reset to 0%."
)


@dataclass(frozen=True)
class Option:
    """One user setting: key, type, default and, for numbers, the allowed range."""

    key: str
    kind: type
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    doc: str = ""


OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option("window/geometry", bytes, b"", doc="main window position and size"),
        Option("window/state", bytes, b"", doc="toolbar and dock layout"),
        Option("window/splitter", bytes, b"", doc="width of the query column"),
        Option("window/query_share", int, 0, 0, 95, doc="the query picture's part of the two pictures beside the results (percent; 0: even)"),
        Option("catalogue/last", str, "", doc="catalogue file (or team catalogue address) opened last, opened again at start"),
        Option("catalogue/recent", list, [], doc="recently opened catalogue files and team catalogue addresses, newest first"),
        Option("team/last_address", str, "", doc="the team catalogue address last connected to, without its password"),
        Option("team/person", str, "", doc="your name on the changes you make to team catalogues (default: your login)"),
        Option("team/roots", dict, {}, doc="where each team catalogue's shared folder is on this computer, by address"),
        Option("results/top_n", int, 50, 1, MAX_RESULTS, doc="how many of the best matches to show"),
        Option("results/min_similarity", int, 0, 0, 100, doc="hide matches below this similarity (percent)"),
        Option("results/similarity_scale", int, 0, doc="the scale the minimum similarity was saved on (see SIMILARITY_SCALE)"),
        Option("results/thumbnail_size", int, 168, 96, 320, doc="side of a result thumbnail (pixels)"),
        Option("search/mirror", bool, EngineConfig.mirror, doc="also match mirrored designs"),
        Option("search/look_ahead", bool, True, doc="look ahead at the open catalogue's designs while idle (look_verdicts.py)"),
        Option("search/colour", int, 50, 0, 100, doc="how much colour matters: 0 ignore colour, 50 as the network sees it, 100 match colour"),
        Option("dialogs/image_folder", str, "", doc="folder the open-image dialog starts in"),
        Option("dialogs/catalogue_folder", str, "", doc="folder the build and open-catalogue dialogs start in"),
        Option("dialogs/export_folder", str, "", doc="folder the export dialog starts in"),
        Option("duplicates/keep_rule", str, "largest", doc="which copy of a duplicate group to keep: largest, oldest, folder"),
        Option("duplicates/preferred_folder", str, "", doc="keep the copy in this folder when a group has one there"),
        Option("duplicates/destination", str, "", doc="folder the other copies were last moved to"),
        Option("window/duplicates_geometry", bytes, b"", doc="duplicate review window position and size"),
        Option("watch/catalogues", list, [], doc="catalogue files whose folders are watched for changes"),
        Option("search/folders", dict, {}, doc="per catalogue file, the subfolders searches are narrowed to (a JSON list)"),
    )
}


class Settings:
    """Typed access to the registry over one QSettings store.

    Args:
        store: the QSettings to use; by default the per-user INI file of
            SwimSearch (tests point QSettings' INI path at a temporary folder).
    """

    def __init__(self, store: QSettings | None = None):
        self._store = store or QSettings(QSettings.IniFormat, QSettings.UserScope, ORGANISATION, APPLICATION)
        #: Notes for the user about settings changed since the last run (the window shows them once).
        self.notes: list[str] = self._migrate()

    def _migrate(self) -> list[str]:
        """Bring settings saved by an older SwimSearch to today's meaning; returns what to tell the user."""
        notes = []
        if self["results/similarity_scale"] < SIMILARITY_SCALE:
            old = self["results/min_similarity"]
            if self._store.value("results/min_similarity") is not None and old > 0:
                self["results/min_similarity"] = 0
                notes.append(SCALE_NOTE.format(old=old))
                log.info("minimum similarity %d%% of the old scale reset to 0", old)
            self["results/similarity_scale"] = SIMILARITY_SCALE
        return notes

    @property
    def file_name(self) -> str:
        return self._store.fileName()

    def __getitem__(self, key: str) -> Any:
        option = OPTIONS[key]
        raw = self._store.value(key)
        if raw is None:
            return _copy(option.default)
        try:
            value = _decode(raw, option.kind)
        except (TypeError, ValueError):
            log.warning("setting %s has an unusable value %r; using the default", key, raw)
            return _copy(option.default)
        if option.minimum is not None:
            value = max(option.minimum, value)
        if option.maximum is not None:
            value = min(option.maximum, value)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        option = OPTIONS[key]
        if option.kind is bytes:
            self._store.setValue(key, QByteArray(bytes(value)))
        elif option.kind is list:
            self._store.setValue(key, json.dumps(list(value)))
        elif option.kind is dict:
            self._store.setValue(key, json.dumps(dict(value)))
        elif option.kind is bool:
            self._store.setValue(key, bool(value))
        else:
            self._store.setValue(key, option.kind(value))

    def sync(self) -> None:
        self._store.sync()

    def remember_catalogue(self, path: str) -> list[str]:
        """Make `path` the last catalogue and the newest recent one; returns the recent list."""
        recent = [path] + [p for p in self["catalogue/recent"] if p != path]
        self["catalogue/recent"] = recent[:MAX_RECENT]
        self["catalogue/last"] = path
        return self["catalogue/recent"]

    def forget_catalogue(self, path: str) -> None:
        """Drop `path` from the recent list (it could not be opened)."""
        self["catalogue/recent"] = [p for p in self["catalogue/recent"] if p != path]
        if self["catalogue/last"] == path:
            self["catalogue/last"] = ""

    def folders_for(self, catalogue: str) -> list[str]:
        """The subfolders searches of `catalogue` were last narrowed to (none: all; unreadable: all)."""
        try:
            folders = json.loads(self["search/folders"].get(catalogue, "[]"))
        except ValueError:
            return []
        return [f for f in folders if isinstance(f, str)] if isinstance(folders, list) else []

    def remember_folders(self, catalogue: str, folders: list[str]) -> None:
        remembered = self["search/folders"]
        if folders:
            remembered[catalogue] = json.dumps(list(folders))
        else:
            remembered.pop(catalogue, None)
        self["search/folders"] = remembered

    def engine_config(self, base: EngineConfig) -> EngineConfig:
        """The frozen engine settings: `base` with the user's query settings applied."""
        return base.with_changes(mirror=self["search/mirror"])


def _decode(raw: Any, kind: type) -> Any:
    """A QSettings value (often a string in INI files) as `kind`."""
    if kind is bytes:
        return bytes(raw) if isinstance(raw, (QByteArray, bytes)) else bytes(QByteArray(raw))
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(raw)
    if kind is list:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(raw)
        return value
    if kind is dict:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError(raw)
        return value
    return kind(raw)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
