"""E2Rank reranking (listwise-prompt embedding as the query) vs the MiniLM first stage and MaxSim.

    python benchmarks/bench_e2rank.py [--datasets scifact python-stdlib] [--k 100] [--threads 1]
                                      [--sweep 1 3 10] [--train-queries 500] [--maxsim-doc-tokens DIR]
                                      [--plot docs/benchmarks/e2rank.png]

First stage: all-MiniLM-L6-v2 (encoder ``minilm``) embeddings of the whole corpus and the test
queries from ``benchmarks/common.py`` (the shared embedding cache), exact cosine search (core
``exact`` index), top ``--k``. Every reranker reorders that top ``--k`` (tail kept):

* ``e2rank`` training-free: cosine between each candidate's MiniLM embedding (reused from the
  first stage's cache entry) and the MiniLM embedding of the listwise prompt of the query and the
  first-stage top K (default K=5, 40 words per document); the pure paper scoring, and mixed with
  the plain query cosine (``query_weight`` 0.5);
* ``e2rank`` trained: the same with a query-side linear adapter trained on ``--train-queries``
  seeded train-split queries (InfoNCE + 2 x RankNet, their first-stage top-100 as hard negatives,
  10% held out for early stopping); also the
  control ``adapter only`` (``query_weight`` 1: the adapted plain query, no prompt), which tells
  how much of the gain is the supervised adapter rather than the listwise prompt;
* ``maxsim``: the embedlab-transformers ColBERT-style MaxSim over MiniLM token vectors (256 word
  pieces). With ``--maxsim-doc-tokens`` (an embedding-cache entry of the corpus's token vectors,
  e.g. the SciFact one ``bench_anncur.py`` uses) the reranker's per-document memory is filled from
  it (a sample is checked against fresh encoding) and only the warm cost is measured.

Columns: nDCG@10 on the test qrels, difference to the first stage with Holm-corrected paired
t-test and Wilcoxon p-values (``embedlab.stats``), and the extra wall time per query of one batched
rerank call (e2rank free, paper scoring: prompt encoding + scoring, documents from the cache; the
other e2rank rows reuse those prompt embeddings, memoised in this process, so they add only the
adapter product, plus the plain-query encoding for ``query_weight`` > 0; maxsim: ``cold`` with
the document token vectors encoded in the call, ``warm`` with them in memory).
K sweep (training-free): nDCG@10 against K, with the mean number of prompt documents that fit
whole in MiniLM's 256 word pieces. All in one process, ``--threads`` torch threads.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import common
import numpy as np
import torch
from embedlab_e2rank import E2Rank
from embedlab_e2rank.prompt import listwise_prompt

import embedlab
from embedlab import Ranking
from embedlab import embeddings as emb
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate
from embedlab.persistence import load_state
from embedlab.rerank import document_positions, query_texts
from embedlab.stats import compare_systems

warnings.filterwarnings("ignore", message=r".*longer than max_length")
METRIC = "nDCG@10"


def first_stage(dataset, split: str, k: int) -> Ranking:
    encoded = common.encode_split(dataset, split)
    index = embedlab.create("index", "exact")
    index.build(encoded.docs)
    return Ranking.from_search(encoded.query_ids, index.search(encoded.queries, k), np.asarray(encoded.doc_ids))


def timed_rerank(reranker, ranking, queries, corpus) -> tuple[Ranking, float]:
    start = time.perf_counter()
    out = reranker.rerank(ranking, queries, corpus)
    return out, 1000 * (time.perf_counter() - start) / len(ranking)


def fitting_docs(reranker: E2Rank, ranking: Ranking, queries, corpus) -> float:
    """Mean number of the first K prompt documents whose whole text fits in the encoder window."""
    c, tokenizer, window = reranker.config, reranker.encoder.tokenizer, reranker.encoder.max_length
    texts, docs = query_texts(ranking, queries, "bench"), corpus.documents()
    positions = document_positions(ranking.doc_ids[:, :c.prompt_docs], corpus, "bench")
    counts = []
    for query, row in zip(texts, positions.tolist()):
        fit = 0
        for j in range(1, len(row) + 1):
            prompt = listwise_prompt(query, [docs[p] for p in row[:j]], instruction=c.instruction,
                                     doc_words=c.doc_words, query_first=c.query_first)
            if len(tokenizer(prompt)["input_ids"]) > window:
                break
            fit = j
        counts.append(fit)
    return float(np.mean(counts))


MEMO: dict[tuple[str, ...], np.ndarray] = {}


def make(params: dict, threads: int, adapter: np.ndarray | None = None) -> E2Rank:
    """An e2rank reranker on the shared cache whose query-side encodings are memoised in-process
    (several variants rerank the same prompts; only the first run's latency is reported)."""
    reranker = E2Rank(encoder_params={"num_threads": threads, "show_progress": False}, **params)
    reranker.use_cache(EmbeddingCache())
    reranker.adapter = adapter
    encode = reranker.encoder.encode_queries

    def memoised(texts):
        key = tuple(texts)
        if key not in MEMO:
            MEMO[key] = encode(texts)
        return MEMO[key]
    reranker.encoder.encode_queries = memoised
    return reranker


def train_subset(ranking: Ranking, n: int | None, seed: int = 0) -> Ranking:
    if n is None or n >= len(ranking):
        return ranking
    rows = np.sort(np.random.default_rng(seed).choice(len(ranking), n, replace=False))
    return Ranking(ranking.query_ids[rows], ranking.doc_ids[rows], ranking.scores[rows])


def warm_maxsim(maxsim, directory: str, ranking: Ranking, corpus) -> None:
    """Fill the maxsim reranker's per-document memory from a cache entry of the corpus's token
    vectors, after checking two documents against fresh encoding."""
    state = load_state(directory, kind="embeddings", verify=False)
    tokens = emb.from_arrays(state.meta["embedding_kind"], state.arrays)
    if len(tokens) != len(corpus):
        raise SystemExit(f"{directory}: {len(tokens)} documents, the corpus has {len(corpus)}")
    documents = corpus.documents()
    sample = [0, len(corpus) // 2]
    fresh = maxsim.encoder.encode_documents([documents[i] for i in sample])
    for j, i in enumerate(sample):
        if not np.allclose(fresh.item(j), tokens.item(i), atol=1e-4):
            raise SystemExit(f"{directory}: token vectors of document {i} differ from fresh encoding")
    maxsim.document_vectors(np.asarray([], dtype=str), corpus)  # binds the memory to this corpus
    for doc_id in np.unique(ranking.doc_ids[ranking.doc_ids != ""]).tolist():
        maxsim._cache[doc_id] = np.array(tokens.item(corpus.position[doc_id]))


def run_dataset(name: str, args) -> dict:
    dataset = common.load(name)
    test, corpus = dataset.split("test"), dataset.corpus
    ranking = first_stage(dataset, "test", args.k)
    train_ranking = train_subset(first_stage(dataset, "train", args.k), args.train_queries)
    per_query = {"first stage": evaluate(ranking, test.qrels, [METRIC])}
    latency: dict[str, str] = {"first stage": "-"}
    base = {"k": args.k}

    def add(label: str, reranker, cold_warm: bool = False) -> None:
        out, ms = timed_rerank(reranker, ranking, test.queries, corpus)
        if cold_warm:
            out, warm = timed_rerank(reranker, ranking, test.queries, corpus)
            latency[label] = f"{ms:.0f} cold / {warm:.0f} warm"
        else:
            latency[label] = f"{ms:.0f}"
        per_query[label] = evaluate(out, test.qrels, [METRIC])
        print(f"  {label}: {per_query[label].aggregates[METRIC]:.4f} ({latency[label]} ms/q)", flush=True)

    print(f"{name}: {len(ranking)} test queries, first stage {per_query['first stage'].aggregates[METRIC]:.4f}")
    add("e2rank free (paper)", make(base, args.threads))
    add("e2rank free, query_weight 0.5", make({**base, "query_weight": 0.5}, args.threads))
    trained = make(base, args.threads)
    start = time.perf_counter()
    trained.fit(train_ranking, dataset.split("train"), corpus)
    fit_s = time.perf_counter() - start
    epochs = len(trained.history["held_out"])
    print(f"  trained on {len(train_ranking)} train queries in {fit_s:.0f} s, {epochs} epochs", flush=True)
    add("e2rank trained (paper)", trained)
    add("e2rank trained, query_weight 0.5", make({**base, "query_weight": 0.5}, args.threads, trained.adapter))
    add("control: adapter only (query_weight 1)", make({**base, "query_weight": 1.0}, args.threads, trained.adapter))
    maxsim = embedlab.create("reranker", "maxsim", k=args.k, max_length=256, num_threads=args.threads,
                             show_progress=True)
    if args.maxsim_doc_tokens:
        warm_maxsim(maxsim, args.maxsim_doc_tokens, ranking, corpus)
    add(f"maxsim k={args.k}", maxsim, cold_warm=not args.maxsim_doc_tokens)

    values = {label: result.per_query[METRIC] for label, result in per_query.items()}
    stats = {c.system: c for c in compare_systems({k: v for k, v in values.items() if k != "first stage"},
                                                  values["first stage"], baseline_name="first stage")}
    print(f"\n{name} (n={len(ranking)}), rerank depth {args.k}, adapter fitted on {len(train_ranking)} "
          f"train queries in {fit_s:.0f} s / {epochs} epochs")
    print(f"| system | {METRIC} | vs first stage | p (t, Holm) | p (Wilcoxon, Holm) | +/-/= | extra ms/query |")
    print("|---|---|---|---|---|---|---|")
    for label, value in values.items():
        c = stats.get(label)
        cells = (f"{c.mean_difference:+.4f} | {c.p_ttest_holm:.2g} | {c.p_wilcoxon_holm:.2g} | "
                 f"{c.improved}/{c.degraded}/{c.tied}") if c else "- | - | - | -"
        print(f"| {label} | {value.mean():.4f} | {cells} | {latency[label]} |")

    sweep = {"free": {}, "trained": {}, "fit": {}}
    print(f"\nK sweep ({name}): | K | prompt docs fitting whole in 256 word pieces | {METRIC} free | trained |")
    for k_docs in sorted({*args.sweep, trained.config.prompt_docs}):
        free = make({**base, "prompt_docs": k_docs}, args.threads)
        sweep["fit"][k_docs] = fitting_docs(free, ranking, test.queries, corpus)
        if k_docs == trained.config.prompt_docs:
            sweep["free"][k_docs] = float(values["e2rank free (paper)"].mean())
            sweep["trained"][k_docs] = float(values["e2rank trained (paper)"].mean())
        else:
            out = free.rerank(ranking, test.queries, corpus)
            sweep["free"][k_docs] = evaluate(out, test.qrels, [METRIC]).aggregates[METRIC]
        trained_cell = f"{sweep['trained'][k_docs]:.4f}" if k_docs in sweep["trained"] else "-"
        print(f"| {k_docs} | {sweep['fit'][k_docs]:.2f} | {sweep['free'][k_docs]:.4f} | {trained_cell} |", flush=True)
    return {"first": float(values["first stage"].mean()), "maxsim": float(values[f"maxsim k={args.k}"].mean()),
            "sweep": sweep}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        sweep = result["sweep"]
        ks = sorted(sweep["free"])
        ax.plot(ks, [sweep["free"][k] for k in ks], "o-", label="e2rank training-free")
        kt = sorted(sweep["trained"])
        ax.plot(kt, [sweep["trained"][k] for k in kt], "s", label="e2rank trained adapter")
        ax.axhline(result["first"], color="grey", linestyle="--", label="MiniLM first stage")
        ax.axhline(result["maxsim"], color="black", linestyle=":", label="maxsim")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("K (first-stage documents in the prompt)")
        ax.set_ylabel(METRIC)
        ax.set_title(f"{name} test, rerank top-100")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", type=int, nargs="*", default=[1, 3, 10])
    parser.add_argument("--train-queries", type=int, default=500,
                        help="seeded sample of train queries the adapter is fitted on (all: 0)")
    parser.add_argument("--maxsim-doc-tokens", default=None,
                        help="embedding-cache entry holding the corpus's MiniLM token vectors")
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmarks/e2rank.png"))
    parser.add_argument("--json", type=Path, default=Path("results/bench_e2rank.json"))
    args = parser.parse_args()
    common.report_load()
    args.train_queries = args.train_queries or None
    torch.set_num_threads(args.threads)
    results = {name: run_dataset(name, args) for name in args.datasets}
    common.write_json(args.json, args, results)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
