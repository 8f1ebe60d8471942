"""Plumbing every reranker needs: texts of the ranked queries and documents, cached encoding,
reordering the head of a ranking and keeping the first stage's tail below it.

A reranker plugin writes only its scoring; for example::

    head = ranking.truncate(k)
    scores = my_scores(query_texts(head, queries, "mine"), candidate_texts(head, corpus, "mine"))
    return reorder(ranking, scores, keep_tail=True)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from embedlab.cache import EmbeddingCache, texts_hash
from embedlab.dataset import Corpus, Queries
from embedlab.embeddings import EmbeddingKind, Embeddings
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.ranking import Ranking


def encoder_params(value: Any) -> dict[str, Any]:
    """attrs converter for a reranker's ``encoder_params`` table: a mapping with string keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"encoder_params must be a mapping with string keys, got {value!r}")
    return dict(value)


def dense_encoder(owner: str, name: str, params: Mapping[str, Any]) -> Any:
    """The installed encoder ``name`` built with ``params``, for a reranker that embeds texts itself;
    a ``ConfigError`` unless it produces dense vectors."""
    import embedlab

    encoder = embedlab.create("encoder", name, **params)
    if encoder.output_kind != EmbeddingKind.DENSE:
        raise ConfigError(f"{owner}: encoder {name!r} gives {encoder.output_kind.value} embeddings; "
                          f"{owner} needs a dense encoder")
    return encoder


def query_texts(ranking: Ranking, queries: Queries, owner: str) -> list[str]:
    """Text of every ranked query, in ranking order; unknown query ids raise ``InvalidInputError``."""
    position = {q: i for i, q in enumerate(queries.ids.tolist())}
    unknown = [q for q in ranking.query_ids.tolist() if q not in position]
    if unknown:
        raise InvalidInputError(f"{owner}: {len(unknown)} ranked query id(s) are not in the queries, "
                                f"e.g. {unknown[:5]}")
    return [queries.texts[position[q]] for q in ranking.query_ids.tolist()]


def document_positions(doc_ids: np.ndarray, corpus: Corpus, owner: str) -> np.ndarray:
    """Corpus positions of ranked document ids (same shape; ``""`` padding gives -1).

    Ids missing from the corpus raise ``InvalidInputError``: the ranking came from another corpus.
    """
    ids = np.asarray(doc_ids)
    position = corpus.position
    unknown = sorted({d for d in ids[ids != ""].tolist() if d not in position})
    if unknown:
        raise InvalidInputError(f"{owner}: {len(unknown)} ranked document id(s) are not in the corpus, "
                                f"e.g. {unknown[:5]}; rerank with the corpus the first stage searched")
    flat = [position.get(d, -1) for d in ids.ravel().tolist()]
    return np.asarray(flat, dtype=np.int64).reshape(ids.shape)


def encode_cached(encoder: object, role: str, texts: Sequence[str], cache: EmbeddingCache | None) -> Embeddings:
    """``encoder.encode_queries``/``encode_documents`` (``role`` ``"queries"``/``"documents"``),
    through the on-disk cache when one is given (keyed by encoder fingerprint, role and texts)."""
    if role not in ("queries", "documents"):
        raise ValueError(f"role must be 'queries' or 'documents', got {role!r}")
    method = encoder.encode_queries if role == "queries" else encoder.encode_documents
    texts = list(texts)
    if cache is None:
        return method(texts)
    key = cache.key(encoder, role, texts_hash(texts))
    return cache.get_or_compute(key, lambda: method(texts)).embeddings


def reorder(ranking: Ranking, scores: np.ndarray, keep_tail: bool = True) -> Ranking:
    """Sort the first ``scores.shape[1]`` documents of each query by ``scores`` (descending, stable;
    ``-inf`` for padding). With ``keep_tail`` the documents below that depth follow in their
    original order, scored strictly below every reranked one, so deeper recall is unchanged."""
    scores = np.asarray(scores, dtype=np.float32)
    k = scores.shape[1]
    if scores.shape[0] != len(ranking) or k > ranking.k:
        raise InvalidInputError(f"scores of shape {scores.shape} do not fit a ranking of "
                                f"{len(ranking)} queries x {ranking.k} documents")
    doc_ids = ranking.doc_ids[:, :k]
    scores = np.where(doc_ids != "", scores, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")
    head = Ranking(ranking.query_ids, np.take_along_axis(doc_ids, order, axis=1),
                   np.take_along_axis(scores, order, axis=1))
    return append_tail(head, ranking) if keep_tail else head


def append_tail(head: Ranking, ranking: Ranking) -> Ranking:
    """``head`` (the reranked top k) followed by the rest of ``ranking``, scored strictly below it."""
    tail_ids = ranking.doc_ids[:, head.k:]
    if tail_ids.shape[1] == 0:
        return head
    finite = np.where(np.isfinite(head.scores), head.scores, np.inf)
    floor = np.min(finite, axis=1, keepdims=True)
    floor = np.where(np.isfinite(floor), floor, 0.0)
    tail_scores = floor - 1.0 - np.arange(tail_ids.shape[1])[None, :]
    tail_scores = np.where(tail_ids != "", tail_scores, -np.inf)
    return Ranking(head.query_ids, np.concatenate([head.doc_ids, tail_ids], axis=1),
                   np.concatenate([head.scores, tail_scores], axis=1))
