"""Image loading that never surprises, and the folder scan that finds images.

Everything a catalogue folder can hold goes through `load_image`: it either
returns an RGB picture ready for the network (EXIF-rotated, transparency on
white, padded to a square, resized) or raises `ImageError` with the path and
one plain sentence. Nothing else escapes, because these files are untrusted
input and the parsers behind Pillow raise a zoo of exception types.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import imagehash
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

#: Pictures larger than this are refused before any pixel is decoded. 200 MP
#: covers the largest camera and scanner files; a 50000 x 50000 "image" is a
#: decompression bomb, not a design.
MAX_PIXELS = 200_000_000

#: Padding colour for non-square images: design sheets are drawn on white.
BACKGROUND = (255, 255, 255)


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
        width: width of the original picture after EXIF rotation.
        height: height of the original picture after EXIF rotation.
        phash: 64-bit perceptual hash (imagehash.phash) as an unsigned int.
    """

    pixels: np.ndarray
    width: int
    height: int
    phash: int


@dataclass(frozen=True)
class FoundFile:
    """One image file found by `scan_folder`: path relative to the root, size, mtime.

    `name_error` is set for a file whose name is not valid UTF-8 (possible on
    Linux): such a name cannot be stored as text, so the file is reported as
    unreadable under an escaped name instead of crashing the build.
    """

    relpath: str
    size: int
    mtime: float
    name_error: str | None = None


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
        picture, (width, height) = _open_normalised(source, size)
        if mirror:
            picture = ImageOps.mirror(picture)
        phash = _phash(picture)
        pixels = _pad_and_resize(picture, size)
    return LoadedImage(pixels=pixels, width=width, height=height, phash=phash)


