"""``situated``: chunks encoded with their document's context (training-free SitEmb approximations).

The corpus holds chunks with two attribute columns: ``document`` (which document a chunk belongs
to) and ``position`` (its order there). ``mode`` says how a chunk is encoded:

* ``chunk``: alone (the baseline);
* ``prefix``: after the ``context`` chunks before it in its document, joined by spaces (all of
  them when ``context`` is None): "contextual retrieval" without a language model;
* ``late``: late chunking. The document's chunks are encoded together (in windows of whole chunks
  that fit the encoder) by the encoder's token vectors, and each chunk's vector is the mean of its
  own tokens' vectors, normalised: SitEmb's pooling over the chunk's span of a situated input
  (``pooling='ext'``), without SitEmb's trained model.

With ``residual`` (SitEmb's ``residual_factor``, 0.5 on its model card) a chunk's score is
``cos(q, chunk alone) + residual * cos(q, situated chunk)``: the two vectors are concatenated, the
second scaled by ``sqrt(residual)``, and searched by inner product. Queries are encoded alone.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.dataset import Corpus, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.filters import resolve_filter
from embedlab.index import ExactIndex
from embedlab.protocols import Tokenizes
from embedlab.ranking import Ranking
from embedlab.retrievers import create_component
from embedlab.timings import Timings

MODES = ("chunk", "prefix", "late")


def _optional_count(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be an integer >= 0 or None, got {value!r}")


def _residual(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
                              or not np.isfinite(value)):
        raise ValueError(f"residual must be a positive number or None, got {value!r}")


@attrs.frozen
class SituatedConfig:
    """``encoder`` (a component spec: name or table), ``mode``, ``context`` and ``residual``."""

    encoder: Any = "minilm"
    mode: str = attrs.field(default="late", validator=attrs.validators.in_(MODES))
    context: int | None = attrs.field(default=None, validator=_optional_count)
    residual: float | None = attrs.field(default=None, validator=_residual)


class SituatedRetriever(Component):
    """Chunks ranked by situated embeddings (see the module docstring)."""

    kind = "retriever"
    name = "situated"
    Config = SituatedConfig

    def __init__(self, config: SituatedConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.encoder = create_component("encoder", self.config.encoder)
        if self.config.mode == "late" and not isinstance(self.encoder, Tokenizes):
            raise ConfigError(f"situated: mode 'late' pools each chunk's own tokens and needs an encoder with a "
                              f"tokenizer (Tokenizes); {self.encoder.name!r} has none (use mode 'prefix')")
        self.index = ExactIndex(metric="ip")
        self.corpus: Corpus | None = None
        self.timings = Timings()

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Encode every chunk in its context and index the vectors."""
        groups = document_groups(corpus)
        start = time.perf_counter()
        mode, residual = self.config.mode, self.config.residual
        plain = self._plain(list(corpus.texts)) if mode == "chunk" or residual else None
        if mode == "chunk":
            vectors = plain
        elif mode == "prefix":
            vectors = self._plain(prefixed(corpus.texts, groups, self.config.context))
        else:
            vectors = late_chunked(self.encoder, corpus.texts, groups)
        if residual and mode != "chunk":
            vectors = np.hstack([plain, np.sqrt(residual) * vectors]).astype(np.float32)
        self.timings = Timings()
        self.timings.encode_documents_s = time.perf_counter() - start
        start = time.perf_counter()
        self.index.build(np.ascontiguousarray(vectors, dtype=np.float32), corpus.attributes or None)
        self.timings.index_s = time.perf_counter() - start
        self.corpus = corpus
        return self.timings

    def search(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        if self.corpus is None:
            raise InvalidInputError("situated: call build(corpus) before search")
        start = time.perf_counter()
        vectors = np.asarray(self.encoder.encode_queries(list(queries.texts)), dtype=np.float32)
        if self.config.residual and self.config.mode != "chunk":
            vectors = np.hstack([vectors, np.sqrt(self.config.residual) * vectors])
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        mask = resolve_filter(filter, self.corpus.attributes, len(self.corpus), len(queries))
        ranking = Ranking.from_search(queries.ids, self.index.search(vectors, k, filter=mask), self.corpus.ids)
        self.timings = attrs.evolve(self.timings, encode_queries_s=encode_s, search_s=time.perf_counter() - start)
        return ranking

    def _plain(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode_documents(texts), dtype=np.float32)


def document_groups(corpus: Corpus) -> list[np.ndarray]:
    """Corpus positions of each document's chunks, in ``position`` order (from the attributes)."""
    missing = [name for name in ("document", "position") if name not in corpus.attributes]
    if missing:
        raise ConfigError(f"situated: the corpus needs the attribute column(s) {', '.join(missing)} (which "
                          "document each chunk belongs to, and its order there); e.g. the sitemb-bios dataset")
    document = np.asarray(corpus.attributes["document"])
    position = np.asarray(corpus.attributes["position"], dtype=np.float64)
    order = np.lexsort((position, document))
    _, starts = np.unique(document[order], return_index=True)
    groups = np.split(order, starts[1:])
    for group in groups:
        if np.unique(position[group]).size != group.size:
            raise InvalidInputError(f"situated: document {document[group[0]]!r} has two chunks at one position")
    return groups


def prefixed(texts: tuple[str, ...], groups: list[np.ndarray], context: int | None) -> list[str]:
    """Each chunk after the ``context`` chunks before it in its document (all when None)."""
    out = list(texts)
    for group in groups:
        for j, item in enumerate(group.tolist()):
            before = group[:j] if context is None else group[max(0, j - context):j]
            out[item] = " ".join([*(texts[i] for i in before.tolist()), texts[item]])
    return out


def late_chunked(encoder: Any, texts: tuple[str, ...], groups: list[np.ndarray]) -> np.ndarray:
    """Late chunking: each document's chunks encoded together, each chunk pooled over its tokens."""
    from embedlab_transformers.encoder import raw_token_encoder  # late mode runs a transformers encoder

    token_encoder = raw_token_encoder(encoder, "situated: mode 'late'")
    limit = int(encoder.max_tokens)
    counts = [len(s) for s in encoder.token_spans(list(texts))]
    windows: list[list[int]] = []
    for group in groups:  # whole chunks per window, as many as fit (a longer chunk gets its own window)
        current: list[int] = []
        used = 0
        for item in group.tolist():
            extra = counts[item] + (1 if current else 0)
            if current and used + extra > limit:
                windows.append(current)
                current, used = [], 0
                extra = counts[item]
            current.append(item)
            used += extra
        windows.append(current)
    joined = [" ".join(texts[i] for i in window) for window in windows]
    tokens = token_encoder.encode_documents(joined)
    spans = encoder.token_spans(joined)
    dim = tokens.vectors.shape[1]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for w, window in enumerate(windows):
        vectors = tokens.vectors[tokens.offsets[w]:tokens.offsets[w + 1]][1:-1]  # drop [CLS] and [SEP]
        kept = min(len(vectors), len(spans[w]))
        starts = spans[w][:kept, 0]
        begin = 0
        for item in window:
            end = begin + len(texts[item])
            inside = (starts >= begin) & (starts < end)
            pooled = vectors[:kept][inside].mean(axis=0) if inside.any() else vectors[:kept].mean(axis=0)
            out[item] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
            begin = end + 1
    return out
