"""One batch of a build: embed its readable pictures, record every file, commit them together.

A picture the network has no memory for is embedded in smaller runs, and
alone recorded as unreadable for a passing reason; a file the catalogue
holds that fails for a passing reason keeps its record (and embedding, and
place in search) and is flagged to be read again at the next update.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from .build_report import BuildCounts
from .decode import Decoded
from .failures import is_transient
from .fingerprint import fingerprints
from .images import LoadedImage
from .model import ImageEmbedder
from .stores.base import CatalogueWriter, NewImage
from .stores.changes import KnownFile, ScanDiff

log = logging.getLogger(__name__)


def embed_batch(
    writer: CatalogueWriter,
    root: Path,
    batch: list[Decoded],
    embedder: ImageEmbedder,
    diff: ScanDiff,
    known: Mapping[str, KnownFile],
    counts: BuildCounts,
    inference_batch: int = 1,
) -> None:
    """Embed the readable images of one batch, `inference_batch` at a time, and add them with the
    unreadable ones, in one commit.

    A file the catalogue holds that fails for a passing reason keeps its
    record (and embedding, and place in search) and is read again next time.
    """
    good = [result.pixels for _, result in batch if isinstance(result, LoadedImage)]
    started = time.perf_counter()
    vectors = iter(_embed(embedder, good, inference_batch) if good else ())
    counts.network_seconds += time.perf_counter() - started
    prints = fingerprints(root, [f.relpath for f, _ in batch])
    images, retry_later = [], []
    for (f, result), fp in zip(batch, prints):
        label = f.relpath.split("/", 1)[0] if "/" in f.relpath else None
        counts.retried += f.relpath in diff.retried
        vector = next(vectors) if isinstance(result, LoadedImage) else None
        if isinstance(result, LoadedImage) and vector is not None:
            images.append(NewImage(f.relpath, f.size, f.mtime, result.width, result.height, result.phash, label,
                                   embedding=vector, fingerprint=fp))
            if f.relpath in diff.changed:
                counts.updated += 1
            else:
                counts.added += 1
            continue
        reason = result.reason if not isinstance(result, LoadedImage) else "not enough memory to embed this picture"
        passing = vector is None if isinstance(result, LoadedImage) else is_transient(result)
        counts.unreadable += 1
        counts.errors.append((f.relpath, reason))
        record = known.get(f.relpath)
        if passing and record is not None and record.gone is None:
            retry_later.append(record.image_id)  # keep what the catalogue has until the file reads again
        else:
            images.append(NewImage(f.relpath, f.size, f.mtime, label=label, error=reason, fingerprint=fp, retry=passing))
    started = time.perf_counter()
    with writer.transaction():
        writer.add_batch(images)
        if retry_later:
            writer.flag_retry(retry_later)
    counts.commit_seconds += time.perf_counter() - started


def _embed(embedder: ImageEmbedder, pixels: list[np.ndarray], step: int = 1) -> list[np.ndarray | None]:
    """Embeddings of a batch, `step` pictures a network run (batch 1 is the fastest shape on two cores).

    When memory runs out, a run is split in halves, and a picture that alone
    does not fit gives None.
    """
    step = max(1, step)
    if len(pixels) > step:
        return [v for i in range(0, len(pixels), step) for v in _embed(embedder, pixels[i : i + step], step)]
    try:
        return list(embedder.embed(np.stack(pixels)))
    except Exception as exc:  # noqa: BLE001 - only running out of memory is survived; anything else is raised
        if not _out_of_memory(exc):
            raise
        if len(pixels) == 1:
            log.warning("not enough memory to embed a picture: %s", exc)
            return [None]
        half = len(pixels) // 2
        return _embed(embedder, pixels[:half], step) + _embed(embedder, pixels[half:], step)


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "bad_alloc" in text or ("alloc" in text and "memory" in text)
