"""The ``muvera`` index: FDE candidates from an inner index, exact Chamfer rerank, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from embedlab_muvera import MuveraIndex, encode_documents_fde, encode_queries_fde

import embedlab
from embedlab import InvalidInputError, MultiVectorEmbeddings, StateError
from embedlab.index import ExactIndex, maxsim_scores

SMALL = dict(k_sim=3, d_proj=8, R_reps=10, seed=1)


def exact(queries: MultiVectorEmbeddings, documents: MultiVectorEmbeddings, k: int):
    index = ExactIndex(metric="ip")
    index.build(documents)
    return index.search(queries, k)


def test_registered_and_built_from_a_component_table(corpus) -> None:
    queries, documents = corpus
    index = embedlab.create("index", "muvera", **SMALL, inner_index={"name": "exact", "block_size": 64})
    assert isinstance(index, MuveraIndex) and isinstance(index, embedlab.Index)
    index.build(documents)
    assert index.inner.config.block_size == 64
    assert len(index) == len(documents)
    assert index.document_fde.shape == (len(documents), 10 * 8 * 8)


def test_all_candidates_reranked_equals_exact_chamfer(corpus) -> None:
    queries, documents = corpus
    index = MuveraIndex(**SMALL, candidates=len(documents))
    index.build(documents)
    ours, reference = index.search(queries, 10), exact(queries, documents, 10)
    np.testing.assert_array_equal(ours.indices, reference.indices)
    np.testing.assert_allclose(ours.scores, reference.scores, rtol=1e-6)
    assert set(index.last_timings) == {"encode_s", "inner_s", "rerank_s"}
    few = MuveraIndex(**SMALL, candidates=10)
    few.build(documents)
    assert not np.array_equal(few.search(queries, 10).indices, reference.indices)
    np.testing.assert_array_equal(few.search(queries, 10, candidates=len(documents)).indices, reference.indices)


def test_candidates_are_the_fde_top_and_scores_are_chamfer(corpus) -> None:
    queries, documents = corpus
    index = MuveraIndex(**SMALL, candidates=20)
    index.build(documents)
    result = index.search(queries, 5)
    products = encode_queries_fde(queries, index.config) @ encode_documents_fde(documents, index.config).T
    chamfer = maxsim_scores(queries, documents)
    for row in range(len(queries)):
        top = set(np.argsort(-products[row], kind="stable")[:20].tolist())
        assert set(result.indices[row].tolist()) <= top
        expected = sorted(top, key=lambda d: (-chamfer[row, d], d))[:5]
        assert result.indices[row].tolist() == expected
        np.testing.assert_allclose(result.scores[row], chamfer[row, expected], rtol=1e-6)


def test_more_repetitions_find_more_of_the_exact_top(corpus) -> None:
    queries, documents = corpus
    truth = exact(queries, documents, 5).indices

    def recall(reps: int) -> float:
        index = MuveraIndex(k_sim=4, d_proj=None, R_reps=reps, candidates=40, seed=0)
        index.build(documents)
        found = index.search(queries, 5).indices
        return np.mean([len(set(f) & set(t)) / 5 for f, t in zip(found.tolist(), truth.tolist())])

    one, twenty = recall(1), recall(20)  # measured: 0.63, 0.97
    assert twenty > one + 0.2
    assert twenty >= 0.9


def test_faiss_inner_index_gives_the_same_candidates(corpus) -> None:
    queries, documents = corpus
    with_exact = MuveraIndex(**SMALL, candidates=15)
    with_faiss = MuveraIndex(**SMALL, candidates=15, inner_index={"name": "faiss", "factory": "Flat"})
    hnsw = MuveraIndex(**SMALL, candidates=15, inner_index={"name": "faiss", "factory": "HNSW32", "efSearch": 64})
    for index in (with_exact, with_faiss, hnsw):
        index.build(documents)
    np.testing.assert_array_equal(with_faiss.search(queries, 5).indices, with_exact.search(queries, 5).indices)
    assert hnsw.search(queries, 5).indices.shape == (len(queries), 5)


def test_filter_goes_to_the_inner_index(corpus) -> None:
    queries, documents = corpus
    parity = np.arange(len(documents)) % 2
    index = MuveraIndex(**SMALL, candidates=30)
    index.build(documents, attributes={"parity": parity})
    result = index.search(queries, 5, filter={"parity": 1})
    assert (result.indices >= 0).all() and (parity[result.indices] == 1).all()


def test_add_equals_one_build(corpus) -> None:
    queries, documents = corpus
    whole, parts = MuveraIndex(**SMALL), MuveraIndex(**SMALL)
    whole.build(documents)
    parts.build(documents.take(np.arange(120)))
    parts.add(documents.take(np.arange(120, len(documents))))
    # equal up to float rounding: BLAS sums in another order on other matrix shapes
    np.testing.assert_allclose(parts.document_fde, whole.document_fde, rtol=1e-5, atol=1e-6)
    a, b = parts.search(queries, 7), whole.search(queries, 7)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_documents_without_vectors_are_never_returned() -> None:
    documents = MultiVectorEmbeddings.from_list([np.zeros((0, 4)), np.eye(4)[:1], np.zeros((0, 4)),
                                                 -np.eye(4)[:2]], dim=4)
    index = MuveraIndex(k_sim=2, d_proj=None, R_reps=3, candidates=4)
    index.build(documents)
    result = index.search(MultiVectorEmbeddings.from_list([np.eye(4)[1:2]]), k=4)
    assert result.indices.tolist() == [[1, 3, -1, -1]]
    assert result.scores[0, 2:].tolist() == [-np.inf, -np.inf]
    np.testing.assert_array_equal(result.indices, exact(MultiVectorEmbeddings.from_list([np.eye(4)[1:2]]),
                                                        documents, 4).indices)


def test_k_larger_than_the_corpus_pads(corpus) -> None:
    queries, documents = corpus
    few = documents.take(np.arange(3))
    index = MuveraIndex(**SMALL, candidates=2)
    index.build(few)
    result = index.search(queries, 5)
    assert (result.indices[:, :3] >= 0).all() and (result.indices[:, 3:] == -1).all()


@pytest.mark.parametrize("inner", [{"name": "exact"}, {"name": "faiss", "factory": "HNSW32"}])
def test_save_load_gives_identical_results(corpus, tmp_path, inner: dict) -> None:
    queries, documents = corpus
    index = MuveraIndex(**SMALL, candidates=25, inner_index=inner)
    index.build(documents)
    index.save(tmp_path / "muvera")
    manifest = json.loads((tmp_path / "muvera" / "manifest.json").read_text())
    assert manifest["name"] == "muvera" and {"fde.npy", "vectors.npy", "offsets.npy"} <= set(manifest["files"])
    assert json.loads((tmp_path / "muvera" / "inner" / "manifest.json").read_text())["name"] == inner["name"]
    for loaded in (embedlab.load_component(tmp_path / "muvera"), MuveraIndex.load(tmp_path / "muvera", mmap=True)):
        assert isinstance(loaded, MuveraIndex) and loaded.config == index.config
        a, b = loaded.search(queries, 10), index.search(queries, 10)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(loaded.document_fde, index.document_fde)


def test_corrupted_state_is_reported(corpus, tmp_path) -> None:
    _, documents = corpus
    index = MuveraIndex(**SMALL)
    index.build(documents.take(np.arange(10)))
    index.save(tmp_path / "m")
    np.save(tmp_path / "m" / "fde.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(StateError):
        MuveraIndex.load(tmp_path / "m")


def test_memory_bytes_counts_vectors_fdes_and_inner(corpus) -> None:
    _, documents = corpus
    index = MuveraIndex(**SMALL)
    assert index.memory_bytes == 0
    index.build(documents)
    held = documents.vectors.nbytes + documents.offsets.nbytes + index.document_fde.nbytes
    assert index.memory_bytes == held + index.inner.memory_bytes > held


def test_input_errors(corpus) -> None:
    queries, documents = corpus
    index = MuveraIndex(**SMALL)
    with pytest.raises(InvalidInputError, match="empty"):
        index.search(queries, 3)
    with pytest.raises(InvalidInputError, match="multi-vector"):
        index.build(np.ones((3, 32), np.float32))
    index.build(documents)
    with pytest.raises(InvalidInputError, match="dimension"):
        index.search(MultiVectorEmbeddings.from_list([np.ones((2, 5))]), 3)
    with pytest.raises(InvalidInputError, match="k must be"):
        index.search(queries, 0)
    with pytest.raises(InvalidInputError, match="candidates must be"):
        index.search(queries, 3, candidates=0)
    with pytest.raises(embedlab.ConfigError, match="inner_index"):
        MuveraIndex(inner_index={"factory": "HNSW32"})
    with pytest.raises(embedlab.UnknownComponentError):
        MuveraIndex(inner_index={"name": "no-such-index"})


def test_kill_during_save_leaves_the_old_or_the_new_index(corpus, tmp_path, monkeypatch) -> None:
    """FDEs, documents and the inner index are one atomic publish (before: two saves)."""
    from embedlab.crashtest import assert_atomic_saves

    monkeypatch.setenv("EMBEDLAB_FSYNC", "0")
    queries, documents = corpus

    def build(version: int) -> MuveraIndex:
        index = MuveraIndex(**{**SMALL, "seed": version})
        index.build(documents.take(np.arange(60 * version)))
        return index

    def probe(index: MuveraIndex) -> np.ndarray:
        result = index.search(queries, 5)
        return np.concatenate([result.indices.ravel(), result.scores.ravel().view(np.int32)])

    assert_atomic_saves(build, probe, tmp_path, points=6, load=MuveraIndex.load)
