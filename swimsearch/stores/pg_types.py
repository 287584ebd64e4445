"""NumPy arrays to and from pgvector's types, exactly: codes as ``bit(B)``, float16 vectors as ``halfvec(n)``.

What the PostgreSQL store needs from the driver (psycopg 3), in our own few
lines rather than the `pgvector` Python package: that package wraps every
value in an object (a million Python objects to load a catalogue) and packs
bits most-significant first, while our codes are little-endian uint64 words.
Here whole columns convert with NumPy, and the bytes go over the wire in
PostgreSQL's binary formats, so a float16 embedding comes back bit-identical
(text formats round through decimal strings).

Bit order: bit k of a packed code (word k // 64, position k % 64, see
`spherical.pack_bits`) is bit k of the ``bit(B)`` string, counted from the
left as PostgreSQL's ``get_bit`` does. Hamming distances do not depend on the
order; reading a code back and computing keys in SQL do.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Iterable, Sequence

import numpy as np

from ..spherical import pack_bits, unpack_bits

log = logging.getLogger(__name__)

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # header: flags 0, no extension
COPY_TRAILER = struct.pack(">h", -1)


def codes_to_bit_bytes(codes: np.ndarray, bits: int) -> np.ndarray:
    """(n, words) uint64 packed codes -> (n, ceil(bits/8)) uint8, bit k of the code = bit k of the string."""
    return np.packbits(unpack_bits(np.atleast_2d(codes), bits), axis=1, bitorder="big")


def bit_bytes_to_codes(raw: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of `codes_to_bit_bytes`."""
    unpacked = np.unpackbits(np.atleast_2d(raw), axis=1, bitorder="big", count=bits).astype(bool)
    return pack_bits(unpacked)


def bit_literal(code: np.ndarray, bits: int) -> str:
    """One code as a bit-string literal for a query parameter (``%s::bit(128)``): 'x' + hex when whole bytes."""
    raw = codes_to_bit_bytes(code, bits)[0]
    if bits % 4 == 0:
        return "x" + raw.tobytes().hex()[: bits // 4]
    return "".join("1" if b else "0" for b in np.unpackbits(raw, bitorder="big", count=bits))


def bit_binary(code: np.ndarray, bits: int) -> bytes:
    """One code in ``bit``'s binary wire format (int32 length, then the bytes)."""
    return struct.pack(">i", bits) + codes_to_bit_bytes(code, bits)[0].tobytes()


def parse_bit_binary(data: bytes | memoryview, bits: int | None = None) -> np.ndarray:
    """``bit``'s binary wire format -> one packed code (words,) uint64."""
    (length,) = struct.unpack_from(">i", data)
    if bits is not None and length != bits:
        raise ValueError(f"expected a bit({bits}) value, got bit({length})")
    raw = np.frombuffer(data, dtype=np.uint8, offset=4)
    return bit_bytes_to_codes(raw[None], length)[0]


def halfvec_binary(vector: np.ndarray) -> bytes:
    """One vector in ``halfvec``'s binary wire format (uint16 dim, uint16 0, big-endian halves)."""
    vector = np.asarray(vector)
    if vector.dtype != np.float16:
        vector = vector.astype(np.float16)
    return struct.pack(">HH", len(vector), 0) + vector.astype(">f2").tobytes()


def parse_halfvec_binary(data: bytes | memoryview) -> np.ndarray:
    """``halfvec``'s binary wire format -> (dim,) float16, bit-identical to what was sent."""
    dim, unused = struct.unpack_from(">HH", data)
    if unused != 0 or len(data) != 4 + 2 * dim:
        raise ValueError("not a halfvec value")
    return np.frombuffer(data, dtype=">f2", offset=4).astype(np.float16)


class HalfVec:
    """A float16 vector passed as a query parameter (binary, so nothing is rounded twice)."""

    __slots__ = ("vector",)

    def __init__(self, vector: np.ndarray):
        self.vector = np.asarray(vector, dtype=np.float16).reshape(-1)


class Ids:
    """Image ids passed as one ``int8[]`` parameter (`= ANY(%s)`), packed by NumPy.

    psycopg dumps a Python list element by element, in text, in Python: 6 ms of
    the client's CPU for the 900 ids a search at a million designs tells the
    server it holds already; packed here it is a few microseconds.
    """

    __slots__ = ("ids",)

    def __init__(self, ids: Any):
        self.ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.ids)


#: PostgreSQL's built-in type oids of int8 and int8[] (fixed in every server).
INT8_OID, INT8_ARRAY_OID = 20, 1016


