"""The ``llm2vec-gen`` encoder end to end over a tiny random BERT (MiniLM's tokenizer) and a hashing
teacher: only the special tokens and projections learn, the encoder and the generator stay frozen
bit for bit, the reconstruction loss falls, the special tokens' states do not depend on batch
padding, save/load gives the same vectors, bad input gets clear errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from embedlab_llm2vec_gen import LLM2VecGenEncoder
from embedlab_llm2vec_gen.generator import ResponseVocabulary, generate_responses, greedy_generate
from embedlab_llm2vec_gen.losses import reconstruction_loss
from embedlab_llm2vec_gen.student import GenerativeEmbedder
from embedlab_train.head_fixtures import private_cache  # noqa: F401 (autouse: a temporary embedlab cache)
from embedlab_train.testing import tiny_bert, topics_dataset
from embedlab_transformers.backends import load_torch_model

import embedlab
from embedlab.components import config_dict
from embedlab.dataset import Dataset, Split
from embedlab.errors import ConfigError, InvalidInputError, StateError
from embedlab.pipeline import Pipeline
from embedlab.training import TrainingData


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden=48)


def settings(model, **overrides) -> dict:
    return {"model_path": str(model), "max_length": 32, "special_tokens": 3, "teacher": {"name": "hashing", "dim": 32},
            "response_tokens": 10, "generator_layers": 1, "generator_heads": 2, "generator_feedforward": 64,
            "generator_epochs": 30, "generator_lr": 3e-3, "generator_batch_size": 8, "epochs": 20, "batch_size": 8,
            "lr": 1e-2, "warmup_ratio": 0.0, "num_threads": 1, "show_progress": False, "checkpoint_dir": None,
            **overrides}


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def trained(tiny_model):
    """Trained on the topics' training queries, each answered by one document ("example code that
    shows <topic> quickly": the topic words decide the response)."""
    dataset = topics_dataset()
    train = dataset.split("train")
    qrels = {q: {next(d for d in docs if d.endswith("b")): 1} for q, docs in train.qrels.items()}
    encoder = LLM2VecGenEncoder(**settings(tiny_model, checkpoint_dir="auto"))  # runs in the private cache
    encoder.fit_queries(TrainingData(dataset.corpus, Split("train", train.queries, qrels)))
    return encoder, Dataset(dataset.name, dataset.corpus, dataset.queries, {"train": qrels})


def test_only_the_special_tokens_learn_and_the_frozen_models_stay_bit_for_bit(trained, tiny_model):
    encoder, _ = trained
    student = encoder._state()
    bert, decoder = student.frozen
    assert digest(bert) == digest(load_torch_model(tiny_model))  # the encoder as loaded, unchanged
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable == {"model.embeddings", "model.reconstruction.weight", "model.reconstruction.bias",
                         "model.alignment.weight", "model.alignment.bias"}
    assert not any(p.requires_grad for p in bert.parameters())
    assert not any(p.requires_grad for p in decoder.parameters())
    # the generator the student reads is the one training produced (same weights as the saved generator)
    assert digest(decoder) == digest(encoder._generator.model)


def test_training_does_not_touch_the_generator_or_the_encoder(tiny_model):
    dataset = topics_dataset()
    encoder = LLM2VecGenEncoder(**settings(tiny_model, epochs=2, generator_epochs=2))
    data = TrainingData(dataset.corpus, dataset.split("train"))
    generator_before: dict[str, str] = {}
    original = encoder._train_student

    def spy(queries, responses, targets, teacher, generator):
        generator_before["decoder"] = digest(generator.model)
        student, record = original(queries, responses, targets, teacher, generator)
        generator_before["after"] = digest(student.frozen[1])
        generator_before["bert_after"] = digest(student.frozen[0])
        return student, record

    encoder._train_student = spy
    encoder.fit_queries(data)
    assert generator_before["decoder"] == generator_before["after"]
    assert generator_before["bert_after"] == digest(load_torch_model(tiny_model))


def test_reconstruction_loss_falls_and_the_special_tokens_carry_the_query(trained):
    encoder, dataset = trained
    record = encoder.training_record
    generator = record["generator"]["losses"]
    assert generator[-1] < 0.5 * generator[0]
    assert record["special_tokens"]["losses"][-1] < 0.9 * record["special_tokens"]["losses"][0]
    student, model = encoder._state(), encoder._generator
    queries = list(dataset.split("train").queries.texts)
    end = model.model.shape.vocab - 1
    targets = [c + [end] for c in generate_responses(model.model, model.memory, 11, end)]
    with torch.no_grad():
        prompts = student.forward_all(queries)[1]
        trained_loss = float(reconstruction_loss(model.model, prompts, targets))
        shuffled = float(reconstruction_loss(model.model, prompts[torch.randperm(len(queries))], targets))
        torch.manual_seed(0)
        fresh = float(reconstruction_loss(model.model, encoder._fresh_student(model).forward_all(queries)[1], targets))
    assert trained_loss < fresh - 0.1  # training lowered it ...
    assert trained_loss < shuffled - 0.05  # ... with states specific to each query, not one average prompt


def test_special_token_states_do_not_depend_on_batch_padding(trained):
    student = trained[0]._state()
    with torch.no_grad():
        alone = student.embed(["short text"])
        batched = student.embed(["short text", "a much longer text with many more word pieces in it"])
    np.testing.assert_allclose(alone[0].numpy(), batched[0].numpy(), atol=1e-5)


