"""The limit-small loader and the limit-generated generator."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from embedlab_limit.generator import limit_generated
from embedlab_limit.limit_small import ENV_VAR, limit_small

import embedlab
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.experiment import load_config


def liked_items(text: str) -> set[str]:
    """Parse "<Name> likes A, B and C." into {A, B, C} (works for LIMIT-small and the generator)."""
    body = re.match(r"^.*? likes (.*)\.$", text).group(1)
    head, _, last = body.rpartition(" and ")
    return {*head.split(", "), last} if head else {last}


def attribute_of(query: str) -> str:
    return re.match(r"^Who likes (.*)\?$", query).group(1)


def likers(dataset) -> dict[str, set[str]]:
    """Query id -> the documents whose text mentions the query's attribute."""
    items = {doc: liked_items(text) for doc, text in zip(dataset.corpus.ids.tolist(), dataset.corpus.texts)}
    return {qid: {doc for doc, liked in items.items() if attribute_of(text) in liked}
            for qid, text in zip(dataset.queries.ids.tolist(), dataset.queries.texts)}


# --- limit-small ---------------------------------------------------------------------------------

def test_limit_small_is_registered_and_has_the_published_counts():
    dataset = embedlab.load_dataset("limit-small")
    assert dataset.name == "limit-small"
    assert (len(dataset.corpus), len(dataset.queries)) == (46, 1000)
    qrels = dataset.qrels["test"]
    assert len(qrels) == 1000 and sum(map(len, qrels.values())) == 2000
    assert all(len(judged) == 2 for judged in qrels.values())
    assert all(" " not in doc for doc in dataset.corpus.ids.tolist())  # TREC-safe ids
    split = dataset.split("test")
    assert len(split.queries) == 1000


def test_limit_small_qrels_are_exactly_the_people_who_like_the_attribute():
    dataset = limit_small()
    relevant = {q: set(judged) for q, judged in dataset.qrels["test"].items()}
    assert likers(dataset) == relevant
    assert {len(liked_items(text)) for text in dataset.corpus.texts} == {45}


def test_limit_small_path_and_environment_override(limit_small_dir, tmp_path, monkeypatch):
    assert len(limit_small(path=limit_small_dir).corpus) == 46
    monkeypatch.setenv(ENV_VAR, str(limit_small_dir))
    assert len(limit_small().queries) == 1000
    with pytest.raises(InvalidInputError, match=ENV_VAR) as error:
        limit_small(path=tmp_path)
    assert str(tmp_path) in str(error.value)


# --- limit-generated -----------------------------------------------------------------------------

def test_generator_counts_and_shape_of_limit_small():
    dataset = embedlab.load_dataset("limit-generated", queries=1000)
    assert (len(dataset.corpus), len(dataset.queries)) == (46, 1000)
    qrels = dataset.qrels["test"]
    assert sum(map(len, qrels.values())) == 2000
    assert {len(liked_items(text)) for text in dataset.corpus.texts} == {45}
    everyone = limit_generated(documents=12, distractors=5, items_per_document=20, seed=3)
    assert len(everyone.corpus) == 17 and len(everyone.queries) == math.comb(12, 2)
    assert int(everyone.corpus.attributes["distractor"].sum()) == 5
    triples = limit_generated(documents=8, k=3, items_per_document=30)
    assert len(triples.queries) == math.comb(8, 3)
    assert all(len(judged) == 3 for judged in triples.qrels["test"].values())


@pytest.mark.parametrize("params", [dict(documents=12, distractors=4, items_per_document=15, seed=1),
                                    dict(documents=9, k=3, items_per_document=40, seed=2),
                                    dict(documents=20, queries=50, items_per_document=5, seed=0)])
def test_generated_qrels_are_exactly_the_documents_that_like_the_attribute(params):
    dataset = limit_generated(**params)
    relevant = {q: set(judged) for q, judged in dataset.qrels["test"].items()}
    assert likers(dataset) == relevant
    subsets = sorted(tuple(sorted(judged)) for judged in relevant.values())
    assert len(set(subsets)) == len(subsets)  # every query a different k-subset
    lengths = [len(liked_items(text)) for text in dataset.corpus.texts]
    assert min(lengths) >= params["items_per_document"]


def test_generator_is_deterministic_per_seed():
    first, again, other = (limit_generated(documents=15, seed=s) for s in (7, 7, 8))
    assert first.corpus.ids.tolist() == again.corpus.ids.tolist()
    assert first.corpus.texts == again.corpus.texts and first.queries.texts == again.queries.texts
    assert first.qrels == again.qrels
    assert first.corpus.texts != other.corpus.texts


def test_generator_custom_vocabulary_list_and_file(tmp_path):
    words = [f"Thing {i}" for i in range(40)]
    from_list = limit_generated(documents=6, items_per_document=8, attributes=words)
    file = tmp_path / "words.txt"
    file.write_text("\n".join(words) + "\n\n")
    from_file = limit_generated(documents=6, items_per_document=8, attributes=str(file))
    assert from_list.queries.texts == from_file.queries.texts
    assert {attribute_of(q) for q in from_list.queries.texts} <= set(words)


def test_generator_rejects_more_combinations_than_attributes():
    with pytest.raises(ConfigError, match=r"19900 queries .* vocabulary has 15200"):
        limit_generated(documents=200)
    with pytest.raises(ConfigError, match="vocabulary has 5"):
        limit_generated(documents=4, attributes=["a", "b", "c", "d", "e"])
    with pytest.raises(ConfigError, match="at most 45 queries"):
        limit_generated(documents=10, queries=46)
    with pytest.raises(ConfigError, match="filler attributes"):
        limit_generated(documents=4, items_per_document=10, attributes=[f"w{i}" for i in range(8)])
    with pytest.raises(ConfigError, match="distinct"):
        limit_generated(documents=3, attributes=["a", "a", "b", "c"])
    with pytest.raises(ConfigError, match="documents must be an integer"):
        limit_generated(documents=0)


@pytest.mark.parametrize("name, dataset", [("limit-small.toml", "limit-small"),
                                           ("limit-generated.toml", "limit-generated")])
def test_experiment_files_parse(name, dataset):
    config = load_config(Path(__file__).resolve().parents[1] / "experiments" / name)
    assert config.dataset["name"] == dataset and config.baseline == "bm25"
    assert [p.encoder["name"] for p in config.pipelines] == ["bm25", "minilm"]
    assert config.metrics == ("R@2", "R@10", "R@20")


def test_generator_vocabulary_file_with_a_byte_order_mark_or_not_text(tmp_path):
    words = [f"Thing {i}" for i in range(40)]
    file = tmp_path / "words.txt"
    file.write_bytes("\ufeff".encode() + "\n".join(words).encode("utf-8"))
    from_file = limit_generated(documents=6, items_per_document=8, attributes=str(file))
    assert from_file.queries.texts == limit_generated(documents=6, items_per_document=8, attributes=words).queries.texts
    file.write_bytes(b"Thing \xff\n" + "\n".join(words).encode("utf-8"))
    with pytest.raises(ConfigError, match="words.txt is not UTF-8 text"):
        limit_generated(documents=6, items_per_document=8, attributes=str(file))
