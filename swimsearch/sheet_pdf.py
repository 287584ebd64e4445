"""The contact sheet as PDF, drawn with fpdf2: A4 pages, a heading, then each query and its matches in a grid.

fpdf2 (pure Python, LGPL-3.0) was chosen over rendering the page as a
picture with Pillow: its text stays text (selectable, searchable for a file
name, sharp when printed or zoomed), and the JPEG thumbnails go into the file
as they are, so a sheet of 50 matches is a few hundred KB instead of
several MB of page bitmaps. Text is set in a Unicode TrueType font found on
the system (DejaVu Sans, Arial; `SWIMSEARCH_SHEET_FONT` names another, e.g.
for CJK file names); without one, the PDF's built-in Helvetica is used and
characters outside Latin-1 show as "?" (the HTML sheet is exact).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Sequence

from fpdf import FPDF

from . import __version__
from .export import similarity_text
from .sheet_model import Picture, Section, SheetInfo, badges, folder_of

log = logging.getLogger(__name__)

#: Unicode TrueType fonts looked for, regular then bold, first found wins.
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ("/System/Library/Fonts/Supplemental/Arial Unicode.ttf", "/System/Library/Fonts/Supplemental/Arial Bold.ttf"),
    ("/Library/Fonts/Arial Unicode.ttf", "/Library/Fonts/Arial Bold.ttf"),
    (r"C:\Windows\Fonts\arial.ttf", r"C:\Windows\Fonts\arialbd.ttf"),
)

PAGE_MARGIN = 12.0  # mm
COLUMNS = 4
GAP = 4.0
QUERY_BOX = 52.0
INK = (32, 36, 44)
MUTED = (98, 105, 118)
ACCENT = (26, 111, 184)
BACKDROP = (241, 243, 246)
BADGE = (255, 229, 138)


def find_font() -> tuple[str, str] | None:
    """(regular, bold) TrueType files to set the sheet in, or None for the built-in Helvetica."""
    chosen = os.environ.get("SWIMSEARCH_SHEET_FONT")
    if chosen and Path(chosen).is_file():
        return chosen, chosen
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file():
            return regular, bold if Path(bold).is_file() else regular
    return None


class _Sheet(FPDF):
    def __init__(self, info: SheetInfo):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.info = info
        self.set_margins(PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN)
        self.set_auto_page_break(False)
        self.set_title(f"Contact sheet — {info.catalogue}")
        self.set_creator(f"SwimSearch {__version__}")
        font = find_font()
        self.unicode = font is not None
        if font is not None:
            self.add_font("sheet", "", font[0])
            self.add_font("sheet", "B", font[1])
            self.face = "sheet"
        else:
            log.info("no Unicode TrueType font found; the PDF sheet uses Helvetica (Latin-1 only)")
            self.face = "helvetica"

    def text_of(self, text: str) -> str:
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def use(self, size: float, *, bold: bool = False, colour: tuple[int, int, int] = INK) -> None:
        self.set_font(self.face, "B" if bold else "", size)
        self.set_text_color(*colour)

    def fitted(self, text: str, width: float) -> str:
        """`text` shortened in the middle with an ellipsis until it fits `width` mm."""
        text = self.text_of(text)
        if self.get_string_width(text) <= width:
            return text
        dots = "…" if self.unicode else "..."
        keep = len(text)
        while keep > 2:
            keep -= 1
            head = (keep + 1) // 2
            candidate = text[:head] + dots + text[len(text) - (keep - head):]
            if self.get_string_width(candidate) <= width:
                return candidate
        return dots

    def footer(self) -> None:
        self.set_y(-9)
        self.use(7.5, colour=MUTED)
        self.cell(0, 4, self.fitted(f"SwimSearch contact sheet — {self.info.catalogue} — {self.info.date_text}", 150))
        self.set_x(-PAGE_MARGIN - 30)
        self.cell(30, 4, f"page {self.page_no()} of {{nb}}", align="R")


def render_pdf(sections: Sequence[Section], info: SheetInfo) -> bytes:
    """The whole sheet as PDF bytes."""
    pdf = _Sheet(info)
    pdf.add_page()
    _heading(pdf, info)
    for n, section in enumerate(sections):
        if n:
            pdf.add_page()
        _section(pdf, section)
    return bytes(pdf.output())


def _heading(pdf: _Sheet, info: SheetInfo) -> None:
    width = pdf.w - 2 * PAGE_MARGIN
    pdf.use(17, bold=True)
    pdf.cell(width, 9, pdf.fitted(f"Contact sheet — {info.catalogue}", width), new_x="LMARGIN", new_y="NEXT")
    pdf.use(9, colour=MUTED)
    meta = info.date_text + (f"  ·  folder {info.folder}" if info.folder else "")
    pdf.cell(width, 5, pdf.fitted(meta, width), new_x="LMARGIN", new_y="NEXT")
    if info.model:
        pdf.cell(width, 5, pdf.fitted(f"Model: {info.model}", width), new_x="LMARGIN", new_y="NEXT")
    if info.filters:
        pdf.multi_cell(width, 5, pdf.text_of(f"Filters: {info.filters}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.6)
    y = pdf.get_y() + 2
    pdf.line(PAGE_MARGIN, y, pdf.w - PAGE_MARGIN, y)
    pdf.set_y(y + 5)


def _picture(pdf: _Sheet, picture: Picture, x: float, y: float, side: float) -> None:
    """A picture fitted in a square with a light backdrop, or the reason it cannot be shown."""
    pdf.set_fill_color(*BACKDROP)
    pdf.rect(x, y, side, side, style="F", round_corners=True, corner_radius=1.5)
    if picture.jpeg is None or not picture.width or not picture.height:
        pdf.use(7.5, colour=MUTED)
        pdf.set_xy(x + 3, y + side / 2 - 4)
        pdf.multi_cell(side - 6, 4, pdf.text_of(picture.reason or "cannot be shown"), align="C")
        return
    inner = side - 2
    scale = min(inner / picture.width, inner / picture.height)
    w, h = picture.width * scale, picture.height * scale
    pdf.image(io.BytesIO(picture.jpeg), x + (side - w) / 2, y + (side - h) / 2, w, h)


def _section(pdf: _Sheet, section: Section) -> None:
    width = pdf.w - 2 * PAGE_MARGIN
    top = pdf.get_y()
    _picture(pdf, section.query, PAGE_MARGIN, top, QUERY_BOX)
    text_x = PAGE_MARGIN + QUERY_BOX + 6
    text_w = width - QUERY_BOX - 6
    pdf.set_xy(text_x, top + 1)
    pdf.use(13, bold=True)
    pdf.cell(text_w, 7, pdf.fitted(f"Query: {section.title}", text_w), new_x="LEFT", new_y="NEXT")
    if section.query_path and section.query_path != section.title:
        pdf.use(8.5, colour=MUTED)
        pdf.multi_cell(text_w, 4.2, pdf.text_of(section.query_path), new_x="LEFT", new_y="NEXT")
    count = len(section.matches)
    pdf.use(9, colour=MUTED)
    pdf.cell(text_w, 6, f"{count} match{'es' if count != 1 else ''}, best first", new_x="LEFT", new_y="NEXT")
    y = top + QUERY_BOX + 5
    cell_w = (width - GAP * (COLUMNS - 1)) / COLUMNS
    cell_h = cell_w + 13.5
    for i, (match, picture) in enumerate(section.matches):
        column = i % COLUMNS
        if column == 0 and i:
            y += cell_h + GAP
        if column == 0 and y + cell_h > pdf.h - PAGE_MARGIN - 2:
            pdf.add_page()
            y = PAGE_MARGIN
        _match(pdf, match, picture, PAGE_MARGIN + column * (cell_w + GAP), y, cell_w, section.query_image_id)


def _match(pdf: _Sheet, match, picture: Picture, x: float, y: float, side: float, query_id: int | None) -> None:
    _picture(pdf, picture, x, y, side)
    pdf.set_xy(x, y + side + 1)
    pdf.use(9.5, bold=True)
    score = pdf.text_of(similarity_text(match, sep=" "))
    pdf.cell(pdf.get_string_width(score) + 1.5, 5, score)
    pdf.use(7.5)
    for word in badges(match, match.image_id == query_id):
        text = pdf.text_of(word)
        pdf.set_fill_color(*BADGE)
        pdf.cell(pdf.get_string_width(text) + 3, 4.4, text, fill=True, align="C")
        pdf.set_x(pdf.get_x() + 1)
    pdf.set_xy(x, y + side + 5.6)
    pdf.use(8.5)
    pdf.cell(side, 4.4, pdf.fitted(f"{match.rank}. {match.name}", side))
    pdf.set_xy(x, y + side + 9.6)
    pdf.use(7.5, colour=MUTED)
    pdf.cell(side, 4, pdf.fitted(folder_of(match), side))