def load_picture(source: str | os.PathLike | Image.Image, max_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """An upright RGB picture that fits in `max_side`, for thumbnails and previews.

    Decodes exactly as `load_image` does (JPEG draft, EXIF rotation,
    transparency on white, the size limit) but keeps the aspect ratio and
    does not pad, so what a user sees is what the network saw.

    Returns:
        The picture (never larger than `max_side` on its long side) and the
        original (width, height) after EXIF rotation.

    Raises:
        ImageError: for anything that is not a readable image, with a plain reason.
    """
    with _plain_errors(source):
        picture, original = _open_normalised(source, max_side)
        if max(picture.size) > max_side:
            scale = max_side / max(picture.size)
            fitted = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(fitted, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return picture, original


@contextmanager
def _plain_errors(source: str | os.PathLike | Image.Image) -> Iterator[None]:
    """Decode `source` inside this block: any failure becomes one ImageError with a plain reason."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) on EXIF oddities and moderately large
            # images; those warnings are noise for a catalogue of thousands.
            warnings.simplefilter("ignore")
            yield
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted file: any parser error is "unreadable"
        label = "pasted image" if isinstance(source, Image.Image) else str(source)
        raise ImageError(label, _plain_reason(exc)) from exc


def _open_normalised(source: str | os.PathLike | Image.Image, size: int) -> tuple[Image.Image, tuple[int, int]]:
    """`_normalise` a file (opened and closed here) or an already opened picture."""
    if isinstance(source, Image.Image):
        return _normalise(source, size)
    with Image.open(source) as opened:
        return _normalise(opened, size)


def _normalise(image: Image.Image, size: int) -> tuple[Image.Image, tuple[int, int]]:
    """First frame, bomb check, fast JPEG draft, EXIF rotation and RGB on white.

    Returns the RGB picture and the original (width, height) after rotation.
    """
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError(getattr(image, "filename", "image"), "the image has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageError(
            getattr(image, "filename", "image"),
            f"the image is too large to open safely ({width} x {height} pixels)",
        )
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    if image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK", "YCbCr"):
        # Decode at 1/2, 1/4 or 1/8 scale when the network needs fewer pixels:
        # this is the dominant cost of a catalogue build on camera JPEGs. The
        # requested box keeps the long side at least `size`.
        scale = size / max(width, height)
        if scale < 1:
            image.draft(image.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
    orientation = _orientation(image)
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image.load()
    if orientation != 1:
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture
            log.debug("ignoring unusable EXIF orientation in %s", getattr(image, "filename", "image"))
            original_size = (width, height)
    return _to_rgb(image), original_size


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8), or 1 when absent or unreadable."""
    try:
        value = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - broken EXIF is common and harmless
        return 1
    return value if 1 <= value <= 8 else 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency onto white."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _wide_to_l(image)
        mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image


def _wide_to_l(image: Image.Image) -> Image.Image:
    """Scale a 16/32-bit or float greyscale picture to 8 bits by its value range.

    Pillow's own convert() clips such images to 255 (16-bit PNGs come out white),
    so the scaling is done here.
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        top = 65535.0
    else:
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 1.0
        top = 255.0 if top <= 255.0 else (65535.0 if top <= 65535.0 else top)
    scaled = np.clip(np.nan_to_num(values) * (255.0 / max(top, 1e-12)), 0, 255)
    return Image.fromarray(scaled.round().astype(np.uint8), "L")


def _phash(picture: Image.Image) -> int:
    """imagehash's 64-bit pHash as an unsigned int (stable for SQLite as signed)."""
    return int(str(imagehash.phash(picture)), 16)


def _pad_and_resize(picture: Image.Image, size: int) -> np.ndarray:
    """Pad to a centred square on white, then resize to `size` x `size`."""
    width, height = picture.size
    side = max(width, height)
    if width != height:
        square = Image.new("RGB", (side, side), BACKGROUND)
        square.paste(picture, ((side - width) // 2, (side - height) // 2))
        picture = square
    if side != size:
        picture = picture.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(picture, dtype=np.uint8)


def _plain_reason(exc: BaseException) -> str:
    """One sentence a user understands for an exception raised while decoding."""
    if isinstance(exc, FileNotFoundError):
        return "the file does not exist (moved or deleted?)"
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read"
    if isinstance(exc, IsADirectoryError):
        return "this is a folder, not an image file"
    if isinstance(exc, Image.DecompressionBombError):
        return "the image is too large to open safely (possible decompression bomb)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file, or a format that cannot be read"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode this image"
    if isinstance(exc, OSError):
        text = str(exc).lower()
        if "truncated" in text or "broken data stream" in text or isinstance(exc, EOFError):
            return "the file is truncated or damaged"
        if exc.errno in (errno.EIO, errno.ENXIO):
            return "the disk reported an error while reading the file"
        return "the file is damaged or in an unsupported format"
    return "the file is damaged or in an unsupported format"


def scan_folder(root: str | os.PathLike) -> list[FoundFile]:
    """All image files under `root`, recursively, sorted by relative path.

    Hidden files and folders (leading dot) are skipped. Symbolic links to
    folders are followed once: a folder already visited (same device and inode)
    is not entered again, so symlink loops end. Files that vanish or cannot be
    stat'ed while scanning are left out; the build reports unreadable files
    when it opens them.
    """
    root = Path(root)
    found: list[FoundFile] = []
    for dirpath, entry in _walk(root):
        try:
            info = entry.stat()  # follows symlinks to files
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        rel = (dirpath / entry.name).relative_to(root).as_posix()
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            escaped = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            found.append(FoundFile(escaped, info.st_size, info.st_mtime, "the file name is not valid UTF-8 text; rename the file"))
            continue
        found.append(FoundFile(rel, info.st_size, info.st_mtime))
    found.sort(key=lambda f: f.relpath)
    return found


def _walk(root: Path) -> Iterator[tuple[Path, os.DirEntry]]:
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as entries:
                children = list(entries)
        except OSError as exc:
            log.warning("cannot list folder %s: %s", folder, exc)
            continue
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks; loops stopped by `seen`
            except OSError:
                continue
            if is_dir:
                stack.append(folder / entry.name)
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                yield folder, entry


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has an image extension this app reads."""
    return os.path.splitext(str(path))[1].lower() in IMAGE_EXTENSIONS
