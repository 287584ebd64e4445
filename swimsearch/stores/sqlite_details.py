"""Where a catalogue file keeps the details a steered search needs (issue 12): regional vectors and colours.

Two tables beside ``embeddings``, one row per readable image:

* ``regions``  the regional vectors of search by a detail: R x d float16
               (regions.py), with the basis they were made with in ``arrays``
               (``regions.*``) and the ``regions`` metadata;
* ``colours``  the colour signature: B bytes (colour.py).

They are made the first time a catalogue is written (catalogues made before
lack them and are read as holding no details: an update fills them), so an
older SwimSearch still opens the file. `SqliteStore` wraps these calls in
transactions and turns SQLite errors into plain words.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import CatalogueError
from ..regions import REGION_DTYPE, RegionBasis
from .base import ColourSignatures, DetailCounts, RegionVectors
from .sqlite_file import SqliteFile, chunks, describe_error, plain_errors, to_blob

COLOUR_DTYPE = "u1"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS regions (image_id INTEGER PRIMARY KEY, vectors BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS colours (image_id INTEGER PRIMARY KEY, signature BLOB NOT NULL)",
)


class DetailTables:
    """The detail tables of one open catalogue file."""

    def __init__(self, file: SqliteFile):
        self.file = file
        self._present = False

    def present(self) -> bool:
        """Whether the tables exist (a catalogue made before them has none until it is written)."""
        if not self._present:
            names = {r[0] for r in self.file.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self._present = {"regions", "colours"} <= names
        return self._present

    def ensure(self) -> None:
        """Make the tables in a catalogue made before them (inside the caller's transaction)."""
        if not self.present():
            for statement in _TABLES:
                self.file.conn.execute(statement)
            self._present = True

    # --- the basis ---------------------------------------------------------------------

    def basis(self) -> RegionBasis | None:
        state = self.file.meta("regions")
        if not state:
            return None
        try:
            arrays = {name: self.file.get_array(name) for name in RegionBasis.ARRAY_NAMES}
        except KeyError as exc:
            raise CatalogueError(f"The catalogue {self.file.path} is damaged: the region array {exc} is missing.") from exc
        return RegionBasis.from_arrays(arrays, state)

    def save_basis(self, basis: RegionBasis) -> None:
        self.ensure()
        for name, array in basis.arrays().items():
            self.file.put_array(name, array)
        self.file.set_meta(regions=basis.state())
        self.file.conn.execute("DELETE FROM regions")  # made with another basis: meaningless now

    # --- per image ---------------------------------------------------------------------

    def add(self, image_id: int, regions: np.ndarray | None, colour: np.ndarray | None) -> None:
        if regions is not None or colour is not None:
            self.ensure()
        if regions is not None:
            self.file.conn.execute(
                "INSERT OR REPLACE INTO regions(image_id, vectors) VALUES (?, ?)", (image_id, to_blob(regions, REGION_DTYPE))
            )
        if colour is not None:
            self.file.conn.execute(
                "INSERT OR REPLACE INTO colours(image_id, signature) VALUES (?, ?)", (image_id, to_blob(colour, COLOUR_DTYPE))
            )

    def remove(self, image_ids: Sequence[int]) -> None:
        if not self.present():
            return
        for part, marks in chunks(image_ids):
            for table in ("regions", "colours"):
                self.file.conn.execute(f"DELETE FROM {table} WHERE image_id IN ({marks})", part)  # noqa: S608

    def clear(self) -> None:
        if self.present():
            self.file.conn.execute("DELETE FROM regions")
            self.file.conn.execute("DELETE FROM colours")

    def iter_regions(self, chunk: int) -> Iterator[RegionVectors]:
        basis = self.basis()
        if basis is None or not self.present():
            return
        shape = (basis.regions, basis.dim)
        cursor = self.file.conn.execute("SELECT image_id, vectors FROM regions ORDER BY image_id")
        while rows := cursor.fetchmany(chunk):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=REGION_DTYPE)
            yield RegionVectors(ids, flat.reshape(len(rows), *shape).astype(np.float16))

    def colour_signatures(self, image_ids: Iterable[int]) -> ColourSignatures:
        asked = [int(i) for i in image_ids]
        blobs: dict[int, bytes] = {}
        if self.present():
            for part, marks in chunks(asked):
                blobs.update(
                    self.file.conn.execute(f"SELECT image_id, signature FROM colours WHERE image_id IN ({marks})", part)  # noqa: S608
                )
        found = [i for i in asked if i in blobs]
        width = len(blobs[found[0]]) if found else 0
        signatures = np.frombuffer(b"".join(blobs[i] for i in found), dtype=COLOUR_DTYPE).reshape(len(found), width)
        return ColourSignatures(np.array(found, dtype=np.int64), signatures.copy())

    def counts(self) -> DetailCounts:
        if not self.present():
            return DetailCounts(regions=0, colours=0)
        q = self.file.conn.execute
        return DetailCounts(
            regions=q("SELECT count(*) FROM regions").fetchone()[0],
            colours=q("SELECT count(*) FROM colours").fetchone()[0],
        )

    def lacking(self, *, regions: bool) -> list[tuple[int, str]]:
        """Readable images (with an embedding) that lack a colour signature, or regional vectors when asked."""
        if not self.present():
            rows = self.file.conn.execute(
                "SELECT i.id, i.path FROM images i JOIN embeddings e ON e.image_id = i.id ORDER BY i.path"
            )
            return [(int(i), p) for i, p in rows]
        missing_regions = "OR NOT EXISTS (SELECT 1 FROM regions r WHERE r.image_id = i.id)" if regions else ""
        rows = self.file.conn.execute(
            "SELECT i.id, i.path FROM images i JOIN embeddings e ON e.image_id = i.id "
            f"WHERE NOT EXISTS (SELECT 1 FROM colours c WHERE c.image_id = i.id) {missing_regions} ORDER BY i.path"  # noqa: S608
        )
        return [(int(i), p) for i, p in rows]

    def write(self, image_ids: Sequence[int], regions: np.ndarray | None, colours: np.ndarray | None) -> None:
        self.ensure()
        for n, image_id in enumerate(image_ids):
            self.add(int(image_id), None if regions is None else regions[n], None if colours is None else colours[n])


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
