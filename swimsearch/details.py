"""Details for steering a search, made while a catalogue is built: regional vectors and colour signatures.

A build describes each picture once more than by its embedding, from what
it has in memory anyway: the regional vectors of search by a detail come from
the feature map of the same network pass (`describe_pixels`), the colour
signature from the decoded pixels (`colour_signatures`). A catalogue built
before kept neither; its next update reads those pictures again
(`fill_details`, the build's "details" phase) without touching their
embeddings, codes or ids.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .colour import colour_signature
from .config import EngineConfig
from .decode import decoded_batches
from .images import FoundFile, LoadedImage
from .model import ImageEmbedder
from .regions import RegionBasis, shipped_region_basis
from .stores.base import CatalogueWriter

log = logging.getLogger(__name__)


def feature_map_shape(embedder: ImageEmbedder) -> tuple[int, int, int] | None:
    """The (channels, rows, columns) of the embedder's feature maps, or None when it gives none."""
    if not getattr(embedder, "has_feature_map", False):
        return None
    shape = getattr(embedder, "feature_map_shape", None)
    if shape is None:
        return None
    channels, rows, columns = shape
    return int(channels), int(rows), int(columns)


def region_basis_for(writer: CatalogueWriter, embedder: ImageEmbedder) -> RegionBasis | None:
    """The basis this build describes regions with: the catalogue's own, else the shipped one (then kept).

    None when the model gives no feature map that fits: the build then keeps
    colours only, and search by a detail says so.
    """
    shape = feature_map_shape(embedder)
    kept = writer.region_basis()
    if kept is not None:
        return kept if kept.fits(shape) else None
    shipped = shipped_region_basis(shape)
    if shipped is not None:
        writer.save_region_basis(shipped)
    return shipped


def describe_pixels(embedder: ImageEmbedder, pixels: np.ndarray, basis: RegionBasis | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings (n, D) and, with a basis, regional vectors (n, R, d) of a batch, from one network pass."""
    if basis is None:
        return embedder.embed(pixels), None
    embeddings, maps = embedder.embed_with_maps(pixels)  # type: ignore[attr-defined]
    return embeddings, basis.describe(maps)


def colour_signatures(images: Sequence[LoadedImage]) -> np.ndarray:
    """Colour signatures (n, B) uint8 of decoded pictures."""
    return np.stack([colour_signature(image.pixels, image.width, image.height) for image in images])


def fill_details(
    writer: CatalogueWriter,
    root: Path,
    embedder: ImageEmbedder,
    basis: RegionBasis | None,
    config: EngineConfig,
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
    scope: str = "",
) -> tuple[int, bool]:
    """Read again the readable images (of the folder `scope` inside the catalogue's, "" for all) that lack
    details, and keep them; every batch is committed.

    Returns:
        (images given their details, whether `should_stop` stopped it).
    """
    prefix = f"{scope}/" if scope else ""
    # an update of one folder holds that folder's lock only: others' pictures wait for their own update
    lacking = [(i, relpath) for i, relpath in writer.lacking_details(regions=basis is not None) if relpath.startswith(prefix)]
    if not lacking:
        return 0, False
    log.info("%s: reading %d pictures again for their details", writer.location, len(lacking))
    ids = {relpath: image_id for image_id, relpath in lacking}
    files = [FoundFile(relpath, 0, 0.0) for _, relpath in lacking]
    done = filled = 0
    progress("details", 0, len(files))
    for batch in decoded_batches(files, root, embedder.size, batch_size=config.batch_size, decoders=config.decoders):
        good = [(ids[found.relpath], result) for found, result in batch if isinstance(result, LoadedImage)]
        if good:
            pictures = [result for _, result in good]
            regions = describe_pixels(embedder, np.stack([p.pixels for p in pictures]), basis)[1] if basis else None
            writer.write_details([image_id for image_id, _ in good], regions, colour_signatures(pictures))
            filled += len(good)
        done += len(batch)
        progress("details", done, len(files))
        if done < len(files) and should_stop():
            return filled, True
    return filled, False
