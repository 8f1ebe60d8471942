"""The training loop: determinism, learning, kill -9 and Ctrl-C recovery, persistence, ONNX, pipelines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from embedlab_train import FineTunedEncoder, TrainingSet, make_soup

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.pipeline import Pipeline
from embedlab.training import TrainingData

HERE = Path(__file__).resolve().parent


def weights_of(encoder) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(encoder.model_dir / "model.safetensors"))


def train_set(dataset) -> TrainingSet:
    return TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))


def mean_reciprocal_rank(encoder, dataset, split="train") -> float:
    queries = dataset.split(split)
    q = encoder.encode_queries(list(queries.queries.texts))
    d = encoder.encode_documents(dataset.corpus.documents())
    order = np.argsort(-(q @ d.T), axis=1)
    ranks = []
    for row, qid in zip(order, queries.queries.ids.tolist()):
        relevant = {dataset.corpus.position[x] for x in queries.qrels[qid]}
        ranks.append(1.0 / (1 + min(np.flatnonzero(np.isin(row, list(relevant))))))
    return float(np.mean(ranks))


def test_training_is_seeded_learns_and_changes_the_fingerprint(fast, dataset):
    data = train_set(dataset)
    first = FineTunedEncoder(**fast, epochs=4)
    untrained_fingerprint, before = first.fingerprint, mean_reciprocal_rank(first, dataset)
    first.train(data)
    again = FineTunedEncoder(**fast, epochs=4).train(data)
    other = FineTunedEncoder(**fast, epochs=4, seed=1).train(data)
    a, b, c = weights_of(first), weights_of(again), weights_of(other)
    assert all(np.array_equal(a[k], b[k]) for k in a)                      # same seed: identical weights
    assert any(not np.array_equal(a[k], c[k]) for k in a)                  # another seed: other weights
    record = first.training_record
    assert record["losses"][-1] < record["losses"][0] and record["steps"] >= 4 * 6  # 6+ batches an epoch
    assert mean_reciprocal_rank(first, dataset) > before + 0.1
    assert first.fingerprint != untrained_fingerprint and first.state_fingerprint
    assert first.fingerprint == again.fingerprint != other.fingerprint


KILLER = """
import json, os, signal, sys
sys.path.insert(0, {tests!r})
from conftest import make_dataset
from embedlab_train import FineTunedEncoder, TrainingSet
from embedlab.training import TrainingData

params, kill_at = json.loads(sys.argv[1]), int(sys.argv[2])
dataset = make_dataset()
data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))

def kill(info):
    if info.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

