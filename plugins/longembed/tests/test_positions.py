"""Position ids, interpolated tables and parallel windows against the paper's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_longembed.positions import (
    grouped_positions,
    interpolated_table,
    parallel_windows,
    recurrent_positions,
)


def test_grouped_positions_stay_in_the_window() -> None:
    assert grouped_positions(8, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert grouped_positions(4, 4).tolist() == [0, 1, 2, 3]  # fits: unchanged
    for n in (5, 257, 1000, 2049):
        ids = grouped_positions(n, 256)
        assert ids.max() < 256 and (np.diff(ids) >= 0).all() and ids[0] == 0


def test_recurrent_positions_wrap() -> None:
    assert recurrent_positions(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_interpolated_table_keeps_the_anchors_exactly() -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((16, 5)).astype(np.float32)
    out = interpolated_table(table, 8, 4)
    assert out.shape == (32, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out[::4], table[:8])  # bit for bit
    np.testing.assert_allclose(out[1], 0.75 * table[0] + 0.25 * table[1], rtol=1e-6)
    np.testing.assert_allclose(out[6], 0.5 * table[1] + 0.5 * table[2], rtol=1e-6)
    np.testing.assert_array_equal(out[29:], np.repeat(table[7:8], 3, axis=0))  # past the last row: clamped
    with pytest.raises(ValueError):
        interpolated_table(table, 17, 2)


@pytest.mark.parametrize("n, window, expected", [
    (3, 4, [(0, 3)]),
    (8, 4, [(0, 4), (4, 8)]),
    (9, 4, [(0, 4), (4, 8), (5, 9)]),  # the last window is the last 4 tokens
    (10, 3, [(0, 3), (3, 6), (6, 9), (7, 10)]),
])
def test_parallel_windows(n: int, window: int, expected: list) -> None:
    assert parallel_windows(n, window) == expected
