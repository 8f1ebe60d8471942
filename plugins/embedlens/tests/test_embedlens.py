"""EmbedLens token triage: the probe against brute force, the class rules, the equal-bytes controls,
MiniLM's real token vectors (punctuation dead, words alive, [CLS] a sink), the encoder end to end,
persistence and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_embedlens import EmbedLens
from embedlab_embedlens.lens import ALIVE, DEAD, SINK, VocabularyProbe, classify, keep_mask

import embedlab
from embedlab import Corpus, MultiVectorEmbeddings, Queries
from embedlab.errors import ConfigError, InvalidInputError, StateError

QUIET = {"name": "minilm-tokens", "num_threads": 1, "show_progress": False}


@pytest.fixture(scope="module")
def lens() -> EmbedLens:
    return EmbedLens(encoder=QUIET)


@pytest.mark.parametrize("k", [1, 3, 12])
def test_probe_matches_brute_force_cosine(k):
    rng = np.random.default_rng(0)
    vocabulary = rng.standard_normal((300, 16)).astype(np.float32)
    vectors = 5 * rng.standard_normal((50, 16)).astype(np.float32)
    ids, sims = VocabularyProbe(vocabulary, chunk=7).nearest(vectors, k)
    unit = vocabulary / np.linalg.norm(vocabulary, axis=1, keepdims=True)
    cosine = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) @ unit.T
    expected = np.argsort(-cosine, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(sims, np.take_along_axis(cosine, expected, axis=1), atol=1e-6)


def test_classes_follow_the_rules():
    vocabulary = np.eye(6, dtype=np.float32)                    # id 0 is the special token
    probe = VocabularyProbe(vocabulary, special_ids=[0])
    vectors = np.array([[0, 2, 0, 0, 0, 0],                       # a word: alive
                        [1, 0.1, 0, 0, 0, 0],                     # nearest the special token: sink
                        [0, 1, 1, 1, 1, 1],                       # near no word (cosine 0.45): dead
                        [0, 0, 3, 0.2, 0, 0],                     # a word: alive
                        [0, 0, 0, 40, 0, 0]], np.float32)         # a word, massive norm
    offsets = np.array([0, 5])
    ids, sims = probe.nearest(vectors, 1)
    labels = classify(ids, sims, probe.special, np.linalg.norm(vectors, axis=1), offsets, dead_below=0.5,
                      sink_norm_z=None)
    assert labels.tolist() == [ALIVE, SINK, DEAD, ALIVE, ALIVE]
    labels = classify(ids, sims, probe.special, np.linalg.norm(vectors, axis=1), offsets, dead_below=0.5,
                      sink_norm_z=3.0)
    assert labels.tolist() == [ALIVE, SINK, DEAD, ALIVE, SINK]  # the norm outlier becomes a sink
    word_near_special = np.array([[0.3, 2, 0, 0, 0, 0.1]], np.float32)   # top 1 a word, top 2 the special
    ids3, sims3 = probe.nearest(word_near_special, 3)
    assert classify(ids3[:, :1], sims3[:, :1], probe.special, np.ones(1), np.array([0, 1]), dead_below=0.5,
                    sink_norm_z=None).tolist() == [ALIVE]
    assert classify(ids3, sims3, probe.special, np.ones(1), np.array([0, 1]), dead_below=0.5,
                    sink_norm_z=None).tolist() == [SINK]


def test_controls_drop_as_many_tokens_per_text():
    rng = np.random.default_rng(1)
    offsets = np.array([0, 10, 10, 30, 33])                       # an empty text and a 3-token text
    labels = rng.choice([ALIVE, DEAD, SINK], size=33, p=[0.6, 0.3, 0.1]).astype(np.int8)
    labels[30:33] = DEAD                                          # every token dead: min_tokens keeps one
    priority = -labels.astype(np.float32)
    triage = keep_mask(labels, offsets, [DEAD, SINK], "triage", 0, 1, priority)
    assert triage[:30].tolist() == (labels[:30] == ALIVE).tolist() and triage[30:].sum() == 1
    for policy in ("random", "alive"):
        keep = keep_mask(labels, offsets, [DEAD, SINK], policy, 3, 1, priority)
        for start, end in zip(offsets[:-1], offsets[1:]):
            dropped = int((labels[start:end] != ALIVE).sum())
            if policy == "alive":                                 # at most as many as there are alive tokens
                dropped = min(dropped, int((labels[start:end] == ALIVE).sum()))
            assert keep[start:end].sum() == max(end - start - dropped, min(1, end - start))
        if policy == "alive":                                     # only alive tokens were removed
            assert keep[:30][labels[:30] != ALIVE].all()
    assert not np.array_equal(keep_mask(labels, offsets, [DEAD], "random", 0, 1, priority),
                              keep_mask(labels, offsets, [DEAD], "random", 1, 1, priority))


def test_minilm_punctuation_is_dead_words_alive_cls_a_sink(lens):
    text = "def register(cls, subclass): return abc.register(cls, subclass)"
    raw = lens.tokens.encode_documents([text])
    labels = lens.labels(raw)
    tokens = lens.tokens.loaded.tokenizer.convert_ids_to_tokens(lens.tokens.loaded.tokenizer(text)["input_ids"])
    by_token = dict(zip(tokens, labels.tolist()))
    assert by_token["[CLS]"] == SINK
    assert by_token["register"] == ALIVE and by_token["return"] == ALIVE and by_token["sub"] == ALIVE
    assert by_token[")"] == DEAD and by_token[","] == DEAD and by_token[":"] == DEAD


def test_documents_keep_alive_tokens_queries_keep_all(lens):
    texts = ["Return the absolute value of a number.", "Open a file, read it; close it (always)."]
    plain = embedlab.create("encoder", "minilm-tokens", num_threads=1, show_progress=False)
    full = plain.encode_documents(texts)
    pruned = lens.encode_documents(texts)
    labels = lens.labels(lens.tokens.encode_documents(texts))
    assert len(pruned) == 2 and len(pruned.vectors) == int((labels == ALIVE).sum()) < len(full.vectors)
    np.testing.assert_allclose(pruned.vectors, full.vectors[labels == ALIVE], atol=1e-5)  # same normalised vectors
    queries = lens.encode_queries(texts)
    np.testing.assert_allclose(queries.vectors, plain.encode_queries(texts).vectors, atol=1e-5)
    pipeline = embedlab.Pipeline.from_names(encoder={"name": "embedlens", "encoder": QUIET}, index="exact")
    pipeline.build(Corpus(["a", "b"], texts))
    ranking = pipeline.search(Queries(["q"], ["read a file"]), k=2)
    assert ranking.doc_ids[0][0] == "b"


def test_save_load_and_bad_input(lens, tmp_path):
    lens.save(tmp_path / "lens")
    loaded = embedlab.load_component(tmp_path / "lens")
    assert isinstance(loaded, EmbedLens) and loaded.config == lens.config
    (tmp_path / "lens" / "manifest.json").write_text("{}")
    with pytest.raises(StateError):
        embedlab.load_component(tmp_path / "lens")
    with pytest.raises(ConfigError, match="policy"):
        EmbedLens(encoder=QUIET, policy="everything")
    with pytest.raises(ConfigError, match="drop"):
        EmbedLens(encoder=QUIET, drop=("alive",))
    with pytest.raises(ConfigError, match="transformers encoder"):
        EmbedLens(encoder="bm25")
    with pytest.raises(InvalidInputError, match="shape"):
        lens.probe.nearest(np.zeros((2, 5), np.float32), 3)
    with pytest.raises(InvalidInputError, match="finite"):
        VocabularyProbe(np.full((3, 4), np.nan))
    empty = lens.prune(MultiVectorEmbeddings(np.zeros((0, 384), np.float32), np.zeros(1, np.int64)))
    assert len(empty) == 0


def test_embedlab_run_from_toml_gives_what_the_python_api_gives(tmp_path):
    """An experiment file with the lens over MiniLM tokens and the exact MaxSim index: the same
    configuration (fingerprints) and nDCG@10 as the pipeline built in Python."""
    from embedlab.testing import api_aggregates, run_cli_experiment

    texts = ["Return the absolute value of a number.", "Open a file, read it; close it (always).",
             "Sort a list in place.", "Send an HTTP request and read the response."]
    dataset = embedlab.Dataset("lens-toml", Corpus(["d0", "d1", "d2", "d3"], texts),
                               Queries(["q0", "q1", "q2"], ["read a file", "absolute value", "http get"]),
                               {"test": {"q0": {"d1": 1}, "q1": {"d0": 1}, "q2": {"d3": 1}}})
    encoder = {"name": "embedlens", "encoder": QUIET, "dead_below": 0.25}
    found = run_cli_experiment(tmp_path, dataset, [{"name": "lens", "encoder": encoder, "index": {"name": "exact"}}])
    pipeline = embedlab.Pipeline(encoder=embedlab.create("encoder", **encoder), index=embedlab.create("index", "exact"))
    expected = api_aggregates(pipeline, dataset)
    assert found["lens"]["fingerprints"] == pipeline.fingerprints()
    assert found["lens"]["aggregates"]["nDCG@10"] == pytest.approx(expected["nDCG@10"], abs=1e-12)
    assert expected["nDCG@10"] == pytest.approx(1.0)                 # every query finds its document first
