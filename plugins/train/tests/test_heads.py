"""Pooling heads over a frozen encoder: cached hidden states, the ``frozen-head`` encoder, the
``mean`` and ``linear`` heads, training through the shared loop, persistence and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from embedlab_train import FrozenEncoder, FrozenHeadEncoder, HiddenStates, TrainingSet, masked_mean
from embedlab_train.heads import HEAD_WEIGHTS
from embedlab_train.hidden import hidden_states_dir, pad_tokens
from embedlab_train.testing import head_settings

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, StateError, UnknownComponentError
from embedlab.training import TrainingData

TEXTS = ["open a file for reading", "parse json text quickly", "", "sort numbers"]


@pytest.fixture()
def head_params(tiny_model) -> dict:
    return head_settings(tiny_model)


def test_hidden_states_layer_means_match_the_token_vectors_and_the_model(tiny_model):
    frozen = FrozenEncoder(tiny_model, 32, batch_size=2, num_threads=1, show_progress=False)
    states = frozen.compute(TEXTS)
    assert states.layers.shape == (4, 3, 32) and len(states) == 4     # embedding layer + 2 layers
    for row in range(4):                                               # mean of the last layer's tokens
        np.testing.assert_allclose(states.token_vectors(row).mean(0), states.layers[row, -1], atol=1e-6)
    reference = embedlab.create("encoder", "transformers", model_path=str(tiny_model), normalize=False,
                                max_length=32, show_progress=False).encode_documents(TEXTS)
    np.testing.assert_allclose(states.layers[:, -1], reference, atol=1e-5)
    alone = frozen.compute(TEXTS[:1])                                  # batch company and padding do not matter
    np.testing.assert_allclose(alone.layers[0], states.layers[0], atol=1e-5)
    np.testing.assert_allclose(alone.token_vectors(0), states.token_vectors(0), atol=1e-5)


def test_hidden_states_cache_hits_and_heals_a_damaged_entry(tiny_model):
    frozen = FrozenEncoder(tiny_model, 32, num_threads=1, show_progress=False)
    texts = ["a cached text", "another one"]
    first = frozen.states(texts)
    again = frozen.states(texts)
    assert isinstance(again.tokens, np.memmap)                         # read back, memory-mapped
    np.testing.assert_array_equal(np.asarray(again.tokens), first.tokens)
    entry = next(p for p in hidden_states_dir().glob("*/*") if (p / "tokens.npy").exists()
                 and np.load(p / "offsets.npy").tolist() == first.offsets.tolist())
    (entry / "tokens.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unusable"):
        healed = frozen.states(texts)
    np.testing.assert_array_equal(healed.tokens, first.tokens)


def test_texts_over_max_length_are_announced_once_with_their_count(tiny_model):
    frozen = FrozenEncoder(tiny_model, 8, num_threads=1, show_progress=False)
    long_text = " ".join(["word"] * 20)
    with pytest.warns(UserWarning, match=r"2 of 3 texts are longer than max_length=8 tokens .* item 0"):
        states = frozen.compute([long_text, "short", long_text])
    assert states.offsets.tolist() == [0, 8, 11, 19]                 # cut at 8 tokens, as said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frozen.compute([long_text])                                   # once per encoder


def test_pad_tokens_masks_the_padding():
    states, mask = pad_tokens([np.ones((2, 3), np.float32), np.full((1, 3), 2, np.float32)], 3)
    assert states.shape == (2, 2, 3) and mask.tolist() == [[True, True], [True, False]]
    assert masked_mean(torch.from_numpy(states), torch.from_numpy(mask)).tolist() == [[1.0] * 3, [2.0] * 3]


@pytest.mark.parametrize("head", ["mean", "linear"])
def test_an_untrained_identity_head_encodes_like_the_frozen_model(head_params, tiny_model, head):
    encoder = FrozenHeadEncoder(**head_params, head=head)
    reference = embedlab.create("encoder", "transformers", model_path=str(tiny_model), max_length=32,
                                show_progress=False).encode_queries(TEXTS)
    np.testing.assert_allclose(encoder.encode_queries(TEXTS), reference, atol=1e-6)
    assert encoder.encode_documents([]).shape == (0, 32)


def reciprocal_rank(encoder, dataset, split) -> float:
    part = dataset.split(split)
    q, d = encoder.encode_queries(list(part.queries.texts)), encoder.encode_documents(dataset.corpus.documents())
    order = np.argsort(-(q @ d.T), axis=1)
    ranks = [1 / (1 + min(np.flatnonzero(np.isin(row, [dataset.corpus.position[x] for x in part.qrels[qid]]))))
             for row, qid in zip(order, part.queries.ids.tolist())]
    return float(np.mean(ranks))


def test_the_linear_head_learns_is_seeded_and_only_the_head_changes(head_params, dataset):
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    encoder = FrozenHeadEncoder(**head_params, head="linear", lr=1e-2, epochs=30)
    before, untrained = reciprocal_rank(encoder, dataset, "train"), encoder.fingerprint
    encoder.train(data)
    again = FrozenHeadEncoder(**head_params, head="linear", lr=1e-2, epochs=30).train(data)
    assert reciprocal_rank(encoder, dataset, "train") > before + 0.2
    record = encoder.training_record
    assert record["losses"][-1] < record["losses"][0]
    weights = {k: v.numpy() for k, v in encoder.module.state_dict().items()}
    assert set(weights) == {"linear.weight", "linear.bias"} and np.abs(weights["linear.weight"]).sum() > 0
    np.testing.assert_array_equal(weights["linear.weight"], again.module.state_dict()["linear.weight"].numpy())
    assert encoder.fingerprint == again.fingerprint != untrained


def test_a_trained_head_saves_and_loads_and_refuses_damage(head_params, dataset, tmp_path):
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    encoder = FrozenHeadEncoder(**head_params, head="linear", epochs=2).train(data)
    encoder.save(tmp_path / "head")
    loaded = embedlab.load_component(tmp_path / "head")
    assert isinstance(loaded, FrozenHeadEncoder) and loaded.fingerprint == encoder.fingerprint
    np.testing.assert_array_equal(loaded.encode_queries(TEXTS), encoder.encode_queries(TEXTS))
    (tmp_path / "head" / HEAD_WEIGHTS).write_bytes(b"\0" * 16)
    with pytest.raises(StateError):
        embedlab.load_component(tmp_path / "head")


def test_a_head_trains_in_a_pipeline_from_a_train_split(head_params, dataset):
    pipeline = embedlab.Pipeline(encoder=FrozenHeadEncoder(**head_params, head="linear", epochs=2),
                                 index=embedlab.create("index", "exact"))
    pipeline.build(dataset.corpus, train=dataset.split("train"))
    assert pipeline.encoder.trained
    assert pipeline.search(dataset.split("test").queries, k=3).doc_ids.shape == (24, 3)


def test_bad_input_is_refused_clearly(head_params, dataset):
    with pytest.raises(UnknownComponentError, match="Installed pooling-heads: .*linear, mean"):
        FrozenHeadEncoder(**head_params, head="no-such-head")
    with pytest.raises(ConfigError, match="head"):
        FrozenHeadEncoder(**head_params, head=3)
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    with pytest.raises(ConfigError, match="no trainable parameters"):
        FrozenHeadEncoder(**head_params, head="mean").train(data)
    with pytest.raises(InvalidInputError):
        FrozenHeadEncoder(**head_params).encode_queries("not a list")
    assert isinstance(FrozenHeadEncoder(**head_params).frozen.compute([]), HiddenStates)
