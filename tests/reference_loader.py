"""The loader as it was before memory was bounded (main at 0b93abf), kept as the reference.

Tests hold the new loader to the same pixels and pHash on pictures this one can
afford, and bench/bench_decode.py measures both in one run. It pads a picture
to a max(w, h) square before shrinking it: never use it outside tests and bench.
"""

from __future__ import annotations

import os
import warnings

import imagehash
import numpy as np
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)


class ReferenceLoadError(Exception):
    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def load_image(source: str | os.PathLike | Image.Image, size: int, *, mirror: bool = False):
    """(pixels, width, height, phash) exactly as the old load_image computed them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if isinstance(source, Image.Image):
                picture, (width, height) = _normalise(source, size)
            else:
                with Image.open(source) as opened:
                    picture, (width, height) = _normalise(opened, size)
            if mirror:
                picture = ImageOps.mirror(picture)
            phash = int(str(imagehash.phash(picture)), 16)
            return _pad_and_resize(picture, size), width, height, phash
        except Exception as exc:  # noqa: BLE001 - the old loader's catch-all
            raise ReferenceLoadError(type(exc).__name__ + ": " + str(exc)[:200]) from exc


def _normalise(image: Image.Image, size: int):
    width, height = image.size
    if width * height > 200_000_000:
        raise ReferenceLoadError(f"the image is too large to open safely ({width} x {height} pixels)")
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    if image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK", "YCbCr"):
        scale = size / max(width, height)
        if scale < 1:
            image.draft(image.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
    try:
        orientation = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001
        orientation = 1
    orientation = orientation if 1 <= orientation <= 8 else 1
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image.load()
    if orientation != 1:
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001
            original_size = (width, height)
    return _to_rgb(image), original_size


def _to_rgb(image: Image.Image) -> Image.Image:
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
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        top = 65535.0
    else:
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 1.0
        top = 255.0 if top <= 255.0 else (65535.0 if top <= 65535.0 else top)
    scaled = np.clip(np.nan_to_num(values) * (255.0 / max(top, 1e-12)), 0, 255)
    return Image.fromarray(scaled.round().astype(np.uint8), "L")


def _pad_and_resize(picture: Image.Image, size: int) -> np.ndarray:
    width, height = picture.size
    side = max(width, height)
    if width != height:
        square = Image.new("RGB", (side, side), BACKGROUND)
        square.paste(picture, ((side - width) // 2, (side - height) // 2))
        picture = square
    if side != size:
        picture = picture.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(picture, dtype=np.uint8)
