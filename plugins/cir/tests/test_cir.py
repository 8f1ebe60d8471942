"""embedlab-cir: the joint encoder reads image and instruction together (it learns what late fusion
cannot), both stages learn, the encoder runs through pipelines and experiments, saves and loads.
Tiny models (width 32, one layer), the core's hashing encoder as the text side, one torch thread."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_cir import CIREncoder

import embedlab
from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.datasets import synthetic_scenes
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.media import Image, ImageText
from embedlab.training import TrainingData

TINY = {"text_encoder": {"name": "hashing", "dim": 64}, "width": 32, "heads": 2, "layers": 1, "dim": 32,
        "image_size": 16, "batch_size": 32, "eval_every": 50, "cache_text": False, "stage1_cache": False}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path / "cache"))


def interaction_dataset(n_per_group: int = 24, seed: int = 0) -> Dataset:
    """References in two groups (bright top half or bright bottom half, random noise on top), two
    instructions, two target images; group 1 maps "gamma" to U and "delta" to V, group 2 the
    reverse. An additive query score s(image, t) + s(text, t) cannot rank U over V for
    (group 1, gamma) and (group 2, delta) and V over U for the other two pairs at once."""
    rng = np.random.default_rng(seed)
    references, query_ids, texts, qrels = [], [], [], {}
    for group in (0, 1):
        for i in range(n_per_group):
            pixels = rng.integers(0, 90, size=(16, 16, 3))
            pixels[(slice(0, 8) if group == 0 else slice(8, 16))] += 150
            for instruction in ("gamma", "delta"):
                query = f"g{group}-{i}-{instruction}"
                query_ids.append(query)
                texts.append(instruction)
                references.append(Image(pixels.astype(np.uint8)))
                qrels[query] = {"U" if (group == 0) == (instruction == "gamma") else "V": 1}
    u = np.zeros((16, 16, 3), dtype=np.uint8)
    u[:, :8] = 220
    corpus = Corpus(["U", "V"], ["", ""], images=[Image(u), Image(u[:, ::-1].copy())])
    queries = Queries(query_ids, texts, images=references)
    train = {q: g for q, g in qrels.items() if int(q.split("-")[1]) < n_per_group * 3 // 4}
    test = {q: g for q, g in qrels.items() if q not in train}
    return Dataset("interaction", corpus, queries, {"train": train, "test": test})


def top1_accuracy(encoder: CIREncoder, dataset: Dataset) -> float:
    split = dataset.split("test")
    queries = encoder.encode_queries(split.queries.inputs())
    documents = encoder.encode_documents(dataset.corpus.inputs())
    best = dataset.corpus.ids[(queries @ documents.T).argmax(axis=1)]
    return float(np.mean([best[i] in split.qrels[q] for i, q in enumerate(split.queries.ids.tolist())]))


def test_the_joint_encoder_learns_an_image_instruction_interaction_that_late_fusion_cannot():
    dataset = interaction_dataset(n_per_group=8)
    words = CIREncoder(**TINY).text.vectors(["gamma", "delta"])
    assert not np.allclose(words[0], words[1])  # the hashing text side tells the instructions apart
    accuracy = {}
    for mode in ("joint", "sum"):
        encoder = CIREncoder(**{**TINY, "batch_size": 16, "width": 64}, query=mode, stage1_steps=0,
                             stage2_steps=300, lr=3e-3, temperature=0.1, validation_fraction=0.0,
                             stage2_target="image")
        encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
        accuracy[mode] = top1_accuracy(encoder, dataset)
    assert accuracy["joint"] >= 0.95
    assert accuracy["sum"] <= 0.8  # at most three of the four (group, instruction) cells right


def test_query_modes_read_what_they_say():
    dataset = interaction_dataset(n_per_group=4)
    image_a, image_b = dataset.queries.images[0], dataset.queries.images[-1]
    encoders = {mode: CIREncoder(**TINY, query=mode, stage1_steps=0, stage2_steps=1, stage2_target="image") for mode in
                ("joint", "image", "text", "sum")}
    for encoder in encoders.values():
        encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))

    def differs(mode, first, second):
        vectors = encoders[mode].encode_queries([first, second])
        return not np.allclose(vectors[0], vectors[1], atol=1e-6)

    same_image = (ImageText(image_a, "gamma"), ImageText(image_a, "delta"))
    same_text = (ImageText(image_a, "gamma"), ImageText(image_b, "gamma"))
    assert differs("joint", *same_image) and differs("joint", *same_text)
    assert not differs("image", *same_image) and differs("image", *same_text)
    assert differs("text", *same_image) and not differs("text", *same_text)
    assert differs("sum", *same_image) and differs("sum", *same_text)
    image_only = encoders["image"].encode_queries([image_a])
    assert np.allclose(encoders["image"].encode_queries([ImageText(image_a, "delta")]), image_only, atol=1e-6)


@pytest.mark.parametrize("target", ["caption", "image"])
def test_both_stages_raise_held_out_recall_on_scenes(target):
    dataset = synthetic_scenes(n_train=240, n_test=4, size=16, seed=0)
    encoder = CIREncoder(**TINY, stage1_steps=100, stage2_steps=100, validation_fraction=0.2, patience=10,
                         stage2_target=target)
    encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    for stage in ("stage1", "stage2"):
        report = encoder.reports[stage]
        assert report.best_recall > report.initial_recall + 0.05, (stage, report)


def test_stage1_weights_are_reused_from_the_cache():
    dataset = synthetic_scenes(n_train=40, n_test=2, size=16, seed=1)
    settings = {**TINY, "stage1_cache": True, "stage1_steps": 10, "stage2_steps": 0}
    first = CIREncoder(**settings, query="joint").fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    second = CIREncoder(**settings, query="sum").fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    images = dataset.corpus.inputs()[:5]
    assert np.array_equal(first.encode_documents(images), second.encode_documents(images))
    assert second.reports["stage1"] == first.reports["stage1"]
    other_seed = CIREncoder(**{**settings, "seed": 5}).fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    assert not np.allclose(other_seed.encode_documents(images), first.encode_documents(images))


EXPERIMENT = """
[dataset]
name = "scenes"
n_train = 48
n_test = 8
size = 16
split = "test-unseen"
train_split = "train"

