"""The learned predictor: seeded training, early stopping, Ctrl-C, save/load and bad training input."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_dime import Dime
from embedlab_dime import predictor as predictor_module

import embedlab
from embedlab.dataset import Split
from embedlab.errors import InvalidInputError, StateError

FAST = {"estimator": "learned", "hidden": 64, "epochs": 60, "patience": 4, "lr": 3e-3, "batch_size": 16,
        "seed": 3, "depth": 20}


@pytest.fixture(scope="module")
def fitted(make, dataset, train_ranking):
    return make(**FAST).fit(train_ranking, dataset.split("train"), dataset.corpus)


def test_same_seed_same_predictor_other_seed_other_predictor(make, dataset, train_ranking, fitted):
    again = make(**FAST).fit(train_ranking, dataset.split("train"), dataset.corpus)
    for name in fitted.weights:
        np.testing.assert_array_equal(again.weights[name], fitted.weights[name])
    assert again.history == fitted.history
    other = make(**{**FAST, "seed": 4}).fit(train_ranking, dataset.split("train"), dataset.corpus)
    assert not np.array_equal(other.weights["w1"], fitted.weights["w1"])


def synthetic(n: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Queries whose oracle importance is a fixed linear function of the query: learnable."""
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(n, dim)).astype(np.float32)
    return queries, np.tanh(queries @ rng.normal(size=(dim, dim)) / 4)


def test_training_lowers_the_held_out_loss_and_stops_early():
    queries, oracle = synthetic(400)
    config = Dime.Config(estimator="learned", hidden=32, epochs=300, patience=3, lr=3e-3, temperature=0.1)
    weights, history = predictor_module.train_predictor(queries, oracle, config)
    assert min(history["held_out"]) < 0.5 * history["initial_held_out"][0]
    assert len(history["held_out"]) < 300
    best = int(np.argmin(history["held_out"]))
    assert len(history["held_out"]) - 1 - best >= 3  # stopped `patience` epochs after the best one
    logits = predictor_module.predict(weights, queries[:50])
    agreement = np.mean([len(set(np.argsort(-p)[:4]) & set(np.argsort(-o)[:4])) / 4
                         for p, o in zip(logits, oracle[:50])])
    assert agreement > 0.5  # the top dimensions it predicts are mostly the oracle's (chance: 0.25)


def test_fit_on_real_data_lowers_the_training_loss(fitted):
    assert fitted.history["train"][-1] < fitted.history["train"][0]


def test_learned_mask_follows_the_predictor(fitted, make, dataset, test_ranking, encoder):
    reranker = make(**{**FAST, "keep_fraction": 0.25})
    reranker.weights = fitted.weights
    out = reranker.rerank(test_ranking, dataset.split("test").queries, dataset.corpus)
    q = encoder.encode_queries([dataset.split("test").queries.texts[0]])[0]
    w = fitted.weights
    logits = np.maximum(w["w1"] @ q + w["b1"], 0) @ w["w2"].T + w["b2"]
    kept = np.argsort(-logits, kind="stable")[:96]
    docs = reranker.document_vectors(reranker_positions(dataset, test_ranking.doc_ids[0, :20]), dataset.corpus)
    scores = docs[:, kept] @ q[kept]
    assert list(out.doc_ids[0, :20]) == list(test_ranking.doc_ids[0, :20][np.argsort(-scores, kind="stable")])


def reranker_positions(dataset, ids) -> np.ndarray:
    return np.asarray([dataset.corpus.position[d] for d in ids], dtype=np.int64)


