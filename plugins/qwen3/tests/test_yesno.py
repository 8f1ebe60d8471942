"""The yes/no cross-encoder: the prompt, score = sigmoid(logit(yes) - logit(no)) of the tied decoder,
SFT that learns, pipeline training, resuming, persistence, ONNX, use as a teacher, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_qwen3 import YesNoReranker
from embedlab_qwen3.cross_encoder import YesNoModel
from embedlab_qwen3.prompt import PairTokenizer
from embedlab_train import RerankerScores, TrainingSet

import embedlab
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.pipeline import Pipeline, RerankStage
from embedlab.ranking import Ranking
from embedlab.training import TrainingData

FAST = {"num_threads": 1, "show_progress": False, "max_length": 48, "max_query_length": 12, "batch_size": 16,
        "instruction": "", "train_batch_size": 8, "lr": 2e-3, "warmup_ratio": 0.0, "negatives": 2,
        "negative_depth": 8, "checkpoint_dir": None, "validation_fraction": 0.0}


def shuffled_ranking(dataset, split: str, depth: int = 8, seed: int = 0) -> Ranking:
    """Each query's relevant documents among random others, in random order (a weak first stage)."""
    rng = np.random.default_rng(seed)
    part = dataset.split(split)
    ids = dataset.corpus.ids
    rows = []
    for q in part.queries.ids.tolist():
        relevant = list(part.qrels[q])
        others = [d for d in rng.permutation(ids).tolist() if d not in relevant][:depth - len(relevant)]
        rows.append(rng.permutation(relevant + others).tolist())
    return Ranking(part.queries.ids, np.asarray(rows), np.zeros((len(rows), depth), dtype=np.float32))


def test_the_prompt_keeps_the_answer_slot_and_truncates_query_and_document_only(tiny_model):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    pairs = PairTokenizer(tokenizer, "judge it", max_length=40, max_query_length=6)
    long_query, long_doc = "word " * 50, "text " * 200
    ids = pairs.encode([long_query, "short query"], [long_doc, "short document"])
    for seq in ids:
        assert seq[0] == tokenizer.cls_token_id and seq[-1] == tokenizer.sep_token_id
        assert seq[-2] == tokenizer.mask_token_id and seq.count(tokenizer.mask_token_id) == 1
        assert len(seq) <= 40
    assert len(ids[0]) == 40 and tokenizer.decode(ids[0]).count("word") == 6
    assert "short document" in tokenizer.decode(ids[1]) and "judge it" in tokenizer.decode(ids[1])
    with pytest.raises(embedlab.ConfigError, match="max_length=12 leaves no room"):
        PairTokenizer(tokenizer, "a long instruction that takes many tokens", max_length=12, max_query_length=4)


def test_score_is_the_log_odds_of_yes_against_no_under_the_tied_decoder(tiny_model):
    model = YesNoModel(tiny_model, instruction="", max_length=48, max_query_length=12, device=torch.device("cpu"))
    model.eval()
    queries, documents = ["parse json text", "sort a list"], ["json.loads(s)", "open a file"]
    with torch.no_grad():
        scores = model.scores(queries, documents).double()
        features, slots = model.pair_features(queries, documents)
        hidden = model.model(**features).last_hidden_state
        vocabulary = hidden[torch.arange(2), slots] @ model.model.get_input_embeddings().weight.T
    probabilities = vocabulary.double().softmax(dim=1)
    yes, no = probabilities[:, model.yes], probabilities[:, model.no]
    assert torch.allclose(torch.sigmoid(scores), yes / (yes + no), rtol=0, atol=1e-6)
    assert (features["input_ids"][torch.arange(2), slots] == model.tokenizer.mask_token_id).all()
    reranker = YesNoReranker(model_path=str(tiny_model), **FAST)
    assert np.allclose(reranker.score_pairs(queries, documents), scores.numpy(), atol=1e-5)
    probability = YesNoReranker(model_path=str(tiny_model), output="probability", **FAST)
    assert np.allclose(probability.score_pairs(queries, documents), torch.sigmoid(scores).numpy(), atol=1e-6)


@pytest.mark.parametrize("objective", ["vocabulary", "yes-no"])
def test_sft_learns_the_training_judgments(tiny_model, topics, objective):
    """SFT on "yes" for judged pairs and "no" for the first stage's other candidates: the loss falls
    and the reranked training queries improve (a 2-layer random BERT memorises; it does not learn
    to generalise to the paraphrased test queries in 8 epochs)."""
    train = shuffled_ranking(topics, "train", seed=1)
    reranker = YesNoReranker(model_path=str(tiny_model), objective=objective, **{**FAST, "epochs": 8, "lr": 3e-3})

    def ndcg() -> float:
        reranked = reranker.rerank(train, topics.queries, topics.corpus)
        return evaluate(reranked, topics.split("train").qrels, ["nDCG@10"]).aggregates["nDCG@10"]

    before = ndcg()
    reranker.fit_queries(TrainingData(topics.corpus, topics.split("train"), first_stage=train))
    losses = reranker.record["losses"]
    assert reranker.trained and reranker.record["epochs_run"] == 8 and losses[-1] < losses[0]
    assert ndcg() > before + 0.15


