"""CoRNStack's dual consistency filter and softmax negative sampler with a temperature curriculum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_cornstack import DualConsistency, SoftmaxNegatives, gumbel_top_k
from embedlab_train import Candidates, TrainingContext, TrainingSet
from embedlab_train.testing import TOPICS

import embedlab
from embedlab.cache import EmbeddingCache


def noisy_pairs(noise: float = 0.2, seed: int = 0) -> tuple[TrainingSet, np.ndarray]:
    """A query per topic with its code snippet; a ``noise`` share of the pairs get another topic's
    snippet (CoRNStack's mislabelled pairs). Returns the set and which pairs are wrong."""
    rng = np.random.default_rng(seed)
    n = len(TOPICS)
    positives = np.arange(n)
    wrong = np.zeros(n, dtype=bool)
    wrong[rng.permutation(n)[:round(noise * n)]] = True
    positives[wrong] = [(i + 1 + rng.integers(n - 1)) % n for i in np.flatnonzero(wrong)]
    data = TrainingSet.from_pairs([f"how do i {t} in python" for t in TOPICS], [f"def helper(): {t}" for t in TOPICS],
                                  list(zip(range(n), positives.tolist())))
    return data, wrong


def test_dual_consistency_removes_injected_wrong_positives_and_keeps_clean_pairs(tmp_path):
    """20 % of the pairs get a wrong positive; zero-shot MiniLM ranks every clean positive first with
    cosines 0.64-0.87, so top 2 with a score of at least 0.6 keeps them."""
    data, wrong = noisy_pairs()
    context = TrainingContext(data, 384, torch.device("cpu"), 0, EmbeddingCache(tmp_path))
    keep = DualConsistency(first_stage={"encoder": {"name": "minilm", "show_progress": False}}, top_k=2,
                           min_score=0.6).keep(context)
    assert (~keep[wrong]).mean() >= 0.8 and (~keep[~wrong]).mean() <= 0.1


def test_both_criteria_must_hold(monkeypatch):
    data = TrainingSet.from_pairs(["a", "b", "c", "d"], [f"d{i}" for i in range(6)], [(0, 0), (1, 1), (2, 2), (3, 3)])
    # query 0: positive first, 0.9 (kept); query 1: first but 0.5 (score fails); query 2: third, 0.95
    # (rank fails); query 3: second, 0.71 (kept)
    ranked = Candidates(np.array([[0, 4], [1, 5], [4, 5], [5, 3]]),
                        np.array([[0.9, 0.2], [0.5, 0.4], [0.97, 0.96], [0.8, 0.71]], dtype=np.float32))
    monkeypatch.setattr(TrainingContext, "candidates", lambda self, first_stage, depth: ranked)
    context = TrainingContext(data, 8, torch.device("cpu"), 0, None)
    pair_filter = DualConsistency(top_k=2, min_score=0.7)
    rank_ok, score_ok = pair_filter.criteria(context)
    assert rank_ok.tolist() == [True, True, False, True] and score_ok.tolist() == [True, False, False, True]
    assert pair_filter.keep(context).tolist() == [True, False, False, True]
    assert DualConsistency(top_k=2, min_score=None).keep(context).tolist() == [True, True, False, True]


def test_gumbel_top_k_samples_the_softmax_without_replacement():
    scores = np.array([2.0, 1.0, 0.5, 0.0, -1.0])
    rng = np.random.default_rng(0)
    assert gumbel_top_k(scores, 3, 0.0, rng).tolist() == [0, 1, 2]
    first = np.bincount([gumbel_top_k(scores, 1, 0.5, rng)[0] for _ in range(20000)], minlength=5) / 20000
    expected = np.exp(scores / 0.5) / np.exp(scores / 0.5).sum()
    assert np.abs(first - expected).max() < 0.01
    draws = [gumbel_top_k(scores, 3, 0.5, rng) for _ in range(200)]
    assert all(len(set(d.tolist())) == 3 for d in draws)


def candidates_context(monkeypatch, n_queries: int = 50, depth: int = 60) -> TrainingContext:
    """Queries whose positive (document q) the first stage ranks at 3; candidates ranked by falling scores."""
    n_docs = n_queries + depth
    data = TrainingSet.from_pairs([f"q{i}" for i in range(n_queries)], [f"d{j}" for j in range(n_docs)],
                                  [(i, i) for i in range(n_queries)])
    rng = np.random.default_rng(1)
    positions = np.stack([rng.permutation(np.arange(n_queries, n_docs))[:depth] for _ in range(n_queries)])
    positions[:, 3] = np.arange(n_queries)
    scores = np.tile(np.linspace(0.9, 0.1, depth, dtype=np.float32), (n_queries, 1))
    monkeypatch.setattr(TrainingContext, "candidates", lambda self, first_stage, d: Candidates(positions[:, :d],
                                                                                              scores[:, :d]))
    return TrainingContext(data, 8, torch.device("cpu"), 0, None)


def test_sampled_negative_rank_rises_with_temperature_and_zero_is_the_top(monkeypatch):
    context = candidates_context(monkeypatch)
    temperatures = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]
    sampler = SoftmaxNegatives(count=4, depth=60, temperatures=temperatures)
    sampler.prepare(context)
    mean_ranks = []
    for epoch, _ in enumerate(temperatures):
        negatives = sampler.sample(context, epoch, np.random.default_rng([0, epoch]))
        ranks = [[sampler._candidates.rank_of(q, n) for n in row] for q, row in enumerate(negatives.tolist())]
        assert min(min(r) for r in ranks) > 3           # nothing at or above the positive's rank
        assert not any(q in row for q, row in enumerate(negatives.tolist()))
        mean_ranks.append(float(np.mean(ranks)))
    assert mean_ranks[0] == 5.5                         # tau = 0: ranks 4, 5, 6, 7 (the top 4 below the positive)
    assert all(a < b for a, b in zip(mean_ranks, mean_ranks[1:])), mean_ranks
    assert sampler.temperature(99) == 1.0


def test_without_dropping_candidates_above_the_positive_the_top_ranks_are_drawn(monkeypatch):
    context = candidates_context(monkeypatch)
    sampler = SoftmaxNegatives(count=2, depth=60, temperatures=0.0, drop_above_positive=False)
    sampler.prepare(context)
    negatives = sampler.sample(context, 0, np.random.default_rng(0))
    assert all(sampler._candidates.rank_of(q, n) in (0, 1) for q, row in enumerate(negatives.tolist()) for n in row)


def test_bad_parameters_and_too_few_documents_are_named(monkeypatch):
    with pytest.raises(embedlab.ConfigError, match="temperatures"):
        embedlab.create("negatives", "softmax", temperatures=[0.1, -1])
    with pytest.raises(embedlab.ConfigError, match="top_k"):
        embedlab.create("pair-filter", "dual-consistency", top_k=0)
    data = TrainingSet.from_pairs(["q0"], ["d0", "d1"], [(0, 0)])
    monkeypatch.setattr(TrainingContext, "candidates",
                        lambda self, first_stage, d: Candidates(np.array([[0, 1]]), np.array([[0.9, 0.1]], np.float32)))
    context = TrainingContext(data, 8, torch.device("cpu"), 0, None)
    sampler = SoftmaxNegatives(count=3, depth=2)
    sampler.prepare(context)
    with pytest.raises(embedlab.InvalidInputError, match="'q0' has only 1"):
        sampler.sample(context, 0, np.random.default_rng(0))
