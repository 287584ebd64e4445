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

from .failures import PassingFailure
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
    except Exception as exc:  # noqa: BLE001 - whatever escapes the loader, the build goes on
        log.exception("decoding %s failed outside the loader", found.relpath)
        return _passing(root, found, exc)


def _passing(root: Path, found: FoundFile, exc: BaseException) -> ImageError:
    """The ImageError of a decode that failed for a reason outside the file (read again at the next update)."""
    error = ImageError(root / found.relpath, "the picture could not be decoded this time (it will be read again)")
    error.__cause__ = PassingFailure(repr(exc)[:200])
    return error


def _submit(pool: ThreadPoolExecutor, root: Path, found: FoundFile, size: int) -> Future[LoadedImage | ImageError]:
    """Queue one decode; when no thread can be started (no memory left), decode it here instead."""
    try:
        return pool.submit(decode_file, root, found, size)
    except RuntimeError as exc:
        log.warning("cannot start a decoder thread (%s): decoding %s in the build's own thread", exc, found.relpath)
        done: Future[LoadedImage | ImageError] = Future()
        done.set_result(decode_file(root, found, size))
        return done


def _result(future: Future[LoadedImage | ImageError], root: Path, found: FoundFile) -> LoadedImage | ImageError:
    """A decode's outcome; a decoder thread that died gives the file's ImageError, never the build's end."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - e.g. MemoryError raised in the thread itself
        log.warning("the decoder of %s failed: %r", found.relpath, exc)
        return _passing(root, found, exc)


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
            pending.append((f, _submit(pool, root, f, size)))
            if len(pending) >= window:
                break
        batch: list[Decoded] = []
        while pending:
            f, future = pending.popleft()
            batch.append((f, _result(future, root, f)))
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, _submit(pool, root, nxt, size)))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
