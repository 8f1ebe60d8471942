"""Multi-layer poolers: against references written from the definitions, the layer order, identity
at init, padding invariance, training through embedlab-train, persistence and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_mltp import MLTPEncoder, MultiLayerTrainablePooling, ScalarMix
from embedlab_train import FrozenEncoder, TrainingSet
from embedlab_train.testing import reciprocal_rank, reference_attention_block, through_cli_and_api
from embedlab_transformers.model_files import import_transformers

import embedlab
from embedlab.errors import ConfigError
from embedlab.training import TrainingData

TEXTS = ["open a file for reading", "parse json text quickly", "", "sort numbers"]


def reference_mltp(pool: MultiLayerTrainablePooling, states: torch.Tensor) -> torch.Tensor:
    """MLTP written out latent by latent and head by head (float64)."""
    norm = torch.nn.functional.layer_norm
    d, attention = states.shape[-1], pool.attention
    out = []
    for b in range(states.shape[0]):
        layers = norm(states[b, 1:] + pool.layer_embedding, (d,), pool.norm_layers.weight, pool.norm_layers.bias)
        k_all, v_all = (layers @ attention.to_kv.weight.T).chunk(2, dim=-1)
        rows = []
        for z in pool.latents:
            q_all = norm(z, (d,), pool.norm_latents.weight, pool.norm_latents.bias) @ attention.to_q.weight.T
            rows.append(reference_attention_block(q_all, k_all, v_all, z, attention, pool.feed_forward))
        pooled = torch.stack(rows).mean(0)
        out.append(pooled if pool.out is None else states[b, -1] + pool.out(pooled))
    return torch.stack(out)


def random_layers(batch=3, layers=4, dim=16, seed=0) -> torch.Tensor:
    return torch.randn(batch, layers + 1, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("residual", [False, True])
def test_mltp_equals_a_latent_by_latent_reference(residual):
    torch.manual_seed(0)
    pool = MultiLayerTrainablePooling(16, 4, latents=5, heads=2, head_dim=3, mult=2, residual=residual).double()
    if residual:
        torch.nn.init.normal_(pool.out.weight)
    states = random_layers()
    torch.testing.assert_close(pool(states), reference_mltp(pool, states), atol=1e-10, rtol=1e-10)


def test_identity_at_init_and_the_scalar_mix_weights():
    states = random_layers()
    torch.manual_seed(0)
    torch.testing.assert_close(MultiLayerTrainablePooling(16, 4).double()(states), states[:, -1], atol=0, rtol=0)
    uniform = ScalarMix(4).double()
    torch.testing.assert_close(uniform(states), states[:, 1:].mean(1), atol=1e-12, rtol=0)
    weights = ScalarMix(4, last_weight=0.7).weights()
    torch.testing.assert_close(weights, torch.tensor([0.1, 0.1, 0.1, 0.7]), atol=1e-6, rtol=0)


def test_the_heads_read_the_hidden_states_in_the_models_order(params, tiny_model):
    """``layer = l`` is hidden state l of transformers' own output (0 = embeddings), ``layer-mean``
    the mean of 1..L, both masked means; ``layer = -1`` is the frozen model's mean pooling."""
    transformers = import_transformers()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    model = transformers.AutoModel.from_pretrained(tiny_model).eval()
    batch = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
    mask = batch["attention_mask"].unsqueeze(-1).float()
    means = [((h * mask).sum(1) / mask.sum(1)).numpy() for h in hidden]
    assert len(means) == 3                                                       # embeddings + 2 layers
    raw = {**params, "normalize": False}
    for layer in (0, 1, 2, -1):
        encoder = embedlab.create("encoder", "frozen-head", **raw, head={"name": "layer", "layer": layer})
        np.testing.assert_allclose(encoder.encode_queries(TEXTS[:2]), means[layer], atol=1e-5)
    mixed = embedlab.create("encoder", "frozen-head", **raw, head="layer-mean").encode_queries(TEXTS[:2])
    np.testing.assert_allclose(mixed, (means[1] + means[2]) / 2, atol=1e-5)


