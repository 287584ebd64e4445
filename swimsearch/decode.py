"""Decoding ahead of the network: image files read on a thread pool, handed over in batches.

A build spends its time in the network; decoding the next images meanwhile
keeps the network busy (Pillow releases the GIL while it decodes). Each file
comes back as a `LoadedImage`, or as the `ImageError` that says why it cannot
be read, in the order given.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

from .images import FoundFile, ImageError, LoadedImage, load_image

log = logging.getLogger(__name__)

Decoded = tuple[FoundFile, LoadedImage | ImageError]


def decode_file(root: Path, found: FoundFile, size: int) -> LoadedImage | ImageError:
    """Load one scanned file for the network; a file that cannot be read gives its ImageError."""
    if found.name_error:
        return ImageError(root / found.relpath, found.name_error)
    try:
        return load_image(root / found.relpath, size)
    except ImageError as exc:
        return exc


def decoded_batches(
    files: Sequence[FoundFile], root: Path, size: int, *, batch_size: int, decoders: int
) -> Iterator[list[Decoded]]:
    """Decode `files` (relative to `root`) on `decoders` threads, a window ahead, in batches of `batch_size`.

    Stopping the iteration early (a cancelled build) cancels what is queued
    and waits for the decodes already running.
    """
    if not files:
        return
    window = max(batch_size * 2, decoders * 4)
    pool = ThreadPoolExecutor(max(1, decoders), thread_name_prefix="decode")
    try:
        pending: deque[tuple[FoundFile, Future[LoadedImage | ImageError]]] = deque()
        queue = iter(files)
        for f in queue:
            pending.append((f, pool.submit(decode_file, root, f, size)))
            if len(pending) >= window:
                break
        batch: list[Decoded] = []
        while pending:
            f, future = pending.popleft()
            batch.append((f, future.result()))
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(decode_file, root, nxt, size)))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
