"""Contact sheets for a meeting: each query picture with its matches as thumbnails, in HTML or PDF.

One sheet holds a section per query, headed by the catalogue, the date and
the filters used, so it can be handed round as one document. The engine
writes both formats without Qt, so the window and `swimsearch query --sheet`
give the same page:

* HTML: one self-contained file (thumbnails embedded as base64 JPEG) that any
  browser shows and prints; exact for every script a file name can be in.
* PDF: drawn by fpdf2 (`sheet_pdf.py`) with real, selectable text and the
  JPEG thumbnails embedded as they are, so a 50-match page stays small and
  prints sharp.

Both are written atomically (`export.atomic_output`).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from . import __version__
from .errors import Cancelled
from .export import atomic_output, percent
from .images import ImageError, load_picture
from .search import Match, SearchResult

log = logging.getLogger(__name__)

SHEET_SUFFIXES = (".pdf", ".html", ".htm")

#: Long side of the thumbnails, in pixels: about 200 dpi at the printed size
#: (a 42 mm cell, a 64 mm query picture).
MATCH_PIXELS = 330
QUERY_PIXELS = 500
JPEG_QUALITY = 85


class SheetError(ValueError):
    """A sheet that cannot be made as asked (a file name of another kind); one plain sentence."""


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


def sheet_kind(path: str | os.PathLike) -> str:
    """"pdf" or "html" from the file name; SheetError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in SHEET_SUFFIXES:
        raise SheetError(f"A contact sheet is a .pdf or an .html file, not “{Path(path).name}”.")
    return "pdf" if suffix == ".pdf" else "html"


def write_sheet(
    out: str | os.PathLike,
    queries: Sequence[SheetQuery],
    info: SheetInfo,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Write a contact sheet (PDF or HTML, by the file name); returns the number of matches on it.

    Raises:
        SheetError: the file name is neither .pdf nor .html.
        Cancelled: `should_stop()` said stop (nothing is written).
        OSError: the file cannot be written (it names `out`).
    """
    kind = sheet_kind(out)
    sections = make_sections(queries, progress=progress, should_stop=should_stop)
    if kind == "pdf":
        from .sheet_pdf import render_pdf

        data = render_pdf(sections, info)
        with atomic_output(out, "wb") as fh:
            fh.write(data)
    else:
        with atomic_output(out, encoding="utf-8") as fh:
            fh.write(render_html(sections, info))
    return sum(len(s.matches) for s in sections)


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


# --- HTML --------------------------------------------------------------------------------

_CSS = """
body { font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #20242c;
       margin: 24px auto; max-width: 1100px; padding: 0 16px; }
header { border-bottom: 2px solid #1a6fb8; padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: #5b6270; }
section { margin-bottom: 28px; break-before: page; }
section:first-of-type { break-before: auto; }
.query { display: flex; gap: 18px; align-items: flex-start; margin-bottom: 12px; }
.query img, .query .none { width: 220px; height: 220px; object-fit: contain; background: #f1f3f6; border-radius: 6px; }
h2 { font-size: 17px; margin: 4px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid #d9dde3; border-radius: 8px; padding: 8px; break-inside: avoid; }
figure img, figure .none { width: 100%; aspect-ratio: 1; object-fit: contain; background: #f1f3f6; border-radius: 4px; }
.none { display: flex; align-items: center; justify-content: center; color: #7a808c; text-align: center; font-size: 12px; }
.score { font-weight: 700; }
.badge { background: #ffe58a; border-radius: 4px; padding: 0 5px; margin-left: 6px; font-size: 11px; }
.name { overflow-wrap: anywhere; }
.folder { color: #6a7180; font-size: 12px; overflow-wrap: anywhere; }
footer { color: #8a909b; font-size: 11px; margin-top: 24px; }
@media print { body { margin: 0; max-width: none; } }
"""


def _img(picture: Picture, alt: str) -> str:
    if picture.jpeg is None:
        return f'<div class="none">{html.escape(picture.reason or "cannot be shown")}</div>'
    return f'<img src="{picture.data_uri()}" alt="{html.escape(alt)}" width="{picture.width}" height="{picture.height}">'


def render_html(sections: Sequence[Section], info: SheetInfo) -> str:
    """The whole sheet as one self-contained HTML page."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Contact sheet — {e(info.catalogue)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>Contact sheet — {e(info.catalogue)}</h1>",
        f'<div class="meta">{e(info.date_text)}'
        + (f" · folder {e(info.folder)}" if info.folder else "")
        + (f" · model {e(info.model)}" if info.model else "")
        + "</div>",
        f'<div class="meta">Filters: {e(info.filters)}</div>' if info.filters else "",
        "</header>",
    ]
    for section in sections:
        parts.append("<section>")
        parts.append(f'<div class="query">{_img(section.query, section.title)}<div>')
        parts.append(f"<h2>Query: {e(section.title)}</h2>")
        if section.query_path and section.query_path != section.title:
            parts.append(f'<div class="folder">{e(section.query_path)}</div>')
        count = len(section.matches)
        parts.append(f'<div class="meta">{count} match{"es" if count != 1 else ""}, best first</div></div></div>')
        parts.append('<div class="grid">')
        for match, picture in section.matches:
            is_query = match.image_id == section.query_image_id
            marks = "".join(f'<span class="badge">{e(b)}</span>' for b in badges(match, is_query))
            parts.append(
                f'<figure title="{e(match.path)}">{_img(picture, match.name)}<figcaption>'
                f'<div><span class="score">{percent(match.score)}%</span>{marks}</div>'
                f'<div class="name">{match.rank}. {e(match.name)}</div>'
                f'<div class="folder">{e(folder_of(match))}</div></figcaption></figure>'
            )
        parts.append("</div></section>")
    parts.append(f"<footer>Made by SwimSearch {__version__}. Similarity is relative to this catalogue.</footer>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
