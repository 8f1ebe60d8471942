"""The ``inverted`` index against the core ``exact`` index: the same top-k and bit-identical scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_bm25 import BM25, InvertedIndex

import embedlab
from embedlab.errors import InvalidInputError, StateError
from embedlab.index import ExactIndex


def random_sparse(rng: np.random.Generator, rows: int, cols: int, density: float, negative: bool) -> sp.csr_matrix:
    m = sp.random(rows, cols, density=density, format="csr", dtype=np.float32, random_state=rng)
    m.data = np.round(m.data * 4, 1).astype(np.float32)  # coarse values: many ties
    if negative:
        m.data[rng.random(m.data.size) < 0.3] *= -1
    return m


def assert_same(a, b) -> None:
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.scores, b.scores)


@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("k", [1, 5, 40, 400])
def test_same_results_as_the_exact_index(negative: bool, k: int) -> None:
    rng = np.random.default_rng(k)
    docs, queries = random_sparse(rng, 300, 60, 0.05, negative), random_sparse(rng, 25, 60, 0.06, negative)
    queries = sp.vstack([queries, sp.csr_matrix((1, 60), dtype=np.float32)], format="csr")  # one without terms
    group = np.arange(300) % 4
    inverted, exact = InvertedIndex(), ExactIndex(block_size=64)
    inverted.build(docs, {"group": group})
    exact.build(docs, {"group": group})
    per_query = rng.random((26, 300)) < 0.1
    for filter in (None, {"group": 2}, group == 1, per_query):
        assert_same(inverted.search(queries, k, filter=filter), exact.search(queries, k, filter=filter))


def test_bm25_scores_on_real_text_are_bit_identical(tmp_path: Path) -> None:
    dataset = embedlab.load_dataset("python-stdlib")
    documents = dataset.corpus.documents()
    encoder = BM25().fit(documents)
    vectors = encoder.encode_documents(documents)
    queries = encoder.encode_queries(list(dataset.queries.texts[:200]))
    inverted, exact = InvertedIndex(), ExactIndex()
    inverted.build(vectors)
    exact.build(vectors)
    assert_same(inverted.search(queries, 100), exact.search(queries, 100))
    inverted.save(tmp_path / "inv")
    assert_same(InvertedIndex.load(tmp_path / "inv").search(queries, 10), exact.search(queries, 10))
    assert embedlab.load_component(tmp_path / "inv").memory_bytes == inverted.memory_bytes


def test_add_appends_documents_and_errors_are_clear(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    docs, queries = random_sparse(rng, 120, 30, 0.1, False), random_sparse(rng, 5, 30, 0.2, False)
    grown, whole = InvertedIndex(), InvertedIndex()
    grown.build(docs[:50])
    grown.add(docs[50:])
    whole.build(docs)
    assert_same(grown.search(queries, 7), whole.search(queries, 7))
    with pytest.raises(InvalidInputError, match="k must be a positive integer"):
        whole.search(queries, 0)
    with pytest.raises(InvalidInputError, match="vocabulary size 31 does not match the expected 30"):
        whole.search(sp.csr_matrix((1, 31), dtype=np.float32), 3)
    with pytest.raises(embedlab.errors.NotFittedError):
        InvertedIndex().search(queries, 3)
    whole.save(tmp_path / "s")
    (tmp_path / "s" / "weights.npy").write_bytes(b"broken")
    with pytest.raises(StateError):
        InvertedIndex.load(tmp_path / "s")
