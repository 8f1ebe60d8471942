"""The optional adapter: InfoNCE + RankNet training, determinism, errors and persistence."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from embedlab_e2rank import E2Rank
from embedlab_e2rank.training import TrainingLists, e2rank_loss

import embedlab
from embedlab.dataset import Split
from embedlab.errors import InvalidInputError, StateError

TRAIN = {"k": 10, "doc_words": 15, "epochs": 15, "batch_size": 16, "validation_fraction": 0.25, "patience": 2}


@pytest.fixture(scope="module")
def fitted(make, dataset, train_ranking) -> E2Rank:
    return make(seed=3, **TRAIN).fit(train_ranking, dataset.split("train"), dataset.corpus)


def test_training_decreases_the_held_out_loss(fitted):
    history = fitted.history
    assert min(history["held_out"]) < 0.95 * history["initial_held_out"][0]
    assert history["train"][-1] < history["train"][0]
    assert fitted.adapter.shape == (384, 384) and not np.allclose(fitted.adapter, np.eye(384))


def test_training_stops_early_on_convergence(make, dataset, train_ranking):
    reranker = make(**{**TRAIN, "epochs": 500, "lr": 1e-2, "patience": 1})
    reranker.fit(train_ranking, dataset.split("train"), dataset.corpus)
    assert len(reranker.history["held_out"]) < 500


def test_a_seed_makes_training_repeatable(fitted, make, dataset, train_ranking):
    again = make(seed=3, **TRAIN).fit(train_ranking, dataset.split("train"), dataset.corpus)
    np.testing.assert_array_equal(again.adapter, fitted.adapter)
    other = make(seed=4, **TRAIN).fit(train_ranking, dataset.split("train"), dataset.corpus)
    assert not np.array_equal(other.adapter, fitted.adapter)


def test_a_split_without_qrels_is_a_clear_error(make, dataset, train_ranking):
    train = dataset.split("train")
    empty = Split("unjudged", train.queries, {})
    reranker = make(**TRAIN)
    with pytest.raises(InvalidInputError, match="split 'unjudged' has no qrels"):
        reranker.fit(train_ranking, empty, dataset.corpus)
    assert reranker.adapter is None


def test_a_ranking_of_other_queries_is_a_clear_error(make, dataset, test_ranking):
    with pytest.raises(InvalidInputError, match="no ranked query of split 'train'"):
        make(**TRAIN).fit(test_ranking, dataset.split("train"), dataset.corpus)


def test_interrupted_training_leaves_the_component_unchanged(fitted, make, dataset, train_ranking, monkeypatch):
    import embedlab_e2rank.reranker as module

    reranker = make(seed=3, **TRAIN)
    reranker.adapter, reranker.history = fitted.adapter.copy(), dict(fitted.history)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(module, "train_adapter", interrupt)
    with pytest.raises(KeyboardInterrupt):
        reranker.fit(train_ranking, dataset.split("train"), dataset.corpus)
    np.testing.assert_array_equal(reranker.adapter, fitted.adapter)


def test_save_load_round_trip(fitted, tmp_path, dataset, test_ranking):
    fitted.save(tmp_path / "e2rank")
    loaded = E2Rank.load(tmp_path / "e2rank")
    assert loaded.config == fitted.config
    np.testing.assert_array_equal(loaded.adapter, fitted.adapter)
    assert loaded.history == fitted.history
    loaded.use_cache(fitted.disk_cache)
    queries = dataset.split("test").queries
    a = fitted.rerank(test_ranking, queries, dataset.corpus)
    b = loaded.rerank(test_ranking, queries, dataset.corpus)
    assert a.doc_ids.tolist() == b.doc_ids.tolist()
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    (tmp_path / "e2rank" / "adapter.npy").write_bytes(b"garbage")
    with pytest.raises(StateError):
        E2Rank.load(tmp_path / "e2rank")


def test_loss_matches_a_hand_computed_value():
    """One list, identity adapter: InfoNCE over {positive, negatives} at t=0.03 plus 2 x the mean
    RankNet term over the pairs with different labels at t=0.1 (the second relevant document is
    left out of the InfoNCE denominator)."""
    docs = torch.nn.functional.normalize(torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]]]), dim=-1)
    query = torch.tensor([[0.8, 0.6]])
    prompt = torch.tensor([[0.0, 1.0]])
    rel = torch.tensor([[2, 1, 0, 0]])
    lists = TrainingLists(query, prompt, docs, rel, torch.ones_like(rel, dtype=torch.bool))
    config = attrs.make_class("C", {"temperature": attrs.field(default=0.03),
                                    "ranknet_temperature": attrs.field(default=0.1),
                                    "ranknet_weight": attrs.field(default=2.0)})()
    q, p = (query @ docs[0].T)[0], (prompt @ docs[0].T)[0]
    info = -torch.log_softmax(q[[0, 2, 3]] / 0.03, dim=0)[0]
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    rank = torch.stack([torch.log1p(torch.exp((p[k] - p[j]) / 0.1)) for j, k in pairs]).mean()
    got = e2rank_loss(torch.eye(2), lists, config)
    assert float(got) == pytest.approx(float(info + 2.0 * rank), rel=1e-5)


def test_a_pipeline_trains_the_adapter_only_when_asked(make, dataset, encoder, cache, train_ranking, fitted):
    train = dataset.split("train")
    train = Split("train", train.queries.select(train_ranking.query_ids.tolist()), train.qrels)
    adapters = []
    for ask in (False, True):
        reranker = make(seed=3, train_adapter=ask, **TRAIN)
        pipeline = embedlab.Pipeline(encoder=encoder, index=embedlab.create("index", "exact"), reranker=reranker,
                                     cache=cache, train_depth=train_ranking.k)
        pipeline.build(dataset.corpus, train=train)
        adapters.append(reranker.adapter)
    assert adapters[0] is None  # training-free unless train_adapter is set
    np.testing.assert_allclose(adapters[1], fitted.adapter, rtol=1e-4, atol=1e-5)  # = fit on the same first stage
