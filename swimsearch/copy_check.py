"""Is it the same picture? Geometric agreement of local features, for pairs the embeddings call *same design*.

The whitened cosine (calibration.py) tells a crop or a re-export of a picture
from a different garment over random pairs, but among a query's best matches
it also names look-alike garments *same design* (two different shirts read
93 %). A copy of one picture (crop, half size + JPEG, recolour, mirror, small
rotation) shares its local details in the same layout; a different garment
does not. So a pair the embedding band would name *same design* is checked
here on the pictures themselves: ORB keypoints of small grayscale decodes,
ratio-test matches (FAISS's exact binary search; against the mirrored picture too), a RANSAC fit of a
similarity transform (rotation, scale, shift), and a look at the two
pictures once aligned (blurred, z-normalised grayscale compared block by
block: a look-alike photographed on the same rug or hanger agrees on the
background and differs on the garment). Enough inliers each way round and
every block alike: the same picture (`same_picture`, `decided`).

bench/copy_check_research.py chose the settings on one sender half of the
clothing photos and measured them on the other (bench/results/copy-check-research.txt):
of 950 look-alike pairs the embeddings alone put in *same design* among a
query's 10 best, 2 pass (one dress photographed twice from the same spot, two
pairs of jeans on one floor by one sender; another sender's 0 of 317, another
kind of garment 0 of 194), of 498 first rows of *very similar* none; of the
transformed copies (about 300 per kind) 99.7-100 % per kind.

Only a few pairs per query come here (those above the band's edge on the
returned page: same_picture.py), and features of files already read are kept
(feature_cache.py), so clicking through results does not read them again.
A file that cannot be read gives no features: its pair cannot be shown as
*same design* unless the pHashes agree, and nothing is raised.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from .images import ImageError, load_grey

log = logging.getLogger(__name__)

#: Long side, in pixels, the pictures are compared at: enough detail for ORB on a half-size JPEG 40
#: copy, small enough that a JPEG decodes at a reduced scale (PIL draft).
SIDE = 200
#: Keypoints per picture, and ORB's corner threshold: a low one still finds enough corners in a plain
#: garment on a plain floor (a crop of one had 16 keypoints at 10, 89 at 5).
KEYPOINTS = 300
FAST = 5
#: Shorter sides than this (pixels at SIDE) hold no details to match.
MIN_SIDE = 32
#: Lowe's ratio test: a match is kept when its best distance is below this fraction of the second best.
RATIO = 0.8
#: RANSAC inlier threshold in pixels (at SIDE) of the similarity transform.
REPROJECTION = 4.0
#: Inliers needed to call two pictures one, and the largest block difference once aligned (`Fit`).
MIN_INLIERS = 10
MAX_DIFFERENCE = 0.3
#: The second pass (`decided`): the largest block difference once a fit is aligned again on the pictures, and the
#: refinement's steps. bench/copy_check_research.py chose it on one sender half: copies the first pass missed
#: read up to 0.11 there, look-alikes with a fit both ways round from 0.28: half-way.
SECOND_LOOK = 0.19
ECC_STEPS = 30
#: A flat fill at a picture's corners (padded or rotated exports): grey levels from the corner's value, and the least
#: share of the picture it must cover to be left out of the look (less is a photo's own plain corner).
FILL, MIN_FILL = 3, 0.01
#: Gaussian blur of the aligned pictures before they are compared, in pixels of a picture SIDE_OF_BLUR long.
BLUR, SIDE_OF_BLUR = 2.0, 256


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


def warm_up() -> None:
    """Load OpenCV (~150 ms here) and FAISS (0.06 s) now, e.g. in the search thread just after a catalogue opens,
    so that the first search a user makes does not pay it (the window's first search read "search 193 ms" on 36
    designs)."""
    _cv2()
    _faiss()


class Picture:
    """A picture's features and, once a comparison asks (a query against a mirrored copy), its mirror image's:
    ORB descriptors are not mirror-invariant, so the mirror image is described on its own."""

    def __init__(self, plain: Features, keypoints: int = KEYPOINTS):
        self.plain = plain
        self._keypoints = keypoints
        self._mirrored: Features | None = None
        self._lock = threading.Lock()  # a query's pairs are looked at on two threads (feature_cache.shared)

    def mirrored(self) -> Features:
        with self._lock:
            if self._mirrored is None:
                self._mirrored = _described(np.ascontiguousarray(self.plain.gray[:, ::-1]), self._keypoints)
            return self._mirrored


def _described(pixels: np.ndarray, keypoints: int) -> Features:
    if min(pixels.shape[:2]) < MIN_SIDE:  # too small to hold a design's details (an icon, a 1 x 1 pixel): nothing to match
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), pixels)
    cv2 = _cv2()
    orb = cv2.ORB_create(nfeatures=keypoints, fastThreshold=FAST, edgeThreshold=15, patchSize=15)
    found, descriptors = orb.detectAndCompute(pixels, None)
    if descriptors is None or not found:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), pixels)
    return Features(np.array([k.pt for k in found], np.float32), descriptors, pixels)


def picture_features(picture: Image.Image, *, side: int = SIDE, keypoints: int = KEYPOINTS) -> Picture:
    """The features of a decoded picture, at `side` on its long side (grayscale: a recolour keeps them)."""
    gray = picture.convert("L")
    scale = side / max(gray.size)
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.Resampling.BILINEAR)
    return Picture(_described(np.asarray(gray), keypoints), keypoints)


def file_features(path: str | os.PathLike | Image.Image, *, side: int = SIDE, keypoints: int = KEYPOINTS) -> Picture | None:
    """`picture_features` of a file, or of a pasted picture read as its file would be (images.load_picture),
    None where it cannot be read: moved, missing, damaged."""
    try:
        picture = load_grey(path, side)
    except (ImageError, OSError) as exc:
        log.info("same-design check: %s", exc)
        return None
    try:
        return picture_features(picture, side=side, keypoints=keypoints)
    except Exception as exc:  # noqa: BLE001 - features that cannot be made: the file is not looked at, never an error
        log.warning("same-design check: no features of %s (%s)", path, exc)
        return None


@dataclass(frozen=True)
class Fit:
    """How two pictures agree: RANSAC inliers of a similarity transform, and how alike they look once aligned."""

    inliers: int
    #: The largest difference of a block of the aligned pictures (z-normalised grayscale over their
    #: overlap, 4 x 4 blocks): a copy is alike everywhere; a look-alike photographed on the same
    #: rug or hanger agrees on the background and differs on the garment.
    worst_block: float
    overlap: float  # the fraction of the first picture the second covers once aligned
    #: (2, 3) the similarity transform found (the first picture's points -> the second's), None when none was
    matrix: np.ndarray | None = field(default=None, compare=False)


NO_FIT = Fit(0, float("inf"), 0.0)


def fit(a: Features, b: Features, *, ratio: float = RATIO, reprojection: float = REPROJECTION, least: int = 0) -> Fit:
    """Match `a` with `b`, fit one similarity transform, and compare the aligned pictures.

    `least`: fewer matches or inliers than this cannot pass, so the rest is not computed (inliers as found).
    """
    if len(a.descriptors) < 2 or len(b.descriptors) < 2:
        return NO_FIT
    cv2 = _cv2()
    good, best = _ratio_matches(a.descriptors, b.descriptors, ratio)
    if len(good) < max(4, least):
        return Fit(len(good), float("inf"), 0.0)
    src = a.points[good]
    dst = b.points[best]
    matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reprojection,
                                               maxIters=500, confidence=0.99)
    if matrix is None or mask is None:
        return NO_FIT
    count = int(mask.sum())
    if count < least:
        return Fit(count, float("inf"), 0.0)
    # Compared in both pictures' frames and the worse taken, so a pair reads the same whichever of
    # the two is the query (in one frame alone a look-alike passed one way round and failed the other).
    worst, overlap = _both_frames(a.gray, b.gray, matrix)
    return Fit(count, worst, overlap, matrix)


def _ratio_matches(a: np.ndarray, b: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test on binary descriptors: (rows of `a` kept, in order; the row of `b` nearest each).

    The two nearest by Hamming distance come from FAISS's exact binary search, 0.16 ms for 300 x 300
    descriptors where OpenCV's BFMatcher.knnMatch took 0.97. The matches kept are the same: a row is
    kept only when its nearest is strictly nearer than 0.8 x the second (never on a tie, so which of two
    equally near rows a search lists first cannot matter), in the same order, so RANSAC draws the same
    samples (a test compares the fits with knnMatch's on copies and look-alikes).
    """
    faiss = _faiss()
    if faiss is None:
        return _knn_ratio_matches(a, b, ratio)
    faiss.omp_set_num_threads(1)  # 300 rows: more OpenMP threads only spin (it holds for the calling thread)
    index = faiss.IndexBinaryFlat(8 * b.shape[1])
    index.add(np.ascontiguousarray(b))
    distances, rows = index.search(np.ascontiguousarray(a), 2)
    good = np.flatnonzero(distances[:, 0] < ratio * distances[:, 1])
    return good, rows[good, 0]


