"""float16 values widened to float32, and float32 rounded through float16, bit for bit what NumPy's `astype` gives.

NumPy converts float16 element by element in software here (no F16C path): 200 x 1,280 values, what a
search at a million images reads of its candidates' embeddings, took 1.3 ms loaded. OpenCV converts with
the CPU's F16C instructions (adding -0.0, which changes no value and no sign of zero, with a float32 or
float16 result): 40 x 1,280 values widen in 25 µs against 72 µs by a look-up in a 256 KB table of every
float16 bit pattern's float32 value, and round through float16 in 27 µs against 84 µs by bits. OpenCV is
already the look's dependency (copy_check.py). It is used once loaded (by the look, the window, or the
engine opening a large catalogue: `warm_up`) and once it has converted every float16 bit pattern and
float32's values around every float16 tie, overflow and subnormal exactly as NumPy does (`_opencv`);
else, and for arrays of fewer than `OPENCV_FROM` values (a call costs a few µs), the table and the bits do it. A NaN's payload is the one place F16C and NumPy differ: a result with a NaN is made
again the slow way.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_WIDE = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
#: Arrays of at least this many values are converted by OpenCV (where `_opencv` found it exact).
OPENCV_FROM = 4096


def _opencv() -> Any:
    """OpenCV where it is loaded already (by the look, or `warm_up` as the window opens a catalogue) and converts
    exactly as NumPy does; None otherwise. Conversions alone never load it: ~150 ms, once, would outweigh what
    they save in a short session (a CLI search with the look off)."""
    return _checked_opencv() if "cv2" in sys.modules else None


@functools.lru_cache(maxsize=None)
def _checked_opencv() -> Any:
    """OpenCV, where it converts exactly as NumPy does (checked once); None otherwise."""
    try:
        cv2: Any = importlib.import_module("cv2")  # Any: its stubs know no scalar second operand
        cv2.setNumThreads(1)  # as the look sets it (copy_check._cv2): small arrays, a shared machine
        every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
        finite = np.isfinite(_WIDE.reshape(256, 256))
        wide = cv2.add(every, -0.0, dtype=cv2.CV_32F)
        bits = _WIDE.view(np.uint32).astype(np.int64)
        # every float16 value in float32, its ties, one float32 step either side of them and float32 overflows
        near = np.concatenate([(bits + step) % (1 << 32) for step in (0, 1, -1, 0x0FFF, 0x1000, 0x1001, -0x1000, -0x1001)])
        values = near.astype(np.uint32).view(np.float32)
        values = values[~np.isnan(values)].reshape(1, -1)
        with np.errstate(over="ignore"):
            want = values.astype(np.float16).astype(np.float32)
        got = cv2.add(cv2.add(values, -0.0, dtype=cv2.CV_16F), -0.0, dtype=cv2.CV_32F)
        if not (np.array_equal(wide.view(np.uint32)[finite], _WIDE.reshape(256, 256).view(np.uint32)[finite])
                and np.array_equal(got.view(np.uint32), want.view(np.uint32))):
            log.info("OpenCV %s converts float16 unlike NumPy: the table and bits do it", cv2.__version__)
            return None
        return cv2
    except Exception as exc:  # noqa: BLE001 (no OpenCV, or one without float16 arithmetic: the slow way)
        log.info("float16 conversions without OpenCV (%s)", exc)
        return None


def warm_up() -> bool:
    """Load and check OpenCV's conversions now (the window, as a catalogue opens); whether they are used."""
    return _checked_opencv() is not None


def _by_opencv(values: np.ndarray, depth: str) -> np.ndarray | None:
    """`values` (C-contiguous, at least OPENCV_FROM of them) converted by OpenCV to `depth` ("CV_32F" or
    "CV_16F"), in their shape; None where OpenCV is not used or the result holds a NaN."""
    cv2 = _opencv() if values.size >= OPENCV_FROM and values.ndim else None
    if cv2 is None:
        return None
    flat = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(1, -1)  # 2-d: one channel
    try:
        out = cv2.add(flat, -0.0, dtype=getattr(cv2, depth))
        if depth == "CV_16F":
            out = cv2.add(out, -0.0, dtype=cv2.CV_32F)
    except Exception as exc:  # noqa: BLE001 (cv2.error: an array OpenCV refuses, its memory short: the slow way)
        log.debug("float16 conversion of %s values without OpenCV (%s)", values.size, exc)
        return None
    return None if np.isnan(out.max()) else out.reshape(values.shape)  # max: NaN if any is


def widened(values: np.ndarray) -> np.ndarray:
    """float32 values of an array (float16 by OpenCV or the table; any other dtype by `astype`, always a new array)."""
    values = np.asarray(values)
    if values.dtype != np.float16:
        return values.astype(np.float32)
    values = np.ascontiguousarray(values)
    fast = _by_opencv(values, "CV_32F")
    return fast if fast is not None else np.take(_WIDE, values.view(np.uint16))


def through_half(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest float16 and back: bit for bit `astype(np.float16).astype(np.float32)`.

    NumPy narrows float32 to float16 element by element in software here too: 40 x 1,280 values (a
    search's prepared head, fold_in.augmented_query) took 0.1 ms twice a search. This rounds the float32
    bits instead: to nearest, ties to even, on the 10 fraction bits a normal float16 keeps (a carry
    raises the exponent, as the narrowing does); below float16's smallest normal (2^-14) to the nearest
    multiple of 2^-24 (its subnormals), by an exact scaling and NumPy's round-half-to-even. Anything that
    would overflow, and NaN, goes through `astype`. (By OpenCV where it is used: see the module's note.)
    """
    x = np.ascontiguousarray(values, dtype=np.float32)
    fast = _by_opencv(x, "CV_16F")
    if fast is not None:
        return fast
    magnitude = np.abs(x)
    if not x.size or not magnitude.max() < 65504.0:  # empty, NaN, infinite or at float16's largest: the slow way
        return x.astype(np.float16).astype(np.float32)
    bits = x.view(np.uint32)
    rounded = bits >> np.uint32(13)  # in place from here: each temporary of 200 KB costs as much as the sums
    rounded &= np.uint32(1)
    rounded += np.uint32(0x0FFF)
    rounded += bits
    rounded &= np.uint32(0xFFFFE000)
    out = rounded.view(np.float32)
    tiny = magnitude < np.float32(2.0**-14)
    if tiny.any():
        scale = np.float32(2.0**24)
        out[tiny] = np.round(x[tiny] * scale) / scale
    return out
