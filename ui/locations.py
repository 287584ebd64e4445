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
from swimsearch.errors import CatalogueError
from swimsearch.paths import resources_dir
from swimsearch.stores.pg_address import TeamAddress, display_address, is_team_address, remember_password

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


@dataclass(frozen=True)
class TeamTarget:
    """A team catalogue to open, by its address without password (it is never built from here, only updated)."""

    address: str

    @property
    def path(self) -> str:
        return self.address

    @property
    def root(self) -> None:
        return None

    @property
    def sample(self) -> bool:
        return False

    @property
    def exists(self) -> bool:
        return True  # the server says otherwise, in plain words, when it is opened


def team_target(address: str, password: str = "") -> TeamTarget:
    """The team catalogue at `address`; a password (typed, or in the address) is kept for this session only.

    Raises:
        CatalogueError: the address is not valid (plain sentence, without the password).
    """
    parsed = TeamAddress.parse(address)
    if password or parsed.password:
        remember_password(parsed.display, password or parsed.password or "")
    return TeamTarget(parsed.display)


def target_for_catalogue(path: str) -> "CatalogueTarget | TeamTarget":
    """An existing catalogue to open again (the last one, a recent one): a file, or a team catalogue's address."""
    if is_team_address(path):
        return TeamTarget(display_address(path))
    return CatalogueTarget(Path(path))


def user_data_dir() -> Path:
    """The writable per-user folder of SwimSearch, as Qt names it (created if needed)."""
    folder = locations.user_data_dir(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sample_folder() -> Path:
    """The shipped sample photos."""
    return resources_dir() / "sample"


def sample_target() -> CatalogueTarget:
    return CatalogueTarget(locations.sample_catalogue(user_data_dir()), sample_folder(), sample=True)


def icon_path(size: int) -> Path:
    return resources_dir() / "icons" / f"swimsearch-{size}.png"


def catalogue_for_folder(folder: str | os.PathLike) -> Path:
    """The catalogue file of an image folder (the engine's rule, with Qt's per-user folder)."""
    return locations.catalogue_for_folder(folder, user_data_dir())


def target_for(argument: str | os.PathLike) -> "CatalogueTarget | TeamTarget":
    """What `app.py PATH` (or a folder/catalogue dropped on the window) opens.

    A folder opens its catalogue (built if there is none); a postgresql://
    address, that team catalogue (its password kept for this session only);
    any other file is taken as a catalogue file.

    Raises:
        ValueError: nothing at that path (plain sentence).
    """
    if is_team_address(str(argument)):
        try:
            return team_target(str(argument))
        except CatalogueError as exc:
            raise ValueError(str(exc)) from None
    path = Path(argument).expanduser()
    if path.is_dir():
        try:
            return CatalogueTarget(catalogue_for_folder(path), path.resolve())
        except CatalogueError as exc:  # a folder whose name is not text
            raise ValueError(str(exc)) from None
    if path.is_file():
        return CatalogueTarget(path.resolve())
    raise ValueError(f"There is no folder or catalogue at {path}.")
