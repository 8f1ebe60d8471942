"""The shared reranker plumbing: texts of ranked ids, cached encoding, reordering with the tail kept."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab import Corpus, Queries, Ranking
from embedlab.cache import EmbeddingCache
from embedlab.errors import InvalidInputError
from embedlab.rerank import document_positions, encode_cached, query_texts, reorder

CORPUS = Corpus(["d1", "d2", "d3", "d4"], ["one", "two", "three", "four"])
QUERIES = Queries(["q1", "q2"], ["first", "second"])


def ranking() -> Ranking:
    ids = np.array([["d1", "d2", "d3", "d4"], ["d4", "d3", "", ""]])
    scores = np.array([[4.0, 3.0, 2.0, 1.0], [2.0, 1.0, -np.inf, -np.inf]], dtype=np.float32)
    return Ranking(np.array(["q2", "q1"]), ids, scores)


class CountingEncoder:
    """Encodes a text as [len(text), 1] and counts calls per role."""

    name = "counting"
    calls = {"queries": 0, "documents": 0}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls["queries"] += 1
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        self.calls["documents"] += 1
        return np.array([[len(t), 2.0] for t in texts], dtype=np.float32)


def test_query_texts_follow_the_ranking_order_and_reject_unknown_ids() -> None:
    assert query_texts(ranking(), QUERIES, "r") == ["second", "first"]
    with pytest.raises(InvalidInputError, match="r: 1 ranked query id"):
        query_texts(ranking(), Queries(["q1"], ["first"]), "r")


def test_document_positions_map_ids_and_padding_and_reject_foreign_documents() -> None:
    np.testing.assert_array_equal(document_positions(ranking().doc_ids, CORPUS, "r"), [[0, 1, 2, 3], [3, 2, -1, -1]])
    with pytest.raises(InvalidInputError, match=r"r: 1 ranked document id\(s\) are not in the corpus.*'d9'"):
        document_positions(np.array([["d1", "d9"]]), CORPUS, "r")


def test_reorder_sorts_the_head_and_keeps_the_tail_below_it() -> None:
    result = reorder(ranking(), np.array([[1.0, 5.0], [0.5, 9.0]]))
    assert result.doc_ids.tolist() == [["d2", "d1", "d3", "d4"], ["d3", "d4", "", ""]]
    assert (result.scores[:, 1:3][result.doc_ids[:, 1:3] != ""] < result.scores[:, :1].max()).all()
    assert np.all(np.diff(result.scores[0]) < 0)
    head = reorder(ranking(), np.array([[1.0, 5.0], [0.5, 9.0]]), keep_tail=False)
    assert head.k == 2 and head.doc_ids.tolist() == [["d2", "d1"], ["d3", "d4"]]


def test_reorder_keeps_padding_last_and_checks_the_score_shape() -> None:
    result = reorder(ranking(), np.array([[1, 2, 3, 4], [1, 2, 99, 99]], dtype=np.float32))
    assert result.doc_ids[1].tolist() == ["d3", "d4", "", ""] and np.isneginf(result.scores[1, 2:]).all()
    with pytest.raises(InvalidInputError, match="do not fit"):
        reorder(ranking(), np.zeros((3, 2)))


def test_encode_cached_hits_the_disk_cache_on_the_second_call(tmp_path) -> None:
    encoder, cache = CountingEncoder(), EmbeddingCache(tmp_path)
    first = encode_cached(encoder, "documents", ["ab", "c"], cache)
    second = encode_cached(encoder, "documents", ["ab", "c"], cache)
    np.testing.assert_array_equal(first, second)
    assert encoder.calls["documents"] == 1
    np.testing.assert_array_equal(encode_cached(encoder, "queries", ["ab"], None), [[2.0, 1.0]])
    with pytest.raises(ValueError, match="role"):
        encode_cached(encoder, "docs", ["x"], None)


def test_dense_encoder_builds_registered_encoders_and_refuses_other_kinds() -> None:
    from embedlab.errors import ConfigError
    from embedlab.rerank import dense_encoder, encoder_params
    from embedlab.testing import registered

    class Sparse(CountingEncoder):
        output_kind = embedlab.EmbeddingKind.SPARSE

    class Dense(CountingEncoder):
        output_kind = embedlab.EmbeddingKind.DENSE

        def __init__(self, scale: int = 1) -> None:
            self.scale = scale

    with registered("encoder", "sparse-test", Sparse), registered("encoder", "dense-test", Dense):
        assert dense_encoder("r", "dense-test", {"scale": 3}).scale == 3
        with pytest.raises(ConfigError, match="r: encoder 'sparse-test' gives sparse embeddings; r needs a "
                                              "dense encoder"):
            dense_encoder("r", "sparse-test", {})
    assert encoder_params({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match="string keys"):
        encoder_params({1: 2})
