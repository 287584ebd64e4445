"""Spherical hashing: balanced, independent bits and the right distance."""

from __future__ import annotations

import numpy as np
import pytest

from swimsearch.spherical import fit_spheres, hamming, pack_bits, spherical_hamming, unpack_bits


def clustered(n=4000, d=32, clusters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)) * 3
    return (centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_bits_are_balanced_and_pairwise_independent():
    points = clustered()
    spheres = fit_spheres(points, 64, seed=1)
    bits = spheres.inside(points)
    share = bits.mean(axis=0)
    assert np.all(np.abs(share - 0.5) <= 0.05), share
    both = (bits.T.astype(np.float64) @ bits.astype(np.float64)) / len(points)
    deviation = np.abs(both[np.triu_indices(64, 1)] - 0.25)
    # Heo et al.'s convergence test: mean |o_ij - m/4| <= 0.10 m/4, std <= 0.15 m/4.
    assert deviation.mean() <= 0.10 * 0.25 + 1e-9
    assert deviation.std() <= 0.15 * 0.25 + 1e-9
    assert np.median(deviation) < 0.03


def test_fit_is_reproducible_for_the_same_points():
    points = clustered(n=1500)
    a = fit_spheres(points, 32, seed=3)
    b = fit_spheres(points, 32, seed=3)
    assert np.array_equal(a.pivots, b.pivots) and np.array_equal(a.radii, b.radii)


def slow_spherical_hamming(a: np.ndarray, b: np.ndarray) -> float:
    xor = sum(bool(x) != bool(y) for x, y in zip(a, b))
    both = sum(bool(x) and bool(y) for x, y in zip(a, b))
    return float("inf") if both == 0 else xor / both


def test_spherical_hamming_matches_a_slow_reference():
    rng = np.random.default_rng(7)
    for width in (64, 128, 100):
        raw = rng.random((200, width)) < 0.5
        raw[5] = False  # a code with no 1-bit: infinitely far from everything
        codes = pack_bits(raw)
        query = raw[0]
        got = spherical_hamming(codes[0], codes)
        want = np.array([slow_spherical_hamming(query, row) for row in raw], dtype=np.float32)
        assert np.isinf(got[5]) and np.isinf(want[5])
        assert np.allclose(got, want)
        assert got[0] == 0.0


def test_hamming_counts_differing_bits():
    raw = np.random.default_rng(3).random((50, 128)) < 0.5
    codes = pack_bits(raw)
    assert hamming(codes[0], codes).tolist() == [int((raw[0] != row).sum()) for row in raw]


def test_pack_and_unpack_round_trip():
    raw = np.random.default_rng(1).random((17, 130)) < 0.5
    packed = pack_bits(raw)
    assert packed.dtype == np.uint64 and packed.shape == (17, 3)
    assert np.array_equal(unpack_bits(packed, 130), raw)


def test_near_points_get_near_codes():
    points = clustered(n=3000)
    spheres = fit_spheres(points, 128, seed=0)
    codes = spheres.encode(points)
    near = spheres.encode(points + np.random.default_rng(2).normal(0, 0.05, points.shape).astype(np.float32))
    d_near = np.array([spherical_hamming(near[i], codes[i : i + 1])[0] for i in range(200)])
    d_random = np.array([spherical_hamming(codes[i], codes[i + 1000 : i + 1001])[0] for i in range(200)])
    assert np.median(d_near) < 0.2 * np.median(d_random[np.isfinite(d_random)])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 13])
def test_a_fit_on_a_few_points_stays_finite(n):
    """Three pictures pushed the pivots apart without end (inf, then NaN): a catalogue with a broken fit."""
    for seed in range(4):
        points = np.random.default_rng(100 * n + seed).standard_normal((n, 32)).astype(np.float32)
        with np.errstate(all="raise"):  # no overflow on the way either
            spheres = fit_spheres(points, 64, seed=seed)
        assert np.isfinite(spheres.pivots).all() and np.isfinite(spheres.radii).all()
        assert spheres.encode(points).shape == (n, 1)
