"""BiDR's contrastive quantisation: straight-through codeword selection and codebook training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from embedlab_bidr import BiDRIndex  # noqa: E402
from embedlab_bidr.contrastive import straight_through_quantise, train_contrastive_pq  # noqa: E402

import embedlab  # noqa: E402
from embedlab.pq_compressor import PQCompressor  # noqa: E402
from embedlab.threads import faiss_threads  # noqa: E402

FAST = {"epochs": 8, "batch_size": 32, "lr": 5e-3, "num_threads": 1, "show_progress": False}


def test_forward_is_the_nearest_codeword_and_gradients_reach_the_codebooks():
    rng = np.random.default_rng(0)
    centroids = torch.tensor(rng.standard_normal((2, 8, 3)).astype(np.float32), requires_grad=True)
    z = torch.tensor(rng.standard_normal((5, 6)).astype(np.float32))
    out = straight_through_quantise(z, centroids, tau=0.5)
    pq = PQCompressor(m=2, ksub=8)
    pq._books = embedlab.pq.Codebooks(centroids.detach().numpy())       # the same codebooks, core encoder
    np.testing.assert_allclose(out.detach().numpy(), pq.decode(pq.encode(z.numpy())), rtol=1e-6)
    out.sum().backward()
    grad = centroids.grad.abs().sum(-1)
    assert (grad > 0).sum() > 2 * 5 / 2          # the soft assignment spreads gradient beyond the chosen codewords


def labelled(docs: np.ndarray, seed: int) -> tuple[np.ndarray, list[list[int]]]:
    """Queries that are distorted copies of documents (one relevant document each)."""
    rng = np.random.default_rng(seed)
    targets = rng.choice(len(docs), 300, replace=False)
    distortion = np.eye(docs.shape[1]) + 0.6 * rng.standard_normal((docs.shape[1],) * 2) / np.sqrt(docs.shape[1])
    q = docs[targets] @ distortion.T
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), [[int(t)] for t in targets]


def recall(pq: PQCompressor, docs: np.ndarray, queries: np.ndarray, relevant: list[list[int]], k: int = 10) -> float:
    scores = pq.score(queries, pq.encode(docs))
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([r[0] in row for row, r in zip(top, relevant)]))


def test_training_raises_code_tier_recall_and_keeps_the_rotation(docs, fast):
    queries, relevant = labelled(docs, 1)
    plain = PQCompressor(m=8, ksub=16, iterations=8).fit(docs)
    trained = PQCompressor(m=8, ksub=16, iterations=8).fit(docs)
    record = train_contrastive_pq(trained, docs, queries[:240], relevant[:240], validation_fraction=0.0, **FAST)
    assert record["trained"] and len(record["losses"]) == 8 and record["losses"][-1] < record["losses"][0]
    assert not np.allclose(trained.codebooks.centroids, plain.codebooks.centroids)
    # queries training never saw, about documents training never used
    assert recall(trained, docs, queries[240:], relevant[240:]) > recall(plain, docs, queries[240:], relevant[240:])
    assert recall(trained, docs, queries[:240], relevant[:240]) > recall(plain, docs, queries[:240],
                                                                         relevant[:240]) + 0.05
    # the trained codebooks serve the two-tier index
    index = BiDRIndex(candidates=50)
    index.use_compressor(trained)
    index.build(docs)
    assert index.search(queries[:5], k=3).indices.shape == (5, 3)


def test_opq_rotation_is_kept_and_early_stopping_keeps_the_best_epoch(docs):
    pytest.importorskip("faiss")
    queries, relevant = labelled(docs, 2)
    with faiss_threads(1):                 # OpenMP on a busy machine spins: one thread
        pq = PQCompressor(m=8, ksub=16, iterations=8, opq=True).fit(docs)
    rotation = pq.rotation
    record = train_contrastive_pq(pq, docs, queries, relevant, validation_fraction=0.2, patience=2,
                                  **{**FAST, "epochs": 4})
    np.testing.assert_array_equal(pq.rotation, rotation)
    values = record["validation_recall"]
    assert record["held_out_queries"] == 60 and len(values) == len(record["losses"]) + 1
    assert record["best_epoch"] == int(np.argmax(values))


def test_ctrl_c_leaves_the_codebooks_and_no_relevant_document_is_an_error(docs, monkeypatch):
    from embedlab_bidr import contrastive

    queries, relevant = labelled(docs, 3)
    pq = PQCompressor(m=8, ksub=16, iterations=8).fit(docs)
    before = pq.codebooks.centroids.copy()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(contrastive, "_batch_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_contrastive_pq(pq, docs, queries, relevant, **FAST)
    np.testing.assert_array_equal(pq.codebooks.centroids, before)
    with pytest.raises(embedlab.InvalidInputError, match="no training query"):
        train_contrastive_pq(pq, docs, queries, [[] for _ in relevant], **FAST)
