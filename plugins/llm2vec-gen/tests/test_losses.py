"""Each LLM2Vec-Gen loss term against a hand computation (numpy, or the decoder run one step at a time)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_dsi.model import DecoderShape, DocidDecoder
from embedlab_llm2vec_gen.losses import alignment_loss, hardness_weighted_contrastive, reconstruction_loss


def _decoder(vocab: int = 7, dim: int = 8) -> DocidDecoder:
    torch.manual_seed(0)
    return DocidDecoder(DecoderShape(vocab, 5, dim, layers=1, heads=2, feedforward=16, dropout=0.0)).eval()


def test_reconstruction_is_the_mean_token_cross_entropy_of_step_by_step_decoding():
    decoder = _decoder()
    prompt = torch.randn(2, 3, 8)
    targets = [[4, 1, 6], [2, 6]]  # ragged: the second target's padding is ignored
    expected = []
    with torch.no_grad():
        for row, target in enumerate(targets):
            for t, token in enumerate(target):  # the token after [start] + target[:t]
                prefix = torch.tensor([target[:t]], dtype=torch.long)
                logits = decoder(prompt[row:row + 1], torch.ones(1, 3, dtype=torch.bool), prefix)[0, -1]
                expected.append(-float(torch.log_softmax(logits, -1)[token]))
        got = float(reconstruction_loss(decoder, prompt, targets))
    assert got == pytest.approx(np.mean(expected), rel=1e-5)


def test_reconstruction_gradients_reach_the_prompt_through_a_frozen_decoder():
    decoder = _decoder().requires_grad_(False)
    prompt = torch.randn(2, 3, 8, requires_grad=True)
    reconstruction_loss(decoder, prompt, [[1, 2], [3, 6]]).backward()
    assert prompt.grad is not None and float(prompt.grad.abs().sum()) > 0
    assert all(p.grad is None for p in decoder.parameters())


def test_alignment_mse_and_cosine_by_hand():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    mse = float(alignment_loss(torch.tensor(s), torch.tensor(t), "mse"))
    assert mse == pytest.approx(((s - t) ** 2).mean())
    cos = (s * t).sum(1) / np.linalg.norm(s, axis=1) / np.linalg.norm(t, axis=1)
    assert float(alignment_loss(torch.tensor(s), torch.tensor(t), "cosine")) == pytest.approx((1 - cos).mean())
    with pytest.raises(ValueError, match="mse"):
        alignment_loss(torch.tensor(s), torch.tensor(t), "l1")
    with pytest.raises(ValueError, match="differ"):
        alignment_loss(torch.tensor(s), torch.tensor(t[:, :3]), "mse")


@pytest.mark.parametrize("alpha", [0.0, 2.0])
def test_hardness_weighted_contrastive_by_hand(alpha):
    rng = np.random.default_rng(1)
    q, p, n = (rng.standard_normal((3, 4)) for _ in range(3))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    scale = 5.0
    cos = unit(q) @ unit(np.vstack([p, n])).T
    losses = []
    for i in range(3):
        weights = np.ones(6)
        weights[3 + i] = np.exp(alpha * cos[i, 3 + i])
        losses.append(-np.log(np.exp(scale * cos[i, i]) / (weights * np.exp(scale * cos[i])).sum()))
    got = float(hardness_weighted_contrastive(torch.tensor(q), torch.tensor(p), torch.tensor(n), scale, alpha))
    assert got == pytest.approx(np.mean(losses), rel=1e-6)


def test_hardness_weighting_makes_a_hard_negative_cost_more():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    hard = torch.tensor([[1.0, 0.3], [0.3, 1.0]])
    plain = hardness_weighted_contrastive(q, p, hard, 5.0, 0.0)
    assert float(hardness_weighted_contrastive(q, p, hard, 5.0, 3.0)) > float(plain)
    with pytest.raises(ValueError, match="shape"):
        hardness_weighted_contrastive(q, p, hard[:1], 5.0, 0.0)
