"""What a search gives: the ranked matches and how they were made (`SearchEngine` in search.py makes them)."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["Match", "SearchResult"]


@dataclass(frozen=True)
class Match:
    """One ranked result."""

    rank: int  # 1 = best
    image_id: int
    path: str  # absolute
    relpath: str  # relative to the catalogue's folder
    #: The similarity of the two pictures, 0..1: calibrated (calibration.py), so the
    #: same pair scores the same in every catalogue; only the picture itself scores 1.0.
    #: (For a model without a calibration: cosine of embeddings centred on the catalogue.)
    score: float
    distance: float  # spherical Hamming distance between the codes (inf: no shared bit)
    duplicate: bool  # pHash says (near-)identical picture, or it is the very same picture (the query's embedding)
    phash_distance: int | None  # differing pHash bits (of 64); None: unknown, or a pHash that says nothing (a flat picture's)
    width: int | None
    height: int | None
    mirrored: bool = False  # matched the mirrored query better than the query
    decision: str | None = None  # a person's verdict on it and the query: "same" (pinned) or "different" (demoted)
    #: The score's named band: "same design", "very similar", "similar" or "unrelated"
    #: ("" for a model without a calibration). The list reads band by band.
    band: str = ""

    @functools.cached_property
    def missing(self) -> bool:
        """Whether the file is no longer on disk: checked when first asked, then kept.

        Lazy so that a search makes no file-system call per match: the window
        asks when it paints a result, the CLI and the CSV for what they write.
        """
        return not os.path.exists(self.path)

    @property
    def name(self) -> str:
        return os.path.basename(self.relpath)


@dataclass(frozen=True)
class SearchResult:
    """A ranked match list and how it was made."""

    query: str  # path of the query image, or a description ("pasted image")
    query_image_id: int | None  # when the query is a catalogue image
    matches: tuple[Match, ...]
    method: str  # "exact", "graph", "lsh" or "scan"
    candidates: int
    embed_ms: float
    search_ms: float
    note: str = ""  # something the user should know about this result ("update the catalogue to ...")
    example_ids: tuple[int, ...] = ()  # the catalogue images searched with (a steered search: several)
    unlike_ids: tuple[int, ...] = ()  # the catalogue images searched against ("not like this")
    folders: tuple[str, ...] = ()  # the subfolders searched (none: the whole catalogue)

    @property
    def total_ms(self) -> float:
        return self.embed_ms + self.search_ms

    def is_example(self, image_id: int) -> bool:
        """Whether a match is one of the pictures searched with (the query itself)."""
        return image_id == self.query_image_id or image_id in self.example_ids
