"""Training examples: one (query, positive) pair per judged-relevant document, over a corpus, and
the seeded batches a training epoch walks through."""

from __future__ import annotations

import functools
import hashlib
from typing import Sequence

import attrs
import numpy as np

from embedlab.dataset import Corpus, Queries
from embedlab.errors import InvalidInputError
from embedlab.training import TrainingData


@attrs.frozen(eq=False, slots=False)
class TrainingSet:
    """Queries, a corpus and one example per (query, relevant document) pair.

    ``query[e]`` / ``positive[e]``: query index and corpus position of example ``e``;
    ``judged[q]``: corpus positions judged relevant to query ``q`` (never used as its negatives).
    """

    queries: Queries
    corpus: Corpus
    query: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=np.int64))
    positive: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=np.int64))
    judged: tuple[frozenset[int], ...] = attrs.field(converter=lambda j: tuple(frozenset(s) for s in j))
    #: ``(n_examples,)`` qrels grade of each pair (1 for plain pairs): for graded losses (CoSENT).
    grade: np.ndarray | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.grade is None:
            object.__setattr__(self, "grade", np.ones(len(self.query), dtype=np.int64))
        object.__setattr__(self, "grade", np.asarray(self.grade, dtype=np.int64))
        if len(self.query) != len(self.positive) or len(self.grade) != len(self.query):
            raise InvalidInputError("training set: query, positive and grade must have one entry per example")
        if len(self.queries) != len(self.judged):
            raise InvalidInputError("training set: one judged set per query")

    def __len__(self) -> int:
        return int(self.query.size)

    @classmethod
    def from_training_data(cls, data: TrainingData, min_grade: int = 1) -> TrainingSet:
        """Every (query, document judged >= ``min_grade``) pair of a pipeline's training split."""
        relevant = data.relevant_positions(min_grade)
        if not any(len(r) for r in relevant):
            raise InvalidInputError(f"training split {data.split.name!r} has no document judged >= {min_grade} "
                                    "in the corpus (no positives to train on)")
        query = np.concatenate([np.full(len(r), q, dtype=np.int64) for q, r in enumerate(relevant)])
        positive = np.concatenate([r for r in relevant])
        qrels, ids, doc_ids = data.split.qrels, data.split.queries.ids, data.corpus.ids
        grade = [qrels[ids[q]][doc_ids[p]] for q, p in zip(query.tolist(), positive.tolist())]
        return cls(data.split.queries, data.corpus, query, positive, [set(r.tolist()) for r in relevant], grade)

    @classmethod
    def from_pairs(cls, queries: Sequence[str], documents: Sequence[str],
                   pairs: Sequence[tuple[int, int]]) -> TrainingSet:
        """Examples from ``(query index, document index)`` pairs (the Python API for plain pairs)."""
        if not pairs:
            raise InvalidInputError("training set: no (query, positive) pairs")
        array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if array.min() < 0 or array[:, 0].max() >= len(queries) or array[:, 1].max() >= len(documents):
            raise InvalidInputError(f"training set: a pair indexes outside the {len(queries)} queries / "
                                    f"{len(documents)} documents")
        judged = [set() for _ in queries]
        for q, d in array.tolist():
            judged[q].add(d)
        return cls(Queries([f"q{i}" for i in range(len(queries))], queries),
                   Corpus([f"d{i}" for i in range(len(documents))], documents), array[:, 0], array[:, 1], judged)

    @property
    def content_hash(self) -> str:
        """sha256 of the queries, documents and examples: part of a training run's identity."""
        digest = hashlib.sha256()
        digest.update(self.queries.content_hash.encode())
        digest.update(self.corpus.content_hash.encode())
        digest.update(np.ascontiguousarray(self.query).tobytes())
        digest.update(np.ascontiguousarray(self.positive).tobytes())
        return digest.hexdigest()

    def select(self, examples: np.ndarray) -> TrainingSet:
        """The examples at ``examples`` (indices or a boolean mask); queries and corpus unchanged."""
        return attrs.evolve(self, query=self.query[examples], positive=self.positive[examples],
                            grade=self.grade[examples])

    def for_queries(self, queries: np.ndarray) -> TrainingSet:
        """The examples of the queries in ``queries`` (query indices)."""
        return self.select(np.isin(self.query, queries))

    def sample_queries(self, count: int | None, seed: int) -> TrainingSet:
        """The examples of a seeded sample of ``count`` of the queries that have examples (all of
        them when ``count`` is None or not smaller): a fixed training budget on a large split."""
        queries = np.unique(self.query)
        if count is None or count >= len(queries):
            return self
        return self.for_queries(np.random.default_rng([seed, 23]).choice(queries, count, replace=False))

    @property
    def query_texts(self) -> tuple[str, ...]:
        return self.queries.texts

    @functools.cached_property
    def documents(self) -> list[str]:
        """The text encoded per document (``corpus.documents()``)."""
        return self.corpus.documents()


def epoch_batches(data: TrainingSet, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Example indices of each batch of ``epoch``: a permutation seeded by ``(seed, epoch)`` (so a
    resumed run sees the same batches), packed greedily so that no batch holds two examples of the
    same query or the same positive document (sentence-transformers' ``NO_DUPLICATES``); an example
    that fits no open batch starts a new one."""
    return pack_batches(data, np.random.default_rng([seed, epoch]).permutation(len(data)), batch_size)


def pack_batches(data: TrainingSet, order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The examples ``order`` packed greedily, in that order, into batches of at most
    ``batch_size`` without two examples of the same query or positive document (each goes to the
    first open batch it fits; :func:`epoch_batches` packs a seeded permutation)."""
    batches: list[list[int]] = []
    seen: list[tuple[set[int], set[int]]] = []
    open_from = 0
    for example in order.tolist():
        q, p = int(data.query[example]), int(data.positive[example])
        for b in range(open_from, len(batches)):
            queries, positives = seen[b]
            if len(batches[b]) < batch_size and q not in queries and p not in positives:
                break
        else:
            batches.append([])
            seen.append((set(), set()))
            b = len(batches) - 1
        batches[b].append(example)
        seen[b][0].add(q)
        seen[b][1].add(p)
        while open_from < len(batches) and len(batches[open_from]) >= batch_size:
            open_from += 1
    return [np.asarray(b, dtype=np.int64) for b in batches]
