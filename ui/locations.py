"""Where catalogues live: the sample, a folder's own catalogue, and the per-user fallback.

A folder the user picks gets its catalogue as a hidden file inside it, so the
catalogue moves with the folder; when the folder is not writable (a read-only
share) the catalogue goes to the per-user data folder instead. The sample
catalogue always lives in the per-user data folder, with the shipped
`resources/sample` photos as its root, because an installed package (or a
checkout) is no place to write.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtCore import QStandardPaths

from swimsearch.catalogue import CATALOGUE_SUFFIX, default_catalogue_path
from swimsearch.paths import resources_dir

log = logging.getLogger(__name__)

#: Set to a folder to keep per-user data (sample catalogue, log) there instead (tests, screenshots).
USER_DATA_ENV = "SWIMSEARCH_USER_DATA"


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
    """The writable per-user folder of SwimSearch (created if needed)."""
    override = os.environ.get(USER_DATA_ENV)
    if override:
        folder = Path(override)
    else:
        location = QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)
        folder = Path(location) if location else Path.home() / ".swimsearch"
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
    """The catalogue file of an image folder: inside it, or per user when the folder is read-only.

    An existing catalogue wins wherever it is, so a folder that became
    read-only keeps the catalogue it already has.
    """
    folder = Path(folder).resolve()
    inside = default_catalogue_path(folder)
    per_user = _per_user_catalogue(folder)
    if inside.is_file():
        return inside
    if per_user.is_file():
        return per_user
    return inside if os.access(folder, os.W_OK) else per_user


def _per_user_catalogue(folder: Path) -> Path:
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:10]
    name = re.sub(r"[^\w.-]+", "_", folder.name or "catalogue")[:40]
    return user_data_dir() / "catalogues" / f"{name}-{digest}{CATALOGUE_SUFFIX}"


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
