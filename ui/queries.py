"""What a user can search with, one small frozen dataclass per kind of query.

A query knows how to describe itself (the results title, the export file
name), what the query panel shows for it, how it runs again (with the mirror
setting, on another catalogue) and what the history keeps of it once its
result is known. The one engine call each kind makes lives in `ui/search.py`.
Qt-free: the session model holds queries, and tests build them without Qt.

A new kind of query (a detail of a picture) is a new class here and one
`case` in `SearchWorker._example`. Every query can be steered: narrowed to
subfolders (`folders`) and pushed away from designs marked "not like this"
(`unlike`); several designs searched together are an `ExamplesQuery`. Any query
of a picture can be narrowed to a detail of it (`box`, issue 12) and say how
much colour matters (`colour`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

Q = TypeVar("Q", bound="Query")


class QueryPanel(Protocol):
    """What a query shows itself on (`ui.query_panel.QueryPanel`)."""

    def show_file(self, path: str) -> None: ...

    def show_picture(self, image: Any, label: str) -> None: ...


Box = tuple[float, float, float, float]  # x, y, width, height in fractions of the picture (swimsearch.regions.Box)

#: The "colour matters" control at rest: ranking as the network sees it (swimsearch.colour).
NEUTRAL_COLOUR = 0.5


@dataclass(frozen=True, kw_only=True)
class Query:
    """A search the user asked for.

    Attributes:
        mirror: also match the query flipped left to right.
        box: search by the detail in this box of the picture, not the whole picture.
        colour: how much colour matters, 0 (ignore colour) to 1 (match colour).
        folders: only results in these subfolders of the catalogue's folder (none: everywhere).
        unlike: designs marked "not like this" (catalogue images, or files on another catalogue).
    """

    mirror: bool = False
    box: Box | None = None
    colour: float = NEUTRAL_COLOUR
    folders: tuple[str, ...] = ()
    unlike: tuple[Query, ...] = ()

    #: The query panel shows the query as soon as it is asked (a random
    #: design is known only once its result comes back).
    shown_when_asked = True

    def with_mirror(self: Q, mirror: bool) -> Q:
        return replace(self, mirror=mirror)

    def with_colour(self: Q, colour: float) -> Q:
        return replace(self, colour=colour)

    def with_box(self: Q, box: Box | None) -> Q:
        """This query narrowed to a detail of its picture (None: the whole picture again)."""
        return replace(self, box=None if box is None else tuple(float(v) for v in box))

    @property
    def can_have_box(self) -> bool:
        """Whether a box can be drawn on this query's picture (it is known when asked)."""
        return self.shown_when_asked

    def with_folders(self: Q, folders: tuple[str, ...]) -> Q:
        """This query narrowed to subfolders (a search by a detail looks everywhere and says so)."""
        return replace(self, folders=tuple(folders))

    def with_unlike(self: Q, design: Query) -> Q:
        """This query, steered away from one more design ("not like this"; of the whole picture, as for folders)."""
        return self if design in self.unlike else replace(self, unlike=self.unlike + (design,), box=None)

    def examples(self) -> tuple[Query, ...]:
        """The pictures searched with: the query itself, or the several designs of an `ExamplesQuery`."""
        return (self,)

    def note(self) -> str:
        """What the query panel and the results title add about the steering ("not like 2 designs")."""
        return f"not like {_designs(len(self.unlike))}" if self.unlike else ""

    def again(self, *, same_ids: bool) -> Query:
        """This query to run again, in its history place.

        Args:
            same_ids: the catalogue's image ids still hold (the same catalogue,
                maybe updated); otherwise a catalogue image runs from its file.
        """
        if same_ids:
            return self
        moved = self._on_another_catalogue()
        return replace(moved, unlike=tuple(u.again(same_ids=False) for u in self.unlike)) if self.unlike else moved

    def _on_another_catalogue(self) -> Query:
        """This query where the catalogue's image ids mean nothing."""
        return self

    def recorded(self, result: Any) -> Query:
        """What the history keeps once `result` (a SearchResult) is known."""
        return self

    def title(self, result: Any) -> str:
        """What the results title calls the query ("img0004.png", "a detail of img0004.png")."""
        return self._detail(os.path.basename(result.query))

    def _detail(self, name: str) -> str:
        return f"a detail of {name}" if self.box is not None else name

    def export_stem(self, result: Any) -> str:
        """The file name stem an export of the result suggests."""
        return os.path.splitext(os.path.basename(result.query))[0] + ("-detail" if self.box is not None else "")

    def show_on(self, panel: QueryPanel) -> None:
        """Show the query's picture on the query panel."""
        raise NotImplementedError


@dataclass(frozen=True)
class FileQuery(Query):
    """An image file: dropped, chosen, or given on a path."""

    path: str  # absolute

    def show_on(self, panel: QueryPanel) -> None:
        panel.show_file(self.path)


@dataclass(frozen=True)
class PictureQuery(Query):
    """Picture data with no file of its own: pasted, or dragged from a web browser.

    Attributes:
        image: the picture as a PIL image (what the engine reads).
        label: what the query panel calls it ("Pasted picture").
        picture: the toolkit's picture, for the query panel (a QImage; opaque here).
    """

    image: Any = field(compare=False, repr=False)
    label: str = ""
    picture: Any = field(default=None, compare=False, repr=False)

    def title(self, result: Any) -> str:
        return self._detail(self.label or "the pasted picture")

    def export_stem(self, result: Any) -> str:
        return "pasted-picture" + ("-detail" if self.box is not None else "")

    def show_on(self, panel: QueryPanel) -> None:
        panel.show_picture(self.picture, self.label)


@dataclass(frozen=True)
class CatalogueImageQuery(Query):
    """A design of the open catalogue (a clicked result): its stored embedding, nothing embedded again."""

    image_id: int
    path: str

    def _on_another_catalogue(self) -> Query:
        # ids change when a catalogue is rebuilt or another one opens; the file does not
        return FileQuery(self.path, mirror=self.mirror, box=self.box, colour=self.colour, folders=self.folders)

    def show_on(self, panel: QueryPanel) -> None:
        panel.show_file(self.path)


@dataclass(frozen=True)
class ExamplesQuery(Query):
    """Several designs searched together: a selection in the grid, or several files dropped at once."""

    like: tuple[Query, ...]

    @property
    def can_have_box(self) -> bool:
        return False  # a detail is of one picture

    def examples(self) -> tuple[Query, ...]:
        return self.like

    def note(self) -> str:
        words = f"with {_designs(len(self.like) - 1, 'more design')}"
        return f"{words}, {super().note()}" if self.unlike else words

    def title(self, result: Any) -> str:
        return f"{len(self.like)} designs"

    def export_stem(self, result: Any) -> str:
        return f"{len(self.like)}-designs"

    def show_on(self, panel: QueryPanel) -> None:
        self.like[0].show_on(panel)

    def _on_another_catalogue(self) -> Query:
        return replace(self, like=tuple(q.again(same_ids=False) for q in self.like))


@dataclass(frozen=True)
class RandomQuery(Query):
    """A random design of the open catalogue; recorded as a search from that design."""

    shown_when_asked = False

    def recorded(self, result: Any) -> Query:
        return CatalogueImageQuery(result.query_image_id, result.query, mirror=self.mirror, colour=self.colour, folders=self.folders)

    def show_on(self, panel: QueryPanel) -> None:
        """Nothing to show until the result says which design it was."""


def _designs(count: int, noun: str = "design") -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
