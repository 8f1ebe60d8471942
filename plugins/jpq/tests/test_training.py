"""JPQ training: the loss, the frozen-assignment PQ, the effect of training, Ctrl-C, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from embedlab_jpq import FrozenPQ, JPQCompressor, relevant_positions, training
from embedlab_jpq.loss import candidate_lists, pairwise_lambda_loss
from embedlab_jpq.training import ndcg_at_10

import embedlab
from embedlab import InvalidInputError, NotFittedError


def train_ndcg(compressor: JPQCompressor, docs: np.ndarray, queries: np.ndarray, relevant: list) -> float:
    return ndcg_at_10(np.argsort(-compressor.score(queries, compressor.encode(docs)), axis=1), relevant)


def test_pairwise_loss_matches_the_formula_by_hand() -> None:
    scores = torch.tensor([[0.5, 0.9, 0.1, 0.0]])
    labels = torch.tensor([[False, True, False, False]])
    valid = torch.tensor([[True, True, True, False]])  # the last slot is padding
    # ranks 1..3; relevant at rank 2; irrelevant at ranks 1 and 3; no cut
    expected = (math.log1p(math.exp(0.5 - 0.9)) * abs(1 - 1 / 2)
                + math.log1p(math.exp(0.1 - 0.9)) * abs(1 / 3 - 1 / 2)) / 2
    assert float(pairwise_lambda_loss(scores, labels, valid, lambda_cut=0)) == pytest.approx(expected, rel=1e-6)
    # lambda_cut=1: only rank 1 keeps its weight
    cut = (math.log1p(math.exp(0.5 - 0.9)) * 1 + math.log1p(math.exp(0.1 - 0.9)) * 0) / 2
    assert float(pairwise_lambda_loss(scores, labels, valid, lambda_cut=1)) == pytest.approx(cut, rel=1e-6)


def test_candidate_lists_append_missing_relevant_documents() -> None:
    positions, labels, valid = candidate_lists(torch.tensor([[4, 2, 7], [1, 3, 5]]), [[7, 9], [3]])
    assert positions.tolist() == [[4, 2, 7, 9], [1, 3, 5, 0]]
    assert labels.tolist() == [[False, False, True, True], [False, True, False, False]]
    assert valid.tolist() == [[True, True, True, True], [True, True, True, False]]


def test_frozen_pq_scores_match_core_codebooks_and_gradients_reach_only_used_centroids(
        trained: JPQCompressor, docs: np.ndarray) -> None:
    books = trained.codebooks
    codes = trained.encode(docs[:5])
    pq = FrozenPQ(books.centroids, codes)
    query = torch.from_numpy(docs[10:12])
    scores = pq.candidate_scores(query, torch.tensor([[0, 1, 2], [3, 4, 0]]))
    expected = books.scores(docs[10:12], codes)
    np.testing.assert_allclose(scores.detach().numpy(), expected[[[0], [1]], [[0, 1, 2], [3, 4, 0]]], rtol=1e-5)
    found = pq.search(query, 5).numpy()
    np.testing.assert_allclose(np.take_along_axis(expected, found, 1), -np.sort(-expected, axis=1), rtol=1e-5)
    scores.sum().backward()
    used = np.zeros(books.centroids.shape[:2], bool)
    used[np.arange(books.m)[None, :], codes] = True
    touched = pq.centroids.grad.abs().sum(dim=2).numpy() > 0
    assert (touched == used).all()


def test_training_lowers_the_loss_and_improves_train_ranking(docs: np.ndarray, labelled: tuple, fast: dict) -> None:
    queries, relevant = labelled
    fast = {**fast, "query_adapter": False}  # the centroids alone
    plain = JPQCompressor(**fast).fit(docs)
    books = plain.codebooks
    codes = plain.encode(docs)
    q = torch.from_numpy(queries)
    positions, labels, valid = candidate_lists(FrozenPQ(books.centroids, codes).search(q, 50), relevant)

    def fixed_list_loss(centroids: np.ndarray) -> float:
        scores = FrozenPQ(centroids, codes).candidate_scores(q, positions) / fast["temperature"]
        return float(pairwise_lambda_loss(scores, labels, valid, fast["lambda_cut"]).detach())

    before = train_ndcg(plain, docs, queries, relevant)
    jpq = JPQCompressor(**fast).fit(docs).train(docs, queries, relevant)
    assert fixed_list_loss(jpq.codebooks.centroids) < 0.8 * fixed_list_loss(books.centroids)
    assert train_ndcg(jpq, docs, queries, relevant) > before + 0.05
    np.testing.assert_array_equal(jpq.encode(docs), codes)  # assignments stay frozen
    assert jpq.query_adapter is None


def test_the_query_adapter_generalises_to_unseen_documents(fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    """Queries are a fixed linear distortion of their document: training on queries about the first
    half of the corpus must improve queries about the other half (documents training never saw)
    with the query map, which centroid training alone cannot do."""
    docs = make_vectors(1000)
    rng = np.random.default_rng(3)
    distortion = np.eye(32) + 1.5 * rng.standard_normal((32, 32)) / np.sqrt(32)

    def queries_for(targets: np.ndarray) -> np.ndarray:
        q = docs[targets] @ distortion.T + 0.05 * rng.standard_normal((len(targets), 32)) / np.sqrt(32)
        return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)

    seen, unseen = np.arange(0, 500), np.arange(500, 1000)
    train_q, test_q = queries_for(seen), queries_for(unseen)
    train_rel, test_rel = [[int(t)] for t in seen], [[int(t)] for t in unseen]
    plain = JPQCompressor(**fast).fit(docs)
    joint = JPQCompressor(**fast).fit(docs).train(docs, train_q, train_rel)
    centroids_only = JPQCompressor(**{**fast, "query_adapter": False}).fit(docs).train(docs, train_q, train_rel)
    after = train_ndcg(joint, docs, test_q, test_rel)
    assert after > train_ndcg(plain, docs, test_q, test_rel) + 0.05
    assert after > train_ndcg(centroids_only, docs, test_q, test_rel) + 0.05


def test_training_record_without_held_out_queries(trained: JPQCompressor) -> None:
    record = trained.training_record
    assert record["trained"] and record["queries"] == 200 and record["best_epoch"] == 10
    assert len(record["losses"]) == 10 and record["validation_ndcg10"] == []


def test_early_stopping_keeps_the_best_held_out_epoch(docs: np.ndarray, labelled: tuple, fast: dict) -> None:
    queries, relevant = labelled
    params = {**fast, "validation_fraction": 0.2, "patience": 2}
    jpq = JPQCompressor(**params).train(docs, queries, relevant)
    record = jpq.training_record
    validation, best = record["validation_ndcg10"], record["best_epoch"]
    assert len(validation) == len(record["losses"]) + 1 == min(params["epochs"], best + params["patience"]) + 1
    assert validation[best] == max(validation)
    plain = JPQCompressor(**params).fit(docs).codebooks.centroids
    assert np.array_equal(jpq.codebooks.centroids, plain) == (best == 0)


def test_ctrl_c_leaves_the_compressor_unchanged(docs: np.ndarray, labelled: tuple, fast: dict,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    queries, relevant = labelled
    calls = {"n": 0}
    original = training.live_index_loss

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "live_index_loss", interrupted)
    fresh = JPQCompressor(**fast)
    with pytest.raises(KeyboardInterrupt):
        fresh.train(docs, queries, relevant)
    with pytest.raises(NotFittedError):
        fresh.encode(docs)
    fitted = JPQCompressor(**fast).fit(docs)
    centroids = fitted.codebooks.centroids.copy()
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        fitted.train(docs, queries, relevant)
    np.testing.assert_array_equal(fitted.codebooks.centroids, centroids)
    assert fitted.training_record == {"trained": False} and fitted.query_adapter is None


def test_training_is_deterministic_and_leaves_global_rng_alone(docs: np.ndarray, labelled: tuple,
                                                               fast: dict) -> None:
    queries, relevant = labelled
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    first = JPQCompressor(**fast).train(docs, queries, relevant)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = JPQCompressor(**fast).train(docs, queries, relevant)
    other = JPQCompressor(**{**fast, "seed": 3}).train(docs, queries, relevant)
    np.testing.assert_array_equal(first.codebooks.centroids, second.codebooks.centroids)
    np.testing.assert_array_equal(first.query_adapter, second.query_adapter)
    np.testing.assert_array_equal(first.encode(docs), second.encode(docs))
    assert not np.array_equal(first.codebooks.centroids, other.codebooks.centroids)


def test_relevant_positions_and_bad_labels(docs: np.ndarray, labelled: tuple, fast: dict) -> None:
    qrels = {"q1": {"d2": 1, "d0": 2, "gone": 1}, "q2": {"d1": 0}}
    assert relevant_positions(["q1", "q2", "q3"], qrels, ["d0", "d1", "d2"]) == [[0, 2], [], []]
    queries, relevant = labelled
    jpq = JPQCompressor(**fast)
    with pytest.raises(InvalidInputError, match="one list of relevant document positions per query"):
        jpq.train(docs, queries, relevant[:-1])
    with pytest.raises(InvalidInputError, match=r"relevant\[1\].*outside the 400 documents"):
        jpq.train(docs, queries[:2], [[0], [400]])
    with pytest.raises(InvalidInputError, match="no training query has a relevant document"):
        jpq.train(docs, queries[:2], [[], []])
    bad = queries.copy()
    bad[7, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 7"):
        jpq.train(docs, bad, relevant)


def test_a_pipeline_with_a_training_split_trains_the_centroids(docs, labelled, fast) -> None:
    """fit_queries (what a pipeline calls given [dataset] train_split) equals fit + train by hand."""
    queries, relevant = labelled
    corpus = embedlab.Corpus([f"d{i}" for i in range(len(docs))], [""] * len(docs))
    split = embedlab.Split("train", embedlab.Queries([f"q{i}" for i in range(len(queries))], [""] * len(queries)),
                           {f"q{i}": {f"d{p}": 1 for p in rows} for i, rows in enumerate(relevant)})
    data = embedlab.TrainingData(corpus, split, queries, docs)
    ours = JPQCompressor(**fast).fit_queries(data)
    by_hand = JPQCompressor(**fast).fit(docs).train(docs, queries, relevant)
    np.testing.assert_array_equal(ours.codebooks.centroids, by_hand.codebooks.centroids)
    np.testing.assert_array_equal(ours.query_adapter, by_hand.query_adapter)
    assert ours.training_record["trained"]


def test_an_interrupted_pipeline_training_keeps_the_previous_state(docs, labelled, fast, monkeypatch) -> None:
    queries, relevant = labelled
    jpq = JPQCompressor(**fast).fit(docs)
    before = jpq.codebooks.centroids.copy()
    corpus = embedlab.Corpus([f"d{i}" for i in range(len(docs))], [""] * len(docs))
    split = embedlab.Split("train", embedlab.Queries(["q0"], [""]), {"q0": {"d0": 1}})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(jpq, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jpq.fit_queries(embedlab.TrainingData(corpus, split, queries[:1], docs))
    np.testing.assert_array_equal(jpq.codebooks.centroids, before)


def test_controls_map_alone_and_map_trained_against_float_vectors(fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    """The supervised controls of the query map: trained on the frozen initial codes (no centroid
    training), or against the uncompressed vectors and then served on the codes."""
    docs = make_vectors(600)
    rng = np.random.default_rng(5)
    distortion = np.eye(32) + 1.5 * rng.standard_normal((32, 32)) / np.sqrt(32)
    targets = np.arange(0, 600, 2)
    q = docs[targets] @ distortion.T
    queries = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    relevant = [[int(t)] for t in targets]
    plain = JPQCompressor(**fast).fit(docs)
    alone = JPQCompressor(**fast, train_centroids=False).fit(docs).train(docs, queries, relevant)
    on_float = JPQCompressor(**fast, train_centroids=False, train_against="float").fit(docs)
    on_float.train(docs, queries, relevant)
    for control in (alone, on_float):
        np.testing.assert_array_equal(control.codebooks.centroids, plain.codebooks.centroids)
        assert control.query_adapter is not None
        assert train_ndcg(control, docs, queries, relevant) > train_ndcg(plain, docs, queries, relevant) + 0.05
    # the float-trained map ranks the float vectors well: W q against the documents themselves
    mapped = queries @ on_float.query_adapter.T
    exact = np.argsort(-(mapped @ docs.T), axis=1)[:, :10]
    before = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    hits = [np.mean([t in row for row, t in zip(ranked, targets)]) for ranked in (exact, before)]
    assert hits[0] > hits[1] + 0.05
    with pytest.raises(embedlab.ConfigError, match="no centroids to train"):
        JPQCompressor(**fast, train_against="float")
    with pytest.raises(embedlab.ConfigError, match="nothing to train"):
        JPQCompressor(**fast, train_centroids=False, query_adapter=False)
