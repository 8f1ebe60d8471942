"""Full BM25 score vectors on real collections equal bm25s's for the same variant, parameters and
tokenisation (bm25s is the reference implementation on PyPI)."""

from __future__ import annotations

import bm25s
import bm25s.stopwords
import numpy as np
import pytest
import Stemmer
from embedlab_bm25 import BM25
from embedlab_bm25.stopwords import ENGLISH


def reference_scores(documents, queries, *, k1=1.5, b=0.75, method="lucene", lowercase=True,
                     stopwords=True, stemmer=None) -> np.ndarray:
    """(n_queries, n_docs) scores from bm25s, one query at a time through ``get_scores``."""
    stem = Stemmer.Stemmer(stemmer) if stemmer else None
    options = dict(lower=lowercase, stopwords="english" if stopwords else None, stemmer=stem,
                   show_progress=False)
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(bm25s.tokenize(documents, **options), show_progress=False)
    tokens = bm25s.tokenize(queries, return_ids=False, **options)
    return np.stack([retriever.get_scores(q) if q else np.zeros(len(documents), np.float32)
                     for q in tokens])


def our_scores(documents, queries, **params) -> np.ndarray:
    encoder = BM25(**params).fit(documents)
    return (encoder.encode_queries(queries) @ encoder.encode_documents(documents).T).toarray()


def assert_same_top10(ours: np.ndarray, ref: np.ndarray) -> None:
    """Same top-10 documents per query; at a tie across the 10th place, the same scores."""
    order_ours = np.argsort(-ours, axis=1, kind="stable")[:, :10]
    order_ref = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(np.take_along_axis(ours, order_ours, 1),
                               np.take_along_axis(ref, order_ref, 1), rtol=1e-4)
    ranked = -np.sort(-ref, axis=1)
    clear = ~np.isclose(ranked[:, 9], ranked[:, 10], rtol=1e-4)
    assert clear.mean() > 0.9
    for row in np.flatnonzero(clear):
        assert set(order_ours[row]) == set(order_ref[row]), row


def test_stopword_list_is_bm25s_english():
    assert ENGLISH == set(bm25s.stopwords.STOPWORDS_EN)


@pytest.mark.parametrize("params", [
    {},
    {"method": "robertson"},
    {"method": "atire", "k1": 1.2, "b": 0.4},
    {"method": "lucene", "k1": 0.9, "b": 1.0, "stopwords": False, "stemmer": "english"},
    {"method": "robertson", "b": 0.0, "lowercase": False},
], ids=["lucene-default", "robertson", "atire-k1.2-b0.4", "lucene-stem-nostop", "robertson-b0-case"])
def test_cranfield_scores_equal_bm25s(cranfield, params):
    documents = cranfield.corpus.documents()
    queries = list(cranfield.queries.texts)
    ours = our_scores(documents, queries, **params)
    ref = reference_scores(documents, queries, **params)
    assert ours.shape == ref.shape == (225, 1400)
    assert np.count_nonzero(ref) > 0.1 * ref.size
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
    assert_same_top10(ours, ref)


def test_scifact_scores_equal_bm25s(scifact):
    split = scifact.split("test")
    documents = scifact.corpus.documents()
    queries = list(split.queries.texts)
    ours = our_scores(documents, queries)
    ref = reference_scores(documents, queries)
    assert ours.shape == (300, 5183)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
    assert_same_top10(ours, ref)


def test_lucene_analyzer_scores_equal_bm25s_given_the_same_tokens(cranfield):
    """Pyserini's configuration minus the one-byte norms (which bm25s does not have): bm25s indexes
    our Lucene-analyzer tokens and scores them like we do."""
    params = {"k1": 0.9, "b": 0.4, "analyzer": "lucene", "stemmer": "porter"}
    documents, queries = cranfield.corpus.documents(), list(cranfield.queries.texts)
    encoder = BM25(**params).fit(documents)
    ours = (encoder.encode_queries(queries) @ encoder.encode_documents(documents).T).toarray()
    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index(encoder.tokenizer.tokenize(documents), show_progress=False)
    ref = np.stack([retriever.get_scores(q) for q in encoder.tokenizer.tokenize(queries)])
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
    assert_same_top10(ours, ref)


def test_pyserini_bm25_flat_on_scifact(scifact):
    """Anserini's regression beir-v1.0.0-scifact.flat (-bm25: k1 0.9, b 0.4, DefaultEnglishAnalyzer
    with Porter, title + text): nDCG@10 0.6789, R@100 0.9253, R@1000 0.9767."""
    import embedlab

    split = scifact.split("test")
    encoder = BM25(k1=0.9, b=0.4, analyzer="lucene", stemmer="porter", lucene_norms=True)
    pipeline = embedlab.Pipeline(encoder=encoder, index=embedlab.create("index", "exact"))
    pipeline.build(scifact.corpus)
    result = embedlab.evaluate(pipeline.search(split.queries, k=1000), split.qrels, ["nDCG@10", "R@100", "R@1000"])
    assert result.aggregates["nDCG@10"] == pytest.approx(0.6789, abs=5e-4)
    assert result.aggregates["R@100"] == pytest.approx(0.9253, abs=5e-4)
    assert result.aggregates["R@1000"] == pytest.approx(0.9767, abs=5e-4)
