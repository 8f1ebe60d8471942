"""Pipelines whose first stage is a registered retriever, and cascades of rerankers with depths."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab import Corpus, Queries, Ranking
from embedlab.pipeline import Pipeline, RerankStage

CORPUS = Corpus([f"d{i}" for i in range(8)], [f"text {i}" for i in range(8)])
QUERIES = Queries(["q1", "q2"], ["one", "two"])


class OrderRetriever(embedlab.Component):
    """Returns d0, d1, d2, ... for every query; records what it was asked for."""

    kind = "retriever"
    name = "order"

    def __init__(self):
        super().__init__()
        self.asked_k: list[int] = []
        self.train = "unset"

    def build(self, corpus, train=None):
        self.ids = corpus.ids.tolist()
        self.train = None if train is None else train.name

    def search(self, queries, k, filter=None):
        self.asked_k.append(k)
        top = self.ids[:k]
        return Ranking.from_dict({q: {d: float(len(top) - i) for i, d in enumerate(top)}
                                  for q in queries.ids.tolist()}, k=k)


class Reverse(embedlab.Component):
    """Reverses the ranking it is given; remembers how many documents it saw."""

    kind = "reranker"
    name = "reverse"

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def rerank(self, ranking, queries, corpus):
        self.seen.append(ranking.k)
        return Ranking(ranking.query_ids, ranking.doc_ids[:, ::-1], ranking.scores[:, ::-1].copy() * -1 + 100)


class PreferOdd(embedlab.Component):
    """Scores odd-numbered documents above even ones, stable otherwise."""

    kind = "reranker"
    name = "odd"

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def rerank(self, ranking, queries, corpus):
        self.seen.append(ranking.k)
        scores = np.array([[int(d[1:]) % 2 for d in row] for row in ranking.doc_ids], dtype=np.float32)
        return embedlab.rerank.reorder(ranking, scores)


def test_registered_retriever_is_a_first_stage():
    retriever = OrderRetriever()
    pipeline = Pipeline(retriever=retriever)
    pipeline.build(CORPUS)
    result = pipeline.search(QUERIES, k=3)
    assert result.doc_ids[0].tolist() == ["d0", "d1", "d2"] and retriever.train is None
    assert pipeline.timings.index_s >= 0 and pipeline.timings.search_s > 0
    assert set(pipeline.fingerprints()) == {"retriever"}


def test_cascade_stages_rerank_prefixes_of_the_previous_stage_and_keep_the_tail():
    retriever, first, second = OrderRetriever(), Reverse(), PreferOdd()
    pipeline = Pipeline(retriever=retriever, cascade=[RerankStage(first, depth=6), RerankStage(second, depth=3)])
    pipeline.build(CORPUS)
    result = pipeline.search(QUERIES, k=5)
    assert retriever.asked_k == [6]  # the first stage is asked for the first cascade depth
    assert first.seen == [6] and second.seen == [3]
    # reverse of d0..d5 = d5 d4 d3 d2 d1 d0; top 3 (d5 d4 d3) by odd first -> d5 d3 d4; tail d2 d1
    assert result.doc_ids[0].tolist() == ["d5", "d3", "d4", "d2", "d1"]
    assert np.all(np.diff(result.scores[0]) <= 0)
    assert list(pipeline.timings.rerank_stages) == ["reverse@6", "odd@3"]
    assert pipeline.timings.rerank_s == pytest.approx(sum(pipeline.timings.rerank_stages.values()))
    assert list(pipeline.timings.stage_latencies_ms()) == ["first stage", "reverse@6", "odd@3"]
    assert set(pipeline.fingerprints()) == {"retriever", "reranker.1", "reranker.2"}


def test_cascade_from_tables_and_errors():
    pipeline = Pipeline(retriever=OrderRetriever(), cascade=[{"reranker": Reverse(), "depth": 4}])
    assert pipeline.cascade[0].depth == 4
    with pytest.raises(embedlab.ConfigError, match="follows depth"):
        Pipeline(retriever=OrderRetriever(), cascade=[RerankStage(Reverse(), 3), RerankStage(Reverse(), 5)])
    with pytest.raises(embedlab.ConfigError, match="positive integer"):
        RerankStage(Reverse(), depth=0)
    with pytest.raises(embedlab.ConfigError, match="reranker or cascade"):
        Pipeline(retriever=OrderRetriever(), reranker=Reverse(), cascade=[RerankStage(Reverse())])
    with pytest.raises(embedlab.ConfigError, match="unknown key"):
        Pipeline(retriever=OrderRetriever(), cascade=[{"reranker": Reverse(), "top": 3}])


def test_first_stage_errors():
    with pytest.raises(embedlab.ConfigError, match="no first stage"):
        Pipeline()
    with pytest.raises(embedlab.ConfigError, match="not both"):
        Pipeline(encoder=object(), retriever=OrderRetriever())
    with pytest.raises(embedlab.ConfigError, match="not a retriever"):
        Pipeline(retriever=object())
    with pytest.raises(embedlab.ConfigError, match="exactly one of"):
        Pipeline.from_names()
    with pytest.raises(embedlab.ConfigError, match="fusion needs 'retrievers'"):
        Pipeline.from_names(retriever=OrderRetriever(), fusion={"method": "rrf"})
    with pytest.raises(embedlab.UnknownComponentError, match="no retriever named 'pyterrier-bm25'"):
        Pipeline.from_names(retriever="pyterrier-bm25")
    pipeline = Pipeline(retriever=OrderRetriever())
    pipeline.build(CORPUS)
    with pytest.raises(embedlab.InvalidInputError, match="k must be a positive integer"):
        pipeline.search(QUERIES, k=0)


class LearningReverse(Reverse):
    name = "learning-reverse"

    def fit_queries(self, data):
        self.trained_on = (data.split.name, data.first_stage.k, data.query_vectors)


def test_learning_rerankers_are_trained_on_what_their_stage_receives():
    train = embedlab.Split("train", QUERIES, {"q1": {"d1": 1}, "q2": {"d2": 1}})
    first, second = LearningReverse(), LearningReverse()
    retriever = OrderRetriever()
    pipeline = Pipeline(retriever=retriever, cascade=[RerankStage(first, 6), RerankStage(second, 2)],
                        train_depth=7)
    pipeline.build(CORPUS, train=train)
    assert retriever.train == "train"
    assert first.trained_on == ("train", 6, None) and second.trained_on == ("train", 2, None)
    assert first.seen == [6]  # the first stage reranked the training ranking for the second
    assert pipeline.timings.fit_reranker_s > 0
