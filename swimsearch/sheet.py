"""Contact sheets for a meeting: each query picture with its matches as thumbnails, in HTML or PDF.

One sheet holds a section per query, headed by the catalogue, the date and
the filters used, so it can be handed round as one document. The engine
writes both formats without Qt, so the window and `swimsearch query --sheet`
give the same page:

* HTML (`sheet_html.py`): one self-contained file that any browser shows and
  prints; exact for every script a file name can be in.
* PDF (`sheet_pdf.py`, drawn by fpdf2): real, selectable text and the JPEG
  thumbnails embedded as they are, so a 50-match page stays small and prints
  sharp.

What goes on the sheet is made once by `sheet_model.make_sections`; both are
written atomically (`export.atomic_output`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

from .export import atomic_output
from .sheet_html import render_html
from .sheet_model import SheetInfo, SheetQuery, make_sections
from .sheet_pdf import render_pdf

__all__ = ["SHEET_SUFFIXES", "SheetError", "SheetInfo", "SheetQuery", "sheet_kind", "write_sheet"]

log = logging.getLogger(__name__)

SHEET_SUFFIXES = (".pdf", ".html", ".htm")


class SheetError(ValueError):
    """A sheet that cannot be made as asked (a file name of another kind); one plain sentence."""


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
        data = render_pdf(sections, info)
        with atomic_output(out, "wb") as fh:
            fh.write(data)
    else:
        with atomic_output(out, encoding="utf-8") as fh:
            fh.write(render_html(sections, info))
    return sum(len(s.matches) for s in sections)
