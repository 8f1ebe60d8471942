"""Situated chunk embeddings: the biographies task, prefixes, late chunking, residual fusion, errors."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_sitemb import SituatedRetriever, late_chunked, prefixed, sitemb_bios
from embedlab_sitemb.situated import document_groups
from embedlab_transformers import MiniLM

import embedlab
from embedlab import Corpus, Queries
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.metrics import evaluate

QUIET = {"name": "minilm", "num_threads": 1, "show_progress": False}


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return MiniLM(num_threads=1, show_progress=False)


def test_biographies_name_their_person_once() -> None:
    data = sitemb_bios(people=30, seed=2)
    corpus, split = data.corpus, data.split("test")
    assert len(corpus) == 150 and set(np.bincount(corpus.attributes["document"])) == {5}
    for person in range(30):
        first, *rest = [corpus.texts[i] for i in np.flatnonzero(corpus.attributes["document"] == person)]
        name = " ".join(first.split()[:2])
        assert all(s.split()[0] in ("He", "She") and name not in s for s in rest)
    for qid, question in zip(split.queries.ids, split.queries.texts):
        (target,) = split.qrels[qid]
        person = int(target.split("-")[0].removeprefix("bio"))
        first = corpus.texts[corpus.position[f"bio{person}-s0"]]
        assert " ".join(first.split()[:2]) in question
        assert data.metadata["query_kinds"][qid] == "pronoun" and not target.endswith("s0")
    named = sitemb_bios(people=10, pronoun_share=0.0)
    assert all(next(iter(j)).endswith("-s0") for j in named.split("test").qrels.values())
    with pytest.raises(ConfigError, match="pronoun_share"):
        sitemb_bios(pronoun_share=2)


def test_prefixes_and_groups() -> None:
    corpus = Corpus(["a1", "b0", "a0", "a2"], ["A one.", "B zero.", "A zero.", "A two."],
                    attributes={"document": ["a", "b", "a", "a"], "position": [1, 0, 0, 2]})
    groups = document_groups(corpus)
    assert [g.tolist() for g in groups] == [[2, 0, 3], [1]]
    assert prefixed(corpus.texts, groups, None) == ["A zero. A one.", "B zero.", "A zero.", "A zero. A one. A two."]
    assert prefixed(corpus.texts, groups, 1)[3] == "A one. A two."
    with pytest.raises(ConfigError, match="attribute column"):
        document_groups(Corpus(["x"], ["text"]))
    with pytest.raises(InvalidInputError, match="two chunks at one position"):
        document_groups(Corpus(["x", "y"], ["a", "b"], attributes={"document": [0, 0], "position": [1, 1]}))


def test_late_chunking_pools_each_chunks_own_tokens(minilm) -> None:
    texts = ("Ada Lovelace wrote notes.", "She described an engine.", "Unrelated sentence here.")
    groups = [np.array([0, 1]), np.array([2])]
    found = late_chunked(minilm, texts, groups)
    raw = MiniLM(output="tokens", normalize=False, num_threads=1, show_progress=False)
    raw._model = minilm.loaded
    tokens = raw.encode_documents(["Ada Lovelace wrote notes. She described an engine."])
    inner = tokens.vectors[1:-1]  # without [CLS] and [SEP]
    first = len(minilm.token_spans([texts[0]])[0])
    for row, part in ((0, inner[:first]), (1, inner[first:])):
        expected = part.mean(axis=0)
        np.testing.assert_allclose(found[row], expected / np.linalg.norm(expected), atol=1e-5)
    assert float(found[1] @ minilm.encode_documents([texts[1]])[0]) < 0.999  # context changed it


def test_late_windows_never_exceed_the_encoder() -> None:
    small = MiniLM(max_length=12, num_threads=1, show_progress=False)
    texts = tuple(f"Sentence number {w} is here." for w in ("one", "two", "three", "four"))
    groups = [np.arange(4)]
    vectors = late_chunked(small, texts, groups)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = late_chunked(small, texts[:1], [np.array([0])])  # each chunk is (about) a window of its own here
    np.testing.assert_allclose(vectors[0], alone[0], atol=1e-5)


def test_a_chunk_longer_than_the_window_is_announced_not_cut_silently() -> None:
    small = MiniLM(max_length=12, num_threads=1, show_progress=False)
    texts = ("Short one.", " ".join(["word"] * 30))
    with pytest.warns(UserWarning, match=r"1 of 2 texts are longer than max_length=12"):
        vectors = late_chunked(small, texts, [np.arange(2)])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_context_finds_what_the_chunk_alone_cannot() -> None:
    data = sitemb_bios(people=40, seed=1)
    split = data.split("test")
    recall = {}
    for mode in ("chunk", "late", "prefix"):
        stage = SituatedRetriever(encoder=QUIET, mode=mode)
        stage.build(data.corpus)
        recall[mode] = evaluate(stage.search(split.queries, 10), split.qrels, ["R@1"])["R@1"]
    # 40 people: about 7 sentences share each value, so a chunk alone is found about 1 time in 7
    assert recall["chunk"] <= 0.25 and recall["late"] >= recall["chunk"] + 0.3 and recall["prefix"] > recall["chunk"]


def test_residual_adds_the_two_cosines() -> None:
    data = sitemb_bios(people=8)
    queries = Queries(["q"], ["When did someone move to Oslo?"])
    scores = {}
    for residual in (None, 0.5):
        stage = SituatedRetriever(encoder=QUIET, mode="prefix", residual=residual)
        stage.build(data.corpus)
        ranking = stage.search(queries, len(data.corpus))
        scores[residual] = dict(zip(ranking.doc_ids[0], ranking.scores[0]))
    plain = SituatedRetriever(encoder=QUIET, mode="chunk")
    plain.build(data.corpus)
    ranking = plain.search(queries, len(data.corpus))
    base = dict(zip(ranking.doc_ids[0], ranking.scores[0]))
    for doc, value in scores[0.5].items():
        assert value == pytest.approx(base[doc] + 0.5 * scores[None][doc], abs=1e-5)


def test_registration_and_errors() -> None:
    assert "situated" in embedlab.registry().names("retriever")
    assert "sitemb-bios" in embedlab.registry().names("dataset")
    with pytest.raises(ConfigError, match="Tokenizes"):
        SituatedRetriever(encoder="hashing", mode="late")
    with pytest.raises(ConfigError, match="residual"):
        SituatedRetriever(encoder="hashing", mode="prefix", residual=-1)
    with pytest.raises(InvalidInputError, match="call build"):
        SituatedRetriever(encoder="hashing", mode="prefix").search(Queries(["q"], ["x"]), 3)
