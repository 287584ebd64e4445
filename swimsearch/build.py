"""Building and updating a catalogue from its folder, through any store's writer.

A build scans the folder, compares it with the catalogue (stores/changes.py:
size, time and a content fingerprint; files that failed for a passing reason
are read again; files that are gone become tombstones, and a scan that lost a
large part of the folder has its removals held back until confirmed), embeds
only new or changed files (decoding ahead of the network, decode.py), commits
every batch so a cancel or a kill keeps what was done, then fits the hash
layer and spheres (or keeps the fit) and writes codes and LSH buckets. An
image read again keeps its old embedding and code until the new ones are
committed, so a build that fails half-way (a full disk) never takes a
searchable image out of search. The index is indexing.py's (`index_catalogue`;
whether to fit again is `refit_reason`, a pure function: an update keeps the
fit unless the catalogue has doubled or halved since, the index settings
changed, or the fit was made on a cancelled build that has now completed).

Long work takes plain callbacks: ``progress(phase, done, total)`` with phases
"scan", "embed" and "index", and ``should_stop()``; a stopped build raises
`Cancelled` carrying its `BuildReport`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

from .build_report import BuildCounts, BuildReport, as_dict
from .build_batch import embed_batch
from .config import EngineConfig
from .decode import DecodeTimes, decoded_batches
from .details import fill_details, region_basis_for
from .errors import Cancelled, CatalogueError
from .fingerprint import fingerprints
from .images import scan_folder_report
from .indexing import index_catalogue, refit_reason
from .model import ImageEmbedder
from .stores.base import CatalogueWriter, ModelInfo
from .stores.changes import KnownFile, ScanDiff, diff_scan, expired_tombstones, removal_held

__all__ = ["BuildReport", "as_dict", "build_catalogue", "index_catalogue", "refit_catalogue", "refit_reason"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
StopFn = Callable[[], bool]


def _never() -> bool:
    return False


def _quiet(phase: str, done: int, total: int) -> None:
    pass


def build_catalogue(
    writer: CatalogueWriter,
    folder: Path,
    embedder: ImageEmbedder,
    config: EngineConfig,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    *,
    allow_removal: bool = False,
) -> BuildReport:
    """Build or update the catalogue from `folder`: embed new and changed files, drop deleted ones, index.

    `folder` is the catalogue's folder (its root), or a folder inside it: then
    only that part is read and compared, and a team catalogue lets others
    update other folders at the same time. Every batch is committed as it is
    embedded; then the index is fitted if needed and every new image is encoded.

    Args:
        allow_removal: believe a scan that lost many files at once (see
            `removal_held`); otherwise their removal is held back and the
            report says why (`held`, `held_reason`).

    Raises:
        Cancelled: when `should_stop()` returned True; what was committed
            is kept and indexed, and ``exc.report`` tells how much.
        CatalogueError: folder missing or outside the catalogue's folder, catalogue
            read-only/busy/damaged, disk full.
    """
    progress = progress or _quiet
    should_stop = should_stop or _never
    folder = Path(folder)
    root = writer.root
    scope = _scope(folder, root)
    started = time.perf_counter()
    with writer.writer_lock(scope):
        if not folder.is_dir():
            raise CatalogueError(
                f"The folder {folder} of this catalogue no longer exists (moved or renamed?). "
                "Open the catalogue from inside the moved folder, or build a new one."
            )
        _adopt_model(writer, embedder, scope)
        progress("scan", 0, 0)
        scan = scan_folder_report(folder)
        prefix = f"{scope}/" if scope else ""
        found = [replace(f, relpath=prefix + f.relpath) for f in scan.files] if prefix else scan.files
        # their files are kept as they are, neither gone nor changed
        unlisted = tuple(prefix + u if u not in ("", ".") else (scope or ".") for u in scan.unlisted)
        progress("scan", len(found), len(found))
        known = writer.known_files(scope)
        if not found and any(k.gone is None for k in known.values()):
            raise CatalogueError(
                f"The folder {folder} holds no images now (an unplugged drive or a network share that is not "
                "mounted?). The catalogue was left unchanged; delete it if the folder really is empty."
            )
        diff = diff_scan(found, known, lambda files: fingerprints(root, [f.relpath for f in files]), unlisted=unlisted)
        held_reason = "" if allow_removal else (removal_held(diff, known, found) or "")
        held = len(diff.gone) if held_reason else 0
        if held_reason:
            log.info("%s: %s; their removal is held back", writer.location, held_reason)  # callers say it to the user
            diff = diff.holding_removals()
        _apply_scan(writer, known, diff)
        basis = region_basis_for(writer, embedder)
        counts = BuildCounts()
        embed_started = time.perf_counter()
        cancelled = False
        done = 0
        progress("embed", 0, len(diff.todo))
        times = DecodeTimes()
        batches = decoded_batches(
            diff.todo, root, embedder.size, batch_size=config.batch_size, decoders=config.decoders, times=times
        )
        for batch in batches:
            embed_batch(writer, root, batch, embedder, diff, known, counts, config.inference_batch, basis)
            done += len(batch)
            progress("embed", done, len(diff.todo))
            if done < len(diff.todo) and should_stop():
                cancelled = True
                break
        embed_seconds = time.perf_counter() - embed_started
        # a catalogue built before details were kept: read those pictures (of this folder) again
        detailed, cancelled = (
            (0, True) if cancelled else fill_details(writer, root, embedder, basis, config, progress, should_stop, scope)
        )
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
        unlisted_folders=unlisted,
        unseen=diff.unseen,
        retried=counts.retried,
        came_back=diff.came_back,
        moved=diff.moved,
        held=held,
        held_reason=held_reason,
        detailed=detailed,
    )
    log.info("%s: %s", writer.location, report.summary())
    if cancelled:
        raise Cancelled(report)
    return report


def _scope(folder: Path, root: Path) -> str:
    """Where `folder` lies inside the catalogue's folder ("" for the folder itself), posix-style."""
    if folder.resolve() == root.resolve():
        return ""
    try:
        return folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise CatalogueError(
            f"The folder {folder} is not inside the catalogue's folder {root}; update the catalogue from its folder "
            "or one inside it."
        ) from None


