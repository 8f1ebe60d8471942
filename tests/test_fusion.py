"""Fusion of first stages: normalisations, methods, weight tuning on a training split, errors."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab import Corpus, Queries, Ranking
from embedlab.dataset import Split
from embedlab.fusion import FusionRetriever, fuse, normalize, simplex_grid
from embedlab.pipeline import Pipeline


def ranking(rows: dict[str, dict[str, float]]) -> Ranking:
    return Ranking.from_dict(rows)


A = ranking({"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d4": 0.9, "d1": 0.5}})
B = ranking({"q1": {"d3": 10.0, "d4": 8.0, "d1": 1.0}, "q2": {"d1": 7.0, "d5": 6.0}})


def as_dict(r: Ranking) -> dict[str, dict[str, float]]:
    return r.to_dict()


def test_rrf_by_hand():
    fused = as_dict(fuse([A, B], "rrf", rrf_k=60))
    # q1: d1 ranks 1 and 3, d3 ranks 3 and 1, d2 rank 2, d4 rank 2
    assert fused["q1"]["d1"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["q1"]["d3"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["q1"]["d2"] == pytest.approx(1 / 62) == fused["q1"]["d4"]
    ranked = fuse([A, B], "rrf").doc_ids[0].tolist()
    assert ranked == ["d1", "d3", "d2", "d4"]  # ties broken by ascending document id


def test_weighted_rrf_and_linear_weights_change_the_winner():
    top = fuse([A, B], "rrf", weights=[1.0, 3.0]).doc_ids[0, 0]
    assert top == "d3"
    assert fuse([A, B], "linear", weights=[1, 0]).doc_ids[0].tolist()[:3] == ["d1", "d2", "d3"]
    assert fuse([A, B], "linear", weights=[0, 1]).doc_ids[0].tolist()[:3] == ["d3", "d4", "d1"]


def test_combsum_and_combmnz_by_hand():
    s = as_dict(fuse([A, B], "combsum", norm="min-max"))
    # A q1 min-max: d1 1, d2 .5, d3 0 ; B q1: d3 1, d4 7/9, d1 0
    assert s["q1"] == pytest.approx({"d1": 1.0, "d2": 0.5, "d3": 1.0, "d4": 7 / 9})
    m = as_dict(fuse([A, B], "combmnz", norm="min-max"))
    assert m["q1"] == pytest.approx({"d1": 2.0, "d2": 0.5, "d3": 2.0, "d4": 7 / 9})


def test_normalisations_by_hand():
    scores = np.array([[4.0, 2.0, 1.0, -np.inf], [5.0, 5.0, -np.inf, -np.inf]])
    mm = normalize(scores, "min-max")
    assert mm[0, :3] == pytest.approx([1.0, 1 / 3, 0.0]) and np.isneginf(mm[0, 3])
    assert normalize(scores, "max")[0, :3] == pytest.approx([1.0, 0.5, 0.25])
    assert normalize(scores, "sum")[0, :3] == pytest.approx([3 / 4, 1 / 4, 0.0])
    z = normalize(scores, "z-score")[0, :3]
    assert z == pytest.approx((np.array([4, 2, 1]) - 7 / 3) / np.std([4, 2, 1]))
    assert normalize(scores, "rank")[0, :3] == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert normalize(scores, "min-max")[1, :2] == pytest.approx([0.0, 0.0])  # flat row: floor, no NaN
    assert normalize(scores, "z-score")[1, :2] == pytest.approx([0.0, 0.0])


def test_fuse_keeps_k_and_pads():
    fused = fuse([A, B], "rrf", k=5)
    assert fused.k == 5 and fused.doc_ids[1].tolist() == ["d1", "d4", "d5", "", ""]
    assert np.isneginf(fused.scores[1, 3:]).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "borda"}, "unknown fusion method 'borda'"),
    ({"method": "linear", "norm": "l2"}, "unknown normalisation 'l2'"),
    ({"method": "rrf", "norm": "min-max"}, "rrf fuses ranks"),
    ({"method": "combsum", "weights": [1, 2]}, "combsum is unweighted"),
    ({"method": "linear", "weights": [1, -1]}, "finite and >= 0"),
    ({"method": "linear", "weights": [0, 0]}, "all zero"),
    ({"method": "linear", "weights": [1, 1, 1]}, "2 first stages but 3 weights"),
])
def test_fuse_rejects_bad_parameters(kwargs, message):
    method = kwargs.pop("method")
    with pytest.raises(embedlab.ConfigError, match=message):
        fuse([A, B], method, **kwargs)


def test_fuse_rejects_zero_rankings_and_mismatched_queries():
    with pytest.raises(embedlab.ConfigError, match="zero rankings"):
        fuse([], "rrf")
    other = ranking({"q9": {"d1": 1.0}, "q2": {"d1": 1.0}})
    with pytest.raises(embedlab.InvalidInputError, match="other queries"):
        fuse([A, other], "rrf")


def test_simplex_grid_is_complete_and_balanced_first():
    grid = simplex_grid(3, 0.25)
    assert len(grid) == 15 and all(np.isclose(w.sum(), 1) and (w >= 0).all() for w in grid)
    assert grid[0].tolist() == pytest.approx([0.25, 0.25, 0.5]) or np.allclose(grid[0], grid[0].mean()) \
        or np.ptp(grid[0]) <= 0.25
    two = simplex_grid(2, 0.1)
    assert len(two) == 11 and two[0].tolist() == [0.5, 0.5]


# --- the fusion retriever -------------------------------------------------------------------

class ListRetriever(embedlab.Component):
    """A registered-style retriever that returns a fixed ranking per query id (for tests)."""

    kind = "retriever"
    name = "fixed"

    def __init__(self, table: dict[str, list[str]]):
        super().__init__()
        self.table = table
        self.built_with = None

    def build(self, corpus, train=None):
        self.built_with = (len(corpus), None if train is None else train.name)

    def search(self, queries, k, filter=None):
        rows = {q: {d: float(len(self.table[q]) - i) for i, d in enumerate(self.table[q][:k])}
                for q in queries.ids.tolist()}
        return Ranking.from_dict(rows, k=k)


CORPUS = Corpus([f"d{i}" for i in range(6)], [f"text {i}" for i in range(6)])
QUERIES = Queries(["q1", "q2", "t1", "t2"], ["a", "b", "c", "d"])


def split(name, ids, qrels):
    return Split(name, QUERIES.select(ids), qrels)


def test_fusion_retriever_builds_every_stage_and_fuses():
    one = ListRetriever({"q1": ["d1", "d2"], "q2": ["d3"]})
    two = ListRetriever({"q1": ["d2", "d4"], "q2": ["d3", "d5"]})
    fused = FusionRetriever(retrievers=[one, two], method="rrf")
    fused.build(CORPUS)
    assert one.built_with == (6, None) and two.built_with == (6, None)
    result = fused.search(QUERIES.select(["q1", "q2"]), k=3)
    assert result.doc_ids[0].tolist() == ["d2", "d1", "d4"]
    assert result.doc_ids[1].tolist()[:2] == ["d3", "d5"]
    assert set(fused.fingerprints()) == {"retriever", "fixed.1.retriever", "fixed.2.retriever"}


def test_weights_are_tuned_on_the_training_split_only():
    # on the training queries t1/t2 only the second stage finds the relevant document first
    good = ListRetriever({"t1": ["d1", "d2"], "t2": ["d3", "d4"], "q1": ["d5", "d0"]})
    bad = ListRetriever({"t1": ["d2", "d1"], "t2": ["d4", "d3"], "q1": ["d0", "d5"]})
    train = split("train", ["t1", "t2"], {"t1": {"d1": 1}, "t2": {"d3": 1}})
    fused = FusionRetriever(retrievers=[bad, good], method="linear", tune_step=0.25)
    fused.build(CORPUS, train)
    assert fused.fitted_params["tuned"] and fused.fitted_params["tune_split"] == "train"
    assert fused.weights_[1] > fused.weights_[0]
    assert bad.built_with == (6, "train")
    fixed = FusionRetriever(retrievers=[bad, good], method="linear", weights=[1, 1])
    fixed.build(CORPUS, train)
    assert not fixed.fitted_params["tuned"] and fixed.weights_.tolist() == [1.0, 1.0]


def test_fusion_retriever_errors():
    with pytest.raises(embedlab.ConfigError, match="at least two"):
        FusionRetriever(retrievers=[])
    with pytest.raises(embedlab.ConfigError, match="at least two"):
        FusionRetriever(retrievers=[ListRetriever({})])
    with pytest.raises(embedlab.ConfigError, match="unknown fusion method"):
        FusionRetriever(retrievers=[ListRetriever({}), ListRetriever({})], method="nope")
    with pytest.raises(embedlab.ConfigError, match="no negative weights"):
        FusionRetriever(retrievers=[ListRetriever({}), ListRetriever({})], method="linear", weights=[-1, 2])
    with pytest.raises(embedlab.ConfigError, match="2 first stages but 1 weights"):
        FusionRetriever(retrievers=[ListRetriever({}), ListRetriever({})], method="linear", weights=[1])
    fused = FusionRetriever(retrievers=[ListRetriever({"q1": ["d1"]}), ListRetriever({"q1": ["d1"]})],
                            depth=5)
    fused.build(CORPUS)
    with pytest.raises(embedlab.InvalidInputError, match="fusion depth 5 < k 10"):
        fused.search(QUERIES.select(["q1"]), 10)


class WordsEncoder(embedlab.Component):
    """Sparse bag of words over a fixed vocabulary (a stand-in for BM25)."""

    kind = "encoder"
    name = "words"
    output_kind = embedlab.EmbeddingKind.SPARSE
    VOCABULARY = ["cat", "dog", "market", "sky", "night", "crash"]
    dim = len(VOCABULARY)

    def _encode(self, texts):
        import scipy.sparse as sp

        rows = [[float(t.split().count(w)) for w in self.VOCABULARY] for t in texts]
        return sp.csr_matrix(np.asarray(rows, dtype=np.float32))

    encode_queries = encode_documents = _encode


class LengthEncoder(embedlab.Component):
    """Dense 2-d vector (text length, 1): ranks long documents first whatever the query."""

    kind = "encoder"
    name = "length"
    output_kind = embedlab.EmbeddingKind.DENSE
    dim = 2

    def _encode(self, texts):
        return np.asarray([[len(t), 1.0] for t in texts], dtype=np.float32)

    encode_queries = encode_documents = _encode


def test_hybrid_pipeline_of_two_encoder_stages_ranks_and_reports_timings(tmp_path):
    corpus = Corpus(["a", "b", "c"], ["cat cat", "stock market crash today", "night sky"])
    queries = Queries(["q"], ["cat"])
    pipeline = Pipeline.from_names(retrievers=[{"label": "words", "encoder": WordsEncoder()},
                                               {"label": "length", "encoder": LengthEncoder()}],
                                   fusion={"method": "rrf"}, cache=embedlab.cache.EmbeddingCache(tmp_path))
    pipeline.build(corpus)
    result = pipeline.search(queries, k=3)
    # words: a b c (b, c tie at 0); length: b c a. RRF: b 1/62+1/61 > a 1/61+1/63 > c 1/63+1/62
    assert result.doc_ids[0].tolist() == ["b", "a", "c"]
    assert pipeline.timings.encode_documents_s > 0 and pipeline.timings.latency_ms > 0
    assert {"words.encoder", "length.encoder", "retriever"} <= set(pipeline.fingerprints())
    again = Pipeline.from_names(retrievers=[{"label": "words", "encoder": WordsEncoder()},
                                            {"label": "length", "encoder": LengthEncoder()}],
                                cache=embedlab.cache.EmbeddingCache(tmp_path))
    again.build(corpus)
    again.search(queries, k=3)
    assert again.timings.cache_hits == 4  # documents and queries of both stages


def test_fusion_is_a_registered_retriever():
    assert "fusion" in embedlab.registry().names("retriever")
    created = embedlab.create("retriever", "fusion", retrievers=[{"encoder": WordsEncoder()},
                                                                   {"encoder": LengthEncoder()}],
                              method="combmnz", norm="z-score")
    assert isinstance(created, embedlab.Retriever) and created.config.norm == "z-score"
