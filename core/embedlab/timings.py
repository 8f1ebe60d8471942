"""Seconds spent in each stage of a pipeline, shared by first stages and the pipeline runner."""

from __future__ import annotations

import attrs

#: Fields that add up when several first stages run side by side (a fusion of retrievers).
_SUMMED = ("fit_encoder_s", "encode_documents_s", "fit_compressor_s", "index_s", "fit_fusion_s", "fit_reranker_s",
           "encode_queries_s", "search_s", "rerank_s", "cache_hits")


@attrs.define
class Timings:
    """Seconds spent in each stage (query latency is per query, in milliseconds).

    ``index_s``/``search_s`` hold a registered retriever's whole build/search time when it does
    not report finer stages; ``rerank_stages`` holds each cascade stage's seconds by label
    (``"maxsim@100"``), in order, and their sum is ``rerank_s``.
    """

    fit_encoder_s: float = 0.0
    encode_documents_s: float = 0.0
    fit_compressor_s: float = 0.0
    index_s: float = 0.0
    fit_fusion_s: float = 0.0
    fit_reranker_s: float = 0.0
    encode_queries_s: float = 0.0
    search_s: float = 0.0
    rerank_s: float = 0.0
    n_queries: int = 0
    cache_hits: int = 0
    rerank_stages: dict[str, float] = attrs.field(factory=dict)

    @property
    def build_s(self) -> float:
        return (self.fit_encoder_s + self.encode_documents_s + self.fit_compressor_s + self.index_s
                + self.fit_fusion_s + self.fit_reranker_s)

    @property
    def first_stage_s(self) -> float:
        """Query-time seconds of the first stage: query encoding and search (fusion included)."""
        return self.encode_queries_s + self.search_s

    @property
    def latency_ms(self) -> float:
        """Mean time per query of encoding, search and reranking (batched)."""
        return 1000.0 * (self.first_stage_s + self.rerank_s) / max(self.n_queries, 1)

    def stage_latencies_ms(self) -> dict[str, float]:
        """Milliseconds per query of the first stage and of each cascade stage, in order."""
        n = max(self.n_queries, 1)
        return {"first stage": 1000.0 * self.first_stage_s / n,
                **{label: 1000.0 * s / n for label, s in self.rerank_stages.items()}}

    def add_first_stage(self, other: Timings) -> None:
        """Add another first stage's build and search seconds (and cache hits) to these."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
