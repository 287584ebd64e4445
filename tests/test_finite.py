"""The one-pass finite check that guards every array a catalogue hands up (re-ranking vectors, embeddings)."""

from __future__ import annotations

import numpy as np
import pytest

from swimsearch.stores.integrity import FINITE_CHUNK, all_finite


@pytest.mark.parametrize("dtype", ["<f2", "<f4", "<f8", ">f2", ">f4", np.longdouble, np.complex64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_single_value_that_is_not_finite_is_found_wherever_it_is(dtype, bad):
    values = np.ones((FINITE_CHUNK // 64 + 3, 128), dtype)  # more than one chunk, with a short last one
    assert all_finite(values)
    for at in (0, FINITE_CHUNK - 1, FINITE_CHUNK, values.size - 1):
        spoilt = values.copy()
        spoilt.reshape(-1)[at] = bad
        assert not all_finite(spoilt), (dtype, bad, at)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_extreme_finite_values_pass(dtype):
    info = np.finfo(dtype)
    assert all_finite(np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0, 0.0], dtype))
    assert all_finite(np.empty((0, 128), dtype))
    assert all_finite(np.arange(12, dtype=np.int64))  # integers are always finite


def test_a_strided_view_is_checked_by_its_own_values():
    values = np.ones((10, 10), np.float32)
    values[:, 1] = np.nan
    assert all_finite(values[:, ::2]) and not all_finite(values[:, 1::2])
