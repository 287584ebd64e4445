"""How numbers read to a user: similarity in percent, durations, counts of matches.

Qt-free, so the session model and the widgets word things the same way.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)


def percent(score: float) -> int:
    """The similarity a user sees, in whole percent.

    Never rounded up to 100 (only the query and exact copies show 100%).
    Scores are cosines of centred embeddings, so unrelated designs can score
    below zero; they show as 0% (not similar), and a minimum of 0% shows all.
    """
    return max(0, math.floor(score * 100 + 1e-6))


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
