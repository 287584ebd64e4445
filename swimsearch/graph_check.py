"""Checks a stored search graph's bytes before FAISS reads them.

FAISS's reader trusts what it reads: a size field is allocated before its
data is read, and a neighbour id out of range is followed during a search
(memory outside the graph, or a crash). A catalogue is input like any other
file, so the serialised `IndexHNSWSQ` that graph.py writes is walked here,
one part at a time, and every size, level, offset and neighbour id is
checked against the node count and vector width the catalogue states.

`checked_parts` hands on each run of bytes only once it is checked, so FAISS
can read the graph in the same single pass over the stored parts (never a
byte it has not been vouched for), and the caller keeps the graph only once
the whole stream is checked (`VectorGraph.from_parts` drains it). Only a
stream that is exactly what `VectorGraph.parts` writes gets through.

The layout (FAISS 1.x ``write_index`` of ``HNSW16,SQ8``, little-endian):
``IHNs``, the index header, the HNSW vectors (assign_probas, cumulative
neighbours per level, levels, offsets, neighbours) and five int32 fields,
then the storage ``IxSQ``: its header, the quantiser and its codes.
"""

from __future__ import annotations

import logging
import struct
from typing import Iterable, Iterator

import numpy as np

log = logging.getLogger(__name__)

#: Neighbours a node keeps at level 0 and at each level above (HNSW16).
LEVEL0_NEIGHBOURS, UPPER_NEIGHBOURS = 32, 16
MAX_LEVELS = 64  # FAISS draws levels with probability 1/16 each: 64 is never reached honestly
QT_8BIT = 0  # faiss.ScalarQuantizer.QT_8bit
METRIC_INNER_PRODUCT = 0
HEADER = struct.Struct("<iqqqBi")  # d, ntotal, two unused, is_trained, metric
SQ_FIELDS = struct.Struct("<iifQQ")  # qtype, range statistic, its argument, d, code size
HNSW_TAIL = struct.Struct("<iiiii")  # entry point, max level, efConstruction, efSearch, unused
CHUNK = 1 << 22  # bytes of neighbour ids checked at a time


class GraphDamage(ValueError):
    """The stored graph is not one this version wrote for this catalogue (the message says how)."""


class _Stream:
    """Bytes read across the stored parts in order, never more than asked; large runs are not copied."""

    def __init__(self, parts: Iterable[bytes]):
        self._parts = iter(parts)
        self._buffer = memoryview(b"")
        self._taken: list[memoryview] = []  # read since the last `checked` (views into the parts)

    def checked(self) -> Iterator[memoryview]:
        """Everything read since the last call, now vouched for by the caller."""
        taken, self._taken = self._taken, []
        yield from taken

    def _take(self, n: int) -> memoryview:
        piece = self._buffer[:n]
        self._buffer = self._buffer[len(piece) :]
        self._taken.append(piece)
        return piece

    def _fill(self) -> None:
        while not len(self._buffer):
            nxt = next(self._parts, None)
            if nxt is None:
                raise GraphDamage("ends early")
            self._buffer = memoryview(nxt)

    def read(self, n: int) -> bytes:
        out = []
        while n > 0:
            self._fill()
            take = self._take(n)
            out.append(bytes(take))
            n -= len(take)
        return b"".join(out)

    def chunks(self, n: int, item: int = 1) -> Iterator[memoryview | bytes]:
        """`n` bytes in pieces of whole `item`-byte values: views into the parts where a piece lies in one."""
        while n > 0:
            self._fill()
            take = min(n, CHUNK, len(self._buffer)) // item * item
            if take:
                piece: memoryview | bytes = self._take(take)
            else:  # a value split across two parts
                piece = self.read(item)
            n -= len(piece)
            yield piece

    def at_end(self) -> bool:
        return not len(self._buffer) and all(not len(p) for p in self._parts)

    def size(self, limit: int, what: str) -> int:
        (n,) = struct.unpack("<q", self.read(8))
        if not 0 <= n <= limit:
            raise GraphDamage(f"states {n} {what}")
        return n

    def array(self, dtype: str, n: int) -> np.ndarray:
        return np.frombuffer(self.read(n * np.dtype(dtype).itemsize), dtype).astype(np.dtype(dtype).newbyteorder("="))


