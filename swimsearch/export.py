"""Match lists and duplicate groups out of the app: CSV for spreadsheets and audits, text for the clipboard.

Cells are written so that a spreadsheet never runs them: any text cell that
starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) gets a
leading apostrophe, the neutralisation OWASP recommends against CSV injection.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable, TextIO

from .search import SearchResult

if TYPE_CHECKING:
    from .duplicates import DuplicateGroup

#: The columns of an exported match list; the first four are the interface others rely on.
COLUMNS = (
    "query",
    "rank",
    "path",
    "score",
    "file_name",
    "width",
    "height",
    "duplicate",
    "phash_distance",
    "code_distance",
    "mirrored",
    "missing",
    "catalogue",
    "model",
    "model_sha256",
    "exported_at",
)

#: The columns of an exported list of duplicate groups: one row per file.
DUPLICATE_COLUMNS = ("group", "path", "group_size", "max_phash_distance")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as text, never evaluates as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def rows(results: Iterable[SearchResult], *, catalogue: str, model: str, model_sha256: str, exported_at: str | None = None):
    """One dict per match, values already formatted and neutralised."""
    exported_at = exported_at or datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    for result in results:
        for m in result.matches:
            yield {
                "query": neutralise(result.query),
                "rank": m.rank,
                "path": neutralise(m.path),
                "score": f"{m.score:.4f}",
                "file_name": neutralise(m.name),
                "width": "" if m.width is None else m.width,
                "height": "" if m.height is None else m.height,
                "duplicate": "yes" if m.duplicate else "no",
                "phash_distance": "" if m.phash_distance is None else m.phash_distance,
                "code_distance": "inf" if m.distance == float("inf") else f"{m.distance:.4f}",
                "mirrored": "yes" if m.mirrored else "no",
                "missing": "yes" if m.missing else "no",
                "catalogue": neutralise(catalogue),
                "model": neutralise(model),
                "model_sha256": model_sha256,
                "exported_at": exported_at,
            }


def write_csv(
    results: Iterable[SearchResult],
    out: str | os.PathLike | TextIO,
    *,
    catalogue: str,
    model: str,
    model_sha256: str,
) -> int:
    """Write match lists as UTF-8 CSV with a header row; returns the number of rows."""
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w", newline="", encoding="utf-8") as fh:
            return write_csv(results, fh, catalogue=catalogue, model=model, model_sha256=model_sha256)
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows(results, catalogue=catalogue, model=model, model_sha256=model_sha256):
        writer.writerow(row)
        count += 1
    return count


def write_duplicates_csv(groups: Iterable[DuplicateGroup], out: str | os.PathLike | TextIO) -> int:
    """Write groups of near-identical files as UTF-8 CSV, one row per file, groups numbered from 1.

    Returns the number of rows.
    """
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w", newline="", encoding="utf-8") as fh:
            return write_duplicates_csv(groups, fh)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(DUPLICATE_COLUMNS)
    count = 0
    for number, group in enumerate(groups, start=1):
        for path in group.paths:
            writer.writerow([number, neutralise(path), len(group.paths), group.max_phash_distance])
            count += 1
    return count


def as_text(result: SearchResult) -> str:
    """Tab-separated lines (rank, score %, duplicate, path) for pasting into a mail or a sheet."""
    buffer = io.StringIO()
    buffer.write(f"Query\t{result.query}\n")
    buffer.write("Rank\tSimilarity\tDuplicate\tPath\n")
    for m in result.matches:
        buffer.write(f"{m.rank}\t{m.score * 100:.1f}%\t{'duplicate' if m.duplicate else ''}\t{neutralise(m.path)}\n")
    return buffer.getvalue()
