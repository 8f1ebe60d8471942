"""Search results of the faiss index against exact numpy search and stored ground truth."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from embedlab_faiss import FaissIndex

import embedlab
from embedlab import SearchResult


def exact(docs: np.ndarray, queries: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k (scores higher-is-better, positions) in float64."""
    d, q = docs.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        d, q = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (d, q))
    scores = q @ d.T
    if metric == "l2":
        scores = 2 * scores - (q ** 2).sum(1)[:, None] - (d ** 2).sum(1)[None, :]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), order


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-k found in the returned top-k."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def test_registered_under_index_faiss():
    index = embedlab.create("index", "faiss", factory="HNSW32", efSearch=64)
    assert isinstance(index, FaissIndex) and index.config.efSearch == 64
    assert isinstance(index, embedlab.Index)
    assert embedlab.registry().spec("index", "faiss").distribution == "embedlab-faiss"


@pytest.mark.parametrize("metric", ["ip", "l2", "cosine"])
def test_flat_equals_brute_force_on_random_data(metric):
    rng = np.random.default_rng(3)
    docs, queries = rng.standard_normal((2000, 48)), rng.standard_normal((50, 48))
    index = FaissIndex(factory="Flat", metric=metric)
    index.build(docs)
    result = index.search(queries, k=10)
    scores, positions = exact(docs, queries, 10, metric)
    assert isinstance(result, SearchResult) and result.scores.shape == (50, 10)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-4, atol=1e-3)
    assert (result.indices == positions).mean() > 0.99  # ties aside
    assert np.all(np.diff(result.scores, axis=1) <= 0)


def test_flat_matches_stored_ground_truth_on_real_vectors(fmnist, bigann):
    for docs, queries, truth in (fmnist, bigann):
        index = FaissIndex(factory="Flat", metric="l2")
        index.build(docs)
        result = index.search(queries, k=10)
        _, positions = exact(docs, queries, 10, "l2")
        assert recall(result.indices, truth[:, :10]) > 0.995  # ids differ only at distance ties
        assert recall(result.indices, positions) > 0.995


def test_flat_on_minilm_like_vectors(minilm_like):
    docs, queries = minilm_like
    index = FaissIndex(factory="Flat", metric="cosine")
    index.build(docs)
    result = index.search(queries, k=10)
    scores, positions = exact(docs, queries, 10, "cosine")
    np.testing.assert_allclose(result.scores, scores, atol=1e-5)
    assert recall(result.indices, positions) > 0.99


@pytest.mark.parametrize("params", [
    {"factory": "IVF256,Flat", "nprobe": 32},
    {"factory": "HNSW32", "efSearch": 128},
    {"factory": "IVF64_HNSW16,Flat", "nprobe": 16, "efSearch": 64},
], ids=["ivf", "hnsw", "ivf-hnsw-quantizer"])
def test_approximate_recall_at_10_is_high(bigann, params):
    docs, queries, truth = bigann
    index = FaissIndex(metric="l2", **params)
    index.build(docs)
    assert recall(index.search(queries, k=10).indices, truth[:, :10]) > 0.9


def test_runtime_parameters_reach_the_faiss_index():
    docs = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float32)
    ivf = FaissIndex(factory="PCA16,IVF16,Flat", nprobe=7)  # through the pre-transform
    ivf.build(docs)
    assert faiss.extract_index_ivf(ivf.faiss_index).nprobe == 7
    hnsw = FaissIndex(factory="HNSW16", efSearch=77)
    hnsw.build(docs)
    assert faiss.downcast_index(hnsw.faiss_index).hnsw.efSearch == 77


@pytest.mark.parametrize("params", [
    {"factory": "SQ8"},
    {"factory": "PQ16x4", "train_size": 500},
    {"factory": "OPQ8,IVF16,PQ8x4", "train_size": 500, "nprobe": 8},
], ids=["sq8", "pq", "opq-ivf-pq"])
def test_compressed_factories_equal_raw_faiss(clustered64, params):
    docs, queries = clustered64
    index = FaissIndex(**params)
    index.build(docs)
    result = index.search(queries, k=100)
    raw = faiss.index_factory(64, params["factory"], faiss.METRIC_INNER_PRODUCT)
    size = params.get("train_size", 3000)
    rows = np.sort(np.random.default_rng(0).choice(3000, size, replace=False)) if size < 3000 else slice(None)
    raw.train(docs[rows])
    raw.add(docs)
    if "nprobe" in params:
        faiss.ParameterSpace().set_index_parameter(raw, "nprobe", params["nprobe"])
    distances, labels = raw.search(queries, 100)
    np.testing.assert_array_equal(result.indices, labels)
    np.testing.assert_array_equal(result.scores, distances)
    assert index.trained_on == size
    _, truth = exact(docs, queries, 10, "ip")
    assert recall(result.indices, truth) > 0.95  # R10@100: the true top-10 lie in the top-100
    assert index.memory_bytes < docs.nbytes / 3


