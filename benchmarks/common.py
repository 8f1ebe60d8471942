"""Shared helpers for the benchmark scripts: cached MiniLM embeddings of a split, timing, recall.

Scripts run as ``python benchmarks/<script>.py``, so ``import common`` finds this module.
Embeddings go through ``embedlab.cache.EmbeddingCache()`` with the keys ``embedlab.Pipeline`` uses,
so every script and every ``embedlab run`` share one encoding of each corpus.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import attrs
import numpy as np

import embedlab
from embedlab import Dataset, Ranking, SearchResult
from embedlab.cache import EmbeddingCache
from embedlab.datasets import load_dataset_spec
from embedlab.metrics import evaluate
from embedlab.splits import unseen_qrels

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
T = TypeVar("T")


@attrs.frozen
class EncodedSplit:
    """Dense document and query vectors of one split, with the ids and qrels to evaluate them."""

    docs: np.ndarray
    queries: np.ndarray
    doc_ids: list[str]
    query_ids: list[str]
    qrels: object
    query_texts: list[str]

    def exact_ranking(self, k: int) -> Ranking:
        """Exact inner-product top-``k`` of every query (stable order on ties)."""
        sims = self.queries @ self.docs.T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return Ranking(self.query_ids, np.asarray(self.doc_ids)[top], np.take_along_axis(sims, top, axis=1))

    def ndcg(self, result: SearchResult, metric: str = "nDCG@10") -> float:
        """A metric of a search result over these queries (positions index ``doc_ids``)."""
        ranking = Ranking.from_search(self.query_ids, result, self.doc_ids)
        return float(evaluate(ranking, self.qrels, [metric]).aggregates[metric])

    def per_query(self, result: SearchResult, metric: str = "nDCG@10", qrels: object = None) -> dict[str, float]:
        """``{query_id: value}`` of a metric over ``qrels`` (default: this split's), e.g. the unseen subset's."""
        ranking = Ranking.from_search(self.query_ids, result, self.doc_ids)
        return evaluate(ranking, self.qrels if qrels is None else qrels, [metric]).query_values(metric)

    def unseen_qrels(self, train: EncodedSplit) -> dict[str, dict[str, int]]:
        """This split's qrels restricted to the unseen subset w.r.t. ``train`` (:mod:`embedlab.splits`)."""
        return unseen_qrels(self.qrels, train.qrels)


def load(name: str) -> Dataset:
    """``scifact`` (or any folder under shared/data with a ``beir`` copy) or a built-in dataset name."""
    beir = SHARED_DATA / name / "beir"
    return load_dataset_spec(path=beir) if beir.is_dir() else load_dataset_spec(name)


#: Encoder parameters of every benchmark, as the experiment files in examples/ configure MiniLM, so
#: `embedlab run` and the benchmarks fill and read the same embedding-cache entries. ONNX Runtime
#: and torch embeddings agree to a cosine of 0.9999998 (bench_onnx_vs_torch.py).
ENCODER_PARAMS = {"minilm": {"backend": "onnx"}}


def encoder(name: str = "minilm") -> embedlab.Component:
    """The benchmarks' encoder ``name`` (with :data:`ENCODER_PARAMS`)."""
    return embedlab.create("encoder", name, **ENCODER_PARAMS.get(name, {}))


def encode_split(dataset: Dataset, split: str, encoder_name: str = "minilm") -> EncodedSplit:
    """The whole corpus and the split's judged queries, encoded with the benchmarks' encoder."""
    part = dataset.split(split)
    model = encoder(encoder_name)
    cache = EmbeddingCache()
    docs = cache.get_or_compute(cache.key(model, "documents", dataset.corpus.content_hash),
                                lambda: model.encode_documents(dataset.corpus.documents())).embeddings
    queries = cache.get_or_compute(cache.key(model, "queries", part.queries.content_hash),
                                   lambda: model.encode_queries(list(part.queries.texts))).embeddings
    return EncodedSplit(docs, queries, list(dataset.corpus.ids), list(part.queries.ids), part.qrels,
                        list(part.queries.texts))


def pipeline_vectors(encoder: Any, dataset: Dataset, test: str, train: str | None = None,
                     cache: EmbeddingCache | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense document and ``test`` query vectors of ``encoder`` through the cache entries an
    ``embedlab.Pipeline`` of it writes (trained on split ``train`` when given), so a benchmark that
    needs the vectors reuses the encodings of ``embedlab run`` and bench_train.py instead of redoing them.
    With ``train``, pass an *untrained* encoder: the pipeline fits it (reusing a finished run of the same
    recipe); a trained one would count as a new recipe and train again."""
    from embedlab import Pipeline
    from embedlab.embeddings import as_dense
    from embedlab.index import ExactIndex

    pipeline = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"), cache=cache or EmbeddingCache())
    retriever, corpus = pipeline.first_stage, dataset.corpus
    if len(corpus) > retriever.chunk_size:
        raise ValueError(f"{dataset.name}: {len(corpus)} documents are cached in chunks; read them with "
                         "EmbeddingRetriever.build(keep_vectors=True)")
    retriever.build(corpus, dataset.split(train) if train else None)  # fits (or reuses the finished run)
    split = dataset.split(test)
    docs, _ = retriever.encode("documents", corpus.content_hash, corpus.inputs())  # the entry build wrote
    queries, _ = retriever.encode("queries", split.queries.content_hash, split.queries.inputs())
    return (np.asarray(as_dense(docs, name="documents"), dtype=np.float32),
            np.asarray(as_dense(queries, name="queries"), dtype=np.float32))


def bm25_projection(documents: list[str], queries: list[str], dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """BM25 vectors (fitted on the documents) times a seeded Gaussian matrix, normalised: dense
    vectors whose neighbourhoods follow the lexical ones, at a fraction of a transformer's cost."""
    encoder = embedlab.create("encoder", "bm25")
    encoder.fit(documents)
    docs, found = encoder.encode_documents(documents), encoder.encode_queries(queries)
    projection = np.random.default_rng(seed).standard_normal((docs.shape[1], dim), dtype=np.float32)
    dense = [np.asarray(m @ projection, dtype=np.float32) for m in (docs, found)]
    return tuple(d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12) for d in dense)  # type: ignore[return-value]


#: Speed numbers are valid only when the 1-minute load average is below this before the run.
QUIET_LOAD = 1.5


def overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, values parsed as JSON (strings may be bare)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def report_load(label: str = "before") -> tuple[float, float, float]:
    """Print the load averages (1, 5, 15 min) and whether the machine is quiet enough for speed
    numbers; the first call also registers the same report at exit ("after"). Returns them."""
    import atexit
    import os

    loads = os.getloadavg()
    verdict = ("quiet enough for speed numbers" if loads[0] < QUIET_LOAD else
               f"under load (>= {QUIET_LOAD}): speed ratios are to be rerun quiet")
    print(f"load average {label}: {loads[0]:.2f} {loads[1]:.2f} {loads[2]:.2f} (1/5/15 min); {verdict}", flush=True)
    if label == "before" and not getattr(report_load, "registered", False):
        report_load.registered = True  # type: ignore[attr-defined]
        atexit.register(report_load, "after")
    return loads


def load_text() -> str:
    """The current 1-minute load average, for a table row."""
    import os

    return f"{os.getloadavg()[0]:.1f}"


def best_time(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Fastest wall time of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def recall_at_k(truth: np.ndarray, found: np.ndarray, k: int) -> float:
    """Mean overlap of each query's top-k positions with the exact top-k (``truth``), over k."""
    return float(np.mean([len(set(t[:k]) & set(f[:k]) - {-1}) / k for t, f in zip(truth, found)]))


def write_json(path: str | Path, args: object, results: object) -> Path:
    """Write a benchmark's results with its arguments, the command line and the machine's thread
    settings (numpy values become plain numbers); returns the path."""
    import json
    import os
    import platform
    import sys

    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, np.ndarray):
            return plain(value.tolist())
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Path):
            return str(value)
        return value

    record = {"command": " ".join(["python", *sys.argv]), "arguments": plain(vars(args)),
              "python": sys.version.split()[0], "platform": platform.platform(),
              "environment": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
              "load_average_at_write": list(os.getloadavg()),
              "results": plain(results)}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    print(f"json: {target}")
    return target
