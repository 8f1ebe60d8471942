"""Leakage control between a training split and an evaluation split that share a corpus.

SciFact's train and test claims share relevant abstracts (196 of the 300 test claims have a relevant
abstract that some training claim also has), so a method trained on train can score on test by
remembering documents. Every benchmark of a learned method reports the *unseen* subset too, with
this one definition: the evaluation queries that have at least one relevant document and none of
whose relevant documents is relevant to any training query.
"""

from __future__ import annotations

import attrs

from embedlab.dataset import Dataset, Qrels, Split
from embedlab.errors import InvalidInputError


def relevant_documents(qrels: Qrels) -> set[str]:
    """Ids of the documents judged relevant (grade > 0) to at least one query of ``qrels``."""
    return {doc for judged in qrels.values() for doc, grade in judged.items() if grade > 0}


def unseen_qrels(qrels: Qrels, seen: Qrels) -> dict[str, dict[str, int]]:
    """The part of ``qrels`` whose queries have a relevant document and share none with ``seen``.

    ``seen`` holds the training split's judgments; the result keeps each kept query's full
    judgments (non-relevant grades included), in the order of ``qrels``."""
    known = relevant_documents(seen)
    kept: dict[str, dict[str, int]] = {}
    for query, judged in qrels.items():
        relevant = {doc for doc, grade in judged.items() if grade > 0}
        if relevant and not relevant & known:
            kept[str(query)] = {str(doc): int(grade) for doc, grade in judged.items()}
    return kept


@attrs.frozen
class Overlap:
    """How an evaluation split relates to a training split (see :func:`overlap`)."""

    split: str
    seen_by: str
    queries: int  # evaluation queries with at least one relevant document
    unseen: int  # of those, the ones sharing no relevant document with the training split

    @property
    def shared(self) -> int:
        return self.queries - self.unseen

    def __str__(self) -> str:
        return (f"{self.split}: {self.shared} of {self.queries} queries share a relevant document with "
                f"{self.seen_by}; {self.unseen} unseen")


def unseen_split(dataset: Dataset, split: str = "test", seen_by: str = "train") -> Split:
    """The queries of ``split`` none of whose relevant documents is relevant to a ``seen_by`` query.

    The result is named ``"<split>-unseen"``. When every query shares a document the function
    raises :class:`InvalidInputError` instead of returning a split with no query to evaluate."""
    evaluated, training = dataset.split(split), dataset.split(seen_by)
    qrels = unseen_qrels(evaluated.qrels, training.qrels)
    if not qrels:
        raise InvalidInputError(f"dataset {dataset.name!r}: every query of split {split!r} shares a relevant "
                                f"document with split {seen_by!r}; there is no unseen subset to evaluate")
    return Split(f"{split}-unseen", evaluated.queries.select(list(qrels)), qrels)


def overlap(dataset: Dataset, split: str = "test", seen_by: str = "train") -> Overlap:
    """Count the queries of ``split`` that share a relevant document with ``seen_by``."""
    evaluated, training = dataset.split(split), dataset.split(seen_by)
    with_relevant = sum(1 for judged in evaluated.qrels.values() if any(g > 0 for g in judged.values()))
    return Overlap(split, seen_by, with_relevant, len(unseen_qrels(evaluated.qrels, training.qrels)))
