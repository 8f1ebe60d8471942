"""What a pipeline hands a component that learns from judged queries.

Components with the :class:`embedlab.protocols.LearnsFromQueries` capability are trained by the
pipeline on a *training* split (never the evaluated one), given in Python as
``pipeline.build(corpus, train=dataset.split("train"))`` or in an experiment file as
``[dataset] train_split = "train"``. Each stage receives what exists when it is trained: an
encoder gets the corpus and the split; a compressor also the pipeline encoder's vectors of the
documents and training queries; a reranker also the first stage's ranking of the training queries.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import attrs
import numpy as np

from embedlab.dataset import Corpus, Split
from embedlab.embeddings import Embeddings
from embedlab.errors import InvalidInputError
from embedlab.ranking import Ranking

T = TypeVar("T", bound=Sequence)


@attrs.frozen(eq=False)
class TrainingData:
    """A training split (queries + qrels) over ``corpus``, and the earlier stages' outputs."""

    corpus: Corpus
    split: Split
    #: The pipeline encoder's vectors of ``split.queries`` (row i = query i); compressor and reranker stages.
    query_vectors: Embeddings | None = None
    #: The pipeline encoder's vectors of the corpus documents, in corpus order; same stages.
    document_vectors: Embeddings | None = None
    #: The pipeline's ranking of ``split.queries`` before reranking; reranker stage only.
    first_stage: Ranking | None = None

    def __attrs_post_init__(self) -> None:
        if not any(self.split.qrels.get(q) for q in self.split.queries.ids.tolist()):
            raise InvalidInputError(f"training split {self.split.name!r} has no judged queries (no qrels); "
                                    "train on a split with relevance judgments")

    def relevant_positions(self, min_grade: int = 1) -> list[np.ndarray]:
        """Per training query (in ``split.queries`` order), the corpus positions of the documents
        judged at least ``min_grade``; documents missing from the corpus are skipped."""
        position = self.corpus.position
        return [np.asarray(sorted(position[d] for d, grade in self.split.qrels.get(q, {}).items()
                                  if grade >= min_grade and d in position), dtype=np.int64)
                for q in self.split.queries.ids.tolist()]


def holdout_split(order: T, fraction: float) -> tuple[T, T]:
    """Split rows that are already shuffled (a seeded permutation, numpy or torch) into (train,
    held-out): the first ``round(n * fraction)`` rows are held out. When that is none or all of
    them, every row serves as both, so training and early stopping still see data."""
    held = int(round(len(order) * fraction))
    if held == 0 or held == len(order):
        return order, order
    return order[held:], order[:held]