def test_embeddings_are_unit_vectors_of_the_teacher_dimension_and_documents_side(trained):
    encoder, dataset = trained
    queries = encoder.encode_queries(["cats and dogs", "parse json"])
    assert queries.shape == (2, 32) and np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-5)
    teacher_side = LLM2VecGenEncoder(**{**config_dict(encoder), "documents": "teacher"})
    teacher_side._student, teacher_side._generator = encoder._student, encoder._generator
    np.testing.assert_allclose(teacher_side.encode_documents(["x y"]),
                               embedlab.create("encoder", "hashing", dim=32).encode_documents(["x y"]), atol=1e-6)
    students = encoder.encode_documents(["x y"])
    assert not np.allclose(students, teacher_side.encode_documents(["x y"]), atol=1e-3)


def test_greedy_generation_and_vocabulary():
    vocabulary = ResponseVocabulary.build([[7, 3, 7], [11]])
    assert vocabulary.word_pieces.tolist() == [3, 7, 11] and vocabulary.end == 3
    assert vocabulary.encode([7, 99, 11]) == [1, 2, 3] and vocabulary.decode([1, 2, 3, 0]) == [7, 11]
    from embedlab_dsi.model import DecoderShape, DocidDecoder

    torch.manual_seed(0)
    decoder = DocidDecoder(DecoderShape(4, 4, 8, layers=1, heads=2, feedforward=16, dropout=0.0)).eval()
    with torch.no_grad():
        decoder.output.bias[3] = 50.0  # the end code wins every step ...
    memory, mask = torch.randn(2, 2, 8), torch.ones(2, 2, dtype=torch.bool)
    out = greedy_generate(decoder, memory, mask, 4, end=3)
    assert all(len(row) == 1 for row in out)  # ... but is barred at the first one
    with torch.no_grad():
        first = decoder(memory, mask, torch.zeros((2, 0), dtype=torch.long))[:, -1]
        first[:, 3] = -torch.inf
    assert [row[0] for row in out] == first.argmax(-1).tolist()


def test_save_load_round_trip_and_damage_is_detected(trained, tmp_path):
    encoder, _ = trained
    texts = ["cats and dogs", "sort a list"]
    encoder.save(tmp_path / "state")
    loaded = embedlab.load_component(tmp_path / "state")
    assert isinstance(loaded, LLM2VecGenEncoder)
    np.testing.assert_allclose(loaded.encode_queries(texts), encoder.encode_queries(texts), atol=1e-6)
    assert loaded.state_fingerprint == encoder.state_fingerprint is not None
    weights = tmp_path / "state" / "special-tokens.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(StateError):
        LLM2VecGenEncoder.load(tmp_path / "state")


def test_bad_input_gets_clear_errors(tiny_model):
    with pytest.raises((ConfigError, ValueError), match="nothing to train"):
        LLM2VecGenEncoder(**settings(tiny_model, reconstruction_weight=0.0, alignment_weight=0.0))
    with pytest.raises((ConfigError, ValueError), match="alignment"):
        LLM2VecGenEncoder(**settings(tiny_model, alignment="l1"))
    with pytest.raises((ConfigError, ValueError)):
        LLM2VecGenEncoder(**settings(tiny_model, special_tokens=0))
    encoder = LLM2VecGenEncoder(**settings(tiny_model))
    with pytest.raises(InvalidInputError, match="train it first"):
        encoder.encode_queries(["x"])
    dataset = topics_dataset()
    train = dataset.split("train")
    elsewhere = type(train)(train.name, train.queries, {"train0": {"not-in-the-corpus": 1}})
    with pytest.raises(InvalidInputError, match="no query with a relevant document"):
        encoder.fit_queries(TrainingData(dataset.corpus, elsewhere))
    with pytest.raises(StateError, match="not an embedlab state"):
        LLM2VecGenEncoder.load(tiny_model)


def test_frozen_student_parts_are_not_in_its_state(tiny_model):
    bert = load_torch_model(tiny_model)
    from transformers import AutoTokenizer

    student = GenerativeEmbedder(bert, AutoTokenizer.from_pretrained(tiny_model), 32, 2, 16)
    assert set(student.model.state_dict()) == {"embeddings", "reconstruction.weight", "reconstruction.bias",
                                               "alignment.weight", "alignment.bias"}
    assert student.dim == 16


def test_runs_as_a_pipeline_encoder_and_reuses_the_finished_runs(trained, tiny_model):
    encoder, dataset = trained
    pipeline = Pipeline.from_names(encoder={"name": "llm2vec-gen", **settings(tiny_model, checkpoint_dir="auto")})
    pipeline.build(dataset.corpus, train=dataset.split("train"))  # same identity: both stages reused
    assert pipeline.first_stage.encoder.state_fingerprint == encoder.state_fingerprint
    queries = dataset.split("train").queries
    ranking = pipeline.search(queries, k=5)
    np.testing.assert_allclose(pipeline.first_stage.encoder.encode_queries(list(queries.texts)),
                               encoder.encode_queries(list(queries.texts)), atol=1e-6)
    assert ranking.doc_ids.shape == (len(queries), 5)
