"""Training on judged queries: the pipeline hands each learning stage a TrainingData and never the
evaluated split; without a training split every stage fits as before."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab import Corpus, Queries, Split
from embedlab.cache import EmbeddingCache
from embedlab.errors import InvalidInputError
from embedlab.pipeline import Pipeline
from embedlab.protocols import LearnsFromQueries
from embedlab.rerank import reorder
from embedlab.training import TrainingData

CORPUS = Corpus([f"d{i}" for i in range(6)],
                ["red apples", "green apples", "blue sky", "grey sky", "red car", "fast car"])
TRAIN = Split("train", Queries(["t1", "t2"], ["apples", "sky"]), {"t1": {"d0": 1, "d1": 2}, "t2": {"d3": 1, "d2": 0}})
TEST = Queries(["q1"], ["car"])


WORDS = sorted({w for text in CORPUS.texts for w in text.split()})


class LearningEncoder(embedlab.Component):
    """Normalised bag of words over the corpus vocabulary; records how it was fitted."""

    kind = "encoder"
    name = "learning-encoder"
    output_kind = embedlab.EmbeddingKind.DENSE
    dim = len(WORDS)

    def encode_queries(self, texts):
        out = np.array([[w in text.split() for w in WORDS] for text in texts], dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_documents = encode_queries

    def fit(self, documents):
        self.plain_fit = True

    def fit_queries(self, data: TrainingData):
        self.data = data


class LearningCompressor(embedlab.Component):
    kind = "compressor"
    name = "learning-compressor"
    bytes_per_vector = 4 * len(WORDS)

    def fit(self, vectors):
        self.sample = vectors
        return self

    def fit_queries(self, data: TrainingData):
        self.data = data
        return self

    def encode(self, vectors):
        return vectors

    def decode(self, codes):
        return codes

    def save(self, path):
        raise NotImplementedError


class LearningReranker(embedlab.Component):
    """Reverses the first stage once trained; records what it was trained on."""

    kind = "reranker"
    name = "learning-reranker"

    def fit_queries(self, data: TrainingData):
        self.data = data

    def rerank(self, ranking, queries, corpus):
        return reorder(ranking, -ranking.scores)


def test_each_learning_stage_gets_the_training_data_it_can_have() -> None:
    encoder, compressor, reranker = LearningEncoder(), LearningCompressor(), LearningReranker()
    assert all(isinstance(c, LearnsFromQueries) for c in (encoder, compressor, reranker))
    pipeline = Pipeline(encoder=encoder, index=embedlab.create("index", "exact"), compressor=compressor,
                        reranker=reranker, train_depth=3)
    timings = pipeline.build(CORPUS, train=TRAIN)
    assert encoder.data.split is TRAIN and encoder.data.query_vectors is None and not hasattr(encoder, "plain_fit")
    assert not hasattr(compressor, "sample")
    np.testing.assert_array_equal(compressor.data.query_vectors, encoder.encode_queries(["apples", "sky"]))
    np.testing.assert_array_equal(compressor.data.document_vectors, encoder.encode_documents(CORPUS.documents()))
    first = reranker.data.first_stage
    assert first.query_ids.tolist() == ["t1", "t2"] and first.k == 3
    assert set(first.doc_ids[0, :2]) == {"d0", "d1"}
    assert timings.fit_reranker_s > 0 and timings.build_s >= timings.fit_reranker_s
    ranking = pipeline.search(TEST, k=3)
    assert ranking.doc_ids[0, -1] in {"d4", "d5"}  # the reranker reversed the first stage


def test_without_a_training_split_the_plain_fits_run() -> None:
    encoder, compressor = LearningEncoder(), LearningCompressor()
    Pipeline(encoder=encoder, index=embedlab.create("index", "exact"), compressor=compressor).build(CORPUS)
    assert encoder.plain_fit and not hasattr(encoder, "data")
    assert compressor.sample.shape == (6, len(WORDS)) and not hasattr(compressor, "data")


def test_a_split_without_judgments_is_rejected() -> None:
    empty = Split("train", Queries(["t1"], ["apples"]), {})
    with pytest.raises(InvalidInputError, match="training split 'train' has no judged queries"):
        Pipeline(encoder=LearningEncoder(), index=embedlab.create("index", "exact")).build(CORPUS, train=empty)


def test_relevant_positions_follow_query_order_and_grades() -> None:
    data = TrainingData(CORPUS, TRAIN)
    assert [p.tolist() for p in data.relevant_positions()] == [[0, 1], [3]]
    assert [p.tolist() for p in data.relevant_positions(min_grade=2)] == [[1], []]


def test_the_cache_keys_an_encoder_trained_on_queries_by_its_training_split(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    other = Split("train", TRAIN.queries, {"t1": {"d4": 1}})
    for split, hits in ((TRAIN, 0), (TRAIN, 1), (other, 0)):
        pipeline = Pipeline(encoder=LearningEncoder(), index=embedlab.create("index", "exact"), cache=cache)
        assert pipeline.build(CORPUS, train=split).cache_hits == hits


def test_an_experiment_file_trains_on_its_train_split_and_evaluates_on_split(tmp_path) -> None:
    from embedlab.experiment import parse_config
    from embedlab.experiment.runner import run_experiment
    from embedlab.testing import registered

    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(f'{{"_id": "{d}", "text": "{t}"}}\n'
                                                 for d, t in zip(CORPUS.ids, CORPUS.texts)))
    (folder / "queries.jsonl").write_text('{"_id": "t1", "text": "apples"}\n{"_id": "q1", "text": "car"}\n')
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nt1\td0\t1\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td4\t1\n")
    trained: list[TrainingData] = []

    class Recording(LearningReranker):
        def fit_queries(self, data):
            trained.append(data)

    with registered("encoder", "learning-encoder", LearningEncoder), \
            registered("reranker", "learning-reranker", Recording):
        config = parse_config(f'[dataset]\npath = "{folder}"\nsplit = "test"\ntrain_split = "train"\n\n'
                              '[experiment]\nmetrics = ["nDCG@10"]\n\n[[pipeline]]\nname = "p"\n'
                              'encoder = "learning-encoder"\nreranker = "learning-reranker"\n')
        result = run_experiment(config, progress=False)
    assert [d.split.name for d in trained] == ["train"] and trained[0].first_stage.query_ids.tolist() == ["t1"]
    assert result.outcomes[0].ranking.query_ids.tolist() == ["q1"]
    assert result.to_json()["dataset"]["train_split"] == "train"


def test_holdout_split_takes_the_first_rows_of_a_shuffled_order() -> None:
    from embedlab.training import holdout_split

    train, held = holdout_split(np.array([4, 2, 0, 1, 3]), 0.4)
    assert held.tolist() == [4, 2] and train.tolist() == [0, 1, 3]
    for fraction in (0.0, 0.05, 0.99):  # none or all held out: every row serves as both
        train, held = holdout_split(np.arange(5), fraction)
        assert train.tolist() == held.tolist() == [0, 1, 2, 3, 4]


def test_training_queries_are_encoded_once_and_rerankers_get_the_encoder_document_vectors() -> None:
    class Halving(LearningCompressor):
        def decode(self, codes):
            return codes / 2

    class CountingEncoder(LearningEncoder):
        calls = 0

        def encode_queries(self, texts):
            type(self).calls += 1
            return super().encode_queries(texts)

    encoder, reranker = CountingEncoder(), LearningReranker()
    Pipeline(encoder=encoder, index=embedlab.create("index", "exact"), compressor=Halving(),
             reranker=reranker).build(CORPUS, train=TRAIN)
    assert CountingEncoder.calls == 1
    np.testing.assert_array_equal(reranker.data.document_vectors, encoder.encode_documents(CORPUS.documents()))
