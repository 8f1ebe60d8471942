"""Document identifiers as token sequences: DSI's atomic, naive-string and semantically structured ids.

Every scheme gives each corpus position a tuple of small integers (the tokens the decoder emits)
and is **prefix-free**: no document's id is a prefix of another's, so a complete path through
the :class:`~embedlab_dsi.trie.DocidTrie` names exactly one document.

* ``atomic``: one token per document (the decoder's output layer has a row per document).
* ``naive``: the position written in base ``base`` (10, as DSI's decimal strings), zero-padded to
  one width so the ids stay prefix-free.
* ``semantic``: hierarchical k-means over document vectors (DSI section 3.2, NCI's ``kmeans.py``):
  cluster into ``k`` groups, re-cluster every group larger than ``c``; a group of at most ``c``
  documents is a leaf and each of its documents gets its rank within the leaf as the last token.
  Documents whose vectors are close share long prefixes.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import attrs
import numpy as np

from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError
from embedlab.pq import kmeans

SCHEMES = ("semantic", "naive", "atomic")


@attrs.frozen(eq=False)
class Docids:
    """``codes[p]``: the token tuple of corpus position ``p``; ``vocab``: tokens are ``0..vocab-1``."""

    codes: tuple[tuple[int, ...], ...]
    vocab: int
    scheme: str

    def __attrs_post_init__(self) -> None:
        if not self.codes:
            raise InvalidInputError("docids: no documents")
        if len(set(self.codes)) != len(self.codes):
            raise InvalidInputError("docids: two documents share an id")
        if any(not code for code in self.codes):
            raise InvalidInputError("docids: an id is empty")
        if max(max(code) for code in self.codes) >= self.vocab or min(min(code) for code in self.codes) < 0:
            raise InvalidInputError(f"docids: a token is outside 0..{self.vocab - 1}")

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def max_length(self) -> int:
        return max(len(code) for code in self.codes)

    def strings(self) -> list[str]:
        """The ids as DSI writes them (``"3-7-42"``)."""
        return ["-".join(map(str, code)) for code in self.codes]

    def as_arrays(self) -> dict[str, np.ndarray]:
        """``codes`` (``(n, max_length)``, -1 padded) for a state directory."""
        padded = np.full((len(self.codes), self.max_length), -1, dtype=np.int64)
        for row, code in enumerate(self.codes):
            padded[row, :len(code)] = code
        return {"codes": padded}

    @classmethod
    def from_arrays(cls, codes: np.ndarray, vocab: int, scheme: str) -> Docids:
        return cls(tuple(tuple(int(t) for t in row if t >= 0) for row in np.asarray(codes).tolist()), vocab, scheme)


def atomic_ids(n: int) -> Docids:
    """One token per document."""
    _check_count(n)
    return Docids(tuple((p,) for p in range(n)), n, "atomic")


def naive_ids(n: int, base: int = 10) -> Docids:
    """The position in base ``base``, zero-padded to the width of the largest one."""
    _check_count(n)
    if base < 2:
        raise InvalidInputError(f"naive docids: base must be >= 2, got {base}")
    width = max(1, math.ceil(math.log(n, base))) if n > 1 else 1
    while base ** width < n:  # floating-point log at exact powers
        width += 1
    codes = []
    for p in range(n):
        digits = []
        for _ in range(width):
            p, digit = divmod(p, base)
            digits.append(digit)
        codes.append(tuple(reversed(digits)))
    return Docids(tuple(codes), base, "naive")


def semantic_ids(vectors: object, k: int = 10, c: int = 100, *, seed: int = 0, iterations: int = 25) -> Docids:
    """Hierarchical k-means ids over ``vectors`` (``(n, d)``, one row per corpus position)."""
    x = as_dense(vectors, name="semantic docids: document vectors")
    _check_count(len(x))
    if k < 2 or c < 1:
        raise InvalidInputError(f"semantic docids: need k >= 2 and c >= 1, got k={k}, c={c}")
    codes: list[tuple[int, ...]] = [()] * len(x)
    _cluster(x, np.arange(len(x)), (), k, c, seed, iterations, codes)
    return Docids(tuple(codes), max(k, c), "semantic")


def _cluster(x: np.ndarray, members: np.ndarray, prefix: tuple[int, ...], k: int, c: int, seed: int,
             iterations: int, codes: list[tuple[int, ...]]) -> None:
    if len(members) <= c:
        for rank, p in enumerate(members.tolist()):
            codes[p] = (*prefix, rank)
        return
    groups = _split(x[members], k, seed + len(prefix), iterations)
    for digit, group in enumerate(groups):
        _cluster(x, members[group], (*prefix, digit), k, c, seed, iterations, codes)


def _split(x: np.ndarray, k: int, seed: int, iterations: int) -> list[np.ndarray]:
    """Row indices of each non-empty k-means cluster of ``x`` (largest first is not needed: the
    cluster order is k-means'). Identical vectors that k-means cannot separate are split into
    ``k`` equal runs, so the recursion always shrinks."""
    if np.all(x == x[0]):
        return [g for g in np.array_split(np.arange(len(x)), k) if len(g)]
    with warnings.catch_warnings():  # empty clusters are dropped below
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        centroids = kmeans(x, min(k, len(x)), seed=seed, iterations=iterations)
    nearest = np.argmax(x @ centroids.T - 0.5 * np.sum(centroids ** 2, axis=1), axis=1)
    groups = [np.flatnonzero(nearest == j) for j in range(len(centroids))]
    groups = [g for g in groups if len(g)]
    if len(groups) < 2:
        groups = [g for g in np.array_split(np.arange(len(x)), k) if len(g)]
    return groups


def _check_count(n: int) -> None:
    if n < 1:
        raise InvalidInputError("docids: the corpus is empty")


def make_docids(scheme: str, n: int, vectors: object = None, *, k: int = 10, c: int = 100, base: int = 10,
                seed: int = 0) -> Docids:
    """Ids of ``n`` documents by ``scheme`` (``vectors`` needed for ``semantic``)."""
    if scheme == "atomic":
        return atomic_ids(n)
    if scheme == "naive":
        return naive_ids(n, base)
    if scheme == "semantic":
        if vectors is None:
            raise InvalidInputError("semantic docids need document vectors")
        return semantic_ids(vectors, k, c, seed=seed)
    raise InvalidInputError(f"unknown docid scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two ids."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
