"""The decoder's memory: token states pooled over contiguous runs, padded batches."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from embedlab_dsi.model import TokenMemory


def test_token_states_are_averaged_over_contiguous_runs_and_batched_with_a_mask():
    tokens = np.arange(20, dtype=np.float32).reshape(10, 2)
    hidden = SimpleNamespace(tokens=tokens, offsets=np.array([0, 3, 10]))
    pooled = TokenMemory.from_hidden(hidden, segments=2)
    np.testing.assert_array_equal(pooled.offsets, [0, 2, 4])
    np.testing.assert_allclose(pooled.tokens, [tokens[:1].mean(0), tokens[1:3].mean(0), tokens[3:6].mean(0),
                                               tokens[6:10].mean(0)])
    everything = TokenMemory.from_hidden(hidden)
    assert len(everything) == 2 and everything.tokens.shape == (10, 2)
    short = TokenMemory.from_hidden(hidden, segments=5)  # the 3-token text keeps its 3 tokens
    np.testing.assert_array_equal(np.diff(short.offsets), [3, 5])
    states, mask = pooled.batch([1, 0])
    assert states.shape == (2, 2, 2) and mask.all()
    states, mask = everything.batch([0, 1])
    assert states.shape == (2, 7, 2) and mask.sum(1).tolist() == [3, 7] and float(states[0, 3:].abs().sum()) == 0
