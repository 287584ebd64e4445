"""pHash candidates: the multi-index finds exactly what a full scan finds, and finds a recompressed copy."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers import CLOTHING
from swimsearch.copies import transformed_copy
from swimsearch.images import load_image
from swimsearch.phash_index import PhashIndex, hamming64


def _near(base: np.ndarray, rng: np.random.Generator, flips: int) -> np.ndarray:
    """Copies of each hash with exactly `flips` random bits flipped."""
    out = base.copy()
    for i in range(len(out)):
        for b in rng.choice(64, flips, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(int(b))
    return out


@pytest.mark.parametrize("radius", [0, 3, 4, 7, 8, 10])
def test_multi_index_finds_every_hash_within_the_radius_and_nothing_else(radius):
    rng = np.random.default_rng(radius)
    base = rng.integers(0, 2**63, 200, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    # each base hash gets neighbours at 0..12 flipped bits, so every radius has hits at and past it
    hashes = np.concatenate([base] + [_near(base[:20], rng, f) for f in range(0, 13)])
    index = PhashIndex.build(hashes)
    for query in base[:20]:
        rows, distances = index.within(int(query), radius)
        truth = np.flatnonzero(hamming64(int(query), hashes) <= radius)
        assert sorted(rows.tolist()) == truth.tolist()
        assert (np.diff(distances.astype(int)) >= 0).all()  # nearest first
        assert (distances <= radius).all()


def test_signed_stored_hashes_are_reinterpreted_not_converted():
    unsigned = np.array([2**64 - 1, 2**63 + 5, 7], dtype=np.uint64)
    index = PhashIndex.build(unsigned.view(np.int64))  # how SQLite gives them back
    rows, distances = index.within(2**63 + 5, 0)
    assert rows.tolist() == [1] and distances.tolist() == [0]


def test_empty_index_finds_nothing():
    rows, distances = PhashIndex.build(np.empty(0, np.uint64)).within(123, 8)
    assert len(rows) == 0 and len(distances) == 0


def test_an_emailed_thumbnail_of_a_real_photo_is_found_among_thousands(clothing):
    """Half size and JPEG 40 keeps the pHash within a few bits; random others sit ~32 bits away."""
    photo = sorted((clothing / "images").glob("*.jpg"))[0]
    original = load_image(photo, 224).phash
    copy = transformed_copy(Image.open(photo).convert("RGB"), "rescale50_jpeg40", np.random.default_rng(0))
    buffer = io.BytesIO()
    copy.save(buffer, "PNG")
    thumbnail = load_image(Image.open(io.BytesIO(buffer.getvalue())), 224).phash
    others = np.random.default_rng(1).integers(0, 2**63, 20_000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    index = PhashIndex.build(np.concatenate([others, [np.uint64(original)]]))
    rows, distances = index.within(thumbnail, 8)
    assert rows[0] == len(others), f"the original was not the nearest pHash (distances {distances[:3]})"
    assert distances[0] <= 4


#: imagehash's pHash of any flat picture but a black one (test_flat_pictures.py).
FLAT = 0x8000_0000_0000_0000


def test_merged_candidates_keep_both_sources_and_duplicates_rank_first():
    from swimsearch.phash_index import UNKNOWN, duplicates_first, merge_candidates

    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    thumbnail = int(hashes[700]) ^ 0b101  # the picture the embedding search missed, 2 bits away
    index = PhashIndex.build(hashes)
    rows, distances = merge_candidates(np.array([3, 9, 42]), index, thumbnail, radius=8)
    assert set(rows.tolist()) == {3, 9, 42, 700}
    sims = np.where(rows == 700, 0.2, 0.9)  # its embedding looks unrelated
    order = duplicates_first(sims, distances, duplicate_distance=6)
    assert rows[order[0]] == 700
    assert rows[order[1:]].tolist() == [3, 9, 42]  # the rest stays in similarity order (ties by position)
    only, unknown = merge_candidates(np.array([5, 5, 1]), index, None, radius=8)
    assert only.tolist() == [1, 5] and (unknown == UNKNOWN).all()
    # a flat picture's pHash finds no candidates and is no copy of another flat picture's (test_flat_pictures.py)
    flat = PhashIndex.build(np.concatenate([hashes, [np.uint64(FLAT)] * 3]))
    only, unknown = merge_candidates(np.array([5, 1]), flat, FLAT, radius=8)
    assert only.tolist() == [1, 5] and (unknown == UNKNOWN).all()
