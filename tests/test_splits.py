"""The unseen subset: evaluation queries sharing no relevant document with the training split."""

from __future__ import annotations

import pytest

from embedlab import Corpus, Dataset, InvalidInputError, Queries
from embedlab.splits import overlap, relevant_documents, unseen_qrels, unseen_split


def dataset(test_qrels: dict) -> Dataset:
    corpus = Corpus([f"d{i}" for i in range(6)], [f"text {i}" for i in range(6)])
    queries = Queries([f"q{i}" for i in range(8)], [f"query {i}" for i in range(8)])
    train = {"q0": {"d0": 1, "d5": 0}, "q1": {"d1": 2}}
    return Dataset("toy", corpus, queries, {"train": train, "test": test_qrels})


def test_only_relevant_grades_count_as_seen() -> None:
    assert relevant_documents({"a": {"x": 1, "y": 0, "z": -1}, "b": {"w": 3}}) == {"x", "w"}


def test_unseen_subset_keeps_queries_whose_relevant_documents_training_never_saw() -> None:
    test = {"q2": {"d0": 1},              # shares d0 with q0
            "q3": {"d2": 1, "d1": 1},     # one of two relevant documents seen
            "q4": {"d3": 1, "d0": 0},     # d0 only judged non-relevant here: unseen
            "q5": {"d5": 1},              # d5 judged non-relevant in training: unseen
            "q6": {"d4": 0}}              # no relevant document: not evaluable, left out
    data = dataset(test)
    assert unseen_qrels(test, data.qrels["train"]) == {"q4": {"d3": 1, "d0": 0}, "q5": {"d5": 1}}
    split = unseen_split(data)
    assert split.name == "test-unseen" and list(split.queries.ids) == ["q4", "q5"]
    assert split.queries.texts == ("query 4", "query 5") and split.qrels == {"q4": {"d3": 1, "d0": 0}, "q5": {"d5": 1}}
    counted = overlap(data)
    assert (counted.queries, counted.unseen, counted.shared) == (4, 2, 2)
    assert str(counted) == "test: 2 of 4 queries share a relevant document with train; 2 unseen"


def test_no_unseen_query_is_an_error_not_an_empty_split() -> None:
    with pytest.raises(InvalidInputError, match="every query of split 'test' shares"):
        unseen_split(dataset({"q2": {"d0": 1}, "q3": {"d1": 1}}))
    with pytest.raises(InvalidInputError, match="no split 'dev'"):
        unseen_split(dataset({"q2": {"d3": 1}}), seen_by="dev")
