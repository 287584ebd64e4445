"""The part of the store protocols that concerns the details of a steered search (issue 12).

`DetailReader` and `DetailWriter` are taken into `CatalogueReader` and
`CatalogueWriter` (base.py): the regional vectors of search by a detail
(regions.py), colour signatures (colour.py), and the basis the vectors are
made with, which states how many windows and dimensions every image has (so
a better region method keeps its own basis without a new catalogue format).
A catalogue file keeps them in sqlite_details.py, a team catalogue in
postgres_details.py. Kept apart from base.py so each file stays small.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple, Protocol, Sequence, TypedDict

import numpy as np

from ..regions import RegionBasis


class RegionVectors(NamedTuple):
    """Stored regional vectors (search by a detail), in image id order."""

    ids: np.ndarray  # (n,) int64
    vectors: np.ndarray  # (n, R, d) float16


class ColourSignatures(NamedTuple):
    """Stored colour signatures of the asked ids that have one, in the order asked."""

    ids: np.ndarray  # (n,) int64
    signatures: np.ndarray  # (n, B) uint8


class DetailCounts(TypedDict):
    """How many readable images have each detail a steered search needs (catalogues built before lack them)."""

    regions: int  # regional vectors (search by a detail)
    colours: int  # a colour signature (match colour)


class DetailReader(Protocol):
    """Reading the details (a part of `CatalogueReader`)."""

    def region_basis(self) -> RegionBasis | None:
        """The basis the stored regional vectors were made with (None: no detail kept yet)."""
        ...

    def iter_regions(self, chunk: int = 16384) -> Iterator[RegionVectors]:
        """Every stored set of regional vectors, in chunks, in image id order."""
        ...

    def colour_signatures(self, image_ids: Iterable[int]) -> ColourSignatures: ...

    def detail_counts(self) -> DetailCounts: ...

    def export_regions(self, chunk: int = 8192) -> Iterator[RegionVectors]:
        """Every stored set of regional vectors, tombstones' too, in id order (for copies)."""
        ...

    def export_colours(self, chunk: int = 65536) -> Iterator[ColourSignatures]:
        """Every stored colour signature, tombstones' too, in id order (for copies)."""
        ...


class DetailWriter(Protocol):
    """Writing the details (a part of `CatalogueWriter`)."""

    def save_region_basis(self, basis: RegionBasis) -> None:
        """Keep the basis regional vectors are made with (once; vectors made with another are dropped)."""
        ...

    def lacking_details(self, *, regions: bool) -> list[tuple[int, str]]:
        """(image id, relative path) of readable images without a colour signature or, with `regions`, regional vectors."""
        ...

    def write_details(self, image_ids: Sequence[int], regions: np.ndarray | None, colours: np.ndarray | None) -> None:
        """Store regional vectors (n, R, d) and/or colour signatures (n, B) of images already added."""
        ...
