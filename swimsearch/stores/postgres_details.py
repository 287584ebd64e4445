"""A team catalogue's details for a steered search (issue 12): regional vectors and colour signatures.

Two tables beside ``embeddings`` (format 5, pg_schema.py), one row per
readable image, going with its record (a foreign key that cascades):
``regions`` (R x d float16, the regional vectors of search by a detail,
regions.py) and ``colours`` (the colour signature, B bytes, colour.py), as
``bytea``: the catalogue file's own bytes, so a copy either way carries them
bit-identical. The server does not search them (a detail search scans them
in the engine, as for a file), so they need no vector type. The basis the
vectors were made with is kept as a file keeps it: its arrays (``regions.*``)
beside the fit's, and the ``regions`` metadata, with however many windows
and dimensions it states. Records of files found gone keep their details
(they come back with the file) but are left out of search and counts, as in
a file. Everything read is checked as a file's is (lengths, finite numbers,
a basis that fits together); the server keeps its pages whole, so there are
no row checksums.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ..colour import SIGNATURE_BINS
from ..regions import REGION_DTYPE, RegionBasis
from .base import ColourSignatures, DetailCounts, NewImage, RegionVectors
from .integrity import check_finite, damaged
from .postgres_read import is_driver_error
from .sqlite_details import COLOUR_DTYPE, check_basis, check_basis_state

log = logging.getLogger(__name__)

_LIVE = "JOIN {s}.images i ON i.id = t.image_id WHERE i.gone IS NULL"
#: "{s}" is the catalogue's quoted schema.
SQL = {
    "regions_after": f"SELECT t.image_id, t.vectors FROM {{s}}.regions t {_LIVE} AND t.image_id > %s ORDER BY t.image_id LIMIT %s",
    "all_regions_after": "SELECT image_id, vectors FROM {s}.regions WHERE image_id > %s ORDER BY image_id LIMIT %s",
    "all_colours_after": "SELECT image_id, signature FROM {s}.colours WHERE image_id > %s ORDER BY image_id LIMIT %s",
    "colours_of": "SELECT image_id, signature FROM {s}.colours WHERE image_id = ANY(%s)",
    "regions_count": f"SELECT count(*) FROM {{s}}.regions t {_LIVE}",
    "colours_count": f"SELECT count(*) FROM {{s}}.colours t {_LIVE}",
    "regions_clear": "DELETE FROM {s}.regions",
    "regions_drop": "DELETE FROM {s}.regions WHERE image_id = ANY(%s)",
    "colours_drop": "DELETE FROM {s}.colours WHERE image_id = ANY(%s)",
    # an image removed meanwhile by another user gets no details (its row would fail the foreign key)
    "put_region": "INSERT INTO {s}.regions (image_id, vectors) SELECT %s, %s WHERE EXISTS (SELECT 1 FROM {s}.images m WHERE m.id = %s) "
                  "ON CONFLICT (image_id) DO UPDATE SET vectors = excluded.vectors",
    "put_colour": "INSERT INTO {s}.colours (image_id, signature) SELECT %s, %s WHERE EXISTS (SELECT 1 FROM {s}.images m WHERE m.id = %s) "
                  "ON CONFLICT (image_id) DO UPDATE SET signature = excluded.signature",
    "lacking": "SELECT i.id, i.path FROM {s}.images i JOIN {s}.embeddings e ON e.image_id = i.id WHERE i.gone IS NULL AND "
               "(NOT EXISTS (SELECT 1 FROM {s}.colours c WHERE c.image_id = i.id) {regions}) ORDER BY i.path",
    "region_arrays": "SELECT name, dtype, shape, data FROM {s}.arrays WHERE name LIKE 'regions.%%'",
    "lock_basis": "SELECT pg_advisory_xact_lock(hashtext(%s))",
}
_LACKING_REGIONS = "OR NOT EXISTS (SELECT 1 FROM {s}.regions r WHERE r.image_id = i.id)"


F = TypeVar("F", bound=Callable[..., Any])


def plain(method: F) -> F:
    """A driver failure inside `method` as the store's one plain sentence (postgres_read.plain, for this mixin)."""

    @functools.wraps(method)
    def wrapper(self: "PgDetails", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if is_driver_error(exc):
                raise self.describe(exc) from exc
            raise

    return wrapper  # type: ignore[return-value]


def statements(schema: str) -> dict[str, str]:
    quoted = '"' + schema.replace('"', '""') + '"'
    out = {key: text.replace("{s}", quoted) for key, text in SQL.items() if key != "lacking"}
    out["lacking_regions"] = SQL["lacking"].replace("{regions}", _LACKING_REGIONS).replace("{s}", quoted)
    out["lacking_colours"] = SQL["lacking"].replace("{regions}", "").replace("{s}", quoted)
    return out


class PgDetails:
    """The details part of `PostgresStore` (reader and writer; a mixin over its connection and statements)."""

    _conn: Any
    _sql: dict[str, str]
    _index: Any  # postgres_index.ItemTables: meta and arrays
    names: Any  # pg_schema.CatalogueNames

    @property
    def location(self) -> str:  # the store's (PostgresReader)
        raise NotImplementedError

    def transaction(self) -> Any:  # the store's (PostgresStore)
        raise NotImplementedError

    def describe(self, exc: Exception) -> Any:  # the store's (PostgresReader): a CatalogueError
        raise NotImplementedError

    # --- reading ---------------------------------------------------------------------------------

    @plain
    def region_basis(self) -> RegionBasis | None:
        state = self._index.meta("regions")
        if state is None:  # no basis kept yet (a catalogue of an older format, or a model without a feature map)
            return None
        check_basis_state(self.location, state)
        arrays = {}
        for name, dtype, shape, data in self._conn.execute(self._sql["region_arrays"]).fetchall():
            stored = np.dtype(dtype)
            arrays[name] = np.frombuffer(bytes(data), dtype=stored).reshape(json.loads(shape)).astype(stored.newbyteorder("="))
        missing = [name for name in RegionBasis.ARRAY_NAMES if name not in arrays]
        if missing:
            raise damaged(self.location, f"the region array {missing[0]} is missing")
        basis = RegionBasis.from_arrays(arrays, state)
        check_basis(self.location, basis, state)
        return basis

    def iter_regions(self, chunk: int = 16384) -> Iterator[RegionVectors]:
        basis = self.region_basis()
        if basis is not None:
            yield from self._region_pages("regions_after", basis, chunk)

    def _region_pages(self, key: str, basis: RegionBasis, chunk: int) -> Iterator[RegionVectors]:
        """Keyset pages of regional vectors in id order (no cursor held open between the caller's own statements)."""
        shape, width, after = (basis.regions, basis.dim), basis.bytes_per_image, 0
        while True:
            rows = self._rows(key, (after, chunk))
            if not rows:
                return
            if any(len(r[1]) != width for r in rows):
                raise damaged(self.location, "regional vectors have the wrong length")
            after = rows[-1][0]
            vectors = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=REGION_DTYPE).reshape(len(rows), *shape)
            vectors = vectors.astype(np.float16)
            check_finite(self.location, "regional vectors", vectors)
            yield RegionVectors(np.array([r[0] for r in rows], dtype=np.int64), vectors)

    @plain
    def _rows(self, key: str, params: tuple) -> list[tuple]:
        return self._conn.execute(self._sql[key], params).fetchall()

    def _signatures(self, rows: Sequence[tuple], order: Sequence[int] | None = None) -> ColourSignatures:
        if any(len(r[1]) != SIGNATURE_BINS for r in rows):
            raise damaged(self.location, "colour signatures have the wrong length")
        blobs = {int(r[0]): bytes(r[1]) for r in rows}
        found = [i for i in order if i in blobs] if order is not None else sorted(blobs)
        signatures = np.frombuffer(b"".join(blobs[i] for i in found), dtype=COLOUR_DTYPE).reshape(len(found), SIGNATURE_BINS)
        return ColourSignatures(np.array(found, dtype=np.int64), signatures.copy())

    def colour_signatures(self, image_ids: Iterable[int]) -> ColourSignatures:
        asked = [int(i) for i in image_ids]
        return self._signatures(self._rows("colours_of", (asked,)) if asked else [], asked)

    @plain
    def detail_counts(self) -> DetailCounts:
        q = self._conn.execute
        return DetailCounts(regions=q(self._sql["regions_count"]).fetchone()[0], colours=q(self._sql["colours_count"]).fetchone()[0])

    # --- copying out -------------------------------------------------------------------------------

    def export_regions(self, chunk: int = 8192) -> Iterator[RegionVectors]:
        """Every stored set of regional vectors (tombstones' too), in id order, for a copy."""
        basis = self.region_basis()
        if basis is not None:
            yield from self._region_pages("all_regions_after", basis, chunk)

    def export_colours(self, chunk: int = 65536) -> Iterator[ColourSignatures]:
        """Every colour signature (tombstones' too), in id order, for a copy."""
        after = 0
        while rows := self._rows("all_colours_after", (after, chunk)):
            after = rows[-1][0]
            yield self._signatures(rows)

    # --- writing -----------------------------------------------------------------------------------

    @plain
    def save_region_basis(self, basis: RegionBasis) -> None:
        with self.transaction():
            # two folders' first updates at once would each keep the shipped basis: the second leaves the first's vectors be
            self._conn.execute(self._sql["lock_basis"], (f"{self.names.schema}:regions",))
            kept = self.region_basis()
            if kept is not None and _same_basis(kept, basis):
                return
            for name, array in basis.arrays().items():
                array = np.asarray(array)
                dtype = array.dtype.newbyteorder("<").str
                data = np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()
                self._conn.execute(self._sql["put_array"], (name, dtype, json.dumps(list(array.shape)), data))
            self._index.set_meta(regions=basis.state())
            self._conn.execute(self._sql["regions_clear"])  # made with another basis: meaningless now

    @plain
    def lacking_details(self, *, regions: bool) -> list[tuple[int, str]]:
        key = "lacking_regions" if regions else "lacking_colours"
        return [(int(i), p) for i, p in self._conn.execute(self._sql[key]).fetchall()]

    @plain
    def write_details(self, image_ids: Sequence[int], regions: np.ndarray | None, colours: np.ndarray | None) -> None:
        with self.transaction():
            self.put_details([int(i) for i in image_ids], regions, colours)

    def put_details(self, ids: list[int], regions: Any, colours: Any) -> None:
        """Regional vectors and/or colour signatures of images (inside the caller's transaction); None rows are skipped."""
        with self._conn.cursor() as cur:
            if regions is not None:
                rows = [(i, np.ascontiguousarray(r, dtype=REGION_DTYPE).tobytes(), i) for i, r in zip(ids, regions) if r is not None]
                if rows:
                    cur.executemany(self._sql["put_region"], rows)  # pipelined: one round trip for the lot
            if colours is not None:
                rows = [(i, np.ascontiguousarray(c, dtype=COLOUR_DTYPE).tobytes(), i) for i, c in zip(ids, colours) if c is not None]
                if rows:
                    cur.executemany(self._sql["put_colour"], rows)

    def replace_details(self, image_ids: Sequence[int], images: Sequence[NewImage]) -> None:
        """The details of images just added or read again (an unreadable one keeps none), in the caller's transaction."""
        ids = [int(i) for i in image_ids]
        if ids:
            self._conn.execute(self._sql["regions_drop"], (ids,))
            self._conn.execute(self._sql["colours_drop"], (ids,))
        kept = [(i, image) for i, image in zip(ids, images) if image.embedding is not None]
        self.put_details([i for i, _ in kept], [image.regions for _, image in kept], [image.colour for _, image in kept])


def _same_basis(a: RegionBasis, b: RegionBasis) -> bool:
    ours, theirs = a.arrays(), b.arrays()
    return a.state() == b.state() and ours.keys() == theirs.keys() and all(
        np.array_equal(np.asarray(ours[k]), np.asarray(theirs[k])) for k in ours
    )