def _apply_scan(writer: CatalogueWriter, known: Mapping[str, KnownFile], diff: ScanDiff) -> None:
    """What the scan tells without reading a picture, in one commit: files back or moved, files gone, tombstones expired."""
    now = time.time()
    expired = expired_tombstones(known, diff, now)
    if not (diff.restored or diff.gone or expired):
        return
    with writer.transaction():
        if diff.restored:
            writer.restore(diff.restored)
        writer.tombstone(diff.gone_ids, now)
        writer.remove(expired)


def _adopt_model(writer: CatalogueWriter, embedder: ImageEmbedder, scope: str = "") -> None:
    """Record the model; a different model makes every stored embedding stale.

    Only an update of the whole catalogue may change its model: one of a
    folder inside it would drop every other folder's designs (in a team
    catalogue, everyone else's) and read back only its own.
    """
    identity = writer.identity()
    known = identity.model_sha256
    if known == embedder.sha256:
        return
    if known is not None and scope:
        raise CatalogueError(
            f"The catalogue {writer.location} was built with another model ({identity.model_name}); this SwimSearch "
            f"uses {embedder.name}. Update the whole catalogue from its folder to read every design again with it, "
            "or use the model it was built with (--model)."
        )
    with writer.transaction():
        if known is not None:
            log.info("%s was built with another model: every image will be embedded again", writer.location)
            writer.clear_images()
        writer.set_model(ModelInfo(name=embedder.name, sha256=embedder.sha256, dim=embedder.dim))


def refit_catalogue(writer: CatalogueWriter, config: EngineConfig, progress: ProgressFn | None = None) -> int:
    """Fit the index again from the stored embeddings and re-encode everything (no image is read).

    For new index settings (code length, hash layer, LSH tables); returns
    the number of searchable images.
    """
    with writer.writer_lock():
        return index_catalogue(writer, config, complete=True, progress=progress, force=True)[0]


