"""ANNCUR (embedlab-anncur) on SciFact with MiniLM-token MaxSim as the expensive scorer.

    python benchmarks/bench_anncur.py [--kq 100 200 400 809]
        [--ki 10 25 50 100 200 400] [--budgets 20 50 100 200 500 1000] [--seed 0] [--rcond 1e-15 1e-3]
        [--plot docs/benchmarks/anncur_recall.png]

Corpus: SciFact (5,183 documents); anchor-query pool: the 809 train queries; test: the 300 test
queries. Scorer: MaxSim (sum over query tokens of the best document token cosine) over
all-MiniLM-L6-v2 token vectors, max_length 256 -- the ``maxsim`` reranker of embedlab-transformers
with ``max_length=256``. Document token vectors come from the shared embedding cache (the
``minilm-tokens`` pipeline key, shared with bench_muvera.py); a sample is
checked against fresh encoding, and the precomputed scorer against the real ``maxsim`` reranker.

Steps: (1) the scorer scores every train and test query against every document once (that
measures the cost per scorer call and gives the exact truth); (2) ANNCUR encoders are fitted
through their normal code path with a scorer that looks those exact scores up (same numbers,
no recomputation), for every k_q and k_i; test-time recall@10 of the exact top-10 after
reranking the top k_r by exact MaxSim, as a function of the budget k_i + k_r; (3) the baseline
spends the whole budget B on reranking MiniLM's (dense, exact) top B; (4) one configuration runs
end to end through ``embedlab.Pipeline`` (anncur encoder, exact index, MaxSim reranker) with the
real scorer and is checked against step 2; save/load reproduces its ranking.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import common
import numpy as np
from embedlab_anncur import Anncur, score_all

import embedlab
from embedlab import Pipeline
from embedlab import embeddings as emb
from embedlab.cache import EmbeddingCache
from embedlab.components import Component
from embedlab.index import ExactIndex
from embedlab.index.maxsim import maxsim_scores
from embedlab.ranking import Ranking
from embedlab.registry import ComponentSpec
from embedlab.rerank import reorder

TOP = 10


class TokenMaxSim(Component):
    """MaxSim over precomputed token vectors: documents found by text, queries by text."""

    kind = "reranker"
    name = "bench-maxsim-tokens"

    @attrs.frozen(kw_only=True)
    class Config:
        k: int = 1_000_000

    def __init__(self, config: Any = None, /, *, docs: emb.MultiVectorEmbeddings, doc_texts: list[str],
                 query_vectors: dict[str, np.ndarray], **params: Any) -> None:
        super().__init__(config, **params)
        self.docs, self.query_vectors = docs, query_vectors
        self.doc_position = {t: i for i, t in enumerate(doc_texts)}

    def rerank(self, ranking: Ranking, queries: embedlab.Queries, corpus: embedlab.Corpus) -> Ranking:
        head = ranking.truncate(min(self.config.k, ranking.k))
        text_of = dict(zip(queries.ids.tolist(), queries.texts))
        documents = corpus.documents()
        positions = np.vectorize(lambda d: self.doc_position[documents[corpus.position[d]]] if d else -1,
                                 otypes=[np.int64])(head.doc_ids)
        qv = emb.MultiVectorEmbeddings.from_list([self.query_vectors[text_of[q]] for q in head.query_ids.tolist()],
                                                 dim=self.docs.dim)
        if (positions == positions[:1]).all():  # one candidate list for every query: all pairs at once
            unique, columns = np.unique(np.maximum(positions[0], 0), return_inverse=True)
            subset = self.docs if unique.size == len(self.docs) else self.docs.take(unique)
            scores = maxsim_scores(qv, subset)[:, columns]
        else:
            scores = maxsim_scores(qv, self.docs, positions)
        return reorder(head, np.where(positions >= 0, scores, -np.inf), keep_tail=False)


class LookupScorer(Component):
    """The exact scores TokenMaxSim gave, looked up by query and document text (no recomputation)."""

    kind = "reranker"
    name = "bench-maxsim-lookup"

    def __init__(self, config: Any = None, /, *, rows: dict[str, np.ndarray], doc_texts: list[str],
                 **params: Any) -> None:
        super().__init__(config, **params)
        self.rows, self.doc_position = rows, {t: i for i, t in enumerate(doc_texts)}

    def rerank(self, ranking: Ranking, queries: embedlab.Queries, corpus: embedlab.Corpus) -> Ranking:
        text_of = dict(zip(queries.ids.tolist(), queries.texts))
        documents = corpus.documents()
        columns = np.asarray([self.doc_position[documents[corpus.position[d]]] for d in ranking.doc_ids[0]])
        if not (ranking.doc_ids == ranking.doc_ids[:1]).all():
            raise ValueError("lookup scorer expects the same candidates for every query")
        scores = np.stack([self.rows[text_of[q]][columns] for q in ranking.query_ids.tolist()])
        return reorder(ranking, scores, keep_tail=False)


def register(name: str, factory: Any) -> None:
    registry = embedlab.registry()
    if name not in registry.names("reranker"):
        registry.add_spec(ComponentSpec("reranker", name, factory, "bench_anncur", "benchmarks", "0"))


def token_vectors(cache: EmbeddingCache, encoder: Any, role: str, content_hash: str,
                  texts: list[str]) -> emb.MultiVectorEmbeddings:
    key = cache.key(encoder, role, content_hash)
    method = encoder.encode_documents if role == "documents" else encoder.encode_queries
    return cache.get_or_compute(key, lambda: method(texts)).embeddings


def check_scorer(scorer: TokenMaxSim, docs: emb.MultiVectorEmbeddings, encoder: Any, dataset: embedlab.Dataset,
                 test: embedlab.Queries) -> float:
    """Largest gap between the precomputed scorer and the real maxsim reranker (and fresh token
    vectors) on a sample; raises when they disagree."""
    sample = np.arange(0, len(dataset.corpus), len(dataset.corpus) // 8)[:8]
    documents = dataset.corpus.documents()
    fresh = encoder.encode_documents([documents[i] for i in sample])
    for j, i in enumerate(sample):
        assert np.allclose(fresh.item(j), docs.item(int(i)), atol=1e-4), f"token vectors of document {i} differ"
    real = embedlab.create("reranker", "maxsim", max_length=256, k=len(sample), keep_tail=False, show_progress=False)
    queries = embedlab.Queries(test.ids[:3], test.texts[:3])
    ranking = Ranking(queries.ids, np.broadcast_to(dataset.corpus.ids[sample], (3, sample.size)),
                      np.zeros((3, sample.size)))
    gaps = []
    pairs = zip(real.rerank(ranking, queries, dataset.corpus), scorer.rerank(ranking, queries, dataset.corpus))
    for reference, ours in pairs:
        a, b = dict(zip(reference[1], reference[2])), dict(zip(ours[1], ours[2]))
        gaps.append(max(abs(a[d] - b[d]) for d in a))
    assert max(gaps) < 1e-3, f"precomputed MaxSim differs from the maxsim reranker by {max(gaps)}"
    return float(max(gaps))


def exhaustive(scorer: TokenMaxSim, dataset: embedlab.Dataset, train: embedlab.Queries, test: embedlab.Queries,
               cache: EmbeddingCache) -> tuple[dict[str, np.ndarray], float]:
    """Every train and test query scored against every document through ``score_all``, with the
    seconds it took; stored beside the embedding cache, so reruns only load it."""
    digest = hashlib.sha256(f"{dataset.corpus.content_hash}|{train.content_hash}|{test.content_hash}".encode())
    path = cache.root.parent / "bench_anncur" / f"exact-{digest.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return {"train": stored["train"], "test": stored["test"]}, float(stored["seconds"])
    start = time.perf_counter()
    exact = {name: score_all(scorer, part, dataset.corpus, queries_per_call=64, show_progress=True,
                             desc=f"exact {name}") for name, part in (("train", train), ("test", test))}
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train=exact["train"], test=exact["test"], seconds=seconds)
    return exact, seconds


def recall(truth: np.ndarray, candidates: list[np.ndarray]) -> float:
    """Top-10 recall after exact reranking of each candidate set = overlap with the exact top-10."""
    return float(np.mean([len(set(t.tolist()) & set(c.tolist())) / TOP for t, c in zip(truth, candidates)]))


def top(scores: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kq", type=int, nargs="+", default=[100, 200, 400, 809])
    parser.add_argument("--ki", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400])
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 50, 100, 200, 500, 1000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rcond", type=float, nargs="+", default=[1e-15, 1e-3],
                        help="pinv cut-offs (relative to the largest singular value); 1e-15 = numpy's default")
    parser.add_argument("--plot", default="docs/benchmarks/anncur_recall.png")
    args = parser.parse_args()
    common.report_load()

    dataset = common.load("scifact")
    train, test = dataset.split("train").queries, dataset.split("test").queries
    documents = dataset.corpus.documents()
    cache = EmbeddingCache()
    encoder = embedlab.create("encoder", "minilm-tokens", show_progress=False)
    docs = token_vectors(cache, encoder, "documents", dataset.corpus.content_hash, documents)
    query_vectors: dict[str, np.ndarray] = {}
    for part in (train, test):
        vectors = token_vectors(cache, encoder, "queries", part.content_hash, list(part.texts))
        query_vectors.update((t, vectors.item(i)) for i, t in enumerate(part.texts))
    scorer = TokenMaxSim(docs=docs, doc_texts=documents, query_vectors=query_vectors)
    gap = check_scorer(scorer, docs, encoder, dataset, test)
    print(f"precomputed MaxSim vs maxsim reranker (max_length=256): max |diff| {gap:.2e} on 3x8 pairs")

    exact, seconds = exhaustive(scorer, dataset, train, test, cache)
    n = len(dataset.corpus)
    calls = (len(train) + len(test)) * n
    per_call = seconds / calls
    print(f"exhaustive MaxSim: {calls:,} calls in {seconds:.1f} s = {1e6 * per_call:.2f} us/call")
    truth = top(exact["test"], TOP)
    rows = {t: exact["train"][i] for i, t in enumerate(train.texts)}
    rows |= {t: exact["test"][i] for i, t in enumerate(test.texts)}
    register(LookupScorer.name, lambda **p: LookupScorer(rows=rows, doc_texts=documents, **p))
    register(TokenMaxSim.name,
             lambda **p: TokenMaxSim(docs=docs, doc_texts=documents, query_vectors=query_vectors, **p))

    minilm = common.encode_split(dataset, "test")
    dense_scores = minilm.queries @ minilm.docs.T
    budgets = sorted(args.budgets)
    baseline = {b: recall(truth, list(top(dense_scores, b))) for b in budgets}

    best: dict[float, dict[int, list[float]]] = {}
    expected = float("nan")
    for rcond in args.rcond:
        results, memory = sweep(args, rcond, documents, train, test, truth, baseline)
        best[rcond] = best_splits(args.kq, budgets, results, baseline, rcond)
        if rcond == 1e-15 and (100, 50, 200) in results:
            expected = results[(100, 50, 200)]
    print("\nindexing cost: " + ", ".join(f"k_q={k}: {k * n:,} calls ~{k * n * per_call:.0f} s" for k in args.kq))
    print("state bytes (E + U + anchor texts): "
          + ", ".join(f"k_q={q} k_i={i}: {m:,}" for (q, i), m in memory.items() if q == args.kq[-1]))

    end_to_end(dataset, test, documents, exact["test"], args.seed, expected)
    plot(args.plot, budgets, baseline, best)


def sweep(args: argparse.Namespace, rcond: float, documents: list[str], train: embedlab.Queries,
          test: embedlab.Queries, truth: np.ndarray, baseline: dict[int, float],
          ) -> tuple[dict[tuple[int, int, int], float], dict[tuple[int, int], int]]:
    """Recall@10 of every (k_q, k_i, budget) with this pinv cut-off, and the fitted state's bytes."""
    results: dict[tuple[int, int, int], float] = {}
    memory: dict[tuple[int, int], int] = {}
    print(f"\nrcond={rcond:g}\n{'k_q':>4} {'k_i':>4} {'k_r':>5} {'budget':>6} {'R@10':>6} {'+anchors':>8} "
          f"{'MiniLM@B':>8} {'ratio':>6}")
    for k_q in args.kq:
        for k_i in args.ki:
            anncur = Anncur(k_q=k_q, k_i=k_i, seed=args.seed, rcond=rcond, scorer={"name": LookupScorer.name},
                            show_progress=False)
            anncur.fit(documents, anchor_queries=list(train.texts))
            approx = anncur.encode_queries(list(test.texts)) @ anncur.encode_documents(documents).T
            memory[(k_q, k_i)] = anncur.memory_bytes
            for b in sorted(args.budgets):
                k_r = b - k_i
                if k_r < TOP:
                    continue
                found = list(top(approx, k_r))
                plus = recall(truth, [np.union1d(f, anncur.anchor_items) for f in found])
                r = results[(k_q, k_i, b)] = recall(truth, found)
                print(f"{k_q:>4} {k_i:>4} {k_r:>5} {b:>6} {r:>6.3f} {plus:>8.3f} {baseline[b]:>8.3f} "
                      f"{r / baseline[b]:>6.2f}")
    return results, memory


