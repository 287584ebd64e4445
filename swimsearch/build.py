"""Building and updating a catalogue from its folder, through any store's writer.

A build scans the folder, embeds only new or changed files (decoding ahead of
the network, decode.py), commits every batch so a cancel or a kill keeps what
was done, then fits the hash layer and spheres (or keeps the fit) and writes
codes and LSH buckets (indexing.py: `index_catalogue`, and `refit_reason`, the
pure function that decides whether to fit again).

Long work takes plain callbacks: ``progress(phase, done, total)`` with phases
"scan", "embed" and "index", and ``should_stop()``; a stopped build raises
`Cancelled` carrying its `BuildReport`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .config import EngineConfig
from .decode import DecodeTimes, Decoded, decoded_batches
from .errors import Cancelled, CatalogueError
from .images import LoadedImage, scan_folder_report, skipped_summary
from .indexing import index_catalogue, refit_reason
from .model import ImageEmbedder
from .stores.base import CatalogueWriter, ModelInfo, NewImage

__all__ = ["BuildReport", "as_dict", "build_catalogue", "index_catalogue", "refit_catalogue", "refit_reason"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
StopFn = Callable[[], bool]


def _never() -> bool:
    return False


def _quiet(phase: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class BuildReport:
    """What a build or update did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: int = 0
    unchanged: int = 0
    indexed: int = 0
    refitted: bool = False
    cancelled: bool = False
    seconds: float = 0.0
    embed_seconds: float = 0.0
    network_seconds: float = 0.0  # of embed_seconds, the time spent inside the network
    decode_wait_seconds: float = 0.0  # of embed_seconds, the time the network waited for a decoded picture
    commit_seconds: float = 0.0  # of embed_seconds, the time spent committing batches
    decode_seconds: float = 0.0  # decoding time summed over the decoder threads (beside the network)
    decoders: int = 0  # decoder threads used
    errors: tuple[tuple[str, str], ...] = ()  # (relative path, reason) of files unreadable this run
    #: Files in the folder that SwimSearch does not read, by kind (".indd": 3); recounted on every scan.
    skipped: Mapping[str, int] = field(default_factory=dict)
    #: Subfolders (relative, "." for the root) that could not be listed, so their files were not seen.
    unlisted_folders: tuple[str, ...] = ()

    @property
    def images_per_second(self) -> float:
        done = self.added + self.updated + self.unreadable
        return done / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "done"
        return (
            f"{state}: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unreadable} unreadable, {self.unchanged} unchanged; {self.indexed} images searchable"
            + (f"; not read: {skipped_summary(self.skipped)}" if self.skipped else "")
            + (f"; {len(self.unlisted_folders)} folder(s) could not be listed" if self.unlisted_folders else "")
        )


def as_dict(report: BuildReport) -> dict[str, Any]:
    """A JSON-ready dict of a build report."""
    out = asdict(report)
    out["errors"] = [list(e) for e in report.errors]
    out["images_per_second"] = report.images_per_second
    return out


@dataclass
class BuildCounts:
    """The running counts of one build's embedding phase."""

    added: int = 0
    updated: int = 0
    unreadable: int = 0
    network_seconds: float = 0.0
    commit_seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)


