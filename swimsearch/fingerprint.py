"""A cheap content fingerprint of a file: what tells a replaced picture from an untouched one.

Size and modification time miss a picture replaced by another of the same
size with its time kept (a copy with `cp -p`, a sync tool, a restored
backup). Hashing whole files would cost as much as reading them; the first
and last few KB plus the size catch every replacement a person makes (an
image header, its first rows and its trailer all change) for two small
reads per file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from .safeopen import open_regular

log = logging.getLogger(__name__)

#: Bytes hashed from each end of a file.
EDGE = 4096

#: Files fingerprinted at once: the work is waiting on the disk (or a network share), not the CPU.
THREADS = 8


def fingerprint(path: str | os.PathLike) -> int | None:
    """A signed 64-bit fingerprint of the file's size, first and last EDGE bytes; None if it cannot be read."""
    try:
        with open_regular(path) as fh:  # a file swapped for a pipe must not stop a build
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(EDGE)
            tail = b""
            if size > EDGE:
                fh.seek(max(EDGE, size - EDGE))
                tail = fh.read(EDGE)
    except OSError as exc:
        log.debug("cannot fingerprint %s: %s", path, exc)
        return None
    digest = hashlib.blake2b(size.to_bytes(8, "little") + head + tail, digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)  # fits SQLite's signed 64-bit integers


#: Compressed formats in which changed content changes the size or the last bytes (PNG's and gzip's
#: checksums sit at the end; a re-encoded JPEG, WebP or HEIF of the same length to the byte with the
#: same first and last EDGE bytes is not what an edit makes). Elsewhere (BMP, TIFF, PSD, GIF, SVG,
#: PDF) an edit in the middle can keep the size, the first and the last EDGE bytes: only the time tells.
CHECKED_AT_THE_END = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".heic", ".heif", ".hif", ".avif", ".svgz")


def new_time_may_be_same(relpath: str) -> bool:
    """Whether a file of this kind found with a new time, but its recorded size and fingerprint, holds
    the recorded picture (a folder copied with `cp -r`, unpacked from an archive, synced without times).

    Only for the compressed formats of `CHECKED_AT_THE_END`; any other file with a new time is read again.
    """
    return relpath.lower().endswith(CHECKED_AT_THE_END)


def still_the_same(path: str | os.PathLike, size: int, mtime: float, stored: int | None) -> bool:
    """Whether the file at `path` is still the picture a catalogue recorded: its size, and its time and
    (when one is stored) content fingerprint, or, for a compressed picture whose time alone changed
    (touched, copied back, synced), its fingerprint (`new_time_may_be_same`): a user who drops it
    expects it to read as itself, not as a second, unknown picture. A file that cannot be looked at is not.
    """
    try:
        info = os.stat(path)
    except OSError:
        return False
    if info.st_size != size:
        return False
    if abs(info.st_mtime - mtime) > 1e-6:
        return stored is not None and new_time_may_be_same(str(path)) and fingerprint(path) == stored
    return stored is None or fingerprint(path) == stored  # else replaced by a picture of the same size and time


def fingerprints(root: Path, relpaths: Sequence[str], threads: int = THREADS) -> list[int | None]:
    """`fingerprint` of each path under `root`, in the order given (read on a few threads)."""
    if len(relpaths) >= 64 and threads > 1:
        try:
            with ThreadPoolExecutor(threads, thread_name_prefix="fingerprint") as pool:
                return list(pool.map(lambda rel: fingerprint(root / rel), relpaths, chunksize=64))
        except RuntimeError as exc:  # no thread could be started (no memory left): one at a time
            log.warning("fingerprinting in one thread: %s", exc)
    return [fingerprint(root / rel) for rel in relpaths]
