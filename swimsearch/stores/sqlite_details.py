"""Where a catalogue file keeps the details a steered search needs (issue 12): regional vectors and colours.

Two tables beside ``embeddings`` (schema version 5, sqlite_schema.py), one
row per readable image, each with a checksum of its image id and blob:

* ``regions``  the regional vectors of search by a detail: R x d float16
               (regions.py), with the basis they were made with in ``arrays``
               (``regions.*``) and the ``regions`` metadata;
* ``colours``  the colour signature: B bytes (colour.py).

Everything read is checked before it leaves this module (checksums, blob
lengths, finite numbers, a basis whose parts fit together); anything else is
a `DamagedCatalogue` in one sentence. Records of files found gone keep their
details (they come back with the file) but are left out of search and counts.
`SqliteStore` wraps these calls in transactions and turns SQLite errors into
plain words.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..colour import SIGNATURE_BINS
from ..regions import REGION_DTYPE, RegionBasis
from .base import ColourSignatures, DetailCounts, NewImage, RegionVectors
from .integrity import check_finite, damaged, is_int
from .sqlite_file import SqliteFile, chunks, describe_error, plain_errors, to_blob
from .sqlite_schema import detail_crc

COLOUR_DTYPE = "u1"
#: The largest feature-map grid and reduced dimension a basis may describe (the shipped one: 7 and 96).
MAX_GRID = 64
_LIVE = "JOIN images i ON i.id = t.image_id WHERE i.gone IS NULL"


def check_basis_state(location: str, state: Any) -> None:
    """The ``regions`` metadata: grid, windows and dimensions as small positive integers."""
    ok = isinstance(state, dict) and all(is_int(state.get(k)) and 1 <= state[k] <= 4096 for k in ("grid", "regions", "dim"))
    if not ok or state["grid"] > MAX_GRID or not isinstance(state.get("name", ""), str):
        raise damaged(location, "its description of the regional vectors is not readable")


def check_basis(location: str, basis: RegionBasis, state: dict) -> None:
    """A basis whose windows lie on its grid, whose arrays agree with each other and with its metadata."""
    w, grid = basis.windows, basis.grid
    fits = (
        w.ndim == 2 and w.shape[1:] == (4,) and len(w) == state["regions"]
        and basis.mean.ndim == 1 and basis.basis.ndim == 2 and basis.basis.shape == (len(basis.mean), state["dim"])
        and 1 <= basis.dim <= basis.channels
        and bool(((w[:, 0] >= 0) & (w[:, 1] >= 0) & (w[:, 0] < w[:, 2]) & (w[:, 1] < w[:, 3])
                  & (w[:, 2] <= grid) & (w[:, 3] <= grid)).all())
    )
    if not fits:
        raise damaged(location, "the basis of its regional vectors does not fit together")
    check_finite(location, "the arrays of its region basis", np.concatenate([basis.mean, basis.basis.ravel()]))


class DetailTables:
    """The detail tables of one open catalogue file."""

    TABLES = ("regions", "colours")

    def __init__(self, file: SqliteFile):
        self.file = file
        self.location = str(file.path)

    def exists(self) -> bool:
        """False in a file of an older format opened read-only (read as it is, never migrated)."""
        found = self.file.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", self.TABLES
        ).fetchone()[0]
        return found == len(self.TABLES)

    # --- the basis ---------------------------------------------------------------------

    def basis(self) -> RegionBasis | None:
        state = self.file.meta("regions")
        if state is None:  # no basis kept yet (a catalogue migrated from an older format, or a model without a feature map)
            return None
        check_basis_state(self.location, state)
        try:
            arrays = {name: self.file.get_array(name) for name in RegionBasis.ARRAY_NAMES}
        except KeyError as exc:
            raise damaged(self.location, f"the region array {exc} is missing") from exc
        basis = RegionBasis.from_arrays(arrays, state)
        check_basis(self.location, basis, state)
        return basis

    def save_basis(self, basis: RegionBasis) -> None:
        for name, array in basis.arrays().items():
            self.file.put_array(name, array)
        self.file.set_meta(regions=basis.state())
        self.file.conn.execute("DELETE FROM regions")  # made with another basis: meaningless now

    # --- per image ---------------------------------------------------------------------

    def _put(self, table: str, column: str, image_id: int, blob: bytes) -> None:
        self.file.conn.execute(
            f"INSERT OR REPLACE INTO {table}(image_id, {column}, crc) VALUES (?, ?, ?)",  # noqa: S608 - fixed names
            (image_id, blob, detail_crc(image_id, blob)),
        )

    def add(self, image_id: int, regions: np.ndarray | None, colour: np.ndarray | None) -> None:
        if regions is not None:
            self._put("regions", "vectors", image_id, to_blob(regions, REGION_DTYPE))
        if colour is not None:
            self._put("colours", "signature", image_id, to_blob(colour, COLOUR_DTYPE))

    def replace(self, image_ids: Sequence[int], images: Sequence[NewImage]) -> None:
        """The details of images just added or read again (an unreadable one keeps none)."""
        self.remove(image_ids)
        for image_id, image in zip(image_ids, images):
            if image.embedding is not None:
                self.add(int(image_id), image.regions, image.colour)

    def remove(self, image_ids: Sequence[int]) -> None:
        for part, marks in chunks(list(image_ids)):
            for table in self.TABLES:
                self.file.conn.execute(f"DELETE FROM {table} WHERE image_id IN ({marks})", part)  # noqa: S608

    def _checked(self, rows: Sequence[tuple], width: int, what: str) -> list[bytes]:
        """The blobs of (image_id, blob, crc) rows, each of `width` bytes and matching its checksum."""
        for image_id, blob, crc in rows:
            if not is_int(image_id) or not isinstance(blob, bytes) or len(blob) != width:
                raise damaged(self.location, f"{what} have the wrong length")
            if crc != detail_crc(image_id, blob):
                raise damaged(self.location, f"{what} fail their checksum")
        return [r[1] for r in rows]

    def iter_regions(self, chunk: int, *, every: bool = False) -> Iterator[RegionVectors]:
        """The regional vectors of images not gone (`every`: tombstones' too, for a copy), in id order."""
        basis = self.basis() if self.exists() else None
        if basis is None:
            return
        shape = (basis.regions, basis.dim)
        width = basis.bytes_per_image
        live = "" if every else _LIVE
        cursor = self.file.conn.execute(f"SELECT t.image_id, t.vectors, t.crc FROM regions t {live} ORDER BY t.image_id")  # noqa: S608
        while rows := cursor.fetchmany(chunk):
            blobs = self._checked(rows, width, "regional vectors")
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(blobs), dtype=REGION_DTYPE).reshape(len(rows), *shape).astype(np.float16)
            check_finite(self.location, "regional vectors", vectors)
            yield RegionVectors(ids, vectors)

    def colour_signatures(self, image_ids: Iterable[int]) -> ColourSignatures:
        asked = [int(i) for i in image_ids] if self.exists() else []
        blobs: dict[int, bytes] = {}
        for part, marks in chunks(asked):
            rows = self.file.conn.execute(
                f"SELECT image_id, signature, crc FROM colours WHERE image_id IN ({marks})", part  # noqa: S608
            ).fetchall()
            blobs.update(zip((r[0] for r in rows), self._checked(rows, SIGNATURE_BINS, "colour signatures")))
        found = [i for i in asked if i in blobs]
        signatures = np.frombuffer(b"".join(blobs[i] for i in found), dtype=COLOUR_DTYPE).reshape(len(found), SIGNATURE_BINS)
        return ColourSignatures(np.array(found, dtype=np.int64), signatures.copy())

    def export_colours(self, chunk: int) -> Iterator[ColourSignatures]:
        """Every colour signature (tombstones' too), in id order, for a copy."""
        if not self.exists():
            return
        cursor = self.file.conn.execute("SELECT image_id, signature, crc FROM colours ORDER BY image_id")
        while rows := cursor.fetchmany(chunk):
            blobs = self._checked(rows, SIGNATURE_BINS, "colour signatures")
            signatures = np.frombuffer(b"".join(blobs), dtype=COLOUR_DTYPE).reshape(len(rows), SIGNATURE_BINS).copy()
            yield ColourSignatures(np.array([r[0] for r in rows], dtype=np.int64), signatures)

    def counts(self) -> DetailCounts:
        if not self.exists():
            return DetailCounts(regions=0, colours=0)
        q = self.file.conn.execute
        return DetailCounts(
            regions=q(f"SELECT count(*) FROM regions t {_LIVE}").fetchone()[0],  # noqa: S608
            colours=q(f"SELECT count(*) FROM colours t {_LIVE}").fetchone()[0],  # noqa: S608
        )

    def lacking(self, *, regions: bool) -> list[tuple[int, str]]:
        """Readable images (with an embedding, not gone) that lack a colour signature, or regional vectors when asked."""
        missing_regions = "OR NOT EXISTS (SELECT 1 FROM regions r WHERE r.image_id = i.id)" if regions else ""
        rows = self.file.conn.execute(
            "SELECT i.id, i.path FROM images i JOIN embeddings e ON e.image_id = i.id WHERE i.gone IS NULL AND "
            f"(NOT EXISTS (SELECT 1 FROM colours c WHERE c.image_id = i.id) {missing_regions}) ORDER BY i.path"  # noqa: S608
        )
        return [(int(i), p) for i, p in rows]

    def write(self, image_ids: Sequence[int], regions: np.ndarray | None, colours: np.ndarray | None) -> None:
        for n, image_id in enumerate(image_ids):
            self.add(int(image_id), None if regions is None else regions[n], None if colours is None else colours[n])

    def check_all(self) -> str:
        """Verify every detail row and the basis (info --check); what was checked, in words."""
        if not self.exists():
            return "no details (a format before they were kept, read as it is)"
        regions = sum(len(part.ids) for part in self.iter_regions(8192))
        cursor = self.file.conn.execute("SELECT image_id, signature, crc FROM colours")
        colours = 0
        while rows := cursor.fetchmany(8192):
            colours += len(self._checked(rows, SIGNATURE_BINS, "colour signatures"))
        orphans = sum(
            self.file.conn.execute(f"SELECT count(*) FROM {t} WHERE image_id NOT IN (SELECT id FROM images)").fetchone()[0]  # noqa: S608
            for t in self.TABLES
        )
        if orphans:
            raise damaged(self.location, f"{orphans} regional vectors or colour signatures belong to no image")
        return f"{regions:,} images' regional vectors and {colours:,} colour signatures"


