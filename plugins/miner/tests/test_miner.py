"""MINER-style probing and sparse multi-layer fusion: layer selection and masks, the fusion against
its definition, the k = 1 / rho = 1 sanity check (fusion starts as the last layer's probe), training
through embedlab-train, persistence of the probing outcome, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_miner import MinerEncoder, SparseLayerFusion, keep_ratios, neuron_masks, select_layers
from embedlab_train import TrainingSet
from embedlab_train.testing import reciprocal_rank, through_cli_and_api

import embedlab
from embedlab.errors import ConfigError
from embedlab.training import TrainingData

TEXTS = ["open a file for reading", "parse json text quickly", "", "sort numbers"]


@pytest.fixture()
def miner_params(params) -> dict:
    return {**params, "validation_fraction": 0.25, "lr": 1e-2, "epochs": 6}


@pytest.fixture()
def data(dataset) -> TrainingSet:
    return TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))


def test_layer_selection_keeps_the_last_and_the_best():
    scores = np.array([0.2, 0.5, 0.4, 0.1, 0.3])
    assert select_layers(scores, 3).tolist() == [1, 2, 4]
    assert select_layers(scores, 1).tolist() == [4]
    assert select_layers(scores, 9).tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(keep_ratios(scores, 0.25, 1.0), [0.4375, 1.0, 0.8125, 0.25, 0.625])
    np.testing.assert_allclose(keep_ratios(np.ones(3), 0.25, 0.8), [0.8] * 3)


def test_neuron_masks_keep_the_largest_probe_columns():
    weights = np.zeros((2, 4, 4), np.float32)
    weights[0][:, 2], weights[0][:, 0], weights[0][:, 3], weights[0][:, 1] = 4, 3, 2, 1   # importance 2 > 0 > 3 > 1
    weights[1] = np.eye(4)
    masks = neuron_masks(weights, np.array([0.5, 1.0]))
    assert masks.tolist() == [[1, 0, 1, 0], [1, 1, 1, 1]]
    assert neuron_masks(weights, np.array([0.01, 0.26])).sum(1).tolist() == [1, 2]


def test_fresh_fusion_is_mean_pooling_and_configured_fusion_follows_its_definition():
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(3, 4, 8, generator=gen)                      # embeddings + 3 layers
    fusion = SparseLayerFusion(8, 3)
    torch.testing.assert_close(fusion(states), states[:, -1])
    probes = torch.randn(3, 8, 8, generator=gen).numpy()
    masks = (torch.rand(3, 8, generator=gen) > 0.3).float().numpy()
    fusion.configure(probes, np.array([0, 1, 0]), np.array([0.1, 0.3, 0.2]), np.array([1, 2]), masks)
    with torch.no_grad():
        fusion.bias.copy_(torch.randn(8, generator=gen))
    x1 = states[:, 2]
    x1 = (x1 - x1.mean(-1, keepdim=True)) / torch.sqrt(x1.var(-1, unbiased=False, keepdim=True) + 1e-5)
    expected = 0.5 * (x1 * torch.from_numpy(masks[1])) @ torch.from_numpy(probes[1]).T \
        + 0.5 * (states[:, 3] * torch.from_numpy(masks[2])) @ torch.from_numpy(probes[2]).T + fusion.bias
    torch.testing.assert_close(fusion(states), expected, atol=1e-5, rtol=1e-5)


def test_one_layer_full_masks_starts_as_the_last_layers_probe(miner_params, data):
    """The issue's sanity check: with k = 1 and rho = 1 the fusion is the last layer's probe."""
    encoder = MinerEncoder(**miner_params, top_layers=1, rho_min=1.0, rho_max=1.0, probes="base")
    probing = encoder.probe(data)
    assert probing.selected.tolist() == [1] and probing.masks.min() == 1
    fusion = SparseLayerFusion(32, 2)
    fusion.configure(probing.probes, probing.normalized, probing.scores, probing.selected, probing.masks)
    probe = encoder.probe_encoder(2, False).train(data)                # same seed: the same weights
    states = torch.randn(5, 3, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fusion(states), probe.module(states))


def test_miner_probes_fuses_learns_and_round_trips(miner_params, data, dataset, tmp_path):
    encoder = MinerEncoder(**miner_params, top_layers=2, rho_min=0.5)
    before = reciprocal_rank(encoder, dataset)
    encoder.train(data)
    report = encoder.layer_report()
    assert report["selected_layers"] == [1, 2] and len(report["layer_scores"]) == 2
    record = encoder.probing.as_record()
    assert record["selected_layers"] == [1, 2] and report["layer_scores"] == pytest.approx(record["layer_scores"])
    assert report["kept_dims"] == [int(np.ceil(r * 32 - 1e-9)) for r in record["keep_ratios"]]
    assert max(report["kept_dims"]) == 32 and all(16 <= k <= 32 for k in report["kept_dims"])
    assert reciprocal_rank(encoder, dataset) > before + 0.05                  # 0.084 -> 0.155 when written
    encoder.save(tmp_path / "miner")
    loaded = embedlab.load_component(tmp_path / "miner")
    assert loaded.layer_report() == report
    np.testing.assert_array_equal(loaded.encode_queries(TEXTS), encoder.encode_queries(TEXTS))


def test_bad_configs_are_refused(miner_params, params):
    with pytest.raises(ConfigError, match="held-out"):
        MinerEncoder(**params)
    with pytest.raises(ConfigError, match="rho_min"):
        MinerEncoder(**miner_params, rho_min=0.9, rho_max=0.5)
    with pytest.raises(ConfigError, match="rho_max"):
        MinerEncoder(**miner_params, rho_max=1.5)
    with pytest.raises(ConfigError, match="probes"):
        MinerEncoder(**miner_params, probes="all")
    with pytest.raises(ConfigError, match="fusion"):
        MinerEncoder(**miner_params, head="linear")
    with pytest.raises(ConfigError, match="transformer layer"):
        probe = {"name": "layer-probe", "layer": 0}
        embedlab.create("encoder", "frozen-head", **params, head=probe).encode_queries(["x"])


def test_embedlab_run_from_toml_probes_and_fuses_as_the_python_api_does(miner_params, dataset, tmp_path):
    """``miner`` from an experiment file with a ``checkpoint_dir``: the probe runs get folders of their
    own, and the same probing outcome and fused weights (fingerprints) and the same nDCG@10 as the
    encoder built and trained in Python."""
    found, expected, encoder = through_cli_and_api(tmp_path, dataset, {"name": "miner", **miner_params,
                                                                      "top_layers": 2, "epochs": 2})
    assert encoder.trained and encoder.layer_report()["selected_layers"]
    runs = tmp_path / "checkpoints"                          # one folder per probe run inside the fusion's
    assert sorted(p.name for p in runs.glob("probe-*")) == [f"probe-layer{layer}-{kind}" for layer in (1, 2)
                                                              for kind in ("base", "normalized")]
    assert found["fingerprints"] == expected["fingerprints"]
    assert found["aggregates"]["nDCG@10"] == pytest.approx(expected["aggregates"]["nDCG@10"], abs=1e-12)
