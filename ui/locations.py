"""Where the window's catalogues live: the sample, and a folder's catalogue by the engine's rule.

A folder the user picks gets its catalogue by `swimsearch.locations` (a hidden
file inside it, or a per-user file when the folder is read-only), with Qt
naming the per-user data folder, so the command line finds the same file. The sample
catalogue always lives in the per-user data folder, with the shipped
`resources/sample` photos as its root, because an installed package (or a
checkout) is no place to write.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtCore import QStandardPaths

from swimsearch import locations
from swimsearch.locations import CATALOGUE_SUFFIX
from swimsearch.paths import resources_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueTarget:
    """A catalogue to open, and the folder to build it from when it does not exist yet.

    Attributes:
        path: the `.swimcat` file.
        root: the image folder (None: an existing catalogue knows its own folder).
        sample: this is the sample catalogue that ships with the app.
    """

    path: Path
    root: Path | None = None
    sample: bool = False

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def user_data_dir() -> Path:
    """The writable per-user folder of SwimSearch, as Qt names it (created if needed)."""
    folder = locations.user_data_dir(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sample_folder() -> Path:
    """The shipped sample photos."""
    return resources_dir() / "sample"


def sample_target() -> CatalogueTarget:
    return CatalogueTarget(user_data_dir() / f"sample{CATALOGUE_SUFFIX}", sample_folder(), sample=True)


def icon_path(size: int) -> Path:
    return resources_dir() / "icons" / f"swimsearch-{size}.png"


def catalogue_for_folder(folder: str | os.PathLike) -> Path:
    """The catalogue file of an image folder (the engine's rule, with Qt's per-user folder)."""
    return locations.catalogue_for_folder(folder, user_data_dir())


def target_for(argument: str | os.PathLike) -> CatalogueTarget:
    """What `app.py PATH` (or a folder/catalogue dropped on the window) opens.

    A folder opens its catalogue (built if there is none); any other file is
    taken as a catalogue file.

    Raises:
        ValueError: nothing at that path (plain sentence).
    """
    path = Path(argument).expanduser()
    if path.is_dir():
        return CatalogueTarget(catalogue_for_folder(path), path.resolve())
    if path.is_file():
        return CatalogueTarget(path.resolve())
    raise ValueError(f"There is no folder or catalogue at {path}.")
