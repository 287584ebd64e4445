"""The pictures a search is made with: a file, pasted picture data, or a catalogue image, as an `Example`.

A catalogue image's stored embedding is used, so a search from a result (or
marking it "not like this") needs no network pass; a file or a picture is
embedded once, and the window keeps its `Example` to steer with it again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .errors import CatalogueError
from .images import ImageError, load_image, query_path
from .model import ImageEmbedder
from .rocchio import Example
from .stores.base import CatalogueReader, ImageRecord

log = logging.getLogger(__name__)

#: A picture narrower or lower than this many pixels holds no design a network can see: its search is
#: still made (an icon may be what a designer has), with a note that its matches say little.
MIN_DESIGN_SIDE = 16
#: A picture whose every pixel (padded square included) is within this many levels of the others is
#: one flat colour: its matches follow that colour alone.
FLAT_RANGE = 2


def from_catalogue(reader: CatalogueReader, embedder: ImageEmbedder | None, image_id: int, *, mirror: bool) -> Example:
    """A catalogue image: its stored embedding (and, with `mirror`, its file read again and flipped).

    A file gone since the build is used without its mirror image.

    Raises:
        CatalogueError: the image is no longer in the catalogue.
    """
    stored = reader.embedding_matrix([image_id])
    record = reader.records([image_id]).get(image_id)
    if not len(stored.ids) or record is None:
        raise CatalogueError("This design is no longer in the catalogue (an update removed it); search again from its file.")
    embeddings = stored.vectors
    if mirror and embedder is not None:
        try:
            flipped = load_image(record.path, embedder.size, mirror=True).pixels
        except ImageError:
            pass
        else:
            embeddings = np.concatenate([embeddings, embedder.embed(flipped[None]).astype(np.float32)])
    return Example(embeddings, record.image_id, record.path, record.phash, _record_note(record))


def from_picture(
    reader: CatalogueReader, embedder: ImageEmbedder, image: str | os.PathLike | Image.Image, *, mirror: bool,
    decoding: Callable[[str | os.PathLike], object] | None = None,
) -> Example:
    """An image file or a PIL image, embedded (with its mirror image as row 1 when asked).

    A file of the catalogue, unchanged since the catalogue read it, keeps its
    catalogue id: it is then "itself" in the results; without the mirror image
    its stored embedding is used (a design dragged from the catalogue's folder
    needs no network pass, as a search from a result does not).

    Raises:
        ImageError: the picture cannot be read, or its name is not text (plain reason inside).

    `decoding`: called with a file's path as it is decoded for the network (the look reads it alongside).
    """
    if not isinstance(image, Image.Image):
        query_path(image)  # a name that is not text: refused before the catalogue is asked for it
    record = None if isinstance(image, Image.Image) else reader.record_by_path(image, unchanged=True)
    if record is not None and not mirror and not isinstance(image, Image.Image):
        # A file of the catalogue, unchanged since it was read (size, time, fingerprint): its stored
        # embedding and pHash are what reading it again would give, without decoding or the network.
        stored = reader.embedding_matrix([record.image_id])
        if len(stored.ids):
            return Example(stored.vectors.astype(np.float32), record.image_id, str(Path(image).absolute()), record.phash,
                           _record_note(record))
    if decoding is not None and not isinstance(image, Image.Image):
        decoding(image)
    loaded = load_image(image, embedder.size)
    note = picture_note(loaded.width, loaded.height, loaded.pixels)
    pixels = [loaded.pixels]
    if mirror:
        pixels.append(np.ascontiguousarray(loaded.pixels[:, ::-1]))
    embeddings = embedder.embed(np.stack(pixels))
    if isinstance(image, Image.Image):
        return Example(embeddings, None, "pasted image", loaded.phash, note)
    return Example(embeddings, record.image_id if record else None, str(Path(image).absolute()), loaded.phash, note)


def picture_note(width: int, height: int, pixels: np.ndarray | None = None, what: str = "the picture") -> str:
    """A sentence when a picture (or `what`: "the box" of a detail) is too small or too plain to hold a design.

    A 1 x 1 pixel picture (a broken export, a tracking pixel) is blown up to a
    flat square and gets ordinary-looking matches; the user is told, not refused. "" otherwise.
    """
    if min(width, height) < MIN_DESIGN_SIDE:
        return (f"{what} is only {width} x {height} pixels, too small to show a design, "
                "so its matches say little")
    # channel by channel on a copy in channel order: the range down the interleaved columns took 1.5-2.4 ms
    if pixels is not None and int(np.ptp(pixels.reshape(-1, pixels.shape[-1]).T.copy(), axis=1).max()) <= FLAT_RANGE:
        return f"{what} is one flat colour with no design in it, so its matches say little"
    return ""


def _record_note(record: ImageRecord) -> str:
    """`picture_note` of a catalogue image from the size the catalogue recorded (none recorded: no note)."""
    return picture_note(record.width, record.height) if record.width and record.height else ""