def build_catalogue(
    writer: CatalogueWriter,
    folder: Path,
    embedder: ImageEmbedder,
    config: EngineConfig,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> BuildReport:
    """Build or update the catalogue of `folder`: embed new and changed files, drop deleted ones, index.

    Every batch is committed as it is embedded; then the index is fitted if
    needed and every new image is encoded.

    Raises:
        Cancelled: when `should_stop()` returned True; what was committed
            is kept and indexed, and ``exc.report`` tells how much.
        CatalogueError: folder missing, catalogue read-only/busy/damaged, disk full.
    """
    progress = progress or _quiet
    should_stop = should_stop or _never
    folder = Path(folder)
    started = time.perf_counter()
    with writer.writer_lock():
        if not folder.is_dir():
            raise CatalogueError(
                f"The folder {folder} of this catalogue no longer exists (moved or renamed?). "
                "Open the catalogue from inside the moved folder, or build a new one."
            )
        _adopt_model(writer, embedder)
        progress("scan", 0, 0)
        scan = scan_folder_report(folder)
        found = scan.files
        progress("scan", len(found), len(found))
        if not found and writer.counts()["images"]:
            raise CatalogueError(
                f"The folder {folder} holds no images now (an unplugged drive or a network share that is not "
                "mounted?). The catalogue was left unchanged; delete it if the folder really is empty."
            )
        diff = writer.diff(found)
        writer.remove(diff.stale_ids)
        changed = diff.changed
        counts = BuildCounts()
        embed_started = time.perf_counter()
        cancelled = False
        done = 0
        progress("embed", 0, len(diff.todo))
        times = DecodeTimes()
        batches = decoded_batches(
            diff.todo, folder, embedder.size, batch_size=config.batch_size, decoders=config.decoders, times=times
        )
        for batch in batches:
            _embed_batch(writer, batch, embedder, changed, counts, config.inference_batch)
            done += len(batch)
            progress("embed", done, len(diff.todo))
            if done < len(diff.todo) and should_stop():
                cancelled = True
                break
        embed_seconds = time.perf_counter() - embed_started
        indexed, refitted = index_catalogue(writer, config, complete=not cancelled, progress=progress)
    report = BuildReport(
        added=counts.added,
        updated=counts.updated,
        removed=diff.removed,
        unreadable=counts.unreadable,
        unchanged=diff.unchanged,
        indexed=indexed,
        refitted=refitted,
        cancelled=cancelled,
        seconds=time.perf_counter() - started,
        embed_seconds=embed_seconds,
        network_seconds=counts.network_seconds,
        decode_wait_seconds=times.waiting,
        commit_seconds=counts.commit_seconds,
        decode_seconds=times.decoding,
        decoders=times.decoders,
        errors=tuple(counts.errors),
        skipped=dict(scan.skipped),
        unlisted_folders=tuple(scan.unlisted),
    )
    log.info("%s: %s", writer.location, report.summary())
    if cancelled:
        raise Cancelled(report)
    return report


def _adopt_model(writer: CatalogueWriter, embedder: ImageEmbedder) -> None:
    """Record the model; a different model makes every stored embedding stale."""
    known = writer.identity().model_sha256
    if known == embedder.sha256:
        return
    with writer.transaction():
        if known is not None:
            log.warning("%s was built with another model: every image will be embedded again", writer.location)
            writer.clear_images()
        writer.set_model(ModelInfo(name=embedder.name, sha256=embedder.sha256, dim=embedder.dim))


def _embed_batch(
    writer: CatalogueWriter,
    batch: list[Decoded],
    embedder: ImageEmbedder,
    changed: frozenset[str],
    counts: BuildCounts,
    inference_batch: int = 1,
) -> None:
    """Embed the readable images of one batch, `inference_batch` at a time, and add them with the
    unreadable ones, in one commit."""
    good = [result.pixels for _, result in batch if isinstance(result, LoadedImage)]
    step = max(1, inference_batch)
    started = time.perf_counter()
    parts = [embedder.embed(np.stack(good[i : i + step])) for i in range(0, len(good), step)]
    counts.network_seconds += time.perf_counter() - started
    vectors = iter(np.concatenate(parts) if parts else ())
    images = []
    for f, result in batch:
        label = f.relpath.split("/", 1)[0] if "/" in f.relpath else None
        if isinstance(result, LoadedImage):
            images.append(NewImage(f.relpath, f.size, f.mtime, result.width, result.height, result.phash, label,
                                   embedding=next(vectors)))
            if f.relpath in changed:
                counts.updated += 1
            else:
                counts.added += 1
        else:
            images.append(NewImage(f.relpath, f.size, f.mtime, label=label, error=result.reason))
            counts.unreadable += 1
            counts.errors.append((f.relpath, result.reason))
    started = time.perf_counter()
    writer.add_batch(images)
    counts.commit_seconds += time.perf_counter() - started


def refit_catalogue(writer: CatalogueWriter, config: EngineConfig, progress: ProgressFn | None = None) -> int:
    """Fit the index again from the stored embeddings and re-encode everything (no image is read).

    For new index settings (code length, hash layer, LSH tables); returns
    the number of searchable images.
    """
    with writer.writer_lock():
        return index_catalogue(writer, config, complete=True, progress=progress, force=True)[0]
