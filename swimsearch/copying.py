"""Moving a catalogue between stores (`swimsearch copy`): a SQLite file into a team catalogue and back.

Nothing is recomputed and nothing is lost: every image keeps its id, its
record (with its content fingerprint, a passing failure to read again, a
tombstone's time, a pending recode) and its stored (float16) embedding; the fitted index keeps its arrays,
every design its code and re-ranking vector, and every image its neighbour
list (issue 11), so the copy ranks exactly as the original; people's
decisions on pairs (issue 12) keep their paths, who and when, and every
image its regional vectors and colour signature (issue 12, with the basis
the vectors were made with), so a detail or colour query ranks as in the
original. Written through the stores' own protocols in one transaction
(an interrupted copy leaves an empty destination, which the caller removes),
then checked: counts, and SHA-256 digests of the embeddings, of the codes
and vectors, of the neighbour lists and of the details, compared on both sides.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import CatalogueError
from .stores.base import CatalogueReader, CatalogueWriter, ModelInfo

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
CODE_CHUNK = 65_536


@dataclass(frozen=True)
class CopyReport:
    """What a copy moved, and the digests that show nothing changed on the way."""

    images: int
    embeddings: int
    searchable: int
    embeddings_sha256: str
    index_sha256: str | None  # codes and re-ranking vectors (None: the source has no fitted index)
    lists: int  # neighbour lists
    decisions: int  # people's decisions on pairs of designs
    seconds: float
    regions: int = 0  # images with regional vectors (search by a detail)
    colours: int = 0  # images with a colour signature

    def summary(self) -> str:
        index = "fitted index kept" if self.index_sha256 else "no fitted index to copy"
        if self.lists:
            index += f" with {self.lists:,} neighbour lists"
        if self.decisions:
            index += f"; {self.decisions:,} decisions on pairs kept"
        if self.regions or self.colours:
            index += f"; regional vectors of {self.regions:,} and colours of {self.colours:,} images kept"
        return (
            f"{self.images:,} images copied ({self.embeddings:,} with embeddings, {self.searchable:,} searchable); "
            f"embeddings identical (sha256 {self.embeddings_sha256[:16]}); {index}"
        )


def copy_catalogue(source: CatalogueReader, destination: CatalogueWriter, progress: ProgressFn | None = None) -> CopyReport:
    """Copy everything of `source` into the new, empty `destination`, then check both sides agree.

    Raises:
        CatalogueError: the destination is not empty, a store failed, or the check found a difference.
    """
    progress = progress or (lambda phase, done, total: None)
    started = time.perf_counter()
    if destination.counts()["images"]:
        raise CatalogueError(f"The catalogue {destination.location} is not empty; copy into a new one.")
    counts = source.counts()
    identity = source.identity()
    fitted = source.fitted()
    snapshot = source.load_snapshot() if fitted is not None else None
    lists = source.neighbour_lists() if fitted is not None else None
    with destination.writer_lock(), destination.transaction():
        if identity.model_sha256 and identity.model_name and identity.embedding_dim:
            destination.set_model(ModelInfo(identity.model_name, identity.model_sha256, int(identity.embedding_dim)))
        done = 0
        recode: list[int] = []  # codes of older embeddings: still to be made again after the copy too
        progress("copy", 0, counts["images"])
        for images in source.export_images():
            destination.import_images(images)
            recode += [image.image_id for image in images if image.recode]
            done += len(images)
            progress("copy", done, counts["images"])
        if fitted is not None and snapshot is not None:
            progress("index", 0, len(snapshot))
            destination.save_fit(fitted)
            if lists is not None and len(lists):
                destination.write_neighbours(lists, replace=True)
            for start in range(0, len(snapshot), CODE_CHUNK):
                part = slice(start, start + CODE_CHUNK)
                destination.write_codes(snapshot.ids[part], snapshot.codes[part], snapshot.vectors[part])
                progress("index", min(start + CODE_CHUNK, len(snapshot)), len(snapshot))
            destination.write_buckets(fitted.keys(snapshot.codes), snapshot.ids, merge=False)
            if snapshot.graph is not None:
                destination.write_graph(snapshot.graph)  # a store that searches itself ignores it
        decisions = source.decisions()
        if decisions:
            destination.import_decisions(decisions)
        _copy_details(source, destination)
        if recode:
            destination.mark_recode(recode)  # writing the codes took the mark off
    report = _check(source, destination, time.perf_counter() - started)
    log.info("copied %s to %s: %s", source.location, destination.location, report.summary())
    return report


def embeddings_digest(reader: CatalogueReader) -> tuple[int, str]:
    """How many embeddings, and the SHA-256 of (id, float16 bytes) in id order."""
    digest = hashlib.sha256()
    count = 0
    for part in reader.iter_embeddings(None):
        digest.update(part.ids.astype("<i8").tobytes())
        digest.update(part.vectors.astype("<f2").tobytes())  # float32 read from float16: exact both ways
        count += len(part.ids)
    return count, digest.hexdigest()


def index_digest(reader: CatalogueReader) -> str | None:
    """SHA-256 of the fit's arrays, then every design's id, code and re-ranking vector in id order."""
    fitted = reader.fitted()
    snapshot = reader.load_snapshot() if fitted is not None else None
    if fitted is None or snapshot is None:
        return None
    digest = hashlib.sha256()
    for name, array in sorted(fitted.arrays().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(snapshot.ids.astype("<i8").tobytes())
    digest.update(snapshot.codes.astype("<u8").tobytes())
    digest.update(snapshot.vectors.astype("<f2").tobytes())
    return digest.hexdigest()


def _check(source: CatalogueReader, destination: CatalogueReader, seconds: float) -> CopyReport:
    theirs, ours = source.counts(), destination.counts()
    if theirs != ours:
        raise CatalogueError(f"The copy in {destination.location} does not match its source ({ours} against {theirs}).")
    embedded, embeddings = embeddings_digest(source)
    if embeddings_digest(destination) != (embedded, embeddings):
        raise CatalogueError(f"The embeddings copied to {destination.location} differ from the source's.")
    index = index_digest(source)
    if index_digest(destination) != index:
        raise CatalogueError(f"The fitted index copied to {destination.location} differs from the source's.")
    held = lists_digest(source)
    if lists_digest(destination) != held:
        raise CatalogueError(f"The neighbour lists copied to {destination.location} differ from the source's.")
    decided = [(d.a_path, d.b_path, d.verdict, d.who, d.at) for d in source.decisions()]
    if [(d.a_path, d.b_path, d.verdict, d.who, d.at) for d in destination.decisions()] != decided:
        raise CatalogueError(f"The decisions copied to {destination.location} differ from the source's.")
    detailed = details_digest(source)
    if details_digest(destination) != detailed:
        raise CatalogueError(f"The regional vectors or colours copied to {destination.location} differ from the source's.")
    return CopyReport(ours["images"], embedded, ours["searchable"], embeddings, index, held[0], len(decided), seconds,
                      regions=detailed[0], colours=detailed[1])


def _copy_details(source: CatalogueReader, destination: CatalogueWriter) -> None:
    """The region basis, then every image's regional vectors and colour signature (tombstones' too), as stored."""
    basis = source.region_basis()
    if basis is not None:
        destination.save_region_basis(basis)
        for part in source.export_regions():
            destination.write_details(part.ids.tolist(), part.vectors, None)
    for colours in source.export_colours():
        destination.write_details(colours.ids.tolist(), None, colours.signatures)


def details_digest(reader: CatalogueReader) -> tuple[int, int, str]:
    """How many images have regional vectors and colours, and the SHA-256 of the basis (its state and arrays),
    then of every (id, vectors) and (id, signature) in id order, tombstones' too."""
    digest = hashlib.sha256()
    regions = colours = 0
    basis = reader.region_basis()
    if basis is not None:
        digest.update(json.dumps(basis.state(), sort_keys=True).encode())
        for name, array in sorted(basis.arrays().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        for part in reader.export_regions():
            digest.update(part.ids.astype("<i8").tobytes())
            digest.update(np.ascontiguousarray(part.vectors, dtype="<f2").tobytes())
            regions += len(part.ids)
    digest.update(b"colours")
    for found in reader.export_colours():
        digest.update(found.ids.astype("<i8").tobytes())
        digest.update(np.ascontiguousarray(found.signatures, dtype="u1").tobytes())
        colours += len(found.ids)
    return regions, colours, digest.hexdigest()


def lists_digest(reader: CatalogueReader) -> tuple[int, str]:
    """How many neighbour lists, and the SHA-256 of their ids, neighbours and cosines in id order."""
    lists = reader.neighbour_lists()
    digest = hashlib.sha256()
    if lists is None or not len(lists):
        return 0, digest.hexdigest()
    for array, dtype in ((lists.ids, "<i8"), (lists.neighbours, "<i8"), (lists.similarities, "<f4")):
        digest.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
    return len(lists), digest.hexdigest()
