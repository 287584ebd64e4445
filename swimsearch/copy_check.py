"""Is it the same picture? Geometric agreement of local features, for pairs the embeddings call *same design*.

The whitened cosine (calibration.py) tells a crop or a re-export of a picture
from a different garment over random pairs, but among a query's best matches
it also names look-alike garments *same design* (two different shirts read
93 %). A copy of one picture (crop, half size + JPEG, recolour, mirror, small
rotation) shares its local details in the same layout; a different garment
does not. So a pair the embedding band would name *same design* is checked
here on the pictures themselves: ORB keypoints of small grayscale decodes,
ratio-test matches (against the mirrored picture too), and a RANSAC fit of a
similarity transform (rotation, scale, shift); enough inliers and the pair
is the same picture. bench/copy_check_research.py measured the settings.

Only a few pairs per query come here (those above the band's edge on the
returned page), and features of files already read are kept in a small LRU
cache, so clicking through results does not read them again. A file that
cannot be read gives no features: its pair cannot be shown as *same design*
unless the pHashes agree (ranking.py), and nothing is raised.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .images import ImageError, load_picture

log = logging.getLogger(__name__)

#: Long side, in pixels, the pictures are compared at: enough detail for ORB on a half-size JPEG 40
#: copy, small enough that a JPEG decodes at a reduced scale (PIL draft).
SIDE = 256
#: Keypoints per picture.
KEYPOINTS = 500
#: Lowe's ratio test: a match is kept when its best distance is below this fraction of the second best.
RATIO = 0.8
#: RANSAC inlier threshold in pixels (at SIDE) of the similarity transform.
REPROJECTION = 4.0
#: Inliers needed to call two pictures one, and the largest block difference once aligned (`Fit`).
MIN_INLIERS = 8
MAX_DIFFERENCE = 0.3
#: Gaussian blur (pixels at SIDE) of the aligned pictures before they are compared.
BLUR = 2.0
#: Feature sets of catalogue files kept in memory (about 35 KB each).
CACHE_SIZE = 512


@dataclass(frozen=True)
class Features:
    """ORB keypoints of one picture at SIDE: positions (n, 2) float32, binary descriptors (n, 32) uint8,
    and the grayscale picture they were found in (for the look after alignment)."""

    points: np.ndarray
    descriptors: np.ndarray
    gray: np.ndarray


def _cv2():  # imported on first use: a search that never checks a pair never loads OpenCV
    import cv2

    cv2.setNumThreads(1)  # a few small pictures: threads cost more than they give, and the machine is shared
    return cv2


#: A picture's features, and those of its mirror image where it is a query (None for a candidate).
Picture = tuple[Features, "Features | None"]


def picture_features(picture: Image.Image, *, mirror: bool = True, side: int = SIDE, keypoints: int = KEYPOINTS) -> Picture:
    """(features, features of its mirror image or None) of a decoded picture, at `side` on its long side.

    ORB descriptors are not mirror-invariant, so a query's mirror image is described too; a
    candidate is compared with both ways of the query and needs its own way only.
    """
    cv2 = _cv2()
    gray = picture.convert("L")
    scale = side / max(gray.size)
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.Resampling.BILINEAR)
    pixels = np.asarray(gray)
    orb = cv2.ORB_create(nfeatures=keypoints, fastThreshold=10, edgeThreshold=15, patchSize=15)

    def described(image: np.ndarray) -> Features:
        found, descriptors = orb.detectAndCompute(image, None)
        if descriptors is None or not found:
            return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), image)
        return Features(np.array([k.pt for k in found], np.float32), descriptors, image)

    return described(pixels), described(np.ascontiguousarray(pixels[:, ::-1])) if mirror else None


def file_features(path: str | os.PathLike, *, mirror: bool = False, side: int = SIDE, keypoints: int = KEYPOINTS) -> Picture | None:
    """`picture_features` of a file (None where it cannot be read: moved, missing, damaged)."""
    try:
        picture, _ = load_picture(path, side)
    except (ImageError, OSError) as exc:
        log.info("same-design check: %s", exc)
        return None
    return picture_features(picture, mirror=mirror, side=side, keypoints=keypoints)


@dataclass(frozen=True)
class Fit:
    """How two pictures agree: RANSAC inliers of a similarity transform, and how alike they look once aligned."""

    inliers: int
    #: The largest difference of a block of the aligned pictures (z-normalised grayscale over their
    #: overlap, 4 x 4 blocks): a copy is alike everywhere; a look-alike photographed on the same
    #: rug or hanger agrees on the background and differs on the garment.
    worst_block: float
    overlap: float  # the fraction of the first picture the second covers once aligned


NO_FIT = Fit(0, float("inf"), 0.0)


def fit(a: Features, b: Features, *, ratio: float = RATIO, reprojection: float = REPROJECTION, least: int = 0) -> Fit:
    """Match `a` with `b`, fit one similarity transform, and compare the aligned pictures.

    `least`: fewer matches or inliers than this cannot pass, so the rest is not computed (inliers as found).
    """
    if len(a.descriptors) < 2 or len(b.descriptors) < 2:
        return NO_FIT
    cv2 = _cv2()
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a.descriptors, b.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < max(4, least):
        return Fit(len(good), float("inf"), 0.0)
    src = a.points[[m.queryIdx for m in good]]
    dst = b.points[[m.trainIdx for m in good]]
    matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reprojection,
                                               maxIters=500, confidence=0.99)
    if matrix is None or mask is None:
        return NO_FIT
    count = int(mask.sum())
    if count < least:
        return Fit(count, float("inf"), 0.0)
    h, w = a.gray.shape
    flags = cv2.INTER_AREA | cv2.WARP_INVERSE_MAP
    aligned = cv2.warpAffine(b.gray, matrix, (w, h), flags=flags, borderValue=0)
    covered = cv2.warpAffine(np.full(b.gray.shape, 255, np.uint8), matrix, (w, h), flags=flags, borderValue=0)
    # away from the overlap's edge, where the blur below mixes in what lies outside it
    covered = cv2.erode(covered, np.ones((2 * round(2 * BLUR) + 1,) * 2, np.uint8)) > 250
    return Fit(count, _worst_block(a.gray, aligned, covered), float(covered.mean()))


def _worst_block(a: np.ndarray, b: np.ndarray, covered: np.ndarray, grid: int = 4) -> float:
    """The largest mean absolute difference of z-normalised intensities over `grid` x `grid` blocks of the overlap."""
    if covered.sum() < 0.2 * covered.size:
        return float("inf")
    cv2 = _cv2()
    # blurred first: resampling and JPEG blocks differ pixel by pixel, a different garment block by block
    x = cv2.GaussianBlur(a.astype(np.float32), (0, 0), BLUR)
    y = cv2.GaussianBlur(b.astype(np.float32), (0, 0), BLUR)
    za = (x - x[covered].mean()) / max(float(x[covered].std()), 1.0)
    zb = (y - y[covered].mean()) / max(float(y[covered].std()), 1.0)
    diff = np.abs(za - zb)
    h, w = a.shape
    worst = 0.0
    for i in range(grid):
        for j in range(grid):
            block = (slice(i * h // grid, (i + 1) * h // grid), slice(j * w // grid, (j + 1) * w // grid))
            inside = covered[block]
            if inside.mean() >= 0.5:
                worst = max(worst, float(diff[block][inside].mean()))
    return worst


def best_fit(query: Picture, other: Picture, *, least: int = 0, **settings: float) -> Fit:
    """The better of the two ways round: the query as it is, or (when it fails) mirrored."""
    plain = fit(query[0], other[0], least=least, **settings)  # type: ignore[arg-type]
    if query[1] is None or passes(plain):
        return plain
    mirrored = fit(query[1], other[0], least=least, **settings)  # type: ignore[arg-type]
    return mirrored if (passes(mirrored), mirrored.inliers) > (passes(plain), plain.inliers) else plain


def passes(found: Fit) -> bool:
    """Whether a fit says one picture: enough inliers, and alike everywhere once aligned."""
    return found.inliers >= MIN_INLIERS and found.worst_block <= MAX_DIFFERENCE


def same_picture(query: Picture, other: Picture) -> bool:
    """Whether two pictures are one (a copy: crop, re-export, recolour, mirror, small rotation)."""
    return passes(best_fit(query, other, least=MIN_INLIERS))


class FeatureCache:
    """Features of files, kept for the last `size` read (by path, size and change time, and whether mirrored)."""

    def __init__(self, size: int = CACHE_SIZE):
        self._size = size
        self._held: OrderedDict[tuple, Picture | None] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # files read (tests and benchmarks look)

    def of(self, path: str | os.PathLike, *, mirror: bool = False) -> Picture | None:
        """The features of a file (None: it cannot be read); read once while it stays unchanged."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            held = self._held.get(key)
            if key in self._held and (held is None or not mirror or held[1] is not None):
                self._held.move_to_end(key)
                return held
        self.reads += 1
        found = file_features(path, mirror=mirror)
        with self._lock:
            self._held[key] = found
            self._held.move_to_end(key)
            while len(self._held) > self._size:
                self._held.popitem(last=False)
        return found
