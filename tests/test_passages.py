"""Passage retrieval: documents scored from their passages (MaxP, FirstP, mean, sum, MaxSim)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from embedlab import Corpus, Pipeline, Queries
from embedlab.cache import EmbeddingCache
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.experiment.config import parse_config
from embedlab.experiment.runner import build_pipeline
from embedlab.passages import PassageRetriever, aggregate_scores
from embedlab.segmentation import segment
from embedlab.testing import TokenLimitedHashing

TOPICS = ["prion", "kinase", "insulin", "neuron", "virus", "tumour", "enzyme", "protein", "cell", "gene"]


def make_corpus(n: int = 40, seed: int = 0) -> Corpus:
    """Documents of several sentences; each has a rare fact somewhere, often past 16 tokens."""
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        filler = [f"The {rng.choice(TOPICS)} study {j} of {rng.choice(TOPICS)} was run." for j in range(8)]
        filler.insert(int(rng.integers(0, 8)), f"Marker zeta{i} binds {TOPICS[i % 10]} strongly.")
        texts.append(" ".join(filler))
    return Corpus([f"doc{i}" for i in range(n)], texts, titles=[f"Paper {i}" for i in range(n)],
                  attributes={"year": np.arange(n) % 4})


QUERIES = Queries([f"q{i}" for i in range(12)], [f"what binds zeta{i}?" for i in range(12)])


def reference(corpus: Corpus, queries: Queries, encoder: TokenLimitedHashing, method: str, **params: object):
    """Brute force: every passage scored by inner product, aggregated per document."""
    passages = segment(corpus, encoder=encoder, by="sentences", size=2, overlap=1)
    scores = encoder.encode_queries(list(queries.texts)) @ encoder.encode_documents(list(passages.texts)).T
    if method == "firstp":
        scores = scores[:, passages.offsets[:-1]]
        return scores
    return np.stack([aggregate_scores(row, passages.offsets, method, params.get("top_k")) for row in scores])


def retriever(method: str, **params: object) -> PassageRetriever:
    return PassageRetriever(encoder={"name": "hashing", "dim": 512}, by="sentences", size=2, overlap=1,
                            aggregate=method, **params)


def check_against(ranking, expected: np.ndarray, corpus: Corpus, k: int) -> None:
    """Same scores, best first, and every document clearly above the k-th score is returned."""
    for row in range(len(ranking)):
        ids, scores = ranking.row(row)
        order = np.lexsort((np.arange(len(corpus)), -expected[row]))[:k]
        np.testing.assert_allclose(scores, expected[row][order], rtol=1e-5, atol=1e-6)
        clearly_in = corpus.ids[expected[row] > expected[row][order[-1]] + 1e-5]
        assert set(clearly_in) <= set(ids.tolist())


@pytest.mark.parametrize("method, params", [("maxp", {}), ("firstp", {}), ("mean", {"candidates": None}),
                                            ("sum", {"candidates": None}), ("sum", {"top_k": 2, "candidates": None}),
                                            ("maxsim", {})])
@pytest.mark.parametrize("k", [1, 7, 40, 60])
def test_document_scores_equal_brute_force(method: str, params: dict, k: int) -> None:
    corpus = make_corpus()
    encoder = TokenLimitedHashing(dim=512, max_tokens=10_000)
    stage = PassageRetriever(encoder=encoder, by="sentences", size=2, overlap=1, aggregate=method, **params)
    stage.build(corpus)
    expected = reference(corpus, QUERIES, encoder, "maxp" if method == "maxsim" else method, **params)
    ranking = stage.search(QUERIES, k)
    assert ranking.k == k
    check_against(ranking, expected, corpus, min(k, len(corpus)))


def test_aggregate_scores_against_a_loop() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 6, 50)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    scores = rng.standard_normal(offsets[-1])
    groups = [scores[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    np.testing.assert_allclose(aggregate_scores(scores, offsets, "maxp"), [g.max() for g in groups])
    np.testing.assert_allclose(aggregate_scores(scores, offsets, "firstp"), [g[0] for g in groups])
    np.testing.assert_allclose(aggregate_scores(scores, offsets, "mean"), [g.mean() for g in groups])
    np.testing.assert_allclose(aggregate_scores(scores, offsets, "sum", 2),
                               [np.sort(g)[::-1][:2].sum() for g in groups])
    with pytest.raises(InvalidInputError, match="at least one"):
        aggregate_scores(scores[:2], np.array([0, 0, 2]), "maxp")


def test_passages_find_what_the_encoder_truncates() -> None:
    """The facts sit past the encoder's 16 tokens in most documents: whole documents miss them."""
    corpus = make_corpus()
    encoder = {"name": "hashing", "dim": 1024}
    limited = TokenLimitedHashing(dim=1024, max_tokens=16)
    whole = Pipeline(encoder=limited)
    whole.build(corpus)
    chunked = Pipeline(retriever=PassageRetriever(encoder=limited, by="tokens", overlap=4))
    chunked.build(corpus)
    hits = {name: np.mean([r[1][0] == f"doc{i}" for i, r in enumerate(p.search(QUERIES, 1))])
            for name, p in (("whole", whole), ("chunked", chunked))}
    assert hits["chunked"] == 1.0 and hits["whole"] < 0.5
    assert encoder  # the plain hashing encoder (no limit) finds them whole, as a sanity check
    plain = Pipeline.from_names(encoder={"name": "hashing", "dim": 1024})
    plain.build(corpus)
    assert np.mean([r[1][0] == f"doc{i}" for i, r in enumerate(plain.search(QUERIES, 1))]) == 1.0


