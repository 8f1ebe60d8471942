"""The torch encoder against sentence-transformers, and its input handling."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from embedlab_transformers import MiniLM, MiniLMTokens, TransformersEncoder
from embedlab_transformers.model_files import default_model_dir

import embedlab
from embedlab.errors import ConfigError, InvalidInputError


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_matches_sentence_transformers(minilm, reference, documents, queries):
    texts = [*documents, *queries, "", "x"]
    ours = minilm.encode_documents(texts)
    theirs = reference.encode(texts, batch_size=16, convert_to_numpy=True)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert cosines(ours, theirs).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_generic_encoder_reads_model_limits(opts):
    encoder = TransformersEncoder(**opts)
    assert encoder.max_length == 256  # sentence_bert_config.json max_seq_length
    assert encoder.dim == 384
    assert encoder.model_dir == default_model_dir().resolve()


def test_length_sorting_restores_order(minilm, documents, queries, opts):
    rng = np.random.default_rng(0)
    texts = [documents[0][:300], *queries[:6], documents[1][:900], "", queries[6] * 3]
    order = rng.permutation(len(texts))
    small_batches = MiniLM(batch_size=3, **opts)
    together = small_batches.encode_queries([texts[i] for i in order])
    alone = np.concatenate([minilm.encode_queries([t]) for t in texts])
    np.testing.assert_allclose(together, alone[order], atol=2e-5)


def test_prefixes_change_the_output(minilm, queries, opts):
    prefixed = MiniLM(query_prefix="query: ", document_prefix="passage: ", **opts)
    plain_q = minilm.encode_queries(queries[:4])
    assert cosines(prefixed.encode_queries(queries[:4]), plain_q).max() < 0.999
    np.testing.assert_allclose(prefixed.encode_queries(queries[:4]),
                               minilm.encode_queries(["query: " + q for q in queries[:4]]), atol=1e-6)
    np.testing.assert_allclose(prefixed.encode_documents(queries[:4]),
                               minilm.encode_queries(["passage: " + q for q in queries[:4]]), atol=1e-6)


def test_truncation_is_announced_once_per_encoder(reference, documents, queries, opts):
    encoder = MiniLM(max_length=24, **opts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder.encode_queries(queries[:3])  # short enough: no warning
        assert not caught
        first = encoder.encode_documents(documents[:3])
        encoder.encode_documents(documents[3:5])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "3 of 3 texts" in messages[0] and "max_length=24" in messages[0]
    reference.max_seq_length = 24
    try:
        expected = reference.encode(documents[:3], convert_to_numpy=True)
    finally:
        reference.max_seq_length = 256
    assert cosines(first, expected).min() >= 0.9999
    with pytest.warns(UserWarning, match="truncated"):
        MiniLM(max_length=24, **opts).encode_documents(documents[:1])


def test_empty_strings_and_empty_input(minilm, reference, opts):
    out = minilm.encode_queries(["", "", "protein"])
    np.testing.assert_allclose(out[0], out[1])
    assert cosines(out[:1], reference.encode([""], convert_to_numpy=True))[0] >= 0.9999
    assert minilm.encode_documents([]).shape == (0, 384)
    tokens = MiniLMTokens(**opts).encode_documents(["", "a"])
    assert tokens.counts.tolist() == [2, 3]  # [CLS] [SEP] and [CLS] a [SEP]


@pytest.mark.parametrize("bad, index", [(["ok", b"bytes"], 1), (["ok", "fine", "lone \udc80 surrogate"], 2),
                                        (["ok", None], 1)])
def test_invalid_text_names_the_item(minilm, bad, index):
    with pytest.raises(InvalidInputError, match=f"item {index} "):
        minilm.encode_documents(bad)


def test_single_string_is_rejected(minilm):
    with pytest.raises(InvalidInputError, match="wrap it in a list"):
        minilm.encode_queries("what is a protein?")


def test_missing_model_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TransformersEncoder(model_path=tmp_path / "nowhere")


def test_missing_model_files_are_listed(tmp_path):
    source = default_model_dir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, tmp_path / name)
    with pytest.raises(ConfigError, match="missing: safetensors weights") as error:
        TransformersEncoder(model_path=tmp_path)
    assert "config.json" not in str(error.value).split("missing:")[1]
    (tmp_path / "config.json").unlink()
    with pytest.raises(ConfigError, match="missing: config.json; safetensors"):
        TransformersEncoder(model_path=str(tmp_path))


def test_invalid_parameters():
    with pytest.raises(ConfigError):
        MiniLM(pooling="max")
    with pytest.raises(ConfigError):
        MiniLM(batch_size=0)
    with pytest.raises(ConfigError):
        MiniLM(output="sparse")
    with pytest.raises(ConfigError, match="unknown parameter"):
        MiniLM(model_path="/elsewhere")  # the preset is bound to its model
    with pytest.raises(ConfigError, match="exceeds the 512 positions"):
        _ = TransformersEncoder(max_length=1024).dim


def test_token_output_matches_tokenizer_and_model(minilm, documents, queries):
    texts = [queries[0], documents[0], "", queries[1]]
    encoder = MiniLMTokens(show_progress=False, batch_size=2)
    tokens = encoder.encode_documents(texts)
    assert isinstance(tokens, embedlab.MultiVectorEmbeddings) and tokens.dim == 384
    ids = minilm.tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    assert tokens.counts.tolist() == [len(i) for i in ids]
    np.testing.assert_allclose(np.linalg.norm(tokens.vectors, axis=1), 1.0, atol=1e-5)
    import torch
    with torch.inference_mode():
        hidden = minilm.loaded.backend.model(input_ids=torch.tensor([ids[0]])).last_hidden_state[0].numpy()
    expected = hidden / np.linalg.norm(hidden, axis=1, keepdims=True)
    np.testing.assert_allclose(tokens.item(0), expected, atol=1e-5)  # [CLS] ... [SEP] all kept


def test_pooling_is_consistent_with_token_vectors(queries, opts):
    texts = queries[:5]
    raw_tokens = MiniLMTokens(normalize=False, **opts).encode_queries(texts)
    mean = MiniLM(normalize=False, **opts).encode_queries(texts)
    cls = MiniLM(pooling="cls", normalize=False, **opts).encode_queries(texts)
    for i in range(len(texts)):
        np.testing.assert_allclose(mean[i], raw_tokens.item(i).mean(0), atol=1e-5)
        np.testing.assert_allclose(cls[i], raw_tokens.item(i)[0], atol=1e-5)


def test_copies_for_other_processes_leave_the_loaded_model_behind(minilm, documents) -> None:
    import pickle

    expected = minilm.encode_documents(documents[:3])  # loads the model here
    copy = pickle.loads(pickle.dumps(minilm))
    assert copy._model is None and minilm._model is not None
    assert np.array_equal(copy.encode_documents(documents[:3]), expected)  # loads its own, once
