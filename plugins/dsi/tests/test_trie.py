"""Constrained beam search against brute-force enumeration of every document id."""

from __future__ import annotations

import numpy as np
import torch
from embedlab_dsi import DocidTrie, beam_search, naive_ids, semantic_ids

from embedlab.testing import clustered_unit_vectors


def random_step(vocab: int, seed: int):
    """A fixed 'model': the logits depend on the query and the whole prefix (seeded by them)."""

    def logits(query: int, prefix: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng([seed, query, len(prefix), *prefix])
        return 3.0 * rng.standard_normal(vocab)

    def step(rows: np.ndarray, prefixes: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.stack([logits(int(q), tuple(p.tolist())) for q, p in zip(rows, prefixes)]))

    return logits, step


def brute_force(trie: DocidTrie, codes, logits, query: int) -> list[tuple[int, float]]:
    """Every document's log-probability under the renormalised (allowed tokens only) model."""
    scored = []
    for p, code in enumerate(codes):
        total = 0.0
        for t in range(len(code)):
            values = np.where(trie.allowed(code[:t]), logits(query, code[:t]), -np.inf)
            total += values[code[t]] - np.log(np.exp(values - values.max()).sum()) - values.max()
        scored.append((p, total))
    return sorted(scored, key=lambda item: -item[1])


def test_exhaustive_beam_equals_brute_force_and_probabilities_sum_to_one():
    ids = semantic_ids(clustered_unit_vectors(90, 8, clusters=4, seed=0), k=3, c=6)  # ragged depths
    assert len({len(c) for c in ids.codes}) > 1
    trie = DocidTrie(ids)
    logits, step = random_step(ids.vocab, seed=3)
    found = beam_search(trie, 4, step, beam=len(ids))
    for q in range(4):
        expected = brute_force(trie, ids.codes, logits, q)
        assert [p for p, _ in found[q]] == [p for p, _ in expected]
        np.testing.assert_allclose([s for _, s in found[q]], [s for _, s in expected], atol=1e-9)
        assert abs(sum(np.exp(s) for _, s in found[q]) - 1.0) < 1e-9


def test_narrow_beam_returns_valid_documents_best_first():
    ids = naive_ids(250)
    trie = DocidTrie(ids)
    logits, step = random_step(ids.vocab, seed=5)
    found = beam_search(trie, 3, step, beam=8)
    for q, row in enumerate(found):
        assert len(row) == 8 and len({p for p, _ in row}) == 8
        assert all(0 <= p < 250 for p, _ in row)
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True)
        exact = dict(brute_force(trie, ids.codes, logits, q))
        np.testing.assert_allclose(scores, [exact[p] for p, _ in row], atol=1e-9)  # true log-probabilities
