"""What a store offers for steering a search (issue 12): people's decisions on pairs of images, and subfolders.

`Decision` is the plain record of one verdict; `SteeringReader` and
`SteeringWriter` are the parts of the store protocols (base.py's
`CatalogueReader` and `CatalogueWriter` take them in) that keep decisions
and answer the folder filter. Kept apart from base.py so each file stays
small; a store implements them like the rest of the protocols.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, cast

import numpy as np

#: A person's verdict on a pair of designs: the same design, or not similar at all.
SAME, DIFFERENT = "same", "different"
VERDICTS = (SAME, DIFFERENT)


@dataclass(frozen=True)
class Decision:
    """A person's verdict on a pair of catalogue images, as the catalogue keeps it.

    The pair is unordered: `a` is the smaller image id. A store keeps
    decisions by the images' relative paths, so they outlive a rebuild with
    another model, and drops them when an update finds a file deleted.
    """

    a: int
    b: int
    a_path: str  # relative to the catalogue's folder
    b_path: str
    verdict: str  # SAME or DIFFERENT
    who: str  # the OS user name (a file), the name the person gave the app (a team catalogue)
    at: float  # seconds since the epoch
    #: A team catalogue: the server account it was made (or copied in) with, proven unlike `who`; not part of
    #: what a decision is (a copy keeps pair, verdict, who and when).
    login: str | None = field(default=None, compare=False)

    def other(self, image_id: int) -> int:
        """The pair's other image."""
        return self.b if image_id == self.a else self.a


class SteeringReader(Protocol):
    """Decisions and subfolders, as every store reads them (a part of `CatalogueReader`)."""

    def decisions(self) -> list[Decision]:
        """Every decision on a pair of images the catalogue holds now (tombstones left out), oldest first."""
        ...

    def decide(self, a: int, b: int, verdict: str | None) -> Decision | None:
        """Record a verdict (SAME, DIFFERENT) on a pair of images, or withdraw it (None).

        The one write a search makes: the store records who (its own notion
        of the user) and when, replacing any earlier verdict on the pair.
        Refused (CatalogueError) when the catalogue is read-only or an image is gone.
        """
        ...

    def folder_counts(self) -> dict[str, int]:
        """How many readable images lie under each subfolder (relative, '/'-separated, every level; "" is the root)."""
        ...

    def ids_in_folders(self, folders: Sequence[str]) -> np.ndarray:
        """Sorted ids of the images under any of these subfolders (relative, '/'-separated)."""
        ...


class SteeringWriter(Protocol):
    """What an update does with decisions (a part of `CatalogueWriter`).

    Besides this, a store drops the decisions of files it makes tombstones
    or removes, in the same transaction, and moves those of files found moved.
    """

    def prune_decisions(self) -> int:
        """Drop the decisions on files the catalogue no longer holds (after an update); returns how many."""
        ...

    def import_decisions(self, decisions: Sequence[Decision]) -> None:
        """Keep decisions copied from another store, by their paths, with who and when as they were (copies)."""
        ...


class StoreSteering:
    """The steering part of a handle that holds a store as `store` (`Catalogue`): each call goes to it."""

    def _steering_store(self) -> SteeringReader:
        return cast(SteeringReader, getattr(self, "store"))  # the handle's own attribute, typed there

    def decisions(self) -> list[Decision]:
        """Every "same design" / "not similar" decision on two images the catalogue holds, oldest first."""
        return self._steering_store().decisions()

    def decide(self, a: int, b: int, verdict: str | None) -> Decision | None:
        """Record a verdict on a pair of images (who and when are the store's), or withdraw it (None)."""
        return self._steering_store().decide(a, b, verdict)

    def folder_counts(self) -> dict[str, int]:
        """Images under each subfolder of the catalogue's folder ("" is the folder itself)."""
        return self._steering_store().folder_counts()

    def ids_in_folders(self, folders: Sequence[str]) -> np.ndarray:
        return self._steering_store().ids_in_folders(folders)
