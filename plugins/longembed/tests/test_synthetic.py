"""The passkey and needle generators: lengths, one planted fact per document, qrels, errors."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_longembed import needle, passkey
from embedlab_longembed.words import haystack_sentences, needle_facts

import embedlab
from embedlab.errors import ConfigError


@pytest.mark.parametrize("make", [passkey, needle])
@pytest.mark.parametrize("length", [256, 2048])
def test_documents_fit_the_word_budget_and_hold_their_fact(make, length: int) -> None:
    data = make(length, documents=30, queries=10)
    corpus, split = data.corpus, data.split("test")
    words = [len(t.split()) for t in corpus.texts]
    assert max(words) <= 0.75 * length and min(words) >= 0.75 * length - 45
    start, end = corpus.attributes["fact_start"], corpus.attributes["fact_end"]
    for i, text in enumerate(corpus.texts):
        fact = text[start[i]:end[i]]
        assert fact.count(".") >= 1 and text.count(fact) == 1
    for query_id, text in zip(split.queries.ids, split.queries.texts):
        (doc,) = split.qrels[query_id]
        fact = corpus.texts[corpus.position[doc]][start[corpus.position[doc]]:end[corpus.position[doc]]]
        # the query names its own fact: passkey by a name no other document has, needle by its pair
        if make is passkey:
            key = " ".join(text.rstrip("?").split()[-2:])
            assert key in fact and sum(key in t for t in corpus.texts) == 1
        else:
            assert fact == {q: f for f, q in needle_facts()}[text]
            assert sum(fact in t for t in corpus.texts) == 1
    depth = corpus.attributes["fact_depth"]
    assert 0 <= depth.min() and depth.max() <= 1 and depth.std() > 0.1  # facts are spread through the text


def test_generation_is_seeded() -> None:
    assert passkey(512, seed=3).corpus.texts == passkey(512, seed=3).corpus.texts
    assert needle(512, seed=3).corpus.texts != needle(512, seed=4).corpus.texts


def test_facts_and_haystack() -> None:
    facts = needle_facts()
    assert len({q for _, q in facts}) == len(facts) >= 100
    prose = haystack_sentences()
    assert len(prose) > 500 and all(s.endswith(".") for s in prose)


def test_registered_datasets_and_bad_input() -> None:
    data = embedlab.registry().create("dataset", "longembed-passkey", length=512, documents=10, queries=4)
    assert len(data.corpus) == 10 and len(data.queries) == 4 and data.metadata["length"] == 512
    with pytest.raises(ConfigError, match="queries must be an integer between 1 and 10"):
        passkey(512, documents=10, queries=11)
    with pytest.raises(ConfigError, match="length"):
        needle(16)
    with pytest.raises(ConfigError, match="documents"):
        needle(512, documents=1000)
    assert np.unique(passkey(256, documents=100).corpus.texts).size == 100