FineTunedEncoder(**params).train(data, callbacks=[kill])
"""


def test_a_run_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(fast, dataset, tmp_path):
    # 48 examples / 8 per step: 6 steps an epoch; killed at step 5 (mid-epoch 0), last checkpoint at 4;
    # held-out queries evaluated every 3 steps, so early stopping's state is resumed too
    params = {**fast, "epochs": 2, "validation_fraction": 0.25, "eval_steps": 3, "patience": 5,
              "checkpoint_every": 2, "checkpoint_dir": str(tmp_path / "killed")}
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(tests=str(HERE)))
    done = subprocess.run([sys.executable, str(script), json.dumps(params), "5"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    checkpoint = embedlab.persistence.load_state(tmp_path / "killed" / "checkpoint")
    assert checkpoint.meta["progress"]["step"] == 4 and checkpoint.meta["progress"]["batch"] == 4
    assert not (tmp_path / "killed" / "final").exists()

    steps: list[int] = []
    resumed = FineTunedEncoder(**params).train(train_set(dataset), callbacks=[lambda i: steps.append(i.step)])
    assert steps[0] == 5                                                   # continued after the checkpoint
    straight = FineTunedEncoder(**{**params, "checkpoint_dir": str(tmp_path / "straight")}).train(train_set(dataset))
    a, b = weights_of(resumed), weights_of(straight)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert resumed.training_record["validation_ndcg10"] == straight.training_record["validation_ndcg10"]


def test_ctrl_c_keeps_the_encoder_and_leaves_a_loadable_checkpoint(fast, dataset, tmp_path):
    params = {**fast, "epochs": 2, "checkpoint_every": 2, "checkpoint_dir": str(tmp_path / "run")}
    encoder = FineTunedEncoder(**params)
    before = encoder.encode_queries(["parse json text"])

    def interrupt(info):
        if info.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encoder.train(train_set(dataset), callbacks=[interrupt])
    assert not encoder.trained and np.array_equal(encoder.encode_queries(["parse json text"]), before)
    checkpoint = embedlab.load_component(tmp_path / "run" / "checkpoint")      # step 2's weights
    assert isinstance(checkpoint, FineTunedEncoder)
    assert not np.allclose(checkpoint.encode_queries(["parse json text"]), before)


def test_a_finished_run_is_reused_and_save_load_and_onnx_give_the_same_vectors(fast, dataset, tmp_path):
    params = {**fast, "epochs": 1, "checkpoint_dir": "auto"}
    encoder = FineTunedEncoder(**params).train(train_set(dataset))
    steps: list[int] = []
    reused = FineTunedEncoder(**params).train(train_set(dataset), callbacks=[lambda i: steps.append(i.step)])
    assert steps == [] and reused.state_fingerprint == encoder.state_fingerprint
    texts = ["open a file for reading", "def helper(): how to hash a password in python"]
    vectors = encoder.encode_documents(texts)

    encoder.save(tmp_path / "saved")
    loaded = embedlab.load_component(tmp_path / "saved")
    assert loaded.fingerprint == encoder.fingerprint
    assert np.array_equal(loaded.encode_documents(texts), vectors)
    # the saved state is a model directory: the transformers encoder's ONNX backend exports and runs it
    onnx = embedlab.create("encoder", "transformers", model_path=tmp_path / "saved", backend="onnx",
                           max_length=32, num_threads=1, show_progress=False)
    cosines = np.sum(onnx.encode_documents(texts) * vectors, axis=1)
    assert cosines.min() > 0.9999
    # the saved directory is a model directory sentence-transformers reads too
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    reference = st.encode(texts, normalize_embeddings=True)
    assert np.sum(reference * vectors, axis=1).min() > 0.9999


def test_pipeline_trains_on_the_train_split_and_caches_by_training(fast, dataset, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    split = dataset.split("test")
    zero_shot = Pipeline(encoder=FineTunedEncoder(**fast), index=embedlab.create("index", "exact"), cache=cache)
    zero_shot.build(dataset.corpus)
    baseline = embedlab.evaluate(zero_shot.search(split.queries, k=10), split.qrels, ["RR@10"])
    tuned = Pipeline(encoder=FineTunedEncoder(**fast, epochs=4), index=embedlab.create("index", "exact"),
                     cache=cache)
    tuned.build(dataset.corpus, train=dataset.split("train"))
    assert tuned.encoder.trained and tuned.timings.cache_hits == 0
    result = embedlab.evaluate(tuned.search(split.queries, k=10), split.qrels, ["RR@10"])
    assert result.aggregates["RR@10"] > baseline.aggregates["RR@10"] + 0.05


def test_soup_averages_weights_and_of_one_member_is_that_member(fast, dataset, tmp_path):
    data = train_set(dataset)
    a = FineTunedEncoder(**fast, seed=0).train(data)
    b = FineTunedEncoder(**fast, seed=1).train(data)
    soup = make_soup([a, b], tmp_path / "soup")
    wa, wb, ws = weights_of(a), weights_of(b), weights_of(soup)
    for key in wa:
        assert np.allclose(ws[key], (wa[key].astype(np.float64) + wb[key]) / 2, atol=1e-7)
    single = make_soup([a], tmp_path / "single")
    assert single.state_fingerprint == a.state_fingerprint
    skewed = make_soup([a, b], tmp_path / "skewed", weights=[1.0, 0.0])
    assert skewed.state_fingerprint == a.state_fingerprint
    with pytest.raises(embedlab.InvalidInputError, match="one non-negative weight per member"):
        make_soup([a, b], tmp_path / "bad", weights=[1.0])


def test_bad_input_gives_clear_errors(fast, dataset, tmp_path):
    with pytest.raises(embedlab.UnknownComponentError, match="no loss named 'nope'.*infonce"):
        FineTunedEncoder(**fast, loss="nope")
    with pytest.raises(embedlab.ConfigError, match="output must be 'dense'"):
        FineTunedEncoder(**fast, output="tokens")
    with pytest.raises(embedlab.ConfigError, match="no CUDA device"):
        FineTunedEncoder(**fast, device="cuda").train(train_set(dataset))
    with pytest.raises(embedlab.ConfigError, match=r"dims \[64\] exceed the model's 32 dimensions"):
        FineTunedEncoder(**fast, loss={"name": "matryoshka", "dims": [64, 16]}).train(train_set(dataset))
    unjudged = embedlab.Dataset("x", dataset.corpus, dataset.queries, {"train": {"train0": {"missing": 1}}})
    with pytest.raises(embedlab.InvalidInputError, match="no judged queries|no document judged"):
        FineTunedEncoder(**fast).fit_queries(TrainingData(unjudged.corpus, unjudged.split("train")))
    params = {**fast, "checkpoint_dir": str(tmp_path / "run"), "checkpoint_every": 1}
    with pytest.raises(KeyboardInterrupt):
        FineTunedEncoder(**params).train(train_set(dataset), callbacks=[_interrupt_at(1)])
    with pytest.raises(embedlab.StateError, match="belongs to another training run"):
        FineTunedEncoder(**params, seed=1).train(train_set(dataset))


@pytest.mark.parametrize("forgery", ["trainer state garbage", "trainer state missing", "progress fields"])
def test_a_forged_checkpoint_is_a_state_error_on_resume(fast, dataset, tmp_path, forgery):
    """Before: resuming from an edited checkpoint (checksums recomputed) raised SafetensorError,
    KeyError or TypeError from deep inside the loop."""
    from embedlab.testing import reseal

    params = {**fast, "checkpoint_dir": str(tmp_path / "run"), "checkpoint_every": 1}
    with pytest.raises(KeyboardInterrupt):
        FineTunedEncoder(**params).train(train_set(dataset), callbacks=[_interrupt_at(1)])
    checkpoint = tmp_path / "run" / "checkpoint"
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    if forgery == "trainer state garbage":
        (checkpoint / "trainer.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    elif forgery == "trainer state missing":
        (checkpoint / "trainer.safetensors").unlink()
        del manifest["files"]["trainer.safetensors"]
    else:
        manifest["meta"]["progress"] = {"epoch": 0, "unknown_field": 1}
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))
    reseal(checkpoint)
    with pytest.raises(embedlab.StateError, match="checkpoint: unusable training checkpoint"):
        FineTunedEncoder(**params).train(train_set(dataset))


def _interrupt_at(step):
    def callback(info):
        if info.step == step:
            raise KeyboardInterrupt
    return callback


def test_train_queries_trains_on_a_seeded_sample_of_the_training_queries(fast, dataset):
    data = train_set(dataset)
    queries = np.unique(data.query)
    sample = data.sample_queries(4, seed=0)
    assert len(np.unique(sample.query)) == 4 and set(sample.query.tolist()) <= set(queries.tolist())
    assert all(set(data.positive[data.query == q].tolist()) == set(sample.positive[sample.query == q].tolist())
               for q in np.unique(sample.query))                            # every pair of a sampled query
    assert np.array_equal(sample.query, data.sample_queries(4, seed=0).query)
    samples = {tuple(np.unique(data.sample_queries(4, seed=s).query)) for s in range(5)}
    assert samples != {tuple(np.unique(sample.query))}                      # seeds draw other queries
    assert data.sample_queries(None, 0) is data and data.sample_queries(len(queries), 0) is data
    encoder = FineTunedEncoder(**fast, train_queries=4).train(data)
    assert encoder.training_record["examples"] == len(sample) < len(data)
    assert FineTunedEncoder(**fast, train_queries=4).fingerprint != FineTunedEncoder(**fast).fingerprint
    with pytest.raises(embedlab.ConfigError, match="train_queries"):
        FineTunedEncoder(**fast, train_queries=1)
