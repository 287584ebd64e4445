"""Transformed copies of a picture: what a user means by "the same design".

A catalogue of designs is full of re-exports of one picture: cropped,
shrunk and recompressed for an e-mail, recoloured, mirrored, slightly
rotated. These are the copies the *same design* band must hold and the copy
benchmarks must find, so the calibration script, the benchmarks and the
tests all make them here, the same way.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageEnhance

log = logging.getLogger(__name__)

#: The copy kinds, in the order the figures report them.
COPY_KINDS = ("crop80", "rescale50_jpeg40", "colour_jitter", "mirror", "rotate8")


def transformed_copy(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One transformed copy of an RGB picture.

    Args:
        image: the original, as displayed (EXIF rotation already applied).
        kind: one of `COPY_KINDS`: an 80 % crop at a random place; half size
            saved as JPEG quality 40; brightness, contrast and saturation
            jittered by up to 20-30 %; a left-right mirror; a rotation by 8
            degrees either way on white.
        rng: where the random choices come from (crop place, jitter, sign).
    """
    image = image.convert("RGB")
    w, h = image.size
    if kind == "crop80":
        cw, ch = max(1, int(w * 0.8)), max(1, int(h * 0.8))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return image.crop((x, y, x + cw, y + ch))
    if kind == "rescale50_jpeg40":
        small = image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=40)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if kind == "colour_jitter":
        out = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
        out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.8, 1.2))
        return ImageEnhance.Color(out).enhance(rng.uniform(0.7, 1.3))
    if kind == "mirror":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if kind == "rotate8":
        angle = 8 if rng.random() < 0.5 else -8
        return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor="white")
    raise ValueError(f"unknown copy kind {kind!r} (choose from {', '.join(COPY_KINDS)})")
