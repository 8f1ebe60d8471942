"""Cross-checks against the official implementation (the ``pyseismic-lsr`` wheel)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import seismic  # the official wheel, pyseismic-lsr: a test dependency (pip install -e ".[test]")
from embedlab_seismic import SeismicIndex
from embedlab_seismic.state import LENGTH_BITS


def _official(docs: sp.csr_matrix, **params: float) -> seismic.SeismicIndex:
    dataset = seismic.SeismicDataset(dim=docs.shape[1])
    dataset.add_documents_by_id([str(i) for i in range(docs.shape[0])], docs.indices.astype(np.int64),
                                docs.data.astype(np.float32), docs.indptr.astype(np.int64))
    return seismic.SeismicIndex.build_from_dataset(dataset, **params)


def _official_search(index: seismic.SeismicIndex, queries: sp.csr_matrix, k: int, cut: int,
                     heap_factor: float) -> np.ndarray:
    string = seismic.get_seismic_string()
    found = np.full((queries.shape[0], k), -1)
    for i in range(queries.shape[0]):
        row = queries.getrow(i)
        hits = index.search(str(i), np.array([str(t) for t in row.indices], dtype=string),
                            row.data.astype(np.float32), k, cut, heap_factor)
        found[i, :len(hits)] = [int(doc) for _, _, doc in hits]
    return found


def test_global_pruning_keeps_the_same_postings_as_the_official_code() -> None:
    """Values are distinct float16 numbers (the wheel stores float16), so no tie is arbitrary."""
    rng = np.random.default_rng(3)
    n_docs, vocab = 300, 500
    lengths = rng.integers(5, 30, n_docs)
    rows = np.repeat(np.arange(n_docs), lengths)
    terms = np.concatenate([rng.choice(vocab, n, replace=False) for n in lengths])
    patterns = np.arange(np.float16(0.01).view(np.uint16), np.float16(60.0).view(np.uint16), dtype=np.uint16)
    values = rng.choice(patterns, rows.size, replace=False).view(np.float16).astype(np.float32)
    docs = sp.csr_matrix((values, (rows, terms)), shape=(n_docs, vocab))
    assert 8 * vocab < docs.nnz  # the global budget n_postings * vocabulary binds
    official = _official(docs, n_postings=8, max_fraction=1.5)
    ours = SeismicIndex(n_postings=8, pruning="global", max_fraction=1.5)
    ours.build(docs)
    state = ours._state
    positions = np.searchsorted(state.doc_ptr, state.postings >> LENGTH_BITS, side="right") - 1
    for term in range(vocab):
        first, last = state.block_ptr[state.list_blocks[term]], state.block_ptr[state.list_blocks[term + 1]]
        assert sorted(positions[first:last]) == sorted(official.get_doc_ids_in_postings(term)), term


@pytest.mark.parametrize(("cut", "heap_factor"), [(3, 1.0), (5, 0.9), (10, 0.8)])
def test_accuracy_matches_the_official_code(synthetic, cut, heap_factor, exact_top, accuracy) -> None:
    docs, queries = synthetic
    params = {"n_postings": 150, "centroid_fraction": 0.1, "summary_energy": 0.4, "max_fraction": 1.5}
    truth = exact_top(docs, queries, 10)[0]
    ours = SeismicIndex(pruning="global", **params)
    ours.build(docs)
    mine = accuracy(ours.search(queries, 10, query_cut=cut, heap_factor=heap_factor).indices, truth)
    theirs = accuracy(_official_search(_official(docs, **params), queries, 10, cut, heap_factor), truth)
    assert abs(mine - theirs) <= 0.03, (mine, theirs)
