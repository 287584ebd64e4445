"""Decoding ahead of the network: image files read on a thread pool, handed over in batches.

A build spends its time in the network; decoding the next images meanwhile
keeps the network busy (Pillow releases the GIL while it decodes, and the
pHash is made from the picture already decoded). Each file comes back as a
`LoadedImage`, or as the `ImageError` that says why it cannot be read, in the
order given. How many decoders run beside the network depends on the files'
sizes (`decoder_count`): one keeps up with small photos and leaves the cores
to the network; large files need more.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from .failures import PassingFailure
from .images import FoundFile, ImageError, LoadedImage, load_image

log = logging.getLogger(__name__)

Decoded = tuple[FoundFile, LoadedImage | ImageError]

#: File bytes one decoder turns into network input in about the time the int8
#: trunk takes per image at batch 1 on two cores (~16 ms): JPEGs up to about
#: 2 MB (12-megapixel camera files decode at reduced scale in ~14 ms). Larger
#: or uncompressed-heavy files (a 12-megapixel PNG takes 300 ms) get one
#: decoder more per this many bytes, up to the number of cores.
BYTES_PER_DECODER = 2_000_000


def decoder_count(files: Sequence[FoundFile], cores: int | None = None) -> int:
    """Decoders to run beside the network for `files`, chosen by their median size.

    Measured on the 5,398 clothing photos (24 KB median, 2.7 ms to decode):
    one decoder built 10-20 % faster than two, because on two cores a second
    decoder takes CPU from the network without the network ever waiting.
    """
    cores = cores or os.cpu_count() or 1
    if not files:
        return 1
    sizes = [f.size for f in files[:: max(1, len(files) // 512)]]  # a spread sample is enough
    wanted = math.ceil(statistics.median(sizes) / BYTES_PER_DECODER)
    return max(1, min(cores, wanted))


@dataclass
class DecodeTimes:
    """Where a build's decoding time went (filled in by `decoded_batches`)."""

    decoding: float = 0.0  # seconds spent decoding, summed over the decoder threads
    waiting: float = 0.0  # seconds the consumer (the network) waited for a decoded picture
    decoders: int = 0


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


Timed = tuple[LoadedImage | ImageError, float]  # a decode's outcome and the seconds it took


def _timed_decode(root: Path, found: FoundFile, size: int) -> Timed:
    started = time.perf_counter()
    result = decode_file(root, found, size)
    return result, time.perf_counter() - started


def _submit(pool: ThreadPoolExecutor, root: Path, found: FoundFile, size: int) -> Future[Timed]:
    """Queue one decode; when no thread can be started (no memory left), decode it here instead."""
    try:
        return pool.submit(_timed_decode, root, found, size)
    except RuntimeError as exc:
        log.warning("cannot start a decoder thread (%s): decoding %s in the build's own thread", exc, found.relpath)
        done: Future[Timed] = Future()
        done.set_result(_timed_decode(root, found, size))
        return done


def _result(future: Future[Timed], root: Path, found: FoundFile) -> Timed:
    """A decode's outcome; a decoder thread that died gives the file's ImageError, never the build's end."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - e.g. MemoryError raised in the thread itself
        log.warning("the decoder of %s failed: %r", found.relpath, exc)
        return _passing(root, found, exc), 0.0


def decoded_batches(
    files: Sequence[FoundFile],
    root: Path,
    size: int,
    *,
    batch_size: int,
    decoders: int,
    times: DecodeTimes | None = None,
) -> Iterator[list[Decoded]]:
    """Decode `files` (relative to `root`) on `decoders` threads, a window ahead, in batches of `batch_size`.

    Args:
        decoders: decoder threads; 0 chooses by the files' sizes (`decoder_count`).
        times: filled in with the decoding and waiting time, when given.

    Stopping the iteration early (a cancelled build) cancels what is queued
    and waits for the decodes already running.
    """
    if not files:
        return
    times = times if times is not None else DecodeTimes()
    decoders = decoders if decoders > 0 else decoder_count(files)
    times.decoders = decoders
    window = max(batch_size * 2, decoders * 4)
    pool = ThreadPoolExecutor(decoders, thread_name_prefix="decode")
    try:
        pending: deque[tuple[FoundFile, Future[Timed]]] = deque()
        queue = iter(files)
        for f in queue:
            pending.append((f, _submit(pool, root, f, size)))
            if len(pending) >= window:
                break
        batch: list[Decoded] = []
        while pending:
            f, future = pending.popleft()
            started = time.perf_counter()
            result, seconds = _result(future, root, f)
            times.waiting += time.perf_counter() - started
            times.decoding += seconds
            batch.append((f, result))
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
