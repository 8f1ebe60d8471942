"""NV-Embed's latent attention pooling: against a loop-by-loop reference, identity at init (mean
pooling to 1e-6), padding invariance, training through embedlab-train, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_nvembed import LatentAttentionPooling, NVEmbedEncoder
from embedlab_train import TrainingSet, masked_mean
from embedlab_train.testing import reciprocal_rank, reference_attention_block, through_cli_and_api

import embedlab
from embedlab.errors import ConfigError
from embedlab.training import TrainingData

TEXTS = ["open a file for reading", "parse json text quickly", "", "sort numbers"]


def random_states(batch=3, length=7, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    states = torch.randn(batch, length, dim, generator=gen, dtype=torch.float64)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    return states, mask


def reference(layer: LatentAttentionPooling, states, mask):
    """The layer written out token by token and head by head (float64)."""
    norm = torch.nn.functional.layer_norm
    d, attention = states.shape[-1], layer.attention
    latents = norm(layer.latents, (d,), layer.norm_latents.weight, layer.norm_latents.bias)
    k_all, v_all = (latents @ attention.to_kv.weight.T).chunk(2, dim=-1)
    out = torch.zeros(states.shape[0], d, dtype=states.dtype)
    for b in range(states.shape[0]):
        rows = []
        for t in range(states.shape[1]):
            h = states[b, t]
            q_all = norm(h, (d,), layer.norm_tokens.weight, layer.norm_tokens.bias) @ attention.to_q.weight.T
            rows.append(reference_attention_block(q_all, k_all, v_all, h, attention, layer.feed_forward))
        kept = torch.stack(rows)[mask[b]]
        out[b] = kept.mean(0)
    return out


def test_the_layer_equals_a_token_by_token_reference():
    torch.manual_seed(0)
    layer = LatentAttentionPooling(16, latents=5, heads=2, head_dim=3, mult=2, zero_init=False).double()
    states, mask = random_states()
    torch.testing.assert_close(layer(states, mask), reference(layer, states, mask), atol=1e-10, rtol=1e-10)


def test_zero_init_is_mean_pooling_and_padding_changes_nothing():
    torch.manual_seed(0)
    layer = LatentAttentionPooling(16, latents=8, heads=4).double()
    states, mask = random_states()
    torch.testing.assert_close(layer(states, mask), masked_mean(states, mask), atol=1e-12, rtol=0)
    trained = LatentAttentionPooling(16, latents=8, heads=4, zero_init=False).double()
    padded = torch.cat([states, torch.randn(3, 5, 16, dtype=torch.float64)], dim=1)  # junk in the padding
    longer = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(trained(padded, longer), trained(states, mask), atol=1e-12, rtol=0)


def test_minilm_scale_parameter_count():
    layer = LatentAttentionPooling(384)  # 512 latents, 8 heads of 48, GEGLU x4: the README's 2.56 M
    assert sum(p.numel() for p in layer.parameters()) == 2_561_664


def test_untrained_nvembed_encodes_like_the_frozen_model(params, tiny_model):
    reference_vectors = embedlab.create("encoder", "transformers", model_path=str(tiny_model), max_length=32,
                                        show_progress=False).encode_queries(TEXTS)
    ours = embedlab.create("encoder", "nvembed", **params, head={"name": "latent-attention", "latents": 16})
    np.testing.assert_allclose(ours.encode_queries(TEXTS), reference_vectors, atol=1e-6)


def test_training_moves_the_head_off_mean_pooling_and_learns(params, dataset, tmp_path):
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    encoder = NVEmbedEncoder(**params, head={"name": "latent-attention", "latents": 16, "heads": 2}, lr=3e-3,
                             epochs=20)
    before = reciprocal_rank(encoder, dataset)
    encoder.train(data)
    assert reciprocal_rank(encoder, dataset) > before + 0.2
    assert encoder.module.attention.to_out.weight.abs().sum() > 0             # the zero-initialised output moved
    encoder.save(tmp_path / "nvembed")
    loaded = embedlab.load_component(tmp_path / "nvembed")
    np.testing.assert_array_equal(loaded.encode_queries(TEXTS), encoder.encode_queries(TEXTS))


def test_bad_configs_are_refused(params):
    with pytest.raises(ConfigError, match="latents"):
        NVEmbedEncoder(**params, head={"name": "latent-attention", "latents": 0})
    with pytest.raises(ConfigError, match="divide"):
        NVEmbedEncoder(**params, head={"name": "latent-attention", "heads": 5}).encode_queries(["x"])


def test_embedlab_run_from_toml_trains_what_the_python_api_trains(params, dataset, tmp_path):
    """The TOML table (nested head table included) builds and trains the same encoder: the same
    trained weights (fingerprints) and the same nDCG@10 as the Python API."""
    found, expected, encoder = through_cli_and_api(tmp_path, dataset, {
        "name": "nvembed", **params, "head": {"name": "latent-attention", "latents": 8, "heads": 2},
        "lr": 3e-3, "epochs": 2})
    assert encoder.trained and found["fingerprints"] == expected["fingerprints"]
    assert found["aggregates"]["nDCG@10"] == pytest.approx(expected["aggregates"]["nDCG@10"], abs=1e-12)
