"""The qwen3 and cosent losses: reductions to InfoNCE, the +0.1 false-negative mask, and equality
with sentence-transformers' GISTEmbedLoss (student as its own guide) and CoSENTLoss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_qwen3 import CoSent, Qwen3
from embedlab_train import Batch, InfoNCE, Matryoshka, TrainingSet
from embedlab_train.model import TrainableModel
from embedlab_train.testing import gradients, pair_set, random_batch

import embedlab

NEUTRAL = {"false_negative_margin": None, "mask_identical": False, "query_query": False,
           "document_document": False, "other_hard_negatives": True}


@pytest.mark.parametrize("k", [0, 1, 2])
def test_neutral_qwen3_is_infonce(k):
    q, docs, batch = random_batch(b=6, k=k, seed=k)
    a, b = Qwen3(temperature=0.05, **NEUTRAL)(batch), InfoNCE(temperature=0.05)(batch)
    assert abs(float(a.detach()) - float(b.detach())) < 1e-6
    for x, y in zip(gradients(a, q, docs), gradients(b, q, docs)):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("margin", [0.1, 0.02])
def test_qwen3_equals_gistembedloss_with_the_student_as_its_own_guide(tmp_path, margin):
    """The report's mask (a term more than 0.1 above the positive leaves Z_i) is GISTEmbedLoss's
    absolute margin -0.1 with a guide equal to the student; q-q and d-d blocks = GIST's contrast
    blocks; all in-batch hard negatives (GIST's anchor-negative block). The random tiny BERT's
    cosines are all near 0.9, so margin 0.02 is where the mask removes terms."""
    from embedlab_train.testing import tiny_bert
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

    model_dir = tiny_bert(tmp_path / "bert", seed=3)
    anchors = ["parse json text", "open a file", "sort numbers quickly", "send a request", "parse json data"]
    positives = ["json.loads parses a string", "open(path) returns a file", "sorted(xs) sorts",
                 "requests.get(url)", "json.loads reads json"]
    negatives = ["parse json text", "time.time measures", "os.walk lists files", "send a request",
                 "json parsing of text"]  # two negatives repeat their query: false negatives
    student = SentenceTransformer(str(model_dir), device="cpu").double().eval()
    theirs = GISTEmbedLoss(student, student, temperature=0.05, margin_strategy="absolute", margin=-margin)
    expected = theirs([student.preprocess(t) for t in (anchors, positives, negatives)], None)
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in student[0].auto_model.named_parameters() if p.grad is not None}

    ours_model = TrainableModel(model_dir, pooling="mean", normalize=True, max_length=32, device=torch.device("cpu"))
    ours_model.model.load_state_dict(student[0].auto_model.state_dict())
    ours_model = ours_model.double().eval()
    data = TrainingSet.from_pairs(anchors, positives + negatives, [(i, i) for i in range(5)])
    batch = Batch(ours_model.embed(anchors), ours_model.embed(positives + negatives), np.arange(5), np.arange(10), data)
    loss = Qwen3(temperature=0.05, false_negative_margin=margin, mask_identical=False, other_hard_negatives=True)
    value = loss(batch)
    value.backward()
    masked = torch.isinf(loss.logits(batch)).sum()
    assert masked > 5 + 5 or margin == 0.1  # the qq and dd diagonals, and false negatives
    assert abs(float(value.detach()) - float(expected.detach())) < 1e-6
    grads = dict(ours_model.model.named_parameters())
    for name, grad in expected_grads.items():
        assert torch.allclose(grads[name].grad, grad, rtol=0, atol=1e-6), name


def test_the_mask_is_strictly_more_than_the_margin_above_the_positive_and_leaves_no_gradient():
    def unit(cos: float) -> list[float]:
        return [cos, float(np.sqrt(1 - cos * cos))]

    query = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    # positive at cosine 0.8; hard negatives at 0.95 (> 0.8 + 0.1: masked) and 0.85 (kept)
    docs = torch.tensor([unit(0.8), unit(0.95), unit(0.85)], dtype=torch.float64, requires_grad=True)
    batch = Batch(query, docs, np.arange(1), np.arange(3), pair_set(1, 3))
    loss = Qwen3(query_query=False, document_document=False)
    logits = loss.logits(batch)
    assert torch.isfinite(logits[0, 0]) and torch.isinf(logits[0, 1]) and torch.isfinite(logits[0, 2])
    (grad,) = torch.autograd.grad(loss(batch), docs)
    assert torch.count_nonzero(grad[1]) == 0 and torch.count_nonzero(grad[2]) > 0
    assert torch.isfinite(Qwen3(false_negative_margin=0.2, query_query=False, document_document=False)
                          .logits(batch)[0, 1])


def test_identical_documents_and_other_queries_hard_negatives_leave_the_denominator():
    data = TrainingSet.from_pairs(["q0", "q1"], ["same text", "other", "same text", "neg of q1"],
                                  [(0, 0), (1, 1)])
    gen = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(2, 8, generator=gen, dtype=torch.float64),
                  torch.randn(4, 8, generator=gen, dtype=torch.float64), np.arange(2), np.arange(4), data)
    logits = Qwen3(false_negative_margin=None, query_query=False, document_document=False).logits(batch)
    assert torch.isinf(logits[0, 2])      # same text as query 0's positive
    assert torch.isinf(logits[0, 3])      # query 1's hard negative: not in query 0's Z_i
    assert torch.isfinite(logits[1, 3]) and torch.isfinite(logits[1, 0])
    with_others = Qwen3(false_negative_margin=None, query_query=False, document_document=False,
                        other_hard_negatives=True).logits(batch)
    assert torch.isfinite(with_others[0, 3])


def test_qwen3_blocks_have_the_reports_shape_and_the_positive_is_never_masked():
    q, docs, batch = random_batch(b=5, k=2, seed=9)
    logits = Qwen3(false_negative_margin=-5.0).logits(batch)   # masks every term but the positive
    assert logits.shape == (5, 5 * 3 + 5 + 5)
    assert torch.isfinite(logits.diagonal()).all()
    assert torch.isinf(logits).sum() == logits.numel() - 5


def _st_cosent(scale: float):
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss
    from sentence_transformers.util import pairwise_cos_sim

    loss = CoSENTLoss.__new__(CoSENTLoss)
    torch.nn.Module.__init__(loss)
    loss.model, loss.scale, loss.similarity_fct = None, scale, pairwise_cos_sim
    return loss.compute_loss_from_embeddings


def test_cosent_equals_sentence_transformers_cosentloss_on_graded_pairs():
    q, docs, batch = random_batch(b=4, k=2, seed=11)
    data = TrainingSet(batch.data.queries, batch.data.corpus, batch.data.query, batch.data.positive,
                       batch.data.judged, grade=[3, 1, 2, 1])
    batch = Batch(q, docs, batch.rows, batch.doc_positions, data)
    ours = CoSent(temperature=0.05)(batch)
    query_rows = [0, 1, 2, 3] * 3                      # positives, then each column of hard negatives
    labels = torch.tensor([3.0, 1.0, 2.0, 1.0] + [0.0] * 8, dtype=torch.float64)
    theirs = _st_cosent(20.0)([q[query_rows], docs], labels)
    assert abs(float(ours.detach()) - float(theirs.detach())) < 1e-6
    for x, y in zip(gradients(ours, q, docs), gradients(theirs, q, docs)):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)


def test_cosent_in_batch_pairs_skip_judged_documents():
    q, docs, batch = random_batch(b=3, k=0, judged=[{0, 1}, {1}, {2}])
    loss = CoSent(in_batch=True)
    query_rows, doc_rows, labels = loss.pairs(batch)
    pairs = set(zip(query_rows.tolist(), doc_rows.tolist()))
    assert (0, 1) not in pairs and {(0, 0), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)} <= pairs
    assert labels.tolist().count(1.0) == 3
    assert float(loss(batch).detach()) > 0


def test_matryoshka_over_qwen3_applies_the_mask_per_prefix():
    q, docs, batch = random_batch(b=4, k=1, d=16, seed=2)
    mrl = Matryoshka(dims=[16, 8], base={"name": "qwen3"})
    expected = Qwen3()(batch) + Qwen3()(batch.truncated(8))
    assert abs(float(mrl(batch).detach()) - float(expected.detach())) < 1e-9


def test_bad_parameters_are_named():
    with pytest.raises(embedlab.ConfigError, match="false_negative_margin"):
        embedlab.create("loss", "qwen3", false_negative_margin="0.1")
    with pytest.raises(embedlab.ConfigError, match="temperature"):
        embedlab.create("loss", "cosent", temperature=0)
