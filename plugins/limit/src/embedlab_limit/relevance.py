"""Relevance patterns of the LIMIT setting: every query relevant to one k-subset of the documents."""

from __future__ import annotations

import itertools
import math

import numpy as np

from embedlab.errors import ConfigError


def combination_count(documents: int, k: int) -> int:
    """C(documents, k): how many distinct k-subsets (queries) ``documents`` allow."""
    return math.comb(documents, k)


def combination_relevance(documents: int, k: int = 2, queries: int | None = None) -> np.ndarray:
    """Boolean ``(queries, documents)`` matrix whose rows are the first ``queries`` k-subsets of
    ``range(documents)`` in lexicographic order (all C(documents, k) when ``queries`` is None).

    This is LIMIT's "dense" pattern (``generate_dense_qrel_matrix`` / ``create_combinatorial_qrels``).
    """
    if documents < 1 or k < 1:
        raise ConfigError(f"need documents >= 1 and k >= 1, got documents={documents}, k={k}")
    if k > documents:
        raise ConfigError(f"k={k} relevant documents per query need at least {k} documents, got {documents}")
    total = combination_count(documents, k)
    count = total if queries is None else queries
    if count < 1 or count > total:
        raise ConfigError(f"{documents} documents give C({documents},{k}) = {total} distinct {k}-subsets; "
                          f"cannot build {count} queries (pass queries between 1 and {total}, or more documents)")
    matrix = np.zeros((count, documents), dtype=bool)
    for row, subset in enumerate(itertools.islice(itertools.combinations(range(documents), k), count)):
        matrix[row, list(subset)] = True
    return matrix
