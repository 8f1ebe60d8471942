"""Embedding containers, rankings and datasets: validation and conversions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embedlab import (
    BinaryCodes,
    Corpus,
    Dataset,
    InvalidInputError,
    MultiVectorEmbeddings,
    Queries,
    Ranking,
    SearchResult,
)
from embedlab import embeddings as emb


def test_as_dense_converts_and_validates():
    out = emb.as_dense(np.arange(6, dtype=np.float64).reshape(3, 2)[:, ::-1])
    assert out.dtype == np.float32 and out.flags.c_contiguous
    with pytest.raises(InvalidInputError, match="row 1 contains NaN"):
        emb.as_dense([[0.0, 1.0], [np.nan, 2.0]])
    with pytest.raises(InvalidInputError, match="row 0 contains NaN or inf"):
        emb.as_dense([[np.inf, 1.0]])
    with pytest.raises(InvalidInputError, match="dimension 2 does not match the expected 3"):
        emb.as_dense(np.ones((2, 2)), dim=3)
    with pytest.raises(InvalidInputError, match="empty"):
        emb.as_dense(np.ones((0, 2)))
    with pytest.raises(InvalidInputError, match="x\\[None, :\\]"):
        emb.as_dense(np.ones(3))


def test_as_sparse_sums_duplicates_and_rejects_nan():
    m = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 2, 0]), np.array([0, 2, 3])), shape=(2, 4))
    out = emb.as_sparse(m)
    assert out.dtype == np.float32 and out.has_sorted_indices
    np.testing.assert_array_equal(out.toarray(), [[0, 0, 3, 0], [3, 0, 0, 0]])
    bad = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, np.nan]]))
    with pytest.raises(InvalidInputError, match="row 1"):
        emb.as_sparse(bad)


def test_multivector_layout_take_and_roundtrip():
    items = [np.ones((2, 3)), np.zeros((0, 3)), np.full((3, 3), 2.0)]
    mv = MultiVectorEmbeddings.from_list(items)
    assert len(mv) == 3 and mv.dim == 3 and mv.counts.tolist() == [2, 0, 3]
    picked = mv.take(np.array([2, 0]))
    np.testing.assert_array_equal(picked.item(0), items[2])
    np.testing.assert_array_equal(picked.item(1), items[0])
    back = emb.from_arrays("multivector", emb.to_arrays(mv))
    np.testing.assert_array_equal(back.vectors, mv.vectors)
    with pytest.raises(InvalidInputError, match="offsets"):
        MultiVectorEmbeddings(np.ones((3, 2)), np.array([0, 2]))
    with pytest.raises(InvalidInputError, match="item 1 contains NaN"):
        MultiVectorEmbeddings.from_list([np.ones((1, 2)), np.array([[np.nan, 0.0]])])


def test_binary_codes_pack_signs():
    x = np.array([[1.0, -1.0, 0.5] + [-1.0] * 7])
    codes = BinaryCodes.from_signs(x)
    assert codes.bits.shape == (1, 2) and codes.dim == 10
    np.testing.assert_array_equal(codes.unpack()[0], (x[0] > 0).astype(np.uint8))
    with pytest.raises(InvalidInputError, match="expected shape"):
        BinaryCodes(np.zeros((1, 3), np.uint8), 10)


def test_ranking_from_search_pads_missing():
    result = SearchResult(np.array([[0.9, 0.5, -np.inf]]), np.array([[2, 0, -1]]))
    ranking = Ranking.from_search(["q"], result, np.array(["d0", "d1", "d2"]))
    assert ranking.doc_ids.tolist() == [["d2", "d0", ""]]
    docs, scores = ranking.row(0)
    assert docs.tolist() == ["d2", "d0"] and scores.tolist() == pytest.approx([0.9, 0.5])
    assert ranking.to_dict() == {"q": {"d2": pytest.approx(0.9), "d0": 0.5}}
    assert Ranking.from_dict(ranking.to_dict()).doc_ids.tolist() == [["d2", "d0"]]


def _corpus() -> Corpus:
    return Corpus(["a", "b", "c"], ["text a", "text b", "text c"], titles=["A", "", "C"],
                  attributes={"year": [2001, 2002, None]})


def test_corpus_documents_hash_and_validation():
    corpus = _corpus()
    assert corpus.documents() == ["A text a", "text b", "C text c"]
    assert corpus.position["c"] == 2
    changed = Corpus(["a", "b", "c"], ["text a", "text b", "text C"])
    assert corpus.content_hash != changed.content_hash
    with pytest.raises(InvalidInputError, match="duplicate id"):
        Corpus(["a", "a"], ["x", "y"])
    with pytest.raises(InvalidInputError, match="empty corpus"):
        Corpus([], [])
    with pytest.raises(InvalidInputError, match="attribute 'year'"):
        Corpus(["a"], ["x"], attributes={"year": [1, 2]})


def test_split_drops_and_counts_unknown_qrels():
    queries = Queries(["q1", "q2"], ["one", "two"])
    dataset = Dataset("toy", _corpus(), queries,
                      {"test": {"q1": {"a": 1, "zzz": 1}, "q9": {"a": 1}, "q2": {"b": 2}}})
    with pytest.warns(UserWarning, match="1 unknown query id.*1 unknown document id"):
        split = dataset.split("test")
    assert split.queries.ids.tolist() == ["q1", "q2"]
    assert split.qrels == {"q1": {"a": 1}, "q2": {"b": 2}}
    with pytest.raises(InvalidInputError, match="no split 'dev'; available: test"):
        dataset.split("dev")


def test_finiteness_is_checked_in_bounded_blocks(monkeypatch):
    import embedlab.embeddings as embeddings

    monkeypatch.setattr(embeddings, "FINITE_BLOCK", 7)  # blocks of 7 entries, the last one partial
    x = np.zeros((5, 6), np.float32)
    assert embeddings.all_finite(x)
    for row, column in [(0, 0), (1, 0), (4, 5)]:  # first entry, a block boundary, the last entry
        bad = x.copy()
        bad[row, column] = np.inf
        assert not embeddings.all_finite(bad)
        with pytest.raises(InvalidInputError, match=f"row {row}"):
            embeddings.as_dense(bad)