class DetailMethods:
    """`SqliteStore`'s part of the reader and writer protocols that concerns details (a mixin)."""

    path: Path
    file: SqliteFile
    _details: DetailTables

    @plain_errors
    def region_basis(self) -> RegionBasis | None:
        return self._details.basis()

    def iter_regions(self, chunk: int = 16384) -> Iterator[RegionVectors]:
        try:
            yield from self._details.iter_regions(chunk)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    @plain_errors
    def colour_signatures(self, image_ids: Iterable[int]) -> ColourSignatures:
        return self._details.colour_signatures(image_ids)

    def export_regions(self, chunk: int = 8192) -> Iterator[RegionVectors]:
        """Every stored set of regional vectors (tombstones' too), in id order, for a copy."""
        try:
            yield from self._details.iter_regions(chunk, every=True)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    def export_colours(self, chunk: int = 65536) -> Iterator[ColourSignatures]:
        """Every colour signature (tombstones' too), in id order, for a copy."""
        try:
            yield from self._details.export_colours(chunk)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    def check_details(self) -> str:
        return self._details.check_all()

    @plain_errors
    def detail_counts(self) -> DetailCounts:
        return self._details.counts()

    @plain_errors
    def save_region_basis(self, basis: RegionBasis) -> None:
        with self.file.transaction():
            self._details.save_basis(basis)

    @plain_errors
    def lacking_details(self, *, regions: bool) -> list[tuple[int, str]]:
        return self._details.lacking(regions=regions)

    @plain_errors
    def write_details(self, image_ids: Sequence[int], regions: np.ndarray | None, colours: np.ndarray | None) -> None:
        with self.file.transaction():
            self._details.write(image_ids, regions, colours)