def _knn_ratio_matches(a: np.ndarray, b: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """`_ratio_matches` by OpenCV's BFMatcher.knnMatch, the same matches 6 x slower (where FAISS cannot be loaded)."""
    cv2 = _cv2()
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a, b, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    return np.array([m.queryIdx for m in good], np.int64), np.array([m.trainIdx for m in good], np.int64)


@functools.lru_cache(maxsize=1)
def _faiss() -> Any:
    """FAISS, imported on first use as OpenCV is (warm_up loads both); None, said once in the log, where it cannot be
    loaded: the look then matches with OpenCV alone, the same matches, slower."""
    try:
        import faiss
    except Exception as exc:  # noqa: BLE001 - a broken install raises anything from its native library
        log.warning("FAISS cannot be loaded (%s): the same-design check matches keypoints with OpenCV, slower", exc)
        return None
    return faiss


def _both_frames(a: np.ndarray, b: np.ndarray, matrix: np.ndarray) -> tuple[float, float]:
    """(the worse of the aligned looks in `a`'s frame and in `b`'s, the overlap in `a`'s) for `matrix` (a's points -> b's)."""
    worst_a, overlap = _aligned_worst(a, b, matrix)
    worst_b, _ = _aligned_worst(b, a, _cv2().invertAffineTransform(matrix))
    return max(worst_a, worst_b), overlap


def _aligned_worst(a: np.ndarray, b: np.ndarray, matrix: np.ndarray) -> tuple[float, float]:
    """(worst block, overlap) of `b` aligned onto `a` by `matrix` (a's points -> b's points)."""
    cv2 = _cv2()
    h, w = a.shape
    flags = cv2.INTER_AREA | cv2.WARP_INVERSE_MAP
    aligned = cv2.warpAffine(b, matrix, (w, h), flags=flags, borderValue=0)
    covered = cv2.warpAffine(np.full(b.shape, 255, np.uint8), matrix, (w, h), flags=flags, borderValue=0)
    # away from the overlap's edge, where the blur below mixes in what lies outside it
    edge = round(2 * BLUR * w / SIDE_OF_BLUR)
    kernel = np.ones((2 * edge + 1,) * 2, np.uint8)
    inside = cv2.erode(covered, kernel) > 250
    worst = _worst_block(a, aligned, inside)
    # and once more without a flat fill at one picture's corners lying over the other's picture (the white
    # corners a turned copy was padded with): the better of the two. Not instead: a black T-shirt filling a
    # crop's lower corners floods like a fill, and the look without it is the one that passes that crop.
    padded = (cv2.warpAffine(_not_fill(b), matrix, (w, h), flags=flags, borderValue=255) > 127) != (_not_fill(a) > 127)
    if padded.any():
        covered[padded] = 0
        worst = min(worst, _worst_block(a, aligned, cv2.erode(covered, kernel) > 250))
    return worst, float(inside.mean())


def _not_fill(picture: np.ndarray) -> np.ndarray:
    """255 where `picture` is picture, 0 on a flat fill reaching in from its corners (within FILL levels of the
    corner's value: a rotated or padded export's plain corners; a photo's own backdrop is never this flat)."""
    cv2 = _cv2()
    h, w = picture.shape
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    for y, x in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
        if not mask[y + 1, x + 1]:
            cv2.floodFill(np.array(picture), mask, (x, y), 0, FILL, FILL, flags)  # mask only: the copy is not changed
    fill = mask[1:-1, 1:-1] > 0
    if fill.mean() < MIN_FILL:
        return np.full(picture.shape, 255, np.uint8)
    return np.where(fill, 0, 255).astype(np.uint8)


def _worst_block(a: np.ndarray, b: np.ndarray, covered: np.ndarray, grid: int = 4) -> float:
    """The largest mean absolute difference of z-normalised intensities over `grid` x `grid` blocks of the overlap."""
    if covered.sum() < 0.2 * covered.size:
        return float("inf")
    cv2 = _cv2()
    # blurred first: resampling and JPEG blocks differ pixel by pixel, a different garment block by block
    blur = BLUR * max(a.shape) / SIDE_OF_BLUR
    x = cv2.GaussianBlur(a.astype(np.float32), (0, 0), blur)
    y = cv2.GaussianBlur(b.astype(np.float32), (0, 0), blur)
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


def passes(found: Fit) -> bool:
    """Whether a fit says one picture: enough inliers, and alike everywhere once aligned."""
    return found.inliers >= MIN_INLIERS and found.worst_block <= MAX_DIFFERENCE


#: Makes a list of `work(item)` for each item, in order: one after the other, or on two threads (feature_cache.shared).
Both = Callable[[Callable[[Any], Any], Sequence[Any]], list]


def same_picture(query: Picture, other: Picture, *, both: Both | None = None) -> bool:
    """`looked_at` as a yes or no: a look that failed is a no."""
    return bool(looked_at(query, other, both=both))


def looked_at(query: Picture, other: Picture, *, both: Both | None = None) -> bool | None:
    """Whether two pictures are one (a copy: crop, re-export, recolour, mirror, small rotation).

    The look is made both ways round (ORB's matches, and so the fit, differ with which picture is
    described first: a look-alike once read "same design" from one query and not from the other), in
    one orientation (plain, then mirrored), and decided on the two fits together (`decided`).

    `both`: the two orientations' first fits (and a failing look's two refinements, `decided`) made together,
    e.g. on two threads when a search looks at this pair alone; None: one after the other, the mirrored one
    only when the plain one does not pass. The answer is the same either way.

    A look that fails (pictures OpenCV cannot compare, a broken install) is None, said in the log, and nothing is
    raised: the pair is not shown as one, and no verdict is kept of it."""
    try:
        found: list[Fit | None] = [None, None]
        if both is not None:
            found = both(lambda way: fit(*way, least=MIN_INLIERS), [(query.plain, other.plain), (query.mirrored(), other.plain)])
        for mirrored in (False, True):
            way = (query.mirrored(), other.plain) if mirrored else (query.plain, other.plain)
            made = found[mirrored]
            there = made if made is not None else fit(*way, least=MIN_INLIERS)
            if there.inliers < MIN_INLIERS:
                continue
            # the way back only now: the other's mirror image described for every pair cost 1.5 ms a pair (round 13)
            back = fit(*((other.mirrored(), query.plain) if mirrored else (other.plain, query.plain)), least=MIN_INLIERS)
            if decided(there, back, *way, both=both):
                return True
        return False
    except Exception as exc:  # noqa: BLE001 - a look that fails says "not shown the same", never stops a search
        log.warning("same-design check failed (%s): the pair is not shown as the same picture", exc)
        return None


def decided(there: Fit, back: Fit, a: Features, b: Features, *, both: Both | None = None) -> bool:
    """The decision on one orientation's two fits, `there` (`a` -> `b`) and `back` (`b` -> `a`).

    Each way must find a fit of MIN_INLIERS. Then both fits pass the look (`passes`), or, the second
    pass, one of the two fits, aligned again on the pictures themselves (`refined_look`), looks alike
    everywhere within SECOND_LOOK: a low-texture crop's keypoint fit can be 2 % off in scale or
    0.7 degrees in rotation, which fails the look one way or both (the true crop window passes it at 0.05),
    while a look-alike garment stays different block by block however well it is aligned. Symmetric:
    `decided(there, back, a, b) == decided(back, there, b, a)`. `both`: the two refinements made together."""
    if min(there.inliers, back.inliers) < MIN_INLIERS:
        return False
    if passes(there) and passes(back):
        return True
    # the better-looking fit first; the other where that one's refinement does not settle (a rotated copy's
    # white corners can pull one way's refinement off)
    order = [(found.matrix, x, y) for found, x, y in sorted(((there, a, b), (back, b, a)), key=lambda way: way[0].worst_block)
             if found.matrix is not None]

    def refined(way: tuple[np.ndarray, Features, Features]) -> float:
        return refined_look(way[1].gray, way[2].gray, way[0])

    if both is not None and len(order) == 2:
        return any(look <= SECOND_LOOK for look in both(refined, order))
    return any(refined(way) <= SECOND_LOOK for way in order)


def refined_look(a: np.ndarray, b: np.ndarray, matrix: np.ndarray) -> float:
    """The aligned look (worst block, in both frames) once `matrix` (a's points -> b's) is refined on the blurred
    pictures' intensities (OpenCV's ECC, an affine warp; inf where it does not converge)."""
    cv2 = _cv2()
    blur = BLUR * max(a.shape) / SIDE_OF_BLUR
    template = cv2.GaussianBlur(a.astype(np.float32), (0, 0), blur)
    moved = cv2.GaussianBlur(b.astype(np.float32), (0, 0), blur)
    warp = np.asarray(matrix, np.float32).copy()
    try:
        _, warp = cv2.findTransformECC(template, moved, warp, cv2.MOTION_AFFINE,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_STEPS, 1e-4), None, 1)
    except cv2.error:  # no convergence (a flat picture, a look-alike pulled apart): no second pass
        return float("inf")
    return _both_frames(a, b, warp.astype(np.float64))[0]
