"""The search's hand-made small steps give NumPy's own answers bit for bit (round 18 made them for speed):
a score a user reads must not move by a last bit because a step was made cheaper."""

from __future__ import annotations

import numpy as np
import pytest

from swimsearch.augment import l2_normalise, unit_rows, weighted_mean
from swimsearch.decisions import among
from swimsearch.index import row_lookup, unique_ids
from swimsearch.ranking import _rowwise


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # float16 squares overflow, a NaN row: as NumPy's own
def test_unit_rows_is_numpys_norm_bit_for_bit():
    rng = np.random.default_rng(3)
    for dtype in (np.float16, np.float32, np.float64):
        x = (rng.standard_normal((37, 129)) * rng.choice([1e-30, 1.0, 1e3], (37, 1))).astype(dtype)
        x[3] = 0.0  # a zero row stays zero
        x[5, 7] = np.nan
        want = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        got = unit_rows(x)
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(l2_normalise(np.arange(6).reshape(2, 3)), unit_rows(np.arange(6, dtype=np.float32).reshape(2, 3)))


def test_a_missing_neighbour_weighs_nothing_and_an_infinite_one_as_one():
    own = np.eye(4, dtype=np.float32)[:1]
    others = np.eye(4, dtype=np.float32)[1:4][None]
    missing = weighted_mean(own, others, np.array([[np.nan, 0.5, -np.inf]], np.float32), 3.0)
    only_one = weighted_mean(own, others[:, 1:2], np.array([[0.5]], np.float32), 3.0)
    assert np.array_equal(missing, only_one) and missing[0, 1] == 0.0 and missing[0, 3] == 0.0
    capped = weighted_mean(own, others[:, :1], np.array([[np.inf]], np.float32), 3.0)
    assert np.allclose(capped, [[2**-0.5, 2**-0.5, 0.0, 0.0]])


def test_membership_and_unique_ids_are_numpys():
    rng = np.random.default_rng(4)
    for n in range(0, 14):
        ids = rng.integers(0, 30, 50)
        values = rng.integers(0, 30, n).tolist()
        assert np.array_equal(among(ids, values), np.isin(ids, np.array(values, np.int64)))
        assert np.array_equal(among(ids, set(values)), np.isin(ids, np.array(values, np.int64)))
        assert np.array_equal(unique_ids(ids[:n]), np.unique(ids[:n]))


def test_row_lookup_maps_every_id_outside_to_minus_one():
    lookup = row_lookup(np.array([1, 2, 5, 9], np.int64))
    asked = np.array([-(2**63), -1, 0, 1, 5, 9, 10, 2**40, 2**63 - 1], np.int64)
    assert lookup(asked).tolist() == [-1, -1, -1, 0, 2, 3, -1, -1, -1]
    assert row_lookup(np.zeros(0, np.int64))(np.array([0, 3])).tolist() == [-1, -1]


def test_rowwise_products_are_the_float64_ones_row_by_row():
    rng = np.random.default_rng(5)
    rows, queries = rng.standard_normal((40, 300)).astype(np.float32), rng.standard_normal((2, 300)).astype(np.float32)
    want = np.stack([(rows.astype(np.float64) * q).sum(axis=1) for q in queries.astype(np.float64)], axis=1)
    assert np.array_equal(_rowwise(rows, queries), want)
    assert np.array_equal(_rowwise(rows, queries[:1]), want[:, :1])
    assert np.array_equal(_rowwise(rows[:7], queries[:1])[:, 0], want[:7, 0])  # a row scores the same in any batch
    assert _rowwise(rows[:0], queries).shape == (0, 2)
