"""E2Rank reranking (listwise-prompt embedding as the query) vs the MiniLM first stage, with the
supervised control that isolates the prompt, and MaxSim.

    python benchmarks/bench_e2rank.py --datasets scifact --no-maxsim
    python benchmarks/bench_e2rank.py --datasets python-stdlib

First stage: all-MiniLM-L6-v2 (encoder ``minilm``, the benchmarks' ONNX configuration) embeddings of
the whole corpus and the test queries from ``benchmarks/common.py`` (the shared embedding cache),
exact cosine search (core ``exact`` index), top ``--k``. Every reranker reorders that top ``--k``
(tail kept). A seeded sample of ``--train-queries`` train queries is split once: ``--select`` of
them are held out to choose ``query_weight`` (the mix ``(1 - w) cos(prompt, d) + w cos(query, d)``,
over 0, 0.25, 0.5, 0.75, 1) by nDCG@10, the rest train the adapter. Rows:

* ``e2rank`` training-free: cosine between each candidate's MiniLM embedding (reused from the
  first stage's cache entry) and the MiniLM embedding of the listwise prompt of the query and the
  first-stage top K (default K=5, 40 words per document): the paper's scoring (``query_weight``
  0) and the chosen ``query_weight``;
* ``e2rank`` trained: the same with the query-side linear adapter (InfoNCE + 2 x RankNet, the
  first-stage top-100 as hard negatives, 10% of its queries held out for early stopping): the
  paper's scoring and the chosen ``query_weight``;
* the **control** ``adapter only`` (``query_weight`` 1: the same trained adapter on the plain query,
  no prompt): what the supervision gives without the paper's contribution, the listwise prompt.
  The trained rows are also tested against it;
* ``maxsim`` (unless ``--no-maxsim``): the embedlab-transformers ColBERT-style MaxSim over MiniLM
  token vectors (256 word pieces); ``--maxsim-doc-tokens`` fills its memory from a cache entry.

Columns: nDCG@10 on the test qrels and on the unseen subset (:mod:`embedlab.splits`; on
python-stdlib every test query is unseen), difference to the first stage with Holm-corrected paired
t-test and Wilcoxon p-values (``embedlab.stats``), and the extra wall time per query of one batched
rerank call (the first e2rank row pays the prompt encodings; the others reuse them, memoised in this
process). ``--sweep``: nDCG@10 of training-free e2rank against K, with the mean number of prompt
documents that fit whole in MiniLM's 256 word pieces. All in one process, ``--threads`` torch threads.
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
from embedlab.sampling import sample_positions
from embedlab.stats import compare_systems
from embedlab.training import holdout_split

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


WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def make(params: dict, threads: int, adapter: np.ndarray | None = None) -> E2Rank:
    """An e2rank reranker on the shared cache whose query-side encodings are memoised in-process
    (several variants rerank the same prompts; only the first run's latency is reported)."""
    quiet = {"num_threads": threads, "show_progress": False, **common.ENCODER_PARAMS["minilm"]}
    reranker = E2Rank(encoder_params=quiet, **params)
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
    rows = sample_positions(len(ranking), n, seed)
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


def split_train(ranking: Ranking, select: float, seed: int) -> tuple[Ranking, Ranking]:
    """(fit, held-out) parts of the training ranking: the held-out queries choose ``query_weight``."""
    order = np.random.default_rng(seed).permutation(len(ranking))
    fit_rows, held_rows = holdout_split(order, select)
    part = lambda rows: Ranking(ranking.query_ids[np.sort(rows)], ranking.doc_ids[np.sort(rows)],  # noqa: E731
                                ranking.scores[np.sort(rows)])
    return part(fit_rows), part(held_rows)


def choose_weight(adapter: np.ndarray | None, held: Ranking, split, corpus, threads: int) -> tuple[float, dict]:
    """The ``query_weight`` with the best nDCG@10 on the held-out training queries (averaged over
    those queries only, not over every training query's judgments)."""
    held_ids = set(map(str, held.query_ids))
    qrels = {query: judged for query, judged in split.qrels.items() if str(query) in held_ids}
    scores = {w: evaluate(make({"query_weight": w}, threads, adapter).rerank(held, split.queries, corpus),
                          qrels, [METRIC]).aggregates[METRIC] for w in WEIGHTS}
    return max(scores, key=lambda w: (scores[w], -w)), scores


def run_dataset(name: str, args) -> dict:
    dataset = common.load(name)
    test, corpus, train_split = dataset.split("test"), dataset.corpus, dataset.split("train")
    ranking = first_stage(dataset, "test", args.k)
    fit_ranking, held_ranking = split_train(train_subset(first_stage(dataset, "train", args.k), args.train_queries),
                                            args.select, args.seed)
    unseen = common.encode_split(dataset, "test").unseen_qrels(common.encode_split(dataset, "train"))
    unseen = unseen if len(unseen) < len(test.qrels) else {}  # python-stdlib: every test query is unseen
    per_query = {"first stage": evaluate(ranking, test.qrels, [METRIC])}
    latency: dict[str, str] = {"first stage": "-"}
    base = {"k": args.k}
    outputs: dict[str, Ranking] = {"first stage": ranking}

    def add(label: str, reranker, cold_warm: bool = False) -> None:
        out, ms = timed_rerank(reranker, ranking, test.queries, corpus)
        if cold_warm:
            out, warm = timed_rerank(reranker, ranking, test.queries, corpus)
            latency[label] = f"{ms:.0f} cold / {warm:.0f} warm"
        else:
            latency[label] = f"{ms:.0f}"
        per_query[label], outputs[label] = evaluate(out, test.qrels, [METRIC]), out
        print(f"  {label}: {per_query[label].aggregates[METRIC]:.4f} ({latency[label]} ms/q)", flush=True)

    print(f"{name}: {len(ranking)} test queries ({len(unseen) or 'all'} unseen), first stage "
          f"{per_query['first stage'].aggregates[METRIC]:.4f}; train queries: {len(fit_ranking)} fit the adapter, "
          f"{len(held_ranking)} held out to choose query_weight", flush=True)
    free_weight, free_scores = choose_weight(None, held_ranking, train_split, corpus, args.threads)
    add("e2rank free (paper scoring, query_weight 0)", make(base, args.threads))
    add(f"e2rank free, query_weight {free_weight:g} (chosen)", make({**base, "query_weight": free_weight},
                                                                   args.threads))
    trained = make(base, args.threads)
    start = time.perf_counter()
    trained.fit(fit_ranking, train_split, corpus)
    fit_s = time.perf_counter() - start
    epochs = len(trained.history["held_out"])
    print(f"  adapter trained on {len(fit_ranking)} train queries in {fit_s:.0f} s, {epochs} epochs", flush=True)
    weight, weight_scores = choose_weight(trained.adapter, held_ranking, train_split, corpus, args.threads)
    print(f"  held-out train {METRIC} by query_weight: free "
          + ", ".join(f"{w:g}: {v:.4f}" for w, v in free_scores.items()) + "; trained "
          + ", ".join(f"{w:g}: {v:.4f}" for w, v in weight_scores.items()), flush=True)
    add("e2rank trained (paper scoring, query_weight 0)", trained)
    add(f"e2rank trained, query_weight {weight:g} (chosen)", make({**base, "query_weight": weight}, args.threads,
                                                                  trained.adapter))
    add("control: adapter only, no prompt (query_weight 1)",
        make({**base, "query_weight": 1.0}, args.threads, trained.adapter))
    if args.maxsim:
        maxsim = embedlab.create("reranker", "maxsim", k=args.k, max_length=256, num_threads=args.threads,
                                 show_progress=True)
        if args.maxsim_doc_tokens:
            warm_maxsim(maxsim, args.maxsim_doc_tokens, ranking, corpus)
        add(f"maxsim k={args.k}", maxsim, cold_warm=not args.maxsim_doc_tokens)

    values = {label: result.query_values(METRIC) for label, result in per_query.items()}
    stats = {c.system: c for c in compare_systems({k: v for k, v in values.items() if k != "first stage"},
                                                  values["first stage"], baseline_name="first stage")}
    control = "control: adapter only, no prompt (query_weight 1)"
    against_control = {c.system: c for c in compare_systems(
        {k: values[k] for k in values if k.startswith("e2rank trained")}, values[control], baseline_name="control")}
    unseen_values = {label: evaluate(out, unseen, [METRIC]).query_values(METRIC)
                     for label, out in outputs.items()} if unseen else {}
    print(f"\n{name} (n={len(ranking)}), rerank depth {args.k}, adapter fitted on {len(fit_ranking)} "
          f"train queries in {fit_s:.0f} s / {epochs} epochs; query_weight chosen on {len(held_ranking)} held-out "
          f"train queries; p: Holm-corrected over the rows; load average {common.load_text()}")
    print(f"| system | {METRIC} | vs first stage | p (t, Holm) | p (Wilcoxon, Holm) | +/-/= | vs adapter only (p t) | "
          f"unseen {METRIC} ({len(unseen)} q) | extra ms/query |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, value in values.items():
        c = stats.get(label)
        cells = (f"{c.mean_difference:+.4f} | {c.p_ttest_holm:.2g} | {c.p_wilcoxon_holm:.2g} | "
                 f"{c.improved}/{c.degraded}/{c.tied}") if c else "- | - | - | -"
        versus = against_control.get(label)
        versus_cell = f"{versus.mean_difference:+.4f} ({versus.p_ttest_holm:.2g})" if versus else ""
        unseen_cell = f"{np.mean(list(unseen_values[label].values())):.4f}" if unseen else "(all unseen)"
        print(f"| {label} | {np.mean(list(value.values())):.4f} | {cells} | {versus_cell} | {unseen_cell} | "
              f"{latency[label]} |")

    sweep = {"free": {}, "fit": {}}
    if args.sweep:
        print(f"\nK sweep ({name}): | K | prompt docs fitting whole in 256 word pieces | {METRIC} free |")
    for k_docs in sorted(args.sweep):
        free = make({**base, "prompt_docs": k_docs}, args.threads)
        sweep["fit"][k_docs] = fitting_docs(free, ranking, test.queries, corpus)
        out = free.rerank(ranking, test.queries, corpus)
        sweep["free"][k_docs] = evaluate(out, test.qrels, [METRIC]).aggregates[METRIC]
        print(f"| {k_docs} | {sweep['fit'][k_docs]:.2f} | {sweep['free'][k_docs]:.4f} |", flush=True)
    return {"first": float(np.mean(list(values["first stage"].values()))), "sweep": sweep,
            "rows": {label: float(np.mean(list(v.values()))) for label, v in values.items()},
            "unseen": {label: float(np.mean(list(v.values()))) for label, v in unseen_values.items()},
            "query_weight": {"free": free_weight, "trained": weight}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        labels = list(result["rows"])
        ax.barh(range(len(labels)), [result["rows"][label] for label in labels], color="tab:blue",
                label="test (all)")
        if result["unseen"]:
            ax.scatter([result["unseen"][label] for label in labels], range(len(labels)), color="tab:red",
                       zorder=3, label="unseen subset")
        ax.axvline(result["first"], color="grey", linestyle="--")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel(METRIC)
        ax.set_title(f"{name} test, rerank of MiniLM top-100")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", type=int, nargs="*", default=[],
                        help="training-free K sweep (prompt documents), e.g. 1 3 5 10")
    parser.add_argument("--train-queries", type=int, default=800,
                        help="seeded sample of train queries (all: 0); --select of them choose query_weight")
    parser.add_argument("--select", type=float, default=0.2,
                        help="share of the sampled train queries held out to choose query_weight (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-maxsim", dest="maxsim", action="store_false", help="leave out the maxsim row")
    parser.add_argument("--maxsim-doc-tokens", default=None,
                        help="embedding-cache entry holding the corpus's MiniLM token vectors")
    parser.add_argument("--plot", type=Path)
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
