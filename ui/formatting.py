"""How numbers read to a user: similarity in percent, durations, counts of matches.

Qt-free, so the session model and the widgets word things the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from swimsearch.export import percent, similarity_text  # noqa: F401 - re-exported: the one rounding rule of the window, CSV and sheet
from swimsearch.folderscan import READABLE, skipped_files  # noqa: F401 - re-exported: the CLI words them the same

log = logging.getLogger(__name__)


def similarity_words(match: Any) -> str:
    """A match's similarity in a sentence: "71% · similar", the badge's words ("71% similar" without bands).

    Not "71% similar · similar": the band already says how similar.
    """
    return similarity_text(match) if match.band or match.decision else f"{percent(match.score)}% similar"


def duration(seconds: float) -> str:
    """A rough duration people read at a glance: "40 s", "3 min", "1 h 20 min"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def count_matches(count: int) -> str:
    """A count of matches in words: "1 match", "1,234 matches"."""
    return f"{count:,} match{'es' if count != 1 else ''}"


def count_of(count: int, noun: str, plural: str = "") -> str:
    """A count with its noun in the right number: "1 unreadable file", "12 unreadable files", "2 copies"."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def filters_in_words(filters: Any, mirror: bool) -> str:
    """The filters a list was cut with, as a contact sheet and an export's sidecar say them."""
    words = f"the {filters.top_n} best matches"
    if filters.min_percent:
        words += f", at least {filters.min_percent}% similar"
    return words + ("; mirrored designs matched" if mirror else "")
