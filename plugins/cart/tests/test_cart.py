"""CART: the anchor computed once, weight sharing, the gate's stability, R = 0, padding invariance,
parameter matching with the dense baseline, learning through embedlab-train, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_cart import CART, CARTEncoder, Dense, matched_dense_layers
from embedlab_cart.model import body_parameters
from embedlab_train import TrainingSet
from embedlab_train.testing import through_cli_and_api, topics_dataset

import embedlab
from embedlab.errors import ConfigError, StateError
from embedlab.training import TrainingData

TINY = {"dim": 32, "heads": 4, "latent": 16, "mult": 2, "max_length": 32, "num_threads": 1, "show_progress": False,
        "train_batch_size": 8, "batch_size": 16, "validation_fraction": 0.0, "warmup_ratio": 0.0,
        "checkpoint_dir": None}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch.random.fork_rng(devices=[]):
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(previous)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(seed))
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[1, 5:] = True
    return ids, padding


def test_anchor_once_core_shared_and_the_gate_stable():
    torch.manual_seed(0)
    model = CART(50, 16, 2, prelude=1, iterations=5, latent=8, mult=2, max_length=16)
    calls = {"anchor": 0, "core": 0}
    model.anchor.register_forward_hook(lambda *_: calls.__setitem__("anchor", calls["anchor"] + 1))
    model.core.register_forward_hook(lambda *_: calls.__setitem__("core", calls["core"] + 1))
    model(*batch())
    assert calls == {"anchor": 1, "core": 5}                       # K/V once, the shared core R times
    deeper = CART(50, 16, 2, prelude=1, iterations=9, latent=8, mult=2, max_length=16)
    assert body_parameters(deeper) - body_parameters(model) == 4 * 16   # only loop-index rows grow with R
    with torch.no_grad():
        model.gate.alpha.normal_(0, 5)
    assert 0 < model.gate.spectral_radius() < 1                    # sigmoid: stable whatever alpha


def test_zero_iterations_is_the_pooled_prelude_and_padding_is_ignored():
    torch.manual_seed(0)
    model = CART(50, 16, 2, prelude=2, iterations=3, latent=8, mult=2, max_length=16).eval()
    ids, padding = batch()
    with torch.no_grad():
        h = model.embedding(ids)
        for layer in model.prelude:
            h = layer(h, padding)
        keep = (~padding).float().unsqueeze(-1)
        expected = (model.norm(h) * keep).sum(1) / keep.sum(1)
        torch.testing.assert_close(model(ids, padding, iterations=0), expected)
        alone = model(ids[1:2, :5], padding[1:2, :5])               # the padded row without its padding
        torch.testing.assert_close(model(ids, padding)[1:2], alone, atol=1e-5, rtol=1e-5)
        padded = ids.clone()
        padded[1, 5:] = 7                                           # padding tokens' ids do not matter
        torch.testing.assert_close(model(padded, padding), model(ids, padding), atol=1e-6, rtol=1e-6)


def test_dense_baseline_matches_stored_parameters():
    layers = matched_dense_layers(128, 4, 1, 64, 4)
    cart = body_parameters(CART(10, 128, 4, 1, 4, 64, 4, 8))
    dense = body_parameters(Dense(10, 128, 4, layers, 4, 8))
    assert layers == 2 and abs(dense - cart) / cart < 0.15
    encoder = CARTEncoder(**TINY, architecture="dense")
    assert encoder.dense_layers == matched_dense_layers(32, 4, 1, 16, 2)
    assert len(encoder.module.layers) == encoder.dense_layers


def reciprocal_rank(encoder: CARTEncoder, dataset) -> float:
    part = dataset.split("test")
    q, d = encoder.encode_queries(list(part.queries.texts)), encoder.encode_documents(dataset.corpus.documents())
    order = np.argsort(-(q @ d.T), axis=1)
    relevant = [[dataset.corpus.position[x] for x in part.qrels[qid]] for qid in part.queries.ids.tolist()]
    return float(np.mean([1 / (1 + np.flatnonzero(np.isin(row, r)).min()) for row, r in zip(order, relevant)]))


def test_cart_learns_from_scratch_and_round_trips(tmp_path):
    dataset = topics_dataset()
    train = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    encoder = CARTEncoder(**TINY, iterations=2, epochs=30, lr=3e-3)
    before = reciprocal_rank(encoder, dataset)
    encoder.train(train)
    after = reciprocal_rank(encoder, dataset)
    assert after > before + 0.1, (before, after)
    vectors = encoder.encode_documents(["some text"])
    assert vectors.shape == (1, 32) and np.isclose(np.linalg.norm(vectors), 1, atol=1e-5)
    assert not np.allclose(encoder.encode_documents(["some text"], iterations=0), vectors)
    encoder.save(tmp_path / "cart")
    loaded = embedlab.load_component(tmp_path / "cart")
    np.testing.assert_array_equal(loaded.encode_queries(["a query"]), encoder.encode_queries(["a query"]))
    assert loaded.training_record["steps"] == encoder.training_record["steps"]
    (tmp_path / "cart" / "cart.safetensors").write_bytes(b"damaged")
    with pytest.raises(StateError):
        embedlab.load_component(tmp_path / "cart")


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError, match="architecture"):
        CARTEncoder(**TINY, architecture="looped")
    with pytest.raises(ConfigError, match="multiple of heads"):
        CARTEncoder(**{**TINY, "dim": 30})
    with pytest.raises(ConfigError, match="iterations"):
        CARTEncoder(**TINY, iterations=-1)


def test_embedlab_run_from_toml_trains_what_the_python_api_trains(tmp_path):
    """CART from an experiment file, trained from scratch on the train split: the same trained
    weights (fingerprints) and nDCG@10 as the encoder built and trained in Python."""
    found, expected, encoder = through_cli_and_api(tmp_path, topics_dataset(), {
        "name": "cart", **TINY, "iterations": 2, "epochs": 2, "lr": 3e-3})
    assert encoder.trained and found["fingerprints"] == expected["fingerprints"]
    assert found["aggregates"]["nDCG@10"] == pytest.approx(expected["aggregates"]["nDCG@10"], abs=1e-12)
