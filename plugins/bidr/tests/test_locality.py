"""BiDR's locality-centric sampling: walks over the query-candidate graph, and its use by
embedlab-train's loop (BM25 candidates, a tiny random BERT)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("embedlab_train")
pytest.importorskip("embedlab_bm25")

import torch  # noqa: E402
from embedlab_bidr.locality import LocalitySampler  # noqa: E402
from embedlab_train import TrainingContext, TrainingSet  # noqa: E402
from embedlab_train.data import epoch_batches  # noqa: E402
from embedlab_train.testing import TOPICS, tiny_bert  # noqa: E402

import embedlab  # noqa: E402
from embedlab.cache import EmbeddingCache  # noqa: E402
from embedlab.dataset import Corpus, Dataset, Queries  # noqa: E402
from embedlab.training import TrainingData  # noqa: E402

WORDS = ["fast", "safe", "simple", "modern"]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """24 topics x 4 styles: each training query names a topic and a style, its relevant
    document is that pair; BM25 candidates are the topic's other styles and the style's other topics."""
    ids, texts = [], []
    for t, topic in enumerate(TOPICS):
        for w, word in enumerate(WORDS):
            ids.append(f"d{t}-{w}")
            texts.append(f"{word} way to {topic}")
    qids = [f"q{t}-{w}" for t in range(len(TOPICS)) for w in range(len(WORDS))]
    qtexts = [f"{word} {topic}" for topic in TOPICS for word in WORDS]
    qrels = {"train": {q: {q.replace("q", "d"): 1} for q in qids}}
    return Dataset("styles", Corpus(ids, texts), Queries(qids, qtexts), qrels)


@pytest.fixture()
def context(dataset, tmp_path) -> TrainingContext:
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    return TrainingContext(data, 32, torch.device("cpu"), 0, EmbeddingCache(tmp_path))


def linked(sampler: LocalitySampler, context: TrainingContext, a: int, b: int, negatives: np.ndarray) -> bool:
    """Whether example ``b``'s query has example ``a``'s negative among its candidates."""
    return int(negatives[a, 0]) in set(sampler._candidates.unjudged(context.data, int(context.data.query[b])).tolist())


@pytest.mark.parametrize("walk", ["random", "snowball"])
def test_batches_follow_the_graph_cover_every_example_once_without_duplicates(context, walk):
    sampler = LocalitySampler(first_stage="bm25", depth=8, walk=walk)
    sampler.prepare(context)
    data = context.data
    negatives = sampler.sample(context, 0, np.random.default_rng([0, 0, 1]))
    assert negatives.shape == (len(data), 1)
    for e, q in enumerate(data.query.tolist()):
        assert int(negatives[e, 0]) not in data.judged[q]
    batches = sampler.batches(context, 0, negatives, 8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(data)))
    for batch in batches:
        assert len(set(data.query[batch].tolist())) == len(batch) == len(set(data.positive[batch].tolist()))
    assert [b.tolist() for b in batches] == [b.tolist() for b in sampler.batches(context, 0, negatives, 8)]

    def locality(plan: list[np.ndarray]) -> float:
        """Share of examples whose negative another example of the batch has among its candidates."""
        return float(np.mean([any(linked(sampler, context, a, b, negatives) for b in batch if b != a)
                              for batch in plan for a in batch.tolist()]))

    assert locality(batches) > locality(epoch_batches(data, 8, 0, 0)) + 0.1      # measured: +0.15 (snowball)


def test_the_walk_steps_along_edges(context):
    sampler = LocalitySampler(first_stage="bm25", depth=8, walk="random")
    sampler.prepare(context)
    negatives = sampler.sample(context, 0, np.random.default_rng(3))
    order = sampler.walk_order(negatives, np.random.default_rng(4)).tolist()
    steps = [linked(sampler, context, a, b, negatives) for a, b in zip(order, order[1:])]
    assert np.mean(steps) > 0.6                      # a random order would link about 8 / 96 of its steps


def test_finetune_trains_with_locality_batches(dataset, tmp_path, monkeypatch):
    seen = []
    original = LocalitySampler.batches

    def recording(self, context, epoch, negatives, batch_size):  # type: ignore[no-untyped-def]
        plan = original(self, context, epoch, negatives, batch_size)
        seen.append((epoch, [b.tolist() for b in plan]))
        return plan

    monkeypatch.setattr(LocalitySampler, "batches", recording)
    encoder = embedlab.create("encoder", "finetune", model_path=str(tiny_bert(tmp_path / "tiny")), epochs=2,
                              negatives={"name": "locality", "first_stage": "bm25", "depth": 8},
                              num_threads=1, show_progress=False, max_length=32, train_batch_size=8, lr=1e-3,
                              validation_fraction=0.0, warmup_ratio=0.0, checkpoint_dir=None)
    encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    assert [epoch for epoch, _ in seen] == [0, 1]
    assert encoder.training_record["steps"] == sum(len(plan) for _, plan in seen)


def test_progressive_optimisation_mines_the_graph_from_the_trained_stage1_index(dataset, context, tmp_path):
    """BiDR's progressive optimisation: stage 2's candidates come from stage 1's *trained* PQ index,
    handed to the sampler as a saved component (``index = { load = ... }``); retraining stage 1
    changes the sampler's fingerprint, hence the training run's identity."""
    from embedlab_bidr.contrastive import train_contrastive_pq

    from embedlab.components import fingerprint
    from embedlab.hashing import HashingEncoder
    from embedlab.index import ExactIndex
    from embedlab.pq_compressor import PQCompressor

    encoder, data = HashingEncoder(dim=32), context.data
    docs = encoder.encode_documents(data.documents)
    queries = encoder.encode_queries(list(data.queries.texts))
    relevant = [sorted(data.judged[q]) for q in range(len(data.queries))]
    pq = PQCompressor(m=4, ksub=8, seed=0).fit(docs)
    start = pq.codebooks.centroids.copy()
    train_contrastive_pq(pq, docs, queries, relevant, epochs=3, lr=0.05, validation_fraction=0.0, num_threads=1,
                         show_progress=False)
    assert not np.array_equal(pq.codebooks.centroids, start)         # stage 1 trained
    stage1 = ExactIndex(metric="ip")
    stage1.use_compressor(pq)
    stage1.build(docs)
    stage1.save(tmp_path / "stage1")
    first_stage = {"encoder": {"name": "hashing", "dim": 32}, "index": {"load": str(tmp_path / "stage1")}}
    sampler = LocalitySampler(first_stage=first_stage, depth=8)
    sampler.prepare(context)
    code_scores = pq.score(queries, pq.encode(docs))
    float_scores = queries @ docs.T
    found = sampler._candidates.positions
    for q in range(len(data.queries)):
        assert np.allclose(np.sort(code_scores[q][found[q]]), np.sort(code_scores[q])[-8:], atol=1e-5)
    floats = np.argsort(-float_scores, axis=1, kind="stable")[:, :8]
    assert any(set(found[q].tolist()) != set(floats[q].tolist()) for q in range(len(found)))  # not the float ranking
    before = fingerprint(sampler)
    stage1 = ExactIndex(metric="ip")
    stage1.use_compressor(PQCompressor(m=4, ksub=8, seed=0).fit(docs))            # stage 1 untrained
    stage1.build(docs)
    stage1.save(tmp_path / "stage1")
    assert fingerprint(LocalitySampler(first_stage=first_stage, depth=8)) != before
