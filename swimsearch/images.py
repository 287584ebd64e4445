"""Image loading that never surprises, in bounded memory.

Everything a catalogue folder can hold goes through `load_image`: it either
returns an RGB picture ready for the network (EXIF-rotated, transparency on
white, padded to a square, resized) or raises `ImageError` with the path and
one plain sentence. Nothing else escapes, because these files are untrusted
input and the parsers behind them raise a zoo of exception types, out of
memory included.

Memory is bounded for any file: the size a picture will decode to is checked
from its header before a pixel is decoded (JPEG at the reduced scale it is
decoded at, PDF and SVG at the size they are drawn at), pictures thinner than
1:100 are refused, and the decoded picture is the only full-size buffer (see
`shrink`). The folder scan lives in `folderscan`, the extra formats in
`formats`; both are re-exported here for the modules that import them from here.
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import formats
from .folderscan import (
    NAME_NOT_TEXT, FolderScan, FoundFile, is_image_path, not_text, scan_folder, scan_folder_report, skipped_summary,
)
from .formats import IMAGE_EXTENSIONS, MAX_ASPECT, Refused
from .safeopen import NotAFile, open_regular
from .shrink import BACKGROUND, PhashRows, Upright, fit, square, turned

__all__ = [
    "BACKGROUND", "IMAGE_EXTENSIONS", "MAX_ASPECT", "MAX_MEGAPIXELS", "MAX_PIXELS", "FolderScan", "FoundFile",
    "ImageError", "LoadedImage", "is_image_path", "load_image", "load_picture", "query_path", "scan_folder", "scan_folder_report",
    "skipped_summary",
]

log = logging.getLogger(__name__)

#: Pictures that would decode to more pixels than this are refused before any
#: pixel is decoded. The decoded picture is the one full-size buffer (at most
#: 4 bytes a pixel), so this bounds the memory of a decode to about 260 MB;
#: it covers a 61-megapixel camera and an A2 poster at 300 dpi. JPEG photos
#: are decoded at 1/2 to 1/8 scale, so larger ones still load.
MAX_MEGAPIXELS = 64
MAX_PIXELS = MAX_MEGAPIXELS * 1_000_000

# SwimSearch checks decoded sizes itself (after JPEG's reduced-scale decode,
# with a plain message); Pillow's own check, made at open on the full size,
# would refuse big JPEGs that decode cheaply at 1/8 scale.
Image.MAX_IMAGE_PIXELS = None

#: Formats Pillow can decode at 1/2, 1/4 or 1/8 scale (draft).
_DRAFT_FORMATS = ("JPEG", "MPO")
#: Modes Pillow's `Image.reduce` takes (a pasted picture in another mode is read at full size).
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr")

#: Peak bytes one decoded pixel costs, measured per format with
#: tests/memory_probe.py (most formats about 6: the decoded picture, its grey
#: for the pHash and strips; libwebp and libavif keep decode buffers of their
#: own). Formats that cost more get a proportionally lower pixel limit, so
#: that no picture costs more than about MAX_MEGAPIXELS x 6 bytes.
_BYTES_PER_PIXEL = {"WEBP": 16, "AVIF": 9}
_FORMAT_NAMES = {"WEBP": "WebP", "AVIF": "AVIF"}
_USUAL_BYTES_PER_PIXEL = 6


class ImageError(Exception):
    """An image file that cannot be used, with a reason a person understands."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class LoadedImage:
    """A decoded picture ready for the network, plus what the catalogue records.

    Attributes:
        pixels: (size, size, 3) uint8 RGB, padded to a square on white.
        width: width of the original picture after EXIF rotation (points or
            CSS pixels for a PDF page or SVG drawing).
        height: height of the original picture after EXIF rotation.
        phash: 64-bit perceptual hash (imagehash.phash) as an unsigned int.
    """

    pixels: np.ndarray
    width: int
    height: int
    phash: int


def query_path(path: str | os.PathLike) -> str:
    """The absolute path of a picture to search with; ImageError when its name is not UTF-8 text.

    Such a file can be decoded, but not looked up in the catalogue nor written into a CSV, a sheet
    or the window's history, which all keep names as text; a build lists it as unreadable with the
    same reason, so a search says what the build says: rename the file.
    """
    escaped = not_text(path)
    if escaped is not None:
        raise ImageError(escaped, NAME_NOT_TEXT)
    return os.path.abspath(path)