def check_graph_stream(parts: Iterable[bytes], nodes: int, dim: int) -> None:
    """Raise GraphDamage unless `parts` are an HNSW16,SQ8 graph of `nodes` nodes over `dim`-d vectors."""
    for _ in checked_parts(parts, nodes, dim):
        pass


def checked_parts(parts: Iterable[bytes], nodes: int, dim: int) -> Iterator[memoryview]:
    """The bytes of `parts` in order, each run yielded only once checked; GraphDamage where they are not sound.

    The stream is checked whole only when this is exhausted: until then a
    reader must not use what it has read.
    """
    s = _Stream(parts)
    if s.read(4) != b"IHNs":
        raise GraphDamage("is not an HNSW graph of 8-bit vectors")
    _check_header(s, nodes, dim)
    s.read(8 * s.size(MAX_LEVELS, "level probabilities"))  # doubles FAISS only uses when it inserts
    n_cum = s.size(MAX_LEVELS + 1, "levels")
    cum = s.array("<i4", n_cum)
    wanted = np.concatenate([[0], np.cumsum([LEVEL0_NEIGHBOURS] + [UPPER_NEIGHBOURS] * (n_cum - 2))]) if n_cum >= 2 else None
    if wanted is None or not np.array_equal(cum, wanted):
        raise GraphDamage("does not keep 16 neighbours a node")
    yield from s.checked()
    levels = s.array("<i4", s.size(nodes, "node levels"))
    if len(levels) != nodes or (nodes and (levels.min() < 1 or levels.max() > n_cum - 1)):
        raise GraphDamage("gives its nodes levels it does not have")
    yield from s.checked()
    offsets = s.array("<u8", s.size(nodes + 1, "node offsets"))
    if len(offsets) != nodes + 1 or offsets[0] != 0 or np.any(np.diff(offsets.astype(np.int64)) != cum[levels]):
        raise GraphDamage("has neighbour lists that do not match its nodes' levels")
    n_links = s.size(int(offsets[-1]), "neighbour ids")
    if n_links != int(offsets[-1]):
        raise GraphDamage("has fewer neighbour ids than its nodes need")
    del offsets  # 8 MB at 1M nodes, not needed while FAISS reads on
    yield from s.checked()
    for piece in s.chunks(4 * n_links, 4):
        links = np.frombuffer(piece, "<i4")
        if len(links) and (links.min() < -1 or links.max() >= nodes):
            raise GraphDamage("names neighbours that are not among its nodes")
        yield from s.checked()
    entry, max_level, *_ = HNSW_TAIL.unpack(s.read(HNSW_TAIL.size))
    if nodes and not (0 <= entry < nodes and max_level == levels.max() - 1 and levels[entry] - 1 == max_level):
        raise GraphDamage("has an entry point that is not its top node")
    if s.read(4) != b"IxSQ":
        raise GraphDamage("does not keep 8-bit vectors")
    _check_header(s, nodes, dim)
    qtype, _, _, sq_dim, code_size = SQ_FIELDS.unpack(s.read(SQ_FIELDS.size))
    if qtype != QT_8BIT or sq_dim != dim or code_size != dim:
        raise GraphDamage("does not keep 8-bit vectors of the catalogue's width")
    trained = s.array("<f4", s.size(2 * dim, "quantiser values"))
    if len(trained) != 2 * dim or not np.all(np.isfinite(trained)):
        raise GraphDamage("has a quantiser that is not sound")
    if s.size(nodes * dim, "vector bytes") != nodes * dim:
        raise GraphDamage("has fewer vectors than nodes")
    yield from s.checked()
    for _ in s.chunks(nodes * dim):  # any byte is an 8-bit vector value
        yield from s.checked()
    if not s.at_end():
        raise GraphDamage("goes on past its end")


def _check_header(s: _Stream, nodes: int, dim: int) -> None:
    d, ntotal, _, _, trained, metric = HEADER.unpack(s.read(HEADER.size))
    if d != dim or ntotal != nodes or trained != 1 or metric != METRIC_INNER_PRODUCT:
        raise GraphDamage(f"states {ntotal} nodes of {d} values where the catalogue has {nodes} of {dim}")

