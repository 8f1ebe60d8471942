"""The ``jpq`` retriever: the query encoder trained jointly with the PQ centroids through
embedlab-train's loop (a tiny random BERT with MiniLM's tokenizer; milliseconds per step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from embedlab_jpq import FloatDocuments, FrozenPQ, JPQCompressor, JPQRetriever
from embedlab_jpq.encoder_training import JPQRankingLoss
from embedlab_jpq.training import ndcg_at_10
from embedlab_train.testing import TOPICS, tiny_bert

import embedlab
from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.pipeline import Pipeline


@pytest.fixture(autouse=True, scope="module")
def private_cache(tmp_path_factory):
    """EMBEDLAB_CACHE_DIR in a temporary folder: ``checkpoint_dir="auto"`` runs stay inside."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("embedlab-cache")))
        yield


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def topics() -> Dataset:
    """24 topics x 3 documents; a train query per topic whose relevant documents are another
    topic's (the untrained encoder is wrong), and a test query per topic."""
    ids, texts = [], []
    for t, topic in enumerate(TOPICS):
        ids += [f"t{t}a", f"t{t}b", f"t{t}c"]
        texts += [f"def helper(): how to {topic} in python", f"example code that shows {topic} quickly",
                  f"the standard library way to {topic}"]
    shifted = [(t + 5) % len(TOPICS) for t in range(len(TOPICS))]
    queries = Queries([f"train{t}" for t in range(len(TOPICS))] + [f"test{t}" for t in range(len(TOPICS))],
                      list(TOPICS) + [f"how do i {topic}" for topic in TOPICS])
    qrels = {"train": {f"train{t}": {f"t{s}a": 1, f"t{s}b": 1} for t, s in enumerate(shifted)},
             "test": {f"test{t}": {f"t{s}c": 1} for t, s in enumerate(shifted)}}
    return Dataset("tiny-topics", Corpus(ids, texts), queries, qrels)


@pytest.fixture()
def params(tiny_model) -> dict:
    encoder = {"name": "transformers", "model_path": str(tiny_model), "max_length": 32, "num_threads": 1,
               "show_progress": False}
    return {"encoder": encoder, "m": 4, "ksub": 16, "opq": False, "kmeans_iterations": 10, "epochs": 6, "batch_size": 8,
            "lr": 2e-3, "centroid_lr": 1e-2, "top_k": 30, "warmup_ratio": 0.0, "validation_fraction": 0.0,
            "num_threads": 1, "show_progress": False, "checkpoint_dir": None}


def train_ndcg(retriever: JPQRetriever, dataset: Dataset) -> float:
    split = dataset.split("train")
    ranking = retriever.search(split.queries, k=10)
    return float(embedlab.evaluate(ranking, split.qrels, ["nDCG@10"]).aggregates["nDCG@10"])


def test_untrained_it_is_the_pq_index_searched_with_the_frozen_encoder(params, topics):
    retriever = JPQRetriever(**params)
    retriever.build(topics.corpus)
    assert retriever.training_record == {"trained": False} and retriever.bytes_per_document == 4
    assert retriever.query_encoder is retriever.document_encoder
    docs = retriever.document_encoder.encode_documents(topics.corpus.documents())
    queries = retriever.document_encoder.encode_queries(list(topics.queries.texts))
    compressor = JPQCompressor(m=4, ksub=16, kmeans_iterations=10, num_threads=1).fit(docs)
    expected = np.argsort(-compressor.score(queries, compressor.encode(docs)), axis=1, kind="stable")[:, :5]
    found = retriever.search(topics.queries, k=5)
    np.testing.assert_array_equal(np.vectorize(topics.corpus.position.get)(found.doc_ids), expected)
    shared = JPQRetriever(**params).start_from(compressor)          # one PQ fit shared by several runs
    shared.build(topics.corpus)
    np.testing.assert_array_equal(shared.search(topics.queries, k=5).doc_ids, found.doc_ids)
    with pytest.raises(embedlab.ConfigError, match="start compressor has m=8"):
        JPQRetriever(**params).start_from(JPQCompressor(m=8, ksub=16))


def test_joint_training_moves_the_encoder_and_the_centroids_and_learns(params, topics):
    plain = JPQRetriever(**params)
    plain.build(topics.corpus)
    trained = JPQRetriever(**params)
    trained.build(topics.corpus, train=topics.split("train"))
    record = trained.training_record
    assert record["trained"] and record["steps"] == 6 * 3 and record["train_queries"] == 24
    assert record["losses"][-1] < record["losses"][0]
    assert not np.allclose(trained.compressor.codebooks.centroids, plain.compressor.codebooks.centroids)
    np.testing.assert_array_equal(trained.compressor.encode(np.zeros((1, 32), np.float32)),
                                  plain.compressor.encode(np.zeros((1, 32), np.float32)))  # frozen assignments
    texts = list(topics.split("train").queries.texts)
    assert not np.allclose(trained.query_encoder.encode_queries(texts),
                           plain.query_encoder.encode_queries(texts), atol=1e-3)
    # the documents are still the frozen encoder's
    docs = topics.corpus.documents()[:3]
    np.testing.assert_array_equal(trained.document_encoder.encode_documents(docs),
                                  plain.document_encoder.encode_documents(docs))
    assert train_ndcg(trained, topics) > train_ndcg(plain, topics) + 0.2


