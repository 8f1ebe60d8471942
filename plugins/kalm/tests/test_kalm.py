"""KaLM-Embedding-V2 on embedlab-train: focal loss, negative mixing, ranking-consistency filter, soup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_kalm import KaLM, RankConsistency
from embedlab_train import FineTunedEncoder, InfoNCE, TrainingContext, TrainingSet, make_soup
from embedlab_train.testing import gradients, random_batch, tiny_bert

from embedlab.cache import EmbeddingCache


def test_gamma_zero_without_mixing_is_infonce():
    q, docs, batch = random_batch(k=2, seed=5)
    a, b = KaLM(gamma=0.0, temperature=0.05)(batch), InfoNCE(temperature=0.05)(batch)
    assert abs(float(a.detach()) - float(b.detach())) < 1e-6
    for x, y in zip(gradients(a, q, docs), gradients(b, q, docs)):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)


def test_focal_loss_is_the_focal_formula_and_vanishes_for_easy_queries():
    q, docs, batch = random_batch(b=5, k=1, seed=6)
    loss = KaLM(gamma=2.0, temperature=0.05)
    log_p = torch.log_softmax(InfoNCE(temperature=0.05).logits(batch), dim=1).diagonal()
    expected = (-(1 - log_p.exp()) ** 2 * log_p).mean()
    assert abs(float(loss(batch).detach()) - float(expected.detach())) < 1e-9
    easy_q = docs[:5].detach().clone().requires_grad_()           # each query equals its positive
    easy = type(batch)(easy_q, docs, batch.rows, batch.doc_positions, batch.data)
    value = loss(easy)
    (grad,) = torch.autograd.grad(value, easy_q)
    plain = InfoNCE(temperature=0.05)(easy)
    (plain_grad,) = torch.autograd.grad(plain, easy_q)
    assert float(grad.norm()) < 0.1 * float(plain_grad.norm())


def test_mixed_negatives_are_unit_synthetic_detached_and_seeded():
    q, docs, batch = random_batch(b=6, k=2, seed=7)
    kalm = KaLM(gamma=0.0, mix_negatives=4, mix_pool=5)
    torch.manual_seed(0)
    logits = kalm.logits(batch)
    assert logits.shape == (6, 18 + 4)
    torch.manual_seed(0)
    synthetic = kalm.synthetic_negatives(batch, InfoNCE().logits(batch))
    assert torch.allclose(synthetic.norm(dim=-1), torch.ones(6, 4, dtype=synthetic.dtype))
    assert not synthetic.requires_grad
    torch.manual_seed(0)
    again = kalm.logits(batch)
    assert torch.equal(logits, again)
    # the synthetic columns only give the queries gradient, never the documents
    (doc_grad,) = torch.autograd.grad(torch.logsumexp(logits[:, 18:], dim=1).sum(), docs, allow_unused=True)
    assert doc_grad is None or torch.count_nonzero(doc_grad) == 0
    assert float(KaLM(gamma=0.0, mix_negatives=4)(batch).detach()) > float(InfoNCE()(batch).detach())


def pairs_with_noise(n: int = 40, noise: float = 0.2, seed: int = 0) -> tuple[TrainingSet, np.ndarray]:
    """Query i ("topic i words") with its document; a ``noise`` share of examples get a random wrong
    positive. Returns the set and which examples are wrong."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}a w{i}b w{i}c" for i in range(n)]
    docs = [f"a document about {w} and more" for w in words]
    positives = np.arange(n)
    wrong = rng.random(n) < noise
    positives[wrong] = [(i + 1 + rng.integers(n - 1)) % n for i in np.flatnonzero(wrong)]
    return TrainingSet.from_pairs([f"query {w}" for w in words], docs, list(zip(range(n), positives))), wrong


def test_rank_consistency_removes_injected_wrong_positives(tmp_path):
    data, wrong = pairs_with_noise()
    context = TrainingContext(data, 32, torch.device("cpu"), 0, EmbeddingCache(tmp_path))
    keep = RankConsistency(first_stage="bm25", top_k=3).keep(context)
    removed_wrong = (~keep & wrong).sum() / wrong.sum()
    removed_clean = (~keep & ~wrong).sum() / (~wrong).sum()
    assert removed_wrong > 0.7 and removed_clean < 0.1


def test_soup_of_seeds_is_at_least_the_mean_member(tmp_path):
    texts = [f"reference text number {i} about subject {i % 7}" for i in range(24)]
    questions = [f"which text is about item {(i * 5) % 24}" for i in range(24)]
    data = TrainingSet.from_pairs(questions, texts, [(i, (i * 5) % 24) for i in range(24)])
    params = {"model_path": str(tiny_bert(tmp_path / "tiny")), "max_length": 24, "train_batch_size": 8, "lr": 1e-3,
              "epochs": 4, "validation_fraction": 0.0, "warmup_ratio": 0.0, "num_threads": 1,
              "show_progress": False, "checkpoint_dir": None, "loss": {"name": "kalm", "gamma": 1.0}}
    members = [FineTunedEncoder(**params, seed=s).train(data) for s in range(3)]

    def accuracy(encoder) -> float:
        scores = encoder.encode_queries(questions) @ encoder.encode_documents(texts).T
        return float(np.mean(scores.argmax(1) == [(i * 5) % 24 for i in range(24)]))

    soup = make_soup(members, tmp_path / "soup")
    assert accuracy(soup) >= np.mean([accuracy(m) for m in members])
    with pytest.raises(Exception, match="architecture"):
        make_soup([members[0], FineTunedEncoder(model_path=str(tiny_bert(tmp_path / "wide", hidden=48)))],
                  tmp_path / "bad")
