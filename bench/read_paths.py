"""Ways to read a search's few hundred random cache rows, timed in turns on one array cache file.

Issue 11 (the 1M search stage under 5 ms) and 15 (the work after the candidate
stage well under the stage): a search at a million images reads one 4 KB page
of each of its ~200 candidates' rows (array_cache.py: one `pread` a row, bytes
do not matter). This asks whether another way of reading the same pages is
cheaper: each repetition draws new random rows (first reads, as a user's
searches mostly are) and reads them every way, in a rotating order, so a loaded
machine's load falls on all alike:

* `pread`: today's `CachedArrays.take` (a bytes object a page, joined into one block);
* `preadv`: each page read straight into a slot of one preallocated buffer;
* `process_vm_readv` (Linux): every page in one system call, copied out of the file mapped
  into this process (the kernel maps each page on the way, as a page fault would);
* `mmap`: the mapped rows gathered by NumPy (a page fault a page, MADV_RANDOM as the cache maps).

Beside the time it prints what each way adds to the process's resident memory: a mapped way maps
whatever the OS holds the page in, and where the file's cache is held in large folios (Linux's
FileHugePages) one fault maps up to 2 MB of it.

    python bench/read_paths.py /work/cache/hot1m/arrays/synthetic-1000000-*.swimarrays [--rows 200] [--repeats 300]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import mmap
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swimsearch.array_cache import ALIGN, _header  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", help="an array cache file (.swimarrays)")
    parser.add_argument("--rows", type=int, default=200, help="random rows a read (a search reads ~200 first pages)")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args(argv)
    header = _header(Path(args.cache))
    rows_array = header["arrays"]["rows"]
    offset, (count, row_bytes) = int(rows_array["offset"]), rows_array["shape"]
    fh = open(args.cache, "rb", buffering=0)
    fd = fh.fileno()
    mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    table = np.frombuffer(mapped, np.uint8, count * row_bytes, offset).reshape(count, row_bytes)
    base = table.__array_interface__["data"][0]
    buffer = np.empty((args.rows, ALIGN), np.uint8)
    slots = list(buffer)

    def by_pread(rows: list[int]) -> np.ndarray:
        block = b"".join([os.pread(fd, ALIGN, offset + r * row_bytes) for r in rows])
        return np.frombuffer(block, np.uint8).reshape(len(rows), ALIGN)

    def by_preadv(rows: list[int]) -> np.ndarray:
        for slot, r in zip(slots, rows):
            os.preadv(fd, [slot], offset + r * row_bytes)
        return buffer[: len(rows)]

    def by_mmap(rows: list[int]) -> np.ndarray:
        return table[rows, :ALIGN]

    ways: dict[str, Callable[[list[int]], np.ndarray]] = {"pread": by_pread, "preadv": by_preadv}
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    vm_read = getattr(libc, "process_vm_readv", None)
    if vm_read is not None and sys.platform.startswith("linux"):
        vm_read.restype = ctypes.c_ssize_t
        vm_read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        local = np.empty((args.rows, 2), np.uint64)
        local[:, 0] = buffer.__array_interface__["data"][0] + np.arange(args.rows, dtype=np.uint64) * ALIGN
        local[:, 1] = ALIGN
        remote = np.empty((args.rows, 2), np.uint64)
        remote[:, 1] = ALIGN
        pid = os.getpid()

        def by_vm_read(rows: list[int]) -> np.ndarray:
            remote[: len(rows), 0] = base + np.asarray(rows, np.uint64) * np.uint64(row_bytes)
            got = vm_read(pid, local.ctypes.data, len(rows), remote.ctypes.data, len(rows), 0)
            if got != len(rows) * ALIGN:
                raise OSError(ctypes.get_errno(), "process_vm_readv read short")
            return buffer[: len(rows)]

        ways["process_vm_readv"] = by_vm_read
    ways["mmap"] = by_mmap
    # every read draws rows no read drew before (a row once mapped would cost the mapped ways nothing)
    order = np.random.default_rng(11).permutation(count)
    if args.repeats * len(ways) * args.rows > count:
        print(f"at most {count // (len(ways) * args.rows)} repeats of {args.rows} rows on {count:,} rows")
        return 1
    drawn = iter(order.reshape(-1, args.rows)[: args.repeats * len(ways)].tolist())
    spent: dict[str, list[float]] = {name: [] for name in ways}
    grown = dict.fromkeys(ways, 0.0)  # resident MB each way added
    names = list(ways)
    for repeat in range(args.repeats):
        turn = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in turn:
            rows = next(drawn)
            before = resident_mb()
            started = time.perf_counter()
            block = ways[name](rows)
            spent[name].append((time.perf_counter() - started) * 1000)
            grown[name] += resident_mb() - before
            if repeat < len(names) and not np.array_equal(block, by_pread(rows)):
                print(f"{name} read other bytes than pread")
                return 1
    base_ms = float(np.median(spent["pread"]))
    print(f"{args.rows} random first pages of {count:,} rows ({row_bytes} B each), {args.repeats} reads each way, in turns")
    for name, values in spent.items():
        med, p90 = float(np.median(values)), float(np.percentile(values, 90))
        print(f"{name:18s} median {med:6.3f} ms  p90 {p90:6.3f} ms  {med / base_ms:5.2f} x pread  ({med * 1000 / args.rows:.2f} us a page)"
              f"  resident +{grown[name]:,.0f} MB")
    return 0


def resident_mb() -> float:
    """This process's resident memory (Linux: /proc/self/statm), 0 elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


if __name__ == "__main__":
    raise SystemExit(main())