def best_splits(kq: list[int], budgets: list[int], results: dict[tuple[int, int, int], float],
                baseline: dict[int, float], rcond: float) -> dict[int, list[float]]:
    """Print and return the best k_i per budget for each k_q."""
    print(f"\nbest split per budget, rcond={rcond:g} (R@10 of the exact MaxSim top-10)")
    print(f"{'budget':>6} {'MiniLM+rerank':>13} " + " ".join(f"{'k_q=' + str(k):>16}" for k in kq))
    best: dict[int, list[float]] = {k: [] for k in kq}
    for b in budgets:
        cells = []
        for k_q in kq:
            options = [(v, k_i) for (q, k_i, bb), v in results.items() if q == k_q and bb == b]
            value, k_i = max(options) if options else (float("nan"), 0)
            best[k_q].append(value)
            cells.append(f"{value:.3f} (k_i={k_i:>3})")
        print(f"{b:>6} {baseline[b]:>13.3f} " + " ".join(f"{c:>16}" for c in cells))
    return best


def end_to_end(dataset: embedlab.Dataset, test: embedlab.Queries, documents: list[str],
               exact_test: np.ndarray, seed: int, expected: float, k_q: int = 100, k_i: int = 50,
               k_r: int = 150) -> None:
    """One configuration through embedlab.Pipeline with the real (token-vector) MaxSim scorer."""
    anncur = Anncur(k_q=k_q, k_i=k_i, seed=seed, scorer={"name": TokenMaxSim.name}, queries_per_call=64)
    reranker = embedlab.create("reranker", TokenMaxSim.name, k=k_r)
    pipeline = Pipeline(encoder=anncur, index=ExactIndex(metric="ip"), reranker=reranker, name="anncur")
    fit_s = pipeline.build(dataset.corpus, train=dataset.split("train")).fit_encoder_s
    calls_before = anncur.scorer_calls
    ranking = pipeline.search(test, k=k_r)
    query_calls = (anncur.scorer_calls - calls_before) / len(test)
    truth = top(exact_test, TOP)
    position = dataset.corpus.position
    found = [np.asarray([position[d] for d in row[:TOP] if d]) for row in ranking.doc_ids]
    print(f"\nend to end (Pipeline: anncur k_q={k_q} k_i={k_i} -> exact index -> MaxSim k_r={k_r}): "
          f"R@10 {recall(truth, found):.3f} (sweep through the lookup scorer: {expected:.3f}); "
          f"fit {fit_s:.1f} s ({anncur.fit_scorer_calls:,} calls); "
          f"{query_calls:.0f} + {k_r} scorer calls per query; index {pipeline.index.memory_bytes:,} bytes, "
          f"encoder state {anncur.memory_bytes:,} bytes; search {pipeline.timings.latency_ms:.1f} ms/query")
    with tempfile.TemporaryDirectory() as tmp:
        anncur.save(Path(tmp) / "anncur")
        loaded = Anncur.load(Path(tmp) / "anncur")
        sample = list(test.texts[:20])
        same = np.array_equal(loaded.encode_queries(sample), anncur.encode_queries(sample))
        same &= np.array_equal(loaded.encode_documents(documents), anncur.encode_documents(documents))
    print(f"save/load: identical query and document vectors: {same}")


def plot(path: str, budgets: list[int], baseline: dict[int, float],
         best: dict[float, dict[int, list[float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(best), figsize=(6 * len(best), 4.5), sharey=True, squeeze=False)
    for ax, (rcond, curves) in zip(axes[0], best.items()):
        ax.plot(budgets, [baseline[b] for b in budgets], "k-o", label="MiniLM top-B + MaxSim rerank")
        for k_q, values in curves.items():
            ax.plot(budgets, values, "--s", label=f"ANNCUR k_q={k_q} (best k_i per budget)")
        ax.set_xscale("log")
        ax.set_xlabel("test-time MaxSim calls per query (B = k_i + k_r)")
        ax.set_title(f"SciFact test, pinv rcond={rcond:g}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("top-10 recall vs exhaustive MaxSim")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