def test_a_pipeline_trains_it_on_the_first_stages_ranking_of_the_training_queries(tiny_model, topics, tmp_path):
    encoder = embedlab.create("encoder", "transformers", model_path=str(tiny_model), max_length=24,
                              num_threads=1, show_progress=False)
    reranker = YesNoReranker(model_path=str(tiny_model), epochs=2, **{**FAST, "validation_fraction": 0.25,
                                                                       "checkpoint_dir": str(tmp_path / "run")})
    pipeline = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"), cascade=[RerankStage(reranker, depth=8)],
                        cache=None)
    pipeline.build(topics.corpus, train=topics.split("train"))
    assert reranker.trained and reranker.record["held_out_queries"] == 6
    assert len(reranker.record["validation_ndcg10"]) == 3              # before training, after each epoch
    ranking = pipeline.search(topics.split("test").queries, k=8)
    assert ranking.k == 8
    again = YesNoReranker(model_path=str(tiny_model), epochs=2, **{**FAST, "validation_fraction": 0.25,
                                                                    "checkpoint_dir": str(tmp_path / "run")})
    pipeline2 = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"), cascade=[RerankStage(again, depth=8)])
    pipeline2.build(topics.corpus, train=topics.split("train"))       # a finished run is reused
    assert again.state_fingerprint == reranker.state_fingerprint


def test_an_interrupted_training_resumes_to_the_same_weights(tiny_model, topics, tmp_path):
    data = TrainingSet.from_training_data(TrainingData(topics.corpus, topics.split("train")))
    train = shuffled_ranking(topics, "train", seed=1)
    from embedlab_qwen3.sft import candidates_from_ranking

    candidates = candidates_from_ranking(train, data)
    params = {**FAST, "epochs": 2, "checkpoint_every": 2, "checkpoint_dir": str(tmp_path / "run")}

    def stop_at_5(info):
        if info.step == 5:
            raise KeyboardInterrupt

    interrupted = YesNoReranker(model_path=str(tiny_model), **params)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train(data, candidates=candidates, callbacks=[stop_at_5])
    assert not interrupted.trained                      # left as it was
    resumed = YesNoReranker(model_path=str(tiny_model), **params).train(data, candidates=candidates)
    straight = YesNoReranker(model_path=str(tiny_model), **{**params, "checkpoint_dir": str(tmp_path / "other")})
    straight.train(data, candidates=candidates)
    assert resumed.state_fingerprint == straight.state_fingerprint


def test_save_load_onnx_and_checksums(tiny_model, topics, tmp_path):
    reranker = YesNoReranker(model_path=str(tiny_model), epochs=1, **FAST)
    reranker.fit_queries(TrainingData(topics.corpus, topics.split("train"),
                                      first_stage=shuffled_ranking(topics, "train")))
    queries, documents = ["parse json text"] * 3, [topics.corpus.texts[i] for i in range(3)]
    expected = reranker.score_pairs(queries, documents)
    reranker.save(tmp_path / "saved")
    loaded = embedlab.load_component(tmp_path / "saved")
    assert isinstance(loaded, YesNoReranker) and loaded.state_fingerprint == reranker.state_fingerprint
    assert np.allclose(loaded.score_pairs(queries, documents), expected, atol=1e-6)
    onnx = YesNoReranker.load(tmp_path / "saved")
    onnx = YesNoReranker(**{**{k: getattr(onnx.config, k) for k in ("max_length", "max_query_length", "instruction")},
                            "model_path": str(tmp_path / "saved"), "backend": "onnx", "num_threads": 1,
                            "show_progress": False})
    assert np.allclose(onnx.score_pairs(queries, documents), expected, atol=1e-4)
    weights = tmp_path / "saved" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(embedlab.StateError):
        embedlab.load_component(tmp_path / "saved")


def test_it_serves_as_a_teacher_through_reranker_scores(tiny_model, topics):
    data = TrainingSet.from_training_data(TrainingData(topics.corpus, topics.split("train")))
    reranker = YesNoReranker(model_path=str(tiny_model), **FAST)
    scores = RerankerScores(reranker).scores(data, np.array([0, 3]), np.array([0, 1, 6, 7]))
    queries = [data.queries.texts[q] for q in (0, 0, 0, 0, 3, 3, 3, 3)]
    documents = [data.documents[p] for p in (0, 1, 6, 7) * 2]
    assert np.allclose(scores.numpy().ravel(), reranker.score_pairs(queries, documents), atol=1e-5)


def test_bad_input_is_named(tiny_model, topics):
    with pytest.raises(embedlab.ConfigError, match="objective"):
        embedlab.create("reranker", "yesno", objective="listwise")
    with pytest.raises(embedlab.ConfigError, match="negative_start"):
        embedlab.create("reranker", "yesno", negative_start=30, negative_depth=30)
    with pytest.raises(embedlab.ConfigError, match="max_length=8 leaves no room"):
        YesNoReranker(model_path=str(tiny_model), **{**FAST, "max_length": 8}).score_pairs(["a"], ["b"])
    reranker = YesNoReranker(model_path=str(tiny_model), **FAST)
    with pytest.raises(embedlab.InvalidInputError, match="2 queries for 1 documents"):
        reranker.score_pairs(["a", "b"], ["c"])
    with pytest.raises(embedlab.InvalidInputError, match="item 1"):
        reranker.score_pairs(["a", None], ["c", "d"])
    ranking = Ranking(["train0"], np.array([["t0a", "nope"]]), np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(embedlab.InvalidInputError, match="nope"):
        reranker.rerank(ranking, topics.queries, topics.corpus)
    strict = YesNoReranker(model_path=str(tiny_model), **{**FAST, "min_grade": 2})
    with pytest.raises(embedlab.InvalidInputError, match="no document judged >= 2"):
        strict.fit_queries(TrainingData(topics.corpus, topics.split("train")))