def test_save_load_round_trip(fitted, tmp_path, dataset, test_ranking):
    fitted.save(tmp_path / "dime")
    loaded = Dime.load(tmp_path / "dime")
    assert loaded.config == fitted.config and loaded.history == fitted.history
    for name in fitted.weights:
        np.testing.assert_array_equal(loaded.weights[name], fitted.weights[name])
    loaded.use_cache(fitted._disk_cache)
    queries = dataset.split("test").queries
    a, b = fitted.rerank(test_ranking, queries, dataset.corpus), loaded.rerank(test_ranking, queries, dataset.corpus)
    np.testing.assert_array_equal(a.doc_ids, b.doc_ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    (tmp_path / "dime" / "w1.npy").write_bytes(b"edited")
    with pytest.raises(StateError):
        Dime.load(tmp_path / "dime")


def test_ctrl_c_leaves_the_predictor_unchanged(fitted, make, dataset, train_ranking, monkeypatch):
    reranker = make(**FAST)
    reranker.weights, reranker.history = dict(fitted.weights), dict(fitted.history)
    calls = {"n": 0}
    loss = predictor_module._loss

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return loss(*args)
    monkeypatch.setattr(predictor_module, "_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reranker.fit(train_ranking, dataset.split("train"), dataset.corpus)
    assert reranker.weights == fitted.weights and reranker.history == fitted.history


def test_training_without_qrels_or_with_unlabelled_queries_is_an_error(make, dataset, train_ranking):
    split = dataset.split("train")
    with pytest.raises(InvalidInputError, match="split 'train' has no qrels"):
        make(**FAST).fit(train_ranking, Split("train", split.queries, {}), dataset.corpus)
    partial = {q: g for q, g in split.qrels.items() if q != train_ranking.query_ids[1]}
    with pytest.raises(InvalidInputError, match="has no relevance labels"):
        make(**FAST).fit(train_ranking, Split("train", split.queries, partial), dataset.corpus)


def test_a_pipeline_with_a_training_split_trains_the_learned_predictor(cache, dataset, train_ranking):
    train = dataset.split("train")
    train = Split("train", train.queries.select(train_ranking.query_ids.tolist()), train.qrels)
    pipeline = embedlab.Pipeline.from_names(
        encoder={"name": "minilm", "num_threads": 1, "show_progress": False}, index="exact", cache=cache,
        reranker={"name": "dime", "encoder_params": {"num_threads": 1, "show_progress": False}, "num_threads": 1,
                  **FAST})
    pipeline.build(dataset.corpus, train=train)
    assert pipeline.timings.fit_reranker_s > 0
    trained = {name: array.copy() for name, array in pipeline.reranker.weights.items()}
    direct = pipeline.reranker.fit(train_ranking, train, dataset.corpus)  # the same first stage, by hand
    for name, array in direct.weights.items():
        np.testing.assert_allclose(trained[name], array, rtol=1e-5, atol=1e-6)
    prf = embedlab.create("reranker", "dime", estimator="prf", encoder_params={"show_progress": False})
    assert prf.fit_queries(embedlab.TrainingData(dataset.corpus, train)) is prf and prf.weights is None


def test_global_control_is_one_mask_from_the_mean_training_oracle(make, dataset, train_ranking, test_ranking,
                                                                   tmp_path):
    """The supervised control: the same oracle targets, averaged into one query-independent mask."""
    train = dataset.split("train")
    control = make(estimator="global", keep_fraction=0.25, depth=20).fit(train_ranking, train, dataset.corpus)
    oracle = make(estimator="oracle", depth=20)
    positions = reranker_positions(dataset, train_ranking.doc_ids[:, :20].ravel()).reshape(-1, 20)
    vectors = oracle.query_vectors(train_ranking, train.queries)
    expected = oracle.oracle(vectors, train_ranking, positions, train.qrels, dataset.corpus).mean(axis=0)
    np.testing.assert_allclose(control.weights["global_importance"], expected, rtol=1e-5)
    queries = dataset.split("test").queries
    out = control.rerank(test_ranking, queries, dataset.corpus)
    kept = np.argsort(-expected, kind="stable")[:96]
    query_vectors = control.query_vectors(test_ranking, queries)
    masked = np.zeros_like(query_vectors)
    masked[:, kept] = query_vectors[:, kept]
    docs = control.document_vectors(reranker_positions(dataset, out.doc_ids[0, :20]), dataset.corpus)
    np.testing.assert_allclose(out.scores[0, :20], docs @ masked[0], rtol=1e-4, atol=1e-5)
    control.save(tmp_path / "global")
    loaded = Dime.load(tmp_path / "global")
    loaded.use_cache(control._disk_cache)
    np.testing.assert_array_equal(loaded.rerank(test_ranking, queries, dataset.corpus).doc_ids, out.doc_ids)
    with pytest.raises(embedlab.NotFittedError, match="global estimator is not trained"):
        make(estimator="global").rerank(test_ranking, queries, dataset.corpus)