def int8_array_binary(ids: np.ndarray) -> bytes:
    """``int8[]``'s binary wire format: dimensions, element type, then (length 8, big-endian value) per id."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if not len(ids):
        return struct.pack(">iiI", 0, 0, INT8_OID)
    body = np.empty(len(ids), dtype=[("length", ">i4"), ("value", ">i8")])
    body["length"] = 8
    body["value"] = ids
    return struct.pack(">iiIii", 1, 0, INT8_OID, len(ids), 1) + body.tobytes()


class Code:
    """A packed spherical code passed as a ``bit(B)`` query parameter."""

    __slots__ = ("code", "bits")

    def __init__(self, code: np.ndarray, bits: int):
        self.code = np.asarray(code, dtype=np.uint64).reshape(-1)
        self.bits = bits


def register_types(conn: Any) -> None:
    """Teach one psycopg connection to send `HalfVec`/`Code`/`Ids` and read halfvec as float16 arrays.

    ``bit`` values come back as `str` ('0101...') in text format; fetch them
    with a binary cursor (``conn.cursor(binary=True)``) to get bytes for
    `parse_bit_binary`.
    """
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    conn = getattr(conn, "raw", conn)  # psycopg wants its own connection, not the TeamConnection around it
    halfvec = TypeInfo.fetch(conn, "halfvec")
    bit = TypeInfo.fetch(conn, "bit")
    if halfvec is None:
        raise LookupError("the vector extension (pgvector >= 0.7) is not installed in this database")

    class HalfVecDumper(Dumper):
        format = Format.BINARY
        oid = halfvec.oid

        def dump(self, obj: HalfVec) -> bytes:
            return halfvec_binary(obj.vector)

    class CodeDumper(Dumper):
        format = Format.BINARY
        oid = bit.oid

        def dump(self, obj: Code) -> bytes:
            return bit_binary(obj.code, obj.bits)

    class IdsDumper(Dumper):
        format = Format.BINARY
        oid = INT8_ARRAY_OID

        def dump(self, obj: Ids) -> bytes:
            return int8_array_binary(obj.ids)

    class HalfVecLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> np.ndarray:
            return parse_halfvec_binary(bytes(data))

    class HalfVecTextLoader(Loader):
        format = Format.TEXT

        def load(self, data: Any) -> np.ndarray:
            return np.array(bytes(data)[1:-1].split(b","), dtype=np.float32).astype(np.float16)

    conn.adapters.register_dumper(HalfVec, HalfVecDumper)
    conn.adapters.register_dumper(Code, CodeDumper)
    conn.adapters.register_dumper(Ids, IdsDumper)
    conn.adapters.register_loader(halfvec.oid, HalfVecLoader)
    conn.adapters.register_loader(halfvec.oid, HalfVecTextLoader)


def copy_binary(columns: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """A ``COPY ... FROM STDIN (FORMAT binary)`` payload for n rows, built column-wise with NumPy.

    Args:
        columns: (kind, values) per column, each with n rows:
            "int4"/"int8" (n,) integers; "float8" (n,) float64; "bytea" (n, w) uint8;
            "halfvec" (n, dim) float16; "bit" (n, words) uint64 packed codes
            (kind "bit:B" gives the bit length B, default 64 * words).
    """
    n = len(columns[0][1])
    fields: list[tuple] = [("count", ">i2")]
    values: dict[str, Any] = {"count": np.int16(len(columns))}
    for i, (kind, array) in enumerate(columns):
        if len(array) != n:
            raise ValueError("every column needs the same number of rows")
        name = f"c{i}"
        if kind in ("int4", "int8", "float8"):
            parts: list[tuple[Any, ...]] = [(name, {"int4": ">i4", "int8": ">i8", "float8": ">f8"}[kind], np.asarray(array))]
        elif kind == "bytea":
            array = np.asarray(array, dtype=np.uint8)
            parts = [(name, "u1", array, array.shape[1])]
        elif kind == "halfvec":
            array = np.asarray(array, dtype=np.float16)
            dim = array.shape[1]
            parts = [(name + "_head", ">u2", np.array([dim, 0]), 2), (name, ">f2", array, dim)]
        elif kind.startswith("bit"):
            bits = int(kind.split(":")[1]) if ":" in kind else array.shape[1] * 64
            raw = codes_to_bit_bytes(array, bits)
            parts = [(name + "_bits", ">i4", np.int32(bits)), (name, "u1", raw, raw.shape[1])]
        else:
            raise ValueError(f"unknown column kind {kind!r}")
        # Each field: int32 byte length, then the value in the type's binary format.
        length = sum(np.dtype((p[1], p[3]) if len(p) == 4 else p[1]).itemsize for p in parts)
        fields.append((name + "_len", ">i4"))
        values[name + "_len"] = np.int32(length)
        for part in parts:
            fields.append((part[0], part[1], (part[3],)) if len(part) == 4 else (part[0], part[1]))
            values[part[0]] = part[2]
    rows = np.empty(n, dtype=np.dtype(fields))
    for name, value in values.items():
        rows[name] = value
    return COPY_SIGNATURE + rows.tobytes() + COPY_TRAILER


def copy_rows(conn: Any, table: str, names: Iterable[str], columns: Sequence[tuple[str, np.ndarray]], chunk: int = 20_000) -> int:
    """Bulk-insert columns into `table` with binary COPY, `chunk` rows per COPY message stream."""
    from psycopg import sql

    n = len(columns[0][1])
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor() as cur:
        with cur.copy(statement) as copy:
            # One COPY per call: the header once, rows in chunks, the trailer once.
            payload_head = True
            for start in range(0, n, chunk):
                part = copy_binary([(kind, array[start : start + chunk]) for kind, array in columns])
                body = part[len(COPY_SIGNATURE) : -len(COPY_TRAILER)]
                copy.write((COPY_SIGNATURE if payload_head else b"") + body)
                payload_head = False
            if payload_head:
                copy.write(COPY_SIGNATURE)
            copy.write(COPY_TRAILER)
    return n