[experiment]
metrics = ["R@1", "R@5", "R@10"]

[[pipeline]]
name = "joint"
[pipeline.encoder]
name = "cir"
stage1_steps = 5
stage2_steps = 5
text_encoder = { name = "hashing", dim = 64 }
width = 32
heads = 2
layers = 1
dim = 32
image_size = 16
batch_size = 16
cache_text = false
stage1_cache = false
"""


def test_an_experiment_runs_the_encoder_on_scenes_and_refuses_a_text_encoder(tmp_path):
    config = tmp_path / "cir.toml"
    config.write_text(EXPERIMENT)
    result = embedlab.run_experiment(config, cache=False, progress=False)
    (outcome,) = result.outcomes
    aggregates = outcome.evaluation.aggregates
    assert 0 <= aggregates["R@1"] <= aggregates["R@5"] <= aggregates["R@10"] <= 1
    config.write_text(EXPERIMENT.split("[[pipeline]]")[0] + '[[pipeline]]\nname = "text"\n'
                      'encoder = { name = "hashing", dim = 16 }\n')
    with pytest.raises(InvalidInputError, match="hashing takes text documents"):
        embedlab.run_experiment(config, cache=False, progress=False)


def test_save_and_load_give_the_same_vectors(tmp_path):
    dataset = synthetic_scenes(n_train=20, n_test=2, size=16, seed=2)
    encoder = CIREncoder(**TINY, stage1_steps=3, stage2_steps=3)
    with pytest.raises(NotFittedError):
        encoder.encode_documents(dataset.corpus.inputs()[:2])
    encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    encoder.save(tmp_path / "cir")
    loaded = embedlab.load_component(tmp_path / "cir")
    queries = dataset.queries.inputs()[:3]
    assert np.array_equal(loaded.encode_queries(queries), encoder.encode_queries(queries))
    assert loaded.reports["stage2"].steps == encoder.reports["stage2"].steps
    (tmp_path / "cir" / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(StateError):
        embedlab.load_component(tmp_path / "cir")


def test_bad_configurations_and_data_are_refused():
    with pytest.raises(ConfigError, match="multiple of heads"):
        CIREncoder(width=30, heads=4)
    with pytest.raises(ConfigError):
        CIREncoder(query="concat")
    text_only = Dataset("t", Corpus(["d1", "d2"], ["a", "b"]), Queries(["q1", "q2"], ["x", "y"]),
                        {"train": {"q1": {"d1": 1}, "q2": {"d2": 1}}})
    with pytest.raises(InvalidInputError, match="no images"):
        CIREncoder(**TINY).fit_queries(TrainingData(text_only.corpus, text_only.split("train")))
    scenes = synthetic_scenes(n_train=8, n_test=1, size=16)
    no_captions = Corpus(scenes.corpus.ids, scenes.corpus.texts, images=scenes.corpus.images)
    with pytest.raises(ConfigError, match="caption"):
        CIREncoder(**TINY, stage1_steps=1).fit_queries(TrainingData(no_captions, scenes.split("train")))
    with pytest.raises(ConfigError, match="caption"):
        CIREncoder(**TINY, stage1_steps=0).fit_queries(TrainingData(no_captions, scenes.split("train")))
    trained = CIREncoder(**TINY, stage1_steps=0, stage2_steps=1, stage2_target="image")
    assert trained.fit_queries(TrainingData(no_captions, scenes.split("train"))).model is not None
