"""Two-tier search against exact search, the PQ-only tier, FAISS PQ, filters and added documents."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from embedlab_bidr import BiDRIndex

from embedlab.errors import InvalidInputError
from embedlab.index import ExactIndex
from embedlab.pq_compressor import PQCompressor


def recall(truth: np.ndarray, found: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(t[:k]) & set(f[:k]) - {-1}) / k for t, f in zip(truth, found)]))


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_all_candidates_equal_exact_search(docs, queries, metric, fast) -> None:
    index = BiDRIndex(**{**fast, "candidates": len(docs) + 100}, metric=metric)
    index.build(docs * 1.5 if metric != "cosine" else docs)
    exact = ExactIndex(metric=metric)
    exact.build(docs * 1.5 if metric != "cosine" else docs)
    ours, truth = index.search(queries, 10), exact.search(queries, 10)
    np.testing.assert_array_equal(ours.indices, truth.indices)
    np.testing.assert_allclose(ours.scores, truth.scores, rtol=1e-5, atol=1e-5)


def test_recall_grows_with_candidates_and_beats_codes_alone(built, docs, queries) -> None:
    exact = ExactIndex()
    exact.build(docs)
    truth = exact.search(queries, 10).indices
    codes_only = recall(truth, built.search_codes(queries, 10).indices)
    recalls = [recall(truth, built.search(queries, 10, candidates=n).indices) for n in (10, 20, 50, 100, 400)]
    assert recalls == sorted(recalls)
    assert recalls[0] >= codes_only - 1e-9  # re-scoring the codes' own top-10 can only reorder
    assert recalls[-1] >= 0.99 and recalls[-1] >= codes_only + 0.2


def test_codes_tier_matches_faiss_pq_on_the_same_centroids(docs, queries) -> None:
    pq = PQCompressor(m=8, ksub=256, iterations=4).fit(docs)
    reference = faiss.IndexPQ(docs.shape[1], 8, 8, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(pq.codebooks.centroids.ravel(), reference.pq.centroids)
    reference.is_trained = True
    reference.add(docs)
    faiss_codes = faiss.vector_to_array(reference.codes).reshape(len(docs), 8)
    assert np.mean(faiss_codes == pq.encode(docs)) > 0.999  # equal up to float ties in the argmin
    index = BiDRIndex()
    index.use_compressor(pq)
    index.build(docs)
    ref_scores, ref_indices = reference.search(queries, 10)
    ours = index.search_codes(queries, 10)
    np.testing.assert_allclose(ours.scores, ref_scores, rtol=1e-4, atol=1e-4)
    assert recall(ref_indices, ours.indices) > 0.99


def test_sparse_weight_mixes_code_scores(built, docs, queries, fast) -> None:
    mixed = BiDRIndex(**fast, sparse_weight=0.3)
    mixed.build(docs)
    first = mixed.search_codes(queries[:1], 50)
    result = mixed.search(queries[:1], 5)
    top = result.indices[0, 0]
    code_score = first.scores[0][first.indices[0] == top][0]
    assert result.scores[0, 0] == pytest.approx(float(docs[top] @ queries[0]) + 0.3 * code_score, abs=1e-5)


def test_filters_apply_to_candidates(docs, queries, fast) -> None:
    lang = np.where(np.arange(len(docs)) % 3 == 0, "en", "fr")
    index = BiDRIndex(**fast)
    index.build(docs, attributes={"lang": lang})
    result = index.search(queries, 10, filter={"lang": "en"})
    assert (lang[result.indices] == "en").all()
    exact = ExactIndex()
    exact.build(docs, attributes={"lang": lang})
    all_candidates = index.search(queries, 10, filter={"lang": "en"}, candidates=len(docs))
    np.testing.assert_array_equal(all_candidates.indices, exact.search(queries, 10, filter={"lang": "en"}).indices)
    nothing = index.search(queries[:2], 3, filter=np.zeros(len(docs), bool))
    assert (nothing.indices == -1).all() and np.isneginf(nothing.scores).all()


def test_add_after_build_equals_one_build(docs, queries, tmp_path, fast) -> None:
    pq = PQCompressor(m=8, ksub=16, iterations=8).fit(docs)
    whole, parts = BiDRIndex(**fast), BiDRIndex(**fast, storage_dir=str(tmp_path))
    whole.use_compressor(pq)
    parts.use_compressor(pq)
    whole.build(docs)
    parts.build(docs[:1000])
    parts.add(docs[1000:])
    assert len(parts) == len(docs) and list(tmp_path.iterdir()) == [parts._vectors.path]
    a, b = whole.search(queries, 10), parts.search(queries, 10)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_foreign_compressor_without_code_scorer(docs, queries) -> None:
    class Half:
        """float16 'codes', decoded block by block by the core ExactIndex (no CodeScorer)."""

        name, config, bytes_per_vector = "half", None, 64.0

        def fit(self, vectors):  # type: ignore[no-untyped-def]
            return self

        def encode(self, vectors):  # type: ignore[no-untyped-def]
            return np.asarray(vectors, np.float16)

        def decode(self, codes):  # type: ignore[no-untyped-def]
            return np.asarray(codes, np.float32)

        def save(self, path) -> None:  # type: ignore[no-untyped-def]
            raise NotImplementedError

    index = BiDRIndex(candidates=20)
    index.use_compressor(Half())
    index.build(docs)
    exact = ExactIndex()
    exact.build(docs)
    assert recall(exact.search(queries, 10).indices, index.search(queries, 10).indices) == 1.0
    assert index.memory_bytes == len(docs) * docs.shape[1] * 2


def test_memory_and_disk_accounting(built, docs, queries) -> None:
    n, d = docs.shape
    assert built.memory_bytes == n * 8 + 8 * 16 * (d // 8) * 4  # uint8 codes + float32 centroids
    assert built.disk_bytes == n * d * 4 + 128  # .npy header
    built.search(queries, 10, candidates=30)
    assert built.last_bytes_read == len(queries) * 30 * d * 4
    built.search(queries, 10, candidates=5 * n)
    assert built.last_bytes_read == len(queries) * n * d * 4


def test_deterministic_given_a_seed(docs, queries, fast) -> None:
    def run(seed: int) -> np.ndarray:
        index = BiDRIndex(**{**fast, "train_size": 500}, seed=seed)
        index.build(docs)
        return index.search_codes(queries, 10).scores

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_other_dimension_and_single_query(make_vectors) -> None:
    docs = make_vectors(300, d=24, seed=5)
    index = BiDRIndex(m=6, ksub=8, candidates=40, metric="cosine")
    index.build(docs)
    result = index.search(docs[7][None, :] * 3.0, 1)
    assert result.indices[0, 0] == 7 and result.scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_query_batches_and_per_query_filters(built, docs, make_vectors) -> None:
    many = make_vectors(150, seed=2)  # more than one batch of QUERY_BATCH queries
    together = built.search(many, 10)
    alone = [built.search(many[i:i + 1], 10) for i in range(len(many))]
    np.testing.assert_array_equal(together.indices, np.concatenate([r.indices for r in alone]))
    np.testing.assert_array_equal(together.scores, np.concatenate([r.scores for r in alone]))
    lang = np.where(np.arange(len(docs)) % 2 == 0, "en", "fr")
    built.build(docs, attributes={"lang": lang})
    per_query = [{"lang": "en"} if i % 2 else None for i in range(len(many))]
    result = built.search(many, 10, filter=per_query)
    assert (lang[result.indices[1::2]] == "en").all() and (lang[result.indices[::2]] == "fr").any()
    masks = np.stack([lang == ("en" if i % 2 else "fr") for i in range(len(many))])
    assert (lang[built.search(many, 10, filter=masks).indices[1::2]] == "en").all()
    with pytest.raises(InvalidInputError, match="one entry per query"):
        built.search(many, 10, filter=per_query[:-1])
