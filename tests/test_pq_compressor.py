"""The core ``pq`` compressor: registered, scores codes like its decoded vectors, saves and reloads."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.errors import NotFittedError, StateError
from embedlab.index import ExactIndex
from embedlab.pq_compressor import PQCompressor
from embedlab.threads import faiss_threads


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(600, 16)).astype(np.float32)


def test_registered_and_searchable_through_the_exact_index(vectors: np.ndarray) -> None:
    pq = embedlab.create("compressor", "pq", m=4, ksub=16)
    assert isinstance(pq, PQCompressor) and isinstance(pq, embedlab.CodeScorer)
    pq.fit(vectors)
    assert pq.bytes_per_vector == 4 and pq.encode(vectors).shape == (600, 4)
    index = ExactIndex(metric="ip")
    index.use_compressor(pq)
    index.build(vectors)
    result = index.search(vectors[:5], 10)
    expected = np.argsort(-(vectors[:5] @ pq.decode(pq.encode(vectors)).T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(np.sort(result.indices, axis=1), np.sort(expected, axis=1))


def test_save_and_load_reproduce_the_codes(vectors: np.ndarray, tmp_path) -> None:
    pq = PQCompressor(m=4, ksub=16, seed=3).fit(vectors)
    pq.save(tmp_path / "pq")
    again = embedlab.load_component(tmp_path / "pq")
    np.testing.assert_array_equal(again.encode(vectors), pq.encode(vectors))
    with pytest.raises(StateError):
        ExactIndex.load(tmp_path / "pq")  # another component's state is rejected


def test_use_before_fit_is_a_clear_error(vectors: np.ndarray) -> None:
    with pytest.raises(NotFittedError, match="pq: call fit"):
        PQCompressor().encode(vectors)


def test_opq_is_faiss_opq_and_scores_equal_decoded_inner_products(vectors: np.ndarray, tmp_path) -> None:
    faiss = pytest.importorskip("faiss")
    with faiss_threads(1):                 # OpenMP on a busy machine spins: one thread
        pq = PQCompressor(m=4, ksub=16, opq=True, iterations=10, seed=2).fit(vectors)
        reference = faiss.index_factory(16, "OPQ4,PQ4x4", faiss.METRIC_INNER_PRODUCT)
        inner = faiss.downcast_index(reference.index)
        inner.pq.cp.niter, inner.pq.cp.seed = 10, 2
        reference.train(vectors)
    rotation = pq.rotation
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(16), atol=1e-5)
    # same rotation, codebooks and codes (FAISS packs 4-bit codes, so compare the reconstructions)
    np.testing.assert_allclose(pq.decode(pq.encode(vectors)), reference.sa_decode(reference.sa_encode(vectors)),
                               rtol=1e-5, atol=1e-5)
    codes = pq.encode(vectors)
    np.testing.assert_allclose(pq.score(vectors[:3], codes), vectors[:3] @ pq.decode(codes).T, rtol=1e-4, atol=1e-5)
    pq.save(tmp_path / "opq")
    again = embedlab.load_component(tmp_path / "opq")
    np.testing.assert_array_equal(again.rotation, rotation)
    np.testing.assert_array_equal(again.encode(vectors), codes)


def test_use_codebooks_replaces_the_centroids_and_keeps_the_rotation(vectors: np.ndarray) -> None:
    pytest.importorskip("faiss")
    with faiss_threads(1):
        pq = PQCompressor(m=4, ksub=16, opq=True, iterations=5).fit(vectors)
    rotation, centroids = pq.rotation, pq.codebooks.centroids
    pq.use_codebooks(centroids[:, ::-1])                      # same centroids, ids reversed
    np.testing.assert_array_equal(pq.rotation, rotation)
    np.testing.assert_array_equal(pq.codebooks.centroids, centroids[:, ::-1])
    with pytest.raises(embedlab.InvalidInputError, match="do not fit"):
        pq.use_codebooks(centroids[:2])


class PerBlockPQ(PQCompressor):
    """A plain CodeScorer (no prepared tables): the exact index scores every block with ``score``."""

    query_scorer = None


class CountingPQ(PQCompressor):
    """Records the number of queries of every prepared batch."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def query_scorer(self, queries):
        self.batches.append(len(queries))
        return super().query_scorer(queries)


