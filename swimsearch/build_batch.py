"""One batch of a build: embed its readable pictures, record every file, commit them together.

A picture the network has no memory for is embedded in smaller runs, and
alone recorded as unreadable for a passing reason; a file the catalogue
holds that fails for a passing reason keeps its record (and embedding, and
place in search) and is flagged to be read again at the next update.
The same network pass gives the regional vectors (with a region basis), the
decoded pixels the colour signatures (details.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from .build_report import BuildCounts
from .decode import Decoded
from .details import colour_signatures, describe_pixels
from .failures import is_transient
from .fingerprint import fingerprints
from .images import LoadedImage
from .model import ImageEmbedder
from .regions import RegionBasis
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
    inference_batch: int = 4,
    basis: RegionBasis | None = None,
) -> None:
    """Embed the readable images of one batch, `inference_batch` at a time, and add them with the
    unreadable ones, in one commit.

    A file the catalogue holds that fails for a passing reason keeps its
    record (and embedding, and place in search) and is read again next time.
    """
    loaded = [result for _, result in batch if isinstance(result, LoadedImage)]
    started = time.perf_counter()
    described = iter(_embed(embedder, [g.pixels for g in loaded], basis, inference_batch) if loaded else ())
    counts.network_seconds += time.perf_counter() - started
    colours = iter(colour_signatures(loaded) if loaded else ())
    prints = fingerprints(root, [f.relpath for f, _ in batch])
    images, retry_later = [], []
    for (f, result), fp in zip(batch, prints):
        label = f.relpath.split("/", 1)[0] if "/" in f.relpath else None
        counts.retried += f.relpath in diff.retried
        vector, regions = next(described) if isinstance(result, LoadedImage) else (None, None)
        colour = next(colours) if isinstance(result, LoadedImage) else None
        if isinstance(result, LoadedImage) and vector is not None:
            images.append(NewImage(f.relpath, f.size, f.mtime, result.width, result.height, result.phash, label,
                                   embedding=vector, fingerprint=fp, regions=regions, colour=colour))
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


Described = tuple[np.ndarray | None, np.ndarray | None]


def _embed(embedder: ImageEmbedder, pixels: list[np.ndarray], basis: RegionBasis | None, step: int = 1) -> list[Described]:
    """(embedding, regional vectors or None) per picture of a batch, `step` pictures a network run
    (`EngineConfig.inference_batch`: 4, the folded int8 graph's fastest shape on two cores).

    When memory runs out, a run is split in halves, and a picture that alone
    does not fit gives (None, None).
    """
    step = max(1, step)
    if len(pixels) > step:
        return [v for i in range(0, len(pixels), step) for v in _embed(embedder, pixels[i : i + step], basis, step)]
    try:
        embedded, regions = describe_pixels(embedder, np.stack(pixels), basis)
        return list(zip(embedded, regions if regions is not None else [None] * len(embedded)))
    except Exception as exc:  # noqa: BLE001 - only running out of memory is survived; anything else is raised
        if not _out_of_memory(exc):
            raise
        if len(pixels) == 1:
            log.warning("not enough memory to embed a picture: %s", exc)
            return [(None, None)]
        half = len(pixels) // 2
        return _embed(embedder, pixels[:half], basis, step) + _embed(embedder, pixels[half:], basis, step)


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "bad_alloc" in text or ("alloc" in text and "memory" in text)