def test_controls_keep_the_initial_centroids(params, topics):
    plain = JPQRetriever(**params)
    plain.build(topics.corpus)
    for control in ({"train_centroids": False}, {"train_centroids": False, "train_against": "float"}):
        retriever = JPQRetriever(**params, **control)
        retriever.build(topics.corpus, train=topics.split("train"))
        np.testing.assert_array_equal(retriever.compressor.codebooks.centroids, plain.compressor.codebooks.centroids)
        assert retriever.training_record["train_against"] == control.get("train_against", "codes")
        assert train_ndcg(retriever, topics) > train_ndcg(plain, topics) + 0.1
    with pytest.raises(embedlab.ConfigError, match="no centroids to train"):
        JPQRetriever(**params, train_against="float")


def test_a_finished_run_is_reused_and_another_seed_trains_anew(params, topics, monkeypatch):
    auto = {**params, "checkpoint_dir": "auto", "epochs": 2}
    first = JPQRetriever(**auto)
    first.build(topics.corpus, train=topics.split("train"))
    texts = list(topics.split("test").queries.texts)
    run_dir = Path(first.training_record["run_dir"])         # a finished run keeps its final weights only
    assert [p.name for p in run_dir.iterdir()] == ["final"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be reused, not trained again")

    monkeypatch.setattr(JPQRetriever, "_run", no_training)
    again = JPQRetriever(**auto)
    again.build(topics.corpus, train=topics.split("train"))
    np.testing.assert_array_equal(again.query_encoder.encode_queries(texts), first.query_encoder.encode_queries(texts))
    np.testing.assert_array_equal(again.compressor.codebooks.centroids, first.compressor.codebooks.centroids)
    with pytest.raises(AssertionError, match="must be reused"):
        JPQRetriever(**{**auto, "seed": 1}).build(topics.corpus, train=topics.split("train"))


def test_early_stopping_on_held_out_training_queries(params, topics):
    retriever = JPQRetriever(**{**params, "validation_fraction": 0.25, "holdout": "queries", "patience": 2})
    retriever.build(topics.corpus, train=topics.split("train"))
    record = retriever.training_record
    assert record["held_out_queries"] == 6 and record["train_queries"] == 18
    assert len(record["validation_ndcg10"]) == record["epochs_run"] + 1
    assert record["best_evaluation"] == int(np.argmax(record["validation_ndcg10"]))


def test_a_pipeline_with_a_training_split_trains_the_retriever(params, topics):
    pipeline = Pipeline.from_names(retriever={"name": "jpq", **params})
    pipeline.build(topics.corpus, train=topics.split("train"))
    assert pipeline.first_stage.training_record["trained"]
    ranking = pipeline.search(topics.split("test").queries, k=10)
    assert ranking.doc_ids.shape == (24, 10) and pipeline.bytes_per_document == 4


def test_the_loss_trains_only_the_centroids_the_lists_use_at_their_own_rate():
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((2, 8, 4)).astype(np.float32)
    codes = rng.integers(0, 8, (40, 2)).astype(np.uint8)
    loss = JPQRankingLoss(FrozenPQ(centroids, codes), None, 0.5, top_k=5)
    assert loss.learning_rates() == {"centroids": 0.5} and set(loss.parameters()) == {"centroids"}
    queries = torch.randn(3, 8, requires_grad=True)
    value = loss.queries_loss(queries, [[0], [1], [2]])
    value.backward()
    gradient = loss.parameters()["centroids"].grad
    retrieved = loss.search(queries.detach(), 5)
    used = {(j, int(codes[p, j])) for row in retrieved.tolist() + [[0, 1, 2]] for p in row for j in range(2)}
    moved = {(j, c) for j in range(2) for c in range(8) if gradient[j, c].abs().sum() > 0}
    assert moved and moved <= used and queries.grad.abs().sum() > 0
    frozen = JPQRankingLoss(FrozenPQ(centroids, codes), None, None)
    assert frozen.parameters() == {} and not frozen.documents.centroids.requires_grad
    assert JPQRankingLoss(FloatDocuments(rng.standard_normal((40, 8))), None, 0.5).parameters() == {}
    ranked = JPQRankingLoss(FloatDocuments(np.eye(8, dtype=np.float32)), None, None).search(torch.eye(8), 8)
    assert ndcg_at_10(ranked.numpy(), [[i] for i in range(8)]) == 1.0


def test_bad_configuration_is_refused(params):
    with pytest.raises(embedlab.ConfigError, match="not a transformers encoder"):
        JPQRetriever(**{**params, "encoder": "hashing"})
    with pytest.raises(embedlab.ConfigError, match="without prefixes"):
        JPQRetriever(**{**params, "encoder": {**params["encoder"], "query_prefix": "q: "}})
    with pytest.raises(embedlab.InvalidInputError, match="call build"):
        JPQRetriever(**params).search(Queries(["q"], ["x"]), k=1)
