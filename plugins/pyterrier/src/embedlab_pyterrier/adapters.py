"""Both directions between embedlab and PyTerrier (pure Python; Java is needed only by Terrier's own
retrievers, which this plugin does not start)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyterrier as pt

from embedlab import Corpus, Pipeline, Queries, Ranking
from embedlab.dataset import Split
from embedlab.errors import ConfigError, InvalidInputError


class EmbedlabTransformer(pt.Transformer):
    """A built embedlab :class:`~embedlab.Pipeline` as a PyTerrier retrieval transformer: topics
    (``qid``, ``query``) in, results (``qid``, ``query``, ``docno``, ``score``, ``rank``) out, so it
    composes with PyTerrier's operators and runs in ``pt.Experiment``."""

    def __init__(self, pipeline: Pipeline, k: int = 100) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(f"EmbedlabTransformer wraps an embedlab Pipeline, got {type(pipeline).__name__}")
        if pipeline.corpus is None:
            raise ConfigError(f"pipeline {pipeline.name!r}: build it on the corpus before wrapping it")
        self.pipeline, self.k = pipeline, int(k)

    def transform(self, topics: pd.DataFrame) -> pd.DataFrame:
        missing = {"qid", "query"} - set(topics.columns)
        if missing:
            raise InvalidInputError("EmbedlabTransformer needs topics with columns qid and query; "
                                    f"missing {sorted(missing)}")
        if topics.empty:
            return pd.DataFrame(columns=["qid", "query", "docno", "score", "rank"])
        queries = Queries(topics["qid"].astype(str).tolist(), topics["query"].astype(str).tolist())
        ranking = self.pipeline.search(queries, k=self.k)
        rows = []
        texts = dict(zip(queries.ids.tolist(), queries.texts))
        for qid, docs, scores in ranking:
            rows += [{"qid": qid, "query": texts[qid], "docno": str(d), "score": float(s), "rank": r}
                     for r, (d, s) in enumerate(zip(docs, scores))]
        return pd.DataFrame(rows, columns=["qid", "query", "docno", "score", "rank"])


class PyTerrierRetriever:
    """A PyTerrier retrieval transformer as an embedlab :class:`~embedlab.Retriever` first stage.

    ``transformer`` maps topics to results; or ``indexer(corpus)`` returns one, called by ``build``
    (e.g. a Terrier index built from ``corpus``). Results are cut to the top k per query, and every
    returned document must be in the corpus."""

    kind = "retriever"
    name = "pyterrier"
    config: dict[str, Any] = {}

    def __init__(self, transformer: Any = None, *, indexer: Callable[[Corpus], Any] | None = None,
                 label: str = "pyterrier") -> None:
        if (transformer is None) == (indexer is None):
            raise ConfigError("PyTerrierRetriever: give a transformer or an indexer(corpus), not both or neither")
        self.transformer, self.indexer, self.label = transformer, indexer, label
        self.config = {"transformer": repr(transformer) if transformer is not None else None}
        self._corpus: Corpus | None = None

    def build(self, corpus: Corpus, train: Split | None = None) -> None:
        self._corpus = corpus
        if self.indexer is not None:
            self.transformer = self.indexer(corpus)

    def search(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        if self._corpus is None or self.transformer is None:
            raise InvalidInputError(f"first stage {self.label!r}: call build(corpus) before search")
        if filter is not None:
            raise ConfigError(f"first stage {self.label!r}: PyTerrier transformers take no embedlab filter")
        topics = pd.DataFrame({"qid": queries.ids.tolist(), "query": list(queries.texts)})
        results = self.transformer(topics)
        unknown = set(results["docno"].astype(str)) - set(self._corpus.position)
        if unknown:
            raise InvalidInputError(f"first stage {self.label!r}: {len(unknown)} returned docno(s) are not in the "
                                    f"corpus, e.g. {sorted(unknown)[:3]}")
        run: dict[str, dict[str, float]] = {q: {} for q in queries.ids.tolist()}
        for qid, docno, score in zip(results["qid"].astype(str), results["docno"].astype(str), results["score"]):
            if qid in run:
                run[qid][docno] = float(score)
        ranking = Ranking.from_dict(run, k=k)
        return Ranking(queries.ids, ranking.doc_ids, np.asarray(ranking.scores))
