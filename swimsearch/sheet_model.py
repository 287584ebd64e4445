"""What a contact sheet shows, ready to draw: its heading, and each query's pictures made once as JPEG.

`make_sections` decodes and shrinks every picture (the slow part, with
progress and cancel); `sheet_html` and `sheet_pdf` only lay the result out.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from PIL import Image

from .errors import Cancelled
from .images import ImageError, load_picture
from .search import Match, SearchResult

log = logging.getLogger(__name__)

#: Long side of the thumbnails, in pixels: about 200 dpi at the printed size
#: (a 42 mm cell, a 64 mm query picture).
MATCH_PIXELS = 330
QUERY_PIXELS = 500
JPEG_QUALITY = 85


@dataclass(frozen=True)
class SheetQuery:
    """One section: a query and its matches as the user saw them.

    Attributes:
        result: the ranked matches (already cut by the filters).
        picture: the query picture (a file, or picture data for a pasted
            one); None: the result's query path.
        title: what the section calls the query (default: the file name).
    """

    result: SearchResult
    picture: str | os.PathLike | Image.Image | None = None
    title: str = ""


@dataclass(frozen=True)
class SheetInfo:
    """What the heading says: the catalogue, its folder, the model, the filters and when."""

    catalogue: str
    folder: str = ""
    model: str = ""
    filters: str = ""
    made_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def date_text(self) -> str:
        return self.made_at.strftime("%d %B %Y, %H:%M")


@dataclass(frozen=True)
class Picture:
    """A thumbnail ready to embed (JPEG bytes and its size), or why it cannot be shown."""

    jpeg: bytes | None
    width: int = 0
    height: int = 0
    reason: str = ""

    def data_uri(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg or b"").decode("ascii")


@dataclass(frozen=True)
class Section:
    """A query section with its pictures made."""

    title: str
    query_path: str
    query: Picture
    matches: tuple[tuple[Match, Picture], ...]
    query_image_id: int | None


def make_sections(
    queries: Sequence[SheetQuery],
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Section]:
    """Decode and shrink every picture once (the slow part), reporting progress per picture."""
    total = sum(1 + len(q.result.matches) for q in queries)
    done = 0
    sections = []
    for query in queries:
        result = query.result
        source = query.picture if query.picture is not None else result.query
        pictures = []
        for item, pixels in [(source, QUERY_PIXELS)] + [(m, MATCH_PIXELS) for m in result.matches]:
            if should_stop is not None and should_stop():
                raise Cancelled()
            if isinstance(item, Match):
                pictures.append(Picture(None, reason="file missing") if item.missing else thumbnail(item.path, pixels))
            else:
                pictures.append(thumbnail(item, pixels))
            done += 1
            if progress is not None:
                progress(done, total)
        title = query.title or (os.path.basename(result.query) if not isinstance(source, Image.Image) else result.query)
        sections.append(
            Section(title, result.query, pictures[0], tuple(zip(result.matches, pictures[1:])), result.query_image_id)
        )
    return sections


def thumbnail(source: str | os.PathLike | Image.Image, pixels: int) -> Picture:
    """A JPEG thumbnail of a file or picture, decoded as the index decodes it; unreadable ones say why."""
    try:
        picture, _ = load_picture(source, pixels)
    except ImageError as exc:
        return Picture(None, reason=exc.reason)
    except Exception:  # noqa: BLE001 - one odd picture must not lose the whole sheet
        log.exception("cannot make a thumbnail of %s", source)
        return Picture(None, reason="the picture cannot be shown")
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return Picture(buffer.getvalue(), picture.width, picture.height)


def folder_of(match: Match) -> str:
    """The match's folder relative to the catalogue's folder, as the sheet shows it."""
    return os.path.dirname(match.relpath) or "(catalogue folder)"


def badges(match: Match, is_query: bool) -> list[str]:
    """The marks a match carries on the sheet, as in the window."""
    if is_query:
        return ["the query itself"]
    return [word for word, on in (("duplicate", match.duplicate), ("missing", match.missing)) if on]
