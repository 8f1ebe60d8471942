"""EmbedLens's probe and token triage, in numpy.

EmbedLens (official code ``EIT-NLP/EmbedLens``: ``semantic_identification.ipynb`` and
``find_useless_tokens`` of ``llava_llama_token_pruning.py``, read for the rules) probes every token
state by cosine similarity to the model's **input-embedding matrix**: a token whose nearest
vocabulary words are the word it stands for is *alive*; tokens that map to no meaningful word are
*dead*; a few tokens with abnormal norms that absorb attention are *sinks*. Dead and sink tokens
carry no content of their own and can be pruned; pruning alive tokens hurts.

For text token vectors (all-MiniLM-L6-v2's last layer) the classes are decided per token:

* ``sink``: one of its ``top_k`` nearest vocabulary entries is a special token (``[CLS]``...), or
  its log norm lies more than ``sink_norm_z`` robust standard deviations (1.4826 x MAD) above the
  median of its own text's tokens (the massive-activation rule; per text, so a text's classes never
  depend on the other texts of a batch);
* ``dead``: not a sink, and its nearest vocabulary entry is less similar than ``dead_below``
  (it maps to no word: punctuation and separators of MiniLM's last layer probe at ~0.2 to unrelated
  words, content tokens at 0.3-0.5 to themselves);
* ``alive``: the rest.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from embedlab.errors import InvalidInputError

ALIVE, DEAD, SINK = 0, 1, 2
CLASSES = {"alive": ALIVE, "dead": DEAD, "sink": SINK}
#: 1.4826 x MAD estimates the standard deviation of normal data.
MAD_SCALE = 1.4826


class VocabularyProbe:
    """Nearest vocabulary entries of vectors by cosine similarity (EmbedLens's probe).

    ``vocabulary`` ``(V, d)``: the input-embedding matrix; rows are L2-normalised once."""

    def __init__(self, vocabulary: np.ndarray, special_ids: Sequence[int] = (), *, chunk: int = 2048) -> None:
        matrix = np.asarray(vocabulary, dtype=np.float32)
        if matrix.ndim != 2 or not len(matrix) or not np.isfinite(matrix).all():
            raise InvalidInputError(f"embedlens: the vocabulary must be a finite non-empty (V, d) matrix, "
                                    f"got shape {matrix.shape}")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.vocabulary = matrix / np.where(norms > 0, norms, 1.0)
        self.special = np.zeros(len(matrix), dtype=bool)
        ids = np.asarray(list(special_ids), dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(matrix)):
            raise InvalidInputError(f"embedlens: special token ids must lie in [0, {len(matrix)})")
        self.special[ids] = True
        self.chunk = chunk

    @property
    def dim(self) -> int:
        return int(self.vocabulary.shape[1])

    def nearest(self, vectors: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, similarities)``, both ``(n, top_k)``, most similar first."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidInputError(f"embedlens: token vectors must have shape (n, {self.dim}), got {x.shape}")
        if not 1 <= top_k <= len(self.vocabulary):
            raise InvalidInputError(f"embedlens: top_k={top_k} must be in 1..{len(self.vocabulary)}")
        ids = np.zeros((len(x), top_k), dtype=np.int64)
        sims = np.zeros((len(x), top_k), dtype=np.float32)
        for start in range(0, len(x), self.chunk):
            block = x[start:start + self.chunk]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            scores = (block / np.where(norms > 0, norms, 1.0)) @ self.vocabulary.T
            ids[start:start + len(block)], sims[start:start + len(block)] = _top(scores, top_k)
        return ids, sims


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` (ids, values), largest first (``scores`` is overwritten): ``k`` passes of
    argmax for small ``k`` (far cheaper than a partition of 30k columns), a partition otherwise."""
    rows = np.arange(len(scores))
    if k <= 8:
        ids = np.zeros((len(scores), k), dtype=np.int64)
        values = np.zeros((len(scores), k), dtype=np.float32)
        for j in range(k):
            best = scores.argmax(axis=1)
            ids[:, j], values[:, j] = best, scores[rows, best]
            scores[rows, best] = -np.inf
        return ids, values
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    found = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-found, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(found, order, axis=1)


def norm_outliers(norms: np.ndarray, offsets: np.ndarray, z: float) -> np.ndarray:
    """Tokens whose log norm is more than ``z`` robust standard deviations above their text's median."""
    out = np.zeros(len(norms), dtype=bool)
    logs = np.log(np.maximum(norms, 1e-12))
    for start, end in zip(offsets[:-1], offsets[1:]):
        if end - start < 3:
            continue
        part = logs[start:end]
        median = np.median(part)
        spread = MAD_SCALE * np.median(np.abs(part - median))
        if spread > 0:
            out[start:end] = (part - median) / spread > z
    return out


def classify(ids: np.ndarray, sims: np.ndarray, special: np.ndarray, norms: np.ndarray, offsets: np.ndarray, *,
             dead_below: float, sink_norm_z: float | None) -> np.ndarray:
    """``(n,)`` int8 classes (:data:`ALIVE`, :data:`DEAD`, :data:`SINK`) from a probe's output."""
    labels = np.full(len(ids), ALIVE, dtype=np.int8)
    labels[sims[:, 0] < dead_below] = DEAD
    sink = special[ids].any(axis=1)
    if sink_norm_z is not None:
        sink |= norm_outliers(norms, offsets, sink_norm_z)
    labels[sink] = SINK
    return labels


def keep_mask(labels: np.ndarray, offsets: np.ndarray, drop: Sequence[int], policy: str, seed: int,
              min_tokens: int, priority: np.ndarray) -> np.ndarray:
    """Which tokens to keep. ``policy``: ``triage`` drops the classes in ``drop``; ``random`` drops
    as many tokens per text, uniformly at random (the equal-bytes control); ``alive`` drops as many
    alive tokens at random (EmbedLens's control: pruning alive tokens). Every text keeps at least
    ``min_tokens`` tokens (those of highest ``priority`` among the dropped ones are restored)."""
    dropped = np.isin(labels, np.asarray(list(drop), dtype=np.int8))
    keep = np.ones(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for start, end in zip(offsets[:-1], offsets[1:]):
        count = int(dropped[start:end].sum())
        if policy == "triage":
            keep[start:end] = ~dropped[start:end]
        elif count:
            pool = np.arange(start, end) if policy == "random" else start + np.flatnonzero(labels[start:end] == ALIVE)
            keep[rng.choice(pool, size=min(count, len(pool)), replace=False)] = False
        short = min(min_tokens, end - start) - int(keep[start:end].sum())
        if short > 0:
            lost = start + np.flatnonzero(~keep[start:end])
            keep[lost[np.argsort(-priority[lost], kind="stable")[:short]]] = True
    return keep
