"""The contact sheet as one self-contained web page: thumbnails embedded as base64 JPEG, print-friendly CSS.

Any browser shows and prints it, and file names in every script show exactly.
"""

from __future__ import annotations

import html
import logging
from typing import Sequence

from . import __version__
from .export import similarity_text
from .sheet_model import Picture, Section, SheetInfo, badges, folder_of

log = logging.getLogger(__name__)

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
                f'<div><span class="score">{e(similarity_text(match, sep=" "))}</span>{marks}</div>'
                f'<div class="name">{match.rank}. {e(match.name)}</div>'
                f'<div class="folder">{e(folder_of(match))}</div></figcaption></figure>'
            )
        parts.append("</div></section>")
    parts.append(f"<footer>Made by SwimSearch {__version__}. Similarity is calibrated for the model: the same two pictures score the same in any catalogue.</footer>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