@pytest.mark.parametrize("metric", ["ip", "l2", "cosine"])
def test_prepared_tables_per_query_batch_give_the_per_block_results(vectors: np.ndarray, metric: str,
                                                                    monkeypatch) -> None:
    from embedlab.index import exact

    # m=4, ksub=16: 256 bytes of tables per query; a budget of 128 queries' tables
    monkeypatch.setattr(exact, "PREPARED_TABLE_BUDGET", 128 * 4 * 16 * 4)
    assert isinstance(PQCompressor(), embedlab.PreparedCodeScorer)
    assert not isinstance(PerBlockPQ(), embedlab.PreparedCodeScorer)
    queries = np.random.default_rng(2).normal(size=(300, 16)).astype(np.float32)
    per_row = np.random.default_rng(3).random((300, 600)) < 0.5
    results = {}
    for cls in (PerBlockPQ, CountingPQ):
        pq = cls(m=4, ksub=16, seed=3, iterations=5).fit(vectors)  # seeded: the same codebooks
        index = ExactIndex(metric=metric, block_size=64)
        index.use_compressor(pq)
        index.build(vectors, {"year": np.arange(600) % 3})
        results[cls] = [index.search(queries, 10, filter=f) for f in (None, {"year": 1}, per_row)]
    for a, b in zip(results[PerBlockPQ], results[CountingPQ]):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6, atol=1e-6)
    # tables are built once per batch of the queries whose tables fit the budget, not once per block
    assert pq.batches == [128, 128, 300 - 2 * 128] * 3


def test_prepared_query_batches_are_sized_from_the_tables() -> None:
    from embedlab.index.exact import PREPARED_QUERY_BATCH, PREPARED_TABLE_BUDGET, prepared_query_batch

    data = np.random.default_rng(0).normal(size=(300, 96)).astype(np.float32)
    for m in (48, 96):
        pq = PQCompressor(m=m, ksub=16, iterations=2).fit(data)
        assert pq.table_bytes_per_query == m * 16 * 4
        assert prepared_query_batch(pq) == PREPARED_TABLE_BUDGET // (m * 16 * 4)
    assert PREPARED_TABLE_BUDGET // (48 * 256 * 4) == 128      # PQ m=48, ksub=256: 128 queries per batch
    assert prepared_query_batch(object()) == PREPARED_QUERY_BATCH   # a scorer that reports no table size


def test_fit_from_chunks_equals_fit_on_the_sample(vectors: np.ndarray, tmp_path) -> None:
    from embedlab.sampling import sample_positions
    from embedlab.shards import ChunkStore, write_chunk

    store = ChunkStore.open(tmp_path / "job", "j", len(vectors), 128)
    for chunk in range(store.n_chunks):
        start, stop = store.bounds(chunk)
        write_chunk(store, chunk, vectors[start:stop], 0.0)
    positions = sample_positions(len(vectors), 400, seed=1)
    assert isinstance(PQCompressor(), embedlab.FitsFromChunks)
    for params in ({"m": 4, "ksub": 16, "iterations": 5}, {"m": 4, "ksub": 16, "iterations": 5, "opq": True}):
        with faiss_threads(1):
            ours = PQCompressor(**params).fit_from_chunks(store, positions)
            whole = PQCompressor(**params).fit(vectors[positions])
        np.testing.assert_array_equal(ours.codebooks.centroids, whole.codebooks.centroids)
        np.testing.assert_array_equal(ours.encode(vectors), whole.encode(vectors))