def test_l2_scores_are_negated_squared_distances_and_padding():
    docs = np.array([[0, 0], [3, 4], [1, 0]], dtype=np.float32)
    index = FaissIndex(factory="Flat", metric="l2")
    index.build(docs)
    result = index.search(np.zeros((1, 2), np.float32), k=5)
    assert result.indices.tolist() == [[0, 2, 1, -1, -1]]
    assert result.scores[0, :3].tolist() == [0.0, -1.0, -25.0]
    assert np.isneginf(result.scores[0, 3:]).all()


def test_sparse_ivf_lists_pad_with_minus_one():
    rng = np.random.default_rng(1)
    docs = np.concatenate([rng.normal(0, 0.01, (300, 8)), rng.normal(50, 0.01, (300, 8))])
    index = FaissIndex(factory="IVF2,Flat", nprobe=1, metric="l2")
    index.build(docs)
    result = index.search(docs[:1], k=400)
    assert (result.indices[0, :300] >= 0).all() and (result.indices[0, 300:] == -1).all()
    assert np.isneginf(result.scores[0, 300:]).all() and np.isfinite(result.scores[0, :300]).all()


def test_add_appends_after_existing_documents():
    rng = np.random.default_rng(2)
    docs, queries = rng.standard_normal((1000, 16)), rng.standard_normal((20, 16))
    whole, parts = FaissIndex(), FaissIndex()
    whole.build(docs)
    parts.build(docs[:600])
    parts.add(docs[600:])
    assert len(parts) == 1000
    np.testing.assert_array_equal(parts.search(queries, 10).indices, whole.search(queries, 10).indices)


def test_num_threads_applies_during_calls_and_is_restored(monkeypatch):
    before = faiss.omp_get_max_threads()
    seen = []
    original = faiss.omp_set_num_threads
    monkeypatch.setattr(faiss, "omp_set_num_threads", lambda n: (seen.append(n), original(n)))
    index = FaissIndex(num_threads=before + 1)
    index.build(np.eye(4, dtype=np.float32))
    index.search(np.eye(4, dtype=np.float32), 2)
    assert seen == [before + 1, before] * 2 and faiss.omp_get_max_threads() == before


def test_seeded_training_sample_is_reproducible():
    docs = np.random.default_rng(4).standard_normal((4000, 16)).astype(np.float32)
    a, b, c = (FaissIndex(factory="IVF16,Flat", train_size=500, seed=s) for s in (7, 7, 8))
    for index in (a, b, c):
        index.build(docs)
    assert a.trained_on == 500
    serial = [faiss.serialize_index(i.faiss_index) for i in (a, b, c)]
    assert np.array_equal(serial[0], serial[1]) and not np.array_equal(serial[0], serial[2])


def test_large_inputs_are_added_in_batches(monkeypatch):
    import embedlab_faiss.index

    rng = np.random.default_rng(6)
    docs, queries = rng.standard_normal((1000, 16)), rng.standard_normal((10, 16))
    whole = FaissIndex(factory="IVF8,Flat", nprobe=8)
    whole.build(docs)
    monkeypatch.setattr(embedlab_faiss.index, "ADD_BATCH", 128)
    batched = FaissIndex(factory="IVF8,Flat", nprobe=8)
    batched.build(docs)
    assert len(batched) == 1000
    np.testing.assert_array_equal(batched.search(queries, 10).indices, whole.search(queries, 10).indices)


@pytest.mark.parametrize("factory", ["HNSW16", "PCA8,HNSW16", "HNSW16,RFlat"])
def test_hnsw_returns_k_documents_for_k_above_ef_search(factory):
    """FAISS keeps the beam at efSearch even when k is larger, so a search of k = n returned
    about half of a 300-document index (filtered: a third); the plugin widens the beam to k (filtered or not)."""
    rng = np.random.default_rng(3)
    docs = rng.standard_normal((300, 16)).astype(np.float32)
    index = FaissIndex(factory=factory, efSearch=16)
    index.build(docs, attributes={"even": np.arange(300) % 2 == 0})
    assert (index.search(docs[:4], 300).indices >= 0).all()
    filtered = index.search(docs[:4], 150, filter={"even": True}).indices
    assert ((filtered >= 0).sum(axis=1) >= 130).all()  # a filtered beam may miss a few (was 63-83)