def test_search_passages_returns_passage_ids_and_offsets() -> None:
    corpus = make_corpus()
    stage = retriever("maxp")
    stage.build(corpus)
    ranking = stage.search_passages(QUERIES, 3)
    best = ranking.doc_ids[:, 0]
    assert all(p.startswith(f"doc{i}#") for i, p in enumerate(best))
    passages = stage.passages
    position = {p: i for i, p in enumerate(passages.ids.tolist())}
    for i, passage_id in enumerate(best):
        p = position[passage_id]
        assert f"zeta{i} " in corpus.texts[passages.document[p]][passages.start[p]:passages.end[p]]


def test_filters_apply_to_documents() -> None:
    corpus = make_corpus()
    for method in ("maxp", "firstp", "mean", "maxsim"):
        stage = retriever(method)
        stage.build(corpus)
        ranking = stage.search(QUERIES, 5, filter={"year": 1})
        years = {int(corpus.attributes["year"][corpus.position[d]]) for d in ranking.doc_ids.ravel() if d}
        assert years == {1}, method
        mask = np.zeros(len(corpus), bool)
        mask[:3] = True
        assert set(stage.search(QUERIES, 5, filter=mask).doc_ids.ravel()) <= {"doc0", "doc1", "doc2", ""}


def test_passage_vectors_are_cached(tmp_path) -> None:
    corpus = make_corpus()
    spec = {"encoder": {"name": "hashing", "dim": 64}, "passages": {"by": "words", "size": 12}}
    first = Pipeline.from_names(**spec, cache=EmbeddingCache(tmp_path))
    first.build(corpus)
    assert first.timings.cache_hits == 0
    again = Pipeline.from_names(**spec, cache=EmbeddingCache(tmp_path))
    again.build(corpus)
    assert again.timings.cache_hits == 1
    np.testing.assert_array_equal(first.search(QUERIES, 5).scores, again.search(QUERIES, 5).scores)
    other = Pipeline.from_names(encoder=spec["encoder"], passages={"by": "words", "size": 13},
                                cache=EmbeddingCache(tmp_path))
    other.build(corpus)
    assert other.timings.cache_hits == 0  # another segmentation is another encoding


def test_from_toml_and_fingerprints() -> None:
    config = parse_config("""
[dataset]
name = "python-stdlib"
[[pipeline]]
name = "whole"
encoder = { name = "hashing", dim = 64 }
[[pipeline]]
name = "chunked"
encoder = { name = "hashing", dim = 64 }
passages = { by = "words", size = 50, overlap = 10, aggregate = "sum", top_k = 2 }
[[pipeline]]
name = "fused"
retrievers = ["whole", "chunked"]
""")
    chunked = build_pipeline(config.pipeline("chunked"))
    assert isinstance(chunked.first_stage, PassageRetriever)
    assert chunked.first_stage.config.top_k == 2 and chunked.first_stage.label == "chunked"
    fused = build_pipeline(config.pipeline("fused"))
    assert isinstance(fused.first_stage.retrievers[1], PassageRetriever)
    prints = chunked.fingerprints()
    assert set(prints) >= {"retriever", "encoder", "index"}
    other = build_pipeline(parse_config(config_text(size=51)).pipeline("chunked")).fingerprints()
    assert other["retriever"] != prints["retriever"] and other["encoder"] == prints["encoder"]


def config_text(size: int) -> str:
    return f"""
[dataset]
name = "python-stdlib"
[[pipeline]]
name = "chunked"
encoder = {{ name = "hashing", dim = 64 }}
passages = {{ by = "words", size = {size}, overlap = 10, aggregate = "sum", top_k = 2 }}
"""


@pytest.mark.parametrize("table, message", [
    ('retriever = { name = "fusion" }\npassages = { by = "words" }', "no 'encoder'"),
    ('encoder = "hashing"\npassages = "words"', "must be a table"),
    ('encoder = "hashing"\npassages = { by = "lines" }', "line 6: pipeline\\[0\\].passages.*by"),
    ('encoder = "hashing"\npassages = { size = 10, overlap = 10 }', "overlap"),
    ('encoder = "hashing"\npassages = { aggregate = "maxp", top_k = 2 }', "top_k"),
    ('encoder = "hashing"\npassages = { chunk = 3 }', "unknown parameter"),
])
def test_bad_passage_tables(table: str, message: str) -> None:
    text = f'[dataset]\nname = "x"\n[[pipeline]]\nname = "p"\n{table}\n'
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_errors_say_what_is_wrong() -> None:
    corpus = make_corpus(5)
    with pytest.raises(ConfigError, match="needs an encoder"):
        PassageRetriever(by="words")
    with pytest.raises(ConfigError, match="needs an encoder"):
        Pipeline.from_names(retriever="fusion", passages={"by": "words"})
    with pytest.raises(ConfigError, match="compressor needs dense"):
        PassageRetriever(encoder="hashing", compressor={"name": "pq", "m": 4}, aggregate="maxsim")
    stage = retriever("maxp")
    with pytest.raises(InvalidInputError, match="call build"):
        stage.search(QUERIES, 3)
    with pytest.raises(ConfigError, match="'hashing' has none"):
        PassageRetriever(encoder="hashing", by="tokens").build(corpus)
    firstp = retriever("firstp")
    firstp.build(corpus)
    with pytest.raises(ConfigError, match="does not index every passage"):
        firstp.search_passages(QUERIES, 3)


def test_compressed_passages_and_other_indexes() -> None:
    corpus = make_corpus()
    stage = PassageRetriever(encoder={"name": "hashing", "dim": 64}, compressor={"name": "pq", "m": 8, "ksub": 16},
                             by="sentences", size=2, aggregate="maxp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage.build(corpus)
    ranking = stage.search(QUERIES, 10)
    assert (ranking.doc_ids != "").all() and len(set(ranking.doc_ids[0])) == 10
    assert stage.bytes_per_document > 0
