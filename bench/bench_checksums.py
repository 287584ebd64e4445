"""What the checksums of catalogue format 2 cost when a catalogue opens, at 1M images, against the same open without them.

Opening a catalogue for search reads the fitted arrays, every code block and
every bucket row (`load_snapshot`); format 2 verifies a CRC-32 of each as it
is read. This script measures, on one catalogue file and in the same run:

* open: `Catalogue.open` + `load_snapshot`, as the window and `swimsearch
  query` do, with every checksum verified;
* baseline: the same, with the checksum comparisons of code blocks and
  buckets taken out (their bytes are still read and parsed), in the same
  process, alternating with the first so the page cache treats both alike;
* CRC-32 (zlib) against BLAKE2b with an 8-byte digest on the same bytes;
* `info --check` (every record and embedding verified too).

    python bench/bench_checksums.py                    # writes bench/work/synthetic-1000000.swimcat if missing
    python bench/bench_checksums.py --size 100000 --reuse

The catalogue is bench_scale.py's (same generator, same writer), so a file
bench_scale made is reused with --reuse.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import zlib

from common import WORK, machine, median, save, table

import numpy as np

from bench_scale import Synthetic, real_centres, write_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.stores import sqlite_index
from swimsearch.stores.integrity import damaged, is_int


def _block_unverified(self, row, words, dim):
    """IndexTables._block without the checksum comparison (sizes still checked, bytes still parsed)."""
    block_no, count, ids, codes, vectors, crc = row
    if len(ids) != 8 * count or len(codes) != 8 * words * count or len(vectors) != 2 * dim * count:
        raise damaged(str(self.file.path), "block size")
    return (
        np.frombuffer(ids, "<i8").astype(np.int64),
        np.frombuffer(codes, "<u8").reshape(-1, words).astype(np.uint64),
        np.frombuffer(vectors, sqlite_index.VECTOR_DTYPE).reshape(-1, dim).astype(np.float16),
    )


def _bucket_unverified(self, table_no, key, ids, crc, key_bits):
    if not (is_int(key) and isinstance(ids, bytes) and 0 <= key < (1 << key_bits) and len(ids) % 8 == 0):
        raise damaged(str(self.file.path), "bucket")


#: The team's cache of the clothing set's trunk embeddings (TEAM_RULES), when bench_build.py's catalogue is absent.
CACHE = WORK.parent.parent.parent.parent / "cache" / "clothing-fp32.npz"


def centres() -> np.ndarray:
    """Real design embeddings for the synthetic generator: bench_build.py's catalogue, or the shared cache."""
    if (WORK / "clothing.swimcat").exists() or not CACHE.exists():
        return real_centres()
    with np.load(CACHE) as cache:
        return cache["embeddings"].astype(np.float32)


def open_seconds(path) -> tuple[float, int]:
    started = time.perf_counter()
    with Catalogue.open(path) as catalogue:
        snapshot = catalogue.load_snapshot()
        return time.perf_counter() - started, len(snapshot)


def blobs(path) -> list[bytes]:
    with Catalogue.open(path) as catalogue:
        conn = catalogue.store.file.conn
        out = [b"".join(row) for row in conn.execute("SELECT ids, codes, vectors FROM code_blocks")]
        out += [row[0] for row in conn.execute("SELECT ids FROM buckets")]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="reuse the catalogue file of an earlier run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"synthetic-{args.size}.swimcat"
    built = {}
    if not (args.reuse and path.exists()):
        print(f"writing and indexing {args.size:,} synthetic images ...", flush=True)
        built = write_catalogue(path, Synthetic(centres()), args.size, EngineConfig())
        print(f"  written in {built['write_s']:.0f} s, indexed in {built['index_s']:.0f} s, {built['file_gb']:.2f} GB", flush=True)
    open_seconds(path)  # warm the page cache for both alike
    verified_block, verified_bucket = sqlite_index.IndexTables._block, sqlite_index.IndexTables._check_bucket
    with_crc, without_crc = [], []
    for _ in range(args.rounds):
        seconds, images = open_seconds(path)
        with_crc.append(seconds)
        sqlite_index.IndexTables._block, sqlite_index.IndexTables._check_bucket = _block_unverified, _bucket_unverified
        try:
            without_crc.append(open_seconds(path)[0])
        finally:
            sqlite_index.IndexTables._block, sqlite_index.IndexTables._check_bucket = verified_block, verified_bucket
    data = blobs(path)
    total = sum(map(len, data))
    started = time.perf_counter()
    for blob in data:
        zlib.crc32(blob)
    crc_s = time.perf_counter() - started
    started = time.perf_counter()
    for blob in data:
        hashlib.blake2b(blob, digest_size=8).digest()
    blake_s = time.perf_counter() - started
    started = time.perf_counter()
    with Catalogue.open(path) as catalogue:
        checked = catalogue.check()
    check_s = time.perf_counter() - started
    result = {
        "images": images,
        **built,
        "open_s_median": median(with_crc),
        "open_s_without_checksums_median": median(without_crc),
        "open_s_all": with_crc,
        "open_s_without_checksums_all": without_crc,
        "checksum_share": (median(with_crc) - median(without_crc)) / median(with_crc),
        "verified_mb": total / 1e6,
        "crc32_s": crc_s,
        "crc32_mb_per_s": total / 1e6 / crc_s,
        "blake2b8_s": blake_s,
        "blake2b8_mb_per_s": total / 1e6 / blake_s,
        "info_check_s": check_s,
        "info_check": checked,
    }
    print(table(
        [
            {"what": "open + load (checksums verified)", "s": result["open_s_median"]},
            {"what": "open + load (no checksum compared)", "s": result["open_s_without_checksums_median"]},
            {"what": f"CRC-32 of the {total / 1e6:.0f} MB read at open", "s": crc_s},
            {"what": "BLAKE2b-64 of the same bytes", "s": blake_s},
            {"what": "info --check (everything)", "s": check_s},
        ],
        [("what", f"{images:,} images", ""), ("s", "seconds", ".3f")],
    ))
    print(f"checksums cost {100 * result['checksum_share']:.0f} % of opening "
          f"(CRC-32 {result['crc32_mb_per_s']:.0f} MB/s, BLAKE2b-64 {result['blake2b8_mb_per_s']:.0f} MB/s)")
    save("checksums", {"machine": machine(), "results": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
