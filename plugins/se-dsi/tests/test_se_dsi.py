"""SE-DSI on top of dsi: extractive elaborative-description ids and rehearsal contents."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_dsi.descriptions import TermWeights, words
from embedlab_dsi.testing import tiny_settings
from embedlab_se_dsi import SEDSIRetriever, description_ids
from embedlab_train.head_fixtures import private_cache  # noqa: F401 (autouse: a temporary embedlab cache)
from embedlab_train.testing import tiny_bert, topics_dataset

import embedlab
from embedlab.dataset import Queries


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> dict:
    return tiny_settings(tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden=48), epochs=60)


def test_key_terms_and_sentences_follow_tf_idf():
    docs = ["The parser reads json. The parser is fast.", "The socket sends bytes. Sockets close.",
            "The parser writes xml."]
    weights = TermWeights.fit(docs)
    assert words("Parse_JSON now 42 x") == ["parse_json", "now"]
    # idf ties broken by first occurrence; "parser" (tf 2, in 2 of 3 documents) after the rarer words;
    # "the" is in every document (idf 0)
    assert weights.key_terms(docs[0], 5) == ["reads", "json", "fast", "parser", "the"]
    assert weights.key_sentences(docs[1], 1) == ["Sockets close."]
    assert weights.key_sentences(docs[0], 5) == ["The parser reads json.", "The parser is fast."]


def test_description_ids_are_unique_prefix_free_words_plus_a_rank():
    ids, vocabulary = description_ids([["json", "parse"], ["json", "parse"], ["socket"]])
    assert vocabulary == ["<none>", "json", "parse", "socket"]
    assert ids.codes == ((1, 2, 4), (1, 2, 5), (3, 0, 4)) and ids.vocab == 6
    with pytest.raises(embedlab.InvalidInputError):
        description_ids([])


def test_se_dsi_memorises_description_ids_from_rehearsal_contents(params):
    topics = topics_dataset()
    se = embedlab.create("retriever", "se-dsi", **params)
    se.build(topics.corpus)
    record = se.training_record
    assert record["examples"]["index"] == 48 and record["examples"]["terms"] == 48
    assert record["examples"]["sentence"] >= 48  # at least one key sentence per document
    # the id spells the document's rarest words
    assert se.describe_id(0) == "json text parse #0" and se.describe_id(1) == "json text parse #1"
    ids = topics.corpus.ids.tolist()
    found = se.search(Queries([f"s{d}" for d in ids], topics.corpus.documents()), k=1)
    assert np.mean(found.doc_ids[:, 0] == np.asarray(ids)) >= 0.9
    with pytest.raises(embedlab.ConfigError, match="rehearsal"):
        SEDSIRetriever(**params, rehearsal=["chapters"])
    plain = SEDSIRetriever(**{**params, "epochs": 1}, docids="naive", rehearsal="passage")
    plain.build(topics.corpus)
    assert plain.training_record["examples"] == {"index": 48} and plain.docids.scheme == "naive"