def load_image(source: str | os.PathLike | Image.Image, size: int, *, mirror: bool = False) -> LoadedImage:
    """Load any supported picture as a square RGB array for the network.

    Args:
        source: a file path, or an already opened PIL image (pasted/dropped data).
        size: side of the square the network takes.
        mirror: flip left-right after loading (mirror-invariant search).

    Raises:
        ImageError: for anything that is not a readable image, with a plain reason.
    """
    with _plain_errors(source):
        with _decoded(source, size) as (image, orientation, (width, height)):
            picture = Upright(image, orientation, mirror)
            phash = PhashRows(*picture.size)
            pixels = square(picture, size, phash)
        value = phash.value()
    return LoadedImage(pixels=pixels, width=width, height=height, phash=value)


def load_grey(source: str | os.PathLike | Image.Image, max_side: int) -> Image.Image:
    """`load_picture`'s picture in grey (mode "L"), for the look at two pictures (copy_check.py).

    A colour JPEG decodes its brightness alone (JPEG stores it apart), about half a colour decode's time
    (round 14); the same formats, checks and errors as `load_picture`. A picture with transparency or a
    palette is read as `load_picture` reads it (on white), then made grey.
    """
    with _plain_errors(source):
        with _decoded(source, max_side, grey=True) as (image, orientation, _):
            if image.mode != "L":
                return fit(Upright(image, orientation), max_side).convert("L")
            image = turned(image, orientation)
            scale = max_side / max(image.size)
            if scale >= 1:
                return image.copy()  # the decoded picture is released when the block ends
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def load_picture(source: str | os.PathLike | Image.Image, max_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """An upright RGB picture that fits in `max_side`, for thumbnails and previews.

    Decodes exactly as `load_image` does (same formats, JPEG draft, EXIF
    rotation, transparency on white, the size limits) but keeps the aspect
    ratio and does not pad, so what a user sees is what the network saw.

    Returns:
        The picture (never larger than `max_side` on its long side) and the
        original (width, height) after EXIF rotation.

    Raises:
        ImageError: for anything that is not a readable image, with a plain reason.
    """
    with _plain_errors(source):
        with _decoded(source, max_side) as (image, orientation, original):
            picture = fit(Upright(image, orientation), max_side)
    return picture, original


@contextmanager
def _plain_errors(source: str | os.PathLike | Image.Image) -> Iterator[None]:
    """Decode `source` inside this block: any failure becomes one ImageError with a plain reason."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) on EXIF oddities; noise for a catalogue of thousands.
            warnings.simplefilter("ignore")
            yield
    except ImageError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - untrusted file: any failure (even out of memory) is "unreadable"
        label = "pasted image" if isinstance(source, Image.Image) else str(source)
        reason = _plain_reason(exc)
        if isinstance(exc, UnidentifiedImageError) and _is_empty(source):
            reason = "the file is empty (0 bytes)"  # a failed copy or download: not a format question
        raise ImageError(label, reason) from exc


def _is_empty(source: str | os.PathLike | Image.Image) -> bool:
    try:
        return not isinstance(source, Image.Image) and os.stat(source).st_size == 0
    except OSError:
        return False


@contextmanager
def _decoded(
    source: str | os.PathLike | Image.Image, request: int, *, grey: bool = False
) -> Iterator[tuple[Image.Image, int, tuple[int, int]]]:
    """(decoded picture, EXIF orientation, original size after rotation), size-checked.

    `request` is the long side the caller needs: JPEG decodes at a reduced
    scale that still covers it, PDF and SVG are drawn at it. A file's decoded
    picture is released when the block ends.
    """
    if isinstance(source, Image.Image):
        if source.tell() != 0 and source.format != "PSD":
            source.seek(0)
        yield _raster(source, request, decoded=True)
        return
    formats.register_plugins()
    with open_regular(source) as file:  # a pipe or a device named as a picture must not block
        head = file.read(4096)
        kind = formats.sniff(source, head)
        if kind is None:
            file.seek(0)
            with Image.open(file) as opened:
                # A file opens on its first frame or page; a PSD opens on its
                # merged composite (seeking would select a layer).
                yield _raster(opened, request, grey=grey)
            return
    if kind == "postscript":
        raise Refused(formats.postscript_reason(source))
    drawn, declared = (
        formats.render_pdf(source, request) if kind == "pdf" else formats.render_svg(source, request, MAX_PIXELS)
    )
    yield drawn, 1, declared


def _raster(
    image: Image.Image, request: int, *, decoded: bool = False, grey: bool = False
) -> tuple[Image.Image, int, tuple[int, int]]:
    """Check the header, pick a reduced JPEG decode, then decode.

    The checks come before anything that may decode: Pillow's getexif() on a
    PNG decodes the whole picture to look for EXIF after the pixels.

    `decoded`: a picture given already decoded (pasted), most often a photo
    whose file would have been read at a reduced scale: it is reduced by the
    same factor (a box average, as the reduced decode nearly is), so the same
    photo pasted reads as dropped: the scores of 12 photos' 30 best matches
    moved up to 14.6 points from their file's, 2.2 once reduced (round 12).
    """
    width, height = image.size
    if width <= 0 or height <= 0:
        raise Refused("the image has no pixels")
    problem = formats.aspect_problem(width, height)
    if problem:
        raise Refused(problem)
    if image.format in _DRAFT_FORMATS and image.mode in ("RGB", "L", "CMYK", "YCbCr"):
        # Decode at 1/2, 1/4 or 1/8 scale when the network needs fewer pixels:
        # the dominant cost of a build on camera JPEGs, and the bound on their
        # memory. The requested box keeps the long side at least `request`.
        scale = request / max(width, height)
        mode = "L" if grey and image.mode in ("RGB", "YCbCr") else image.mode  # brightness alone (`load_grey`)
        if scale < 1:
            image.draft(mode, (max(1, int(width * scale)), max(1, int(height * scale))))
        elif mode != image.mode:
            image.draft(mode, None)
    if image.size[0] * image.size[1] > max_pixels(image.format):
        raise Refused(_too_large((width, height), image.format))
    orientation = _orientation(image)
    original = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image.load()
    pixels_only = decoded and image.format is None  # pasted pixels; data with a format is read as its file is
    factor = _draft_factor(image.size, request) if pixels_only and image.size == (width, height) and image.mode in _REDUCIBLE else 1
    return (image.reduce(factor) if factor > 1 else image), orientation, original


def _draft_factor(size: tuple[int, int], request: int) -> int:
    """The scale (1, 2, 4 or 8) a JPEG of `size` decodes at for a long side of `request` (Pillow's draft rule)."""
    scale = request / max(size)
    if scale >= 1:
        return 1
    wanted = (max(1, int(size[0] * scale)), max(1, int(size[1] * scale)))
    most = min(size[0] // wanted[0], size[1] // wanted[1])
    return next(f for f in (8, 4, 2, 1) if most >= f)


def max_pixels(image_format: str | None) -> int:
    """The most decoded pixels SwimSearch reads in this Pillow format."""
    cost = _BYTES_PER_PIXEL.get(image_format or "", _USUAL_BYTES_PER_PIXEL)
    return MAX_PIXELS * _USUAL_BYTES_PER_PIXEL // max(cost, _USUAL_BYTES_PER_PIXEL)


def _too_large(original: tuple[int, int], image_format: str | None) -> str:
    width, height = original
    megapixels = width * height / 1e6
    limit = max_pixels(image_format) // 1_000_000
    if image_format in _BYTES_PER_PIXEL:
        said = f"SwimSearch reads {_FORMAT_NAMES[image_format]} pictures up to {limit} megapixels"
    else:
        said = f"SwimSearch reads pictures up to {limit} megapixels"
    if image_format in _DRAFT_FORMATS:
        said += f" (JPEG photos up to {limit * 64:,}, read at reduced size)"
    return f"the picture is too large: {width:,} x {height:,} pixels ({megapixels:,.0f} megapixels); {said}"


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8), or 1 when absent or unreadable."""
    try:
        value = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - broken EXIF is common and harmless
        return 1
    return value if 1 <= value <= 8 else 1


def _plain_reason(exc: BaseException) -> str:
    """One sentence a user understands for an exception raised while decoding."""
    if isinstance(exc, Refused):
        return exc.reason
    if isinstance(exc, NotAFile):
        return f"it is {exc.reason}"
    if isinstance(exc, FileNotFoundError):
        return "the file does not exist (moved or deleted?)"
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read"
    if isinstance(exc, IsADirectoryError):
        return "this is a folder, not an image file"
    if isinstance(exc, Image.DecompressionBombError):
        return f"the picture is too large to open; SwimSearch reads pictures up to {MAX_MEGAPIXELS} megapixels"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file, or a format that cannot be read"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode this image"
    if isinstance(exc, RecursionError):
        return "the file is nested too deeply to read"
    if isinstance(exc, OSError):
        text = str(exc).lower()
        if "truncated" in text or "broken data stream" in text or isinstance(exc, EOFError):
            return "the file is truncated or damaged"
        if exc.errno == errno.ELOOP:
            return "it is a link that leads back to itself (a symbolic link loop), not a file"
        if exc.errno in (errno.EIO, errno.ENXIO):
            return "the disk reported an error while reading the file"
        return "the file is damaged or in an unsupported format"
    return "the file is damaged or in an unsupported format"
