"""RzenEmbed's loss: reduction to InfoNCE, sentence-transformers' hardness weighting, the false-negative
mask, the learnable temperature, and training with it."""

from __future__ import annotations

import math

import pytest
import torch
from embedlab_rzen import Rzen
from embedlab_train import FineTunedEncoder, InfoNCE, TrainingSet
from embedlab_train.testing import gradients, random_batch, tiny_bert

import embedlab


def st_mnrl(columns, alpha, mode):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(None, scale=20.0, hardness_mode=mode,
                                        hardness_strength=alpha).compute_loss_from_embeddings(columns, None)


def test_alpha_zero_no_mask_fixed_temperature_is_infonce():
    q, docs, batch = random_batch(k=2, seed=1)
    rzen = Rzen(alpha=0.0, false_negative_margin=None, learn_temperature=False, temperature=0.05)
    a, b = rzen(batch), InfoNCE(temperature=0.05)(batch)
    assert abs(float(a.detach()) - float(b.detach())) < 1e-6 and rzen.parameters() == {}
    for x, y in zip(gradients(a, q, docs), gradients(b, q, docs)):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("hardness_on", "mode"), [("all", "all_negatives"), ("hard", "hard_negatives")])
@pytest.mark.parametrize("alpha", [5.0, 9.0])
def test_hardness_weights_equal_sentence_transformers_hardness_mode(alpha, hardness_on, mode):
    q, docs, batch = random_batch(k=2, seed=2)
    ours = Rzen(alpha=alpha, hardness_on=hardness_on, false_negative_margin=None, learn_temperature=False,
                temperature=0.05)(batch)
    theirs = st_mnrl([q, *docs.split(q.shape[0])], alpha, mode)
    assert abs(float(ours.detach()) - float(theirs.detach())) < 1e-6
    for x, y in zip(gradients(ours, q, docs), gradients(theirs, q, docs)):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)
    # the weights are exp(alpha * s) >= 1 for positive similarities, and detached: raising alpha raises the loss
    lighter = Rzen(alpha=alpha / 2, hardness_on=hardness_on, false_negative_margin=None, learn_temperature=False,
                   temperature=0.05)(batch)
    assert float(ours.detach()) > float(lighter.detach())


def test_a_duplicate_of_the_positive_is_masked_and_not_pushed_apart():
    q, docs, batch = random_batch(b=4, k=1, seed=3)
    with torch.no_grad():
        docs[4] = docs[0]                                  # query 0's hard negative duplicates its positive
    rzen = Rzen(alpha=0.0, learn_temperature=False, false_negative_margin=0.0)
    logits = rzen.logits(batch)
    assert torch.isinf(logits[0, 4]) and torch.isfinite(logits[0, 0])
    row0 = -torch.log_softmax(logits[0], dim=0)[0]
    (grad_rzen,) = torch.autograd.grad(row0, docs, retain_graph=True)
    assert torch.count_nonzero(grad_rzen[4]) == 0          # nothing pushes the duplicate away from query 0
    plain = -torch.log_softmax(InfoNCE().logits(batch)[0], dim=0)[0]
    (grad_plain,) = torch.autograd.grad(plain, docs)
    assert torch.count_nonzero(grad_plain[4]) > 0          # InfoNCE does


def test_learnable_temperature_is_trained_clamped_and_checkpointed(tmp_path):
    _, _, batch = random_batch(seed=4)
    clamped = Rzen(temperature=0.001, max_scale=100.0)
    assert math.isclose(float(clamped.temperature()), 0.01, rel_tol=1e-9)
    rzen = Rzen(temperature=0.05)
    rzen(batch).backward()
    assert rzen.logit_scale.grad is not None and float(rzen.logit_scale.grad) != 0.0

    texts = [f"topic {i} text about item {i}" for i in range(16)]
    data = TrainingSet.from_pairs([f"question {i}" for i in range(16)], texts, [(i, i) for i in range(16)])
    encoder = FineTunedEncoder(model_path=str(tiny_bert(tmp_path / "tiny")), loss={"name": "rzen", "temperature": 0.05},
                               max_length=16, train_batch_size=8, lr=1e-2, epochs=2, validation_fraction=0.0,
                               warmup_ratio=0.0, num_threads=1, show_progress=False,
                               checkpoint_dir=str(tmp_path / "run"))
    encoder.train(data)
    assert not math.isclose(float(encoder.loss.logit_scale), math.log(20.0))     # the optimiser moved it
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "checkpoint" / "trainer.safetensors"))
    assert math.isclose(float(saved["loss/logit_scale"]), float(encoder.loss.logit_scale), rel_tol=1e-12)


def test_rzen_is_listed_as_a_loss():
    assert "rzen" in embedlab.registry().names("loss")
    with pytest.raises(embedlab.ConfigError, match="alpha"):
        Rzen(alpha=-1.0)