def test_padding_and_batch_company_change_nothing(params, tiny_model):
    """A text encoded alone equals the same text padded inside a batch with a much longer one."""
    torch.manual_seed(1)
    encoder = MLTPEncoder(**params, head={"name": "mltp", "latents": 4, "heads": 2, "head_dim": 8,
                                          "residual": False}, cache_features=False)
    long_text = " ".join(["tokens to pad the batch"] * 5)
    together = encoder.encode_queries([TEXTS[0], long_text])
    alone = encoder.encode_queries([TEXTS[0]])
    np.testing.assert_allclose(alone[0], together[0], atol=1e-5)
    frozen = FrozenEncoder(tiny_model, 32, batch_size=2, num_threads=1, show_progress=False)
    np.testing.assert_allclose(frozen.compute([TEXTS[0]]).layers[0], frozen.compute([TEXTS[0], long_text]).layers[0],
                               atol=1e-5)


def test_untrained_mltp_encodes_like_the_frozen_model(params, tiny_model):
    reference = embedlab.create("encoder", "transformers", model_path=str(tiny_model), max_length=32,
                                show_progress=False).encode_queries(TEXTS)
    for head in ("mltp", {"name": "layer", "layer": -1}):
        ours = embedlab.create("encoder", "frozen-head", **params, head=head)
        np.testing.assert_allclose(ours.encode_queries(TEXTS), reference, atol=1e-6)


@pytest.mark.parametrize("head", [{"name": "mltp", "latents": 8, "heads": 2, "head_dim": 16}, "scalar-mix"])
def test_training_learns_and_round_trips(params, dataset, tmp_path, head):
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    encoder = embedlab.create("encoder", "frozen-head", **params, head=head, lr=1e-2, epochs=20)
    before = encoder.module.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    start = reciprocal_rank(encoder, dataset)
    encoder.train(data)
    after = encoder.module.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if head == "scalar-mix":          # the tiny model's two layers: training moves the mix off uniform
        assert not torch.allclose(encoder.module.weights(), torch.full((2,), 0.5))
    else:
        assert reciprocal_rank(encoder, dataset) > start + 0.1
    encoder.save(tmp_path / "head")
    loaded = embedlab.load_component(tmp_path / "head")
    np.testing.assert_array_equal(loaded.encode_queries(TEXTS), encoder.encode_queries(TEXTS))


def test_bad_configs_are_refused(params):
    with pytest.raises(ConfigError, match="outside"):
        embedlab.create("encoder", "frozen-head", **params, head={"name": "layer", "layer": 3}).encode_queries(["x"])
    with pytest.raises(ConfigError, match="last_weight"):
        embedlab.create("encoder", "frozen-head", **params, head={"name": "scalar-mix", "last_weight": 1.0})
    with pytest.raises(ConfigError, match="latents"):
        MLTPEncoder(**params, head={"name": "mltp", "latents": 0})
    with pytest.raises(ConfigError, match="no trainable parameters"):
        embedlab.create("encoder", "frozen-head", **params, head="layer-mean").train(
            TrainingSet.from_training_data(TrainingData(*_tiny_data())))


def _tiny_data():
    from embedlab_train.testing import topics_dataset

    dataset = topics_dataset()
    return dataset.corpus, dataset.split("train")


def test_embedlab_run_from_toml_trains_what_the_python_api_trains(params, dataset, tmp_path):
    """``frozen-head`` with an ``mltp`` head table, from an experiment file: the same trained
    weights (fingerprints) and nDCG@10 as the same encoder built and trained in Python."""
    found, expected, encoder = through_cli_and_api(tmp_path, dataset, {
        "name": "frozen-head", **params, "head": {"name": "mltp", "latents": 4, "heads": 2, "head_dim": 8},
        "lr": 1e-2, "epochs": 2})
    assert encoder.trained and found["fingerprints"] == expected["fingerprints"]
    assert found["aggregates"]["nDCG@10"] == pytest.approx(expected["aggregates"]["nDCG@10"], abs=1e-12)
