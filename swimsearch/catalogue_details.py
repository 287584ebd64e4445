"""The detail part of the catalogue handle: regional vectors and colour signatures (issue 12).

`DetailViews` is mixed into `Catalogue` so that a `SearchEngine` given a
catalogue reads a steered search's details through it, as it reads the rest
of the reader protocol; kept apart so the handle stays small.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Iterator

from .regions import RegionBasis
from .stores.base import ColourSignatures, DetailCounts, RegionVectors

if TYPE_CHECKING:
    from .stores.postgres import PostgresStore
    from .stores.sqlite import SqliteStore

log = logging.getLogger(__name__)


class DetailViews:
    """Pass-through of the store's detail reads (the store is `self.store`)."""

    store: "SqliteStore | PostgresStore"

    def region_basis(self) -> RegionBasis | None:
        return self.store.region_basis()

    def iter_regions(self, chunk: int = 16384) -> Iterator[RegionVectors]:
        return self.store.iter_regions(chunk)

    def colour_signatures(self, image_ids: Iterable[int]) -> ColourSignatures:
        return self.store.colour_signatures(image_ids)

    def detail_counts(self) -> DetailCounts:
        """How many readable images have regional vectors and colour signatures (an update fills them in)."""
        return self.store.detail_counts()

    def export_regions(self, chunk: int = 8192) -> Iterator[RegionVectors]:
        return self.store.export_regions(chunk)

    def export_colours(self, chunk: int = 65536) -> Iterator[ColourSignatures]:
        return self.store.export_colours(chunk)
