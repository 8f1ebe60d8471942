"""The generated multi-aspect task: labels, splits, exclusions, paraphrases, bad parameters."""

from __future__ import annotations

import pytest
from embedlab_aspects import ASPECTS, people
from embedlab_aspects.people import VALUES

import embedlab
from embedlab.errors import ConfigError


def test_relevance_is_sharing_the_aspect_value_inside_a_fold(task):
    labels, fold = task.corpus.attributes, task.corpus.attributes["fold"]
    position = task.corpus.position
    for split in ("train", "test"):
        for qid, judged in task.qrels[split].items():
            doc, aspect = qid.split("@")
            i = position[doc]
            assert fold[i] == split
            expected = {task.corpus.ids[j] for j in range(len(task.corpus))
                        if fold[j] == split and labels[aspect][j] == labels[aspect][i]
                        and (split == "train" or j != i)}
            assert set(judged) == expected
    test = task.split("test-city")
    assert all(q.endswith("@city") for q in test.queries.ids.tolist())
    assert all(t.startswith("city: ") for t in test.queries.texts)
    train_docs = {task.corpus.ids[j] for j in range(len(task.corpus)) if fold[j] == "train"}
    for qid, banned in test.exclude.items():
        assert set(banned) == train_docs | {qid.split("@")[0]}


def test_every_document_says_each_aspect_in_one_of_its_surface_forms(task):
    for i, text in enumerate(task.corpus.texts):
        for aspect in ASPECTS:
            value = task.corpus.attributes[aspect][i]
            assert any(form in text for form in VALUES[aspect][value])
    used = {form for text in task.corpus.texts for form in VALUES["city"]["paris"] if form in text}
    assert len(used) >= 2  # paraphrased, not one fixed string per value


def test_seeded_and_registered():
    a, b = people(documents=30, seed=4), people(documents=30, seed=4)
    assert a.corpus.texts == b.corpus.texts and a.qrels == b.qrels
    assert people(documents=30, seed=5).corpus.texts != a.corpus.texts
    assert embedlab.registry().create("dataset", "aspects-people", documents=30, seed=4).corpus.texts == a.corpus.texts
    fold = a.corpus.attributes["fold"]
    assert (fold == "train").sum() == 21


@pytest.mark.parametrize("params", [{"documents": 5}, {"documents": True}, {"train_fraction": 1.0},
                                    {"train_fraction": 0}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ConfigError, match="aspects-people"):
        people(**params)
