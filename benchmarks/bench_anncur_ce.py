"""ANNCUR (embedlab-anncur) with a real cross-encoder as the expensive scorer: the yes/no
cross-encoder of embedlab-qwen3 trained on SciFact train, against retrieve-and-rerank.

    python benchmarks/bench_anncur_ce.py --model results/yesno-scifact [--docs 1000]
        [--test-queries 50] [--anchors 50] [--max-length 128] [--threads 1] [--minutes 20]
        [--kq 10 25 50] [--ki 5 10 20 30 50] [--budgets 10 20 30 50 100 200] [--rcond 1e-3]
        [--plot docs/benchmarks/anncur_ce_recall.png] [--json docs/benchmarks/anncur_ce.json]

Scoring every (query, document) pair with a cross-encoder costs ~10-30 ms per pair on one CPU
thread, so the experiment is sized down (ANNCUR's claim is about the number of scorer calls, not
the corpus): a SciFact sub-corpus of ``--docs`` documents (the relevant abstracts of the sampled
test claims plus a seeded uniform sample of the others), ``--test-queries`` test claims and an
anchor pool of ``--anchors`` training claims (seeded samples). The cross-encoder scores every test
and anchor claim against every sub-corpus document once, at ``--max-length`` tokens per pair, ONNX
Runtime with ``--threads`` threads, through ``embedlab_anncur.score_all`` (the code path the
``anncur`` encoder uses). Each claim's row of scores is written to disk as soon as it is done
(beside the embedding cache, keyed by the model's weights, the pair length and the sub-corpus), so
a run stopped by ``--minutes`` or killed resumes where it stopped; test and anchor rows alternate,
so a partial run is a smaller complete experiment (the sizes used are printed).

Truth: each test claim's exact cross-encoder top 10 over the sub-corpus. A method that spends B
cross-encoder calls per claim is scored by the recall of that top 10 after exactly reranking its
candidates (ANNCUR's "top-k recall vs number of CE calls"):

* **MiniLM top-B + CE rerank** (all-MiniLM-L6-v2, exact inner product; the paper's dual-encoder
  retrieve-and-rerank, here a zero-shot bi-encoder rather than one distilled from the CE);
* **BM25 top-B + CE rerank** (embedlab-bm25 fitted on the sub-corpus; the paper's TF-IDF baseline);
* **ANNCUR** (the ``anncur`` encoder through its normal ``fit``/``encode`` code path, scorer calls
  looked up from the stored rows): ``k_q`` anchor claims, ``k_i`` anchor documents, the top
  ``k_r = B - k_i`` of the approximate scores reranked. ``k_i`` per budget is chosen by 5-fold
  cross-validation on the *anchor pool* (training claims held out of the anchors, whose exact rows
  are known), never on the test claims; the test curve of every ``k_i`` is printed too;
* **document prior** (a control for how query-dependent the scorer is): documents ranked by their
  mean cross-encoder score over the anchor claims (no test-time call), top B reranked.

The same comparison is repeated on the **cross-encoder minus that document prior** (each score
minus the document's mean anchor score: the query-dependent part of the scorer, linear in the
rows, so ANNCUR's factorisation of it costs the same calls), since a scorer whose top 10 is
mostly the same documents for every claim makes the task easy for any method that sees its rows.

A check at the start runs the ``anncur`` encoder with the real cross-encoder as its scorer on a
small slice and compares its vectors with the lookup path (and the stored rows with fresh scores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import common
import numpy as np
from bench_anncur import TOP, LookupScorer, recall, register, top
from embedlab_anncur import Anncur, score_all

import embedlab
from embedlab import Corpus, Queries, Ranking
from embedlab.atomic import atomic_file, write_file_atomically
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate
from embedlab.persistence import sha256_file


def sample_setup(dataset: embedlab.Dataset, args: argparse.Namespace) -> tuple[Corpus, Queries, Queries, dict]:
    """The sub-corpus (relevant abstracts of the sampled test claims + a seeded fill), the sampled
    test claims with their qrels restricted to it, and the anchor pool (sampled training claims)."""
    rng = np.random.default_rng(args.seed)
    test, train = dataset.split("test"), dataset.split("train")
    chosen = np.sort(rng.choice(len(test.queries), min(args.test_queries, len(test.queries)), replace=False))
    test_q = Queries(test.queries.ids[chosen], [test.queries.texts[i] for i in chosen])
    relevant = sorted({dataset.corpus.position[d] for q in test_q.ids.tolist() for d in test.qrels[q]
                       if d in dataset.corpus.position})
    others = np.setdiff1d(np.arange(len(dataset.corpus)), relevant)
    fill = rng.choice(others, max(0, args.docs - len(relevant)), replace=False)
    positions = np.sort(np.concatenate([relevant, fill]).astype(np.int64))
    documents = dataset.corpus.documents()
    corpus = Corpus(dataset.corpus.ids[positions], [documents[p] for p in positions])
    pool = np.sort(rng.choice(len(train.queries), min(args.anchors, len(train.queries)), replace=False))
    anchors = Queries(train.queries.ids[pool], [train.queries.texts[i] for i in pool])
    qrels = {q: dict(test.qrels[q]) for q in test_q.ids.tolist()}
    return corpus, test_q, anchors, {"positions": positions, "qrels": qrels, "relevant": len(relevant)}


class RowStore:
    """One ``.npy`` file of cross-encoder scores per claim (atomic: temp file + rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.timing = folder / "timing.json"

    def path(self, role: str, query_id: str) -> Path:
        return self.folder / f"{role}-{query_id}.npy"

    def has(self, role: str, query_id: str) -> bool:
        return self.path(role, query_id).is_file()

    def get(self, role: str, query_id: str) -> np.ndarray:
        return np.load(self.path(role, query_id), allow_pickle=False)

    def put(self, role: str, query_id: str, row: np.ndarray, seconds: float) -> None:
        with atomic_file(self.path(role, query_id)) as handle:
            np.save(handle, row, allow_pickle=False)
        totals = self.totals()
        totals["pairs"] += row.size
        totals["seconds"] += seconds
        write_file_atomically(self.timing, json.dumps(totals))

    def totals(self) -> dict[str, float]:
        return json.loads(self.timing.read_text()) if self.timing.is_file() else {"pairs": 0, "seconds": 0.0}


def store_for(model: Path, args: argparse.Namespace, corpus: Corpus) -> RowStore:
    weights = sha256_file(model / "model.safetensors")
    key = f"{weights}|{args.max_length}|{corpus.content_hash}".encode()
    return RowStore(EmbeddingCache().root.parent / "bench_anncur_ce" / hashlib.sha256(key).hexdigest()[:20])


def score_rows(scorer: object, store: RowStore, corpus: Corpus, test: Queries, anchors: Queries,
               minutes: float) -> bool:
    """Score missing rows, test and anchor claims alternating, until done or ``minutes`` pass.
    Returns True when every row is stored."""
    order = []
    for i in range(max(len(test), len(anchors))):
        order += [("test", test, i)] if i < len(test) else []
        order += [("anchor", anchors, i)] if i < len(anchors) else []
    missing = [(role, part, i) for role, part, i in order if not store.has(role, part.ids[i])]
    print(f"cross-encoder rows: {len(order) - len(missing)} of {len(order)} stored, {len(missing)} to score "
          f"({len(missing) * len(corpus):,} pairs)", flush=True)
    deadline = time.monotonic() + 60 * minutes
    for n, (role, part, i) in enumerate(missing):
        if time.monotonic() > deadline:
            print(f"stopped after {minutes:g} minutes: {len(missing) - n} rows left; rerun the same command "
                  "to continue", flush=True)
            return False
        start = time.perf_counter()
        row = score_all(scorer, Queries(part.ids[i:i + 1], part.texts[i:i + 1]), corpus, queries_per_call=1)[0]
        store.put(role, part.ids[i], row, time.perf_counter() - start)
        if n % 5 == 4 or n == len(missing) - 1:
            totals = store.totals()
            print(f"  {n + 1}/{len(missing)} rows, {1e3 * totals['seconds'] / totals['pairs']:.1f} ms/pair "
                  f"(load {common.load_text()})", flush=True)
    return True


def stored(store: RowStore, role: str, part: Queries) -> tuple[Queries, np.ndarray]:
    """The claims of ``part`` whose rows are stored (a prefix, as rows are scored in order), and the rows."""
    done = [i for i in range(len(part)) if store.has(role, part.ids[i])]
    rows = np.stack([store.get(role, part.ids[i]) for i in done]) if done else np.zeros((0, 0))
    return Queries(part.ids[done], [part.texts[i] for i in done]), rows


def anncur_candidates(texts: list[str], anchor_texts: list[str], query_texts: list[str], k_q: int, k_i: int,
                      rcond: float, seed: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit ANNCUR (lookup scorer) and return each query's top ``depth`` approximate candidates and the
    anchor items."""
    anncur = Anncur(k_q=k_q, k_i=k_i, seed=seed, rcond=rcond, scorer={"name": LookupScorer.name},
                    show_progress=False)
    anncur.fit(texts, anchor_queries=anchor_texts)
    approx = anncur.encode_queries(query_texts) @ anncur.encode_documents(texts).T
    return top(approx, min(depth, len(texts))), anncur.anchor_items


def curve(found: np.ndarray, truth: np.ndarray, k_i: int, budgets: list[int]) -> dict[int, float]:
    """Recall of the exact top 10 at each budget ``B`` (the top ``B - k_i`` candidates reranked)."""
    return {b: recall(truth, list(found[:, :b - k_i])) for b in budgets if b - k_i >= TOP}


def cross_validate(texts: list[str], pool: Queries, pool_rows: np.ndarray, k_q: int, ki: list[int],
                   budgets: list[int], rcond: float, seed: int, folds: int = 5) -> dict[int, dict[int, float]]:
    """Mean recall per (k_i, budget) over ``folds`` folds of the anchor pool: ``k_q`` anchors drawn
    from the other folds (at most their number), held-out claims = this fold (exact rows known)."""
    order = np.random.default_rng(seed).permutation(len(pool))
    totals: dict[int, dict[int, float]] = {}
    for fold in np.array_split(order, folds):
        kept = np.setdiff1d(order, fold)
        truth = top(pool_rows[fold], TOP)
        for k_i in ki:
            found, _ = anncur_candidates(texts, [pool.texts[i] for i in kept], [pool.texts[i] for i in fold],
                                         min(k_q, len(kept)), k_i, rcond, seed, max(budgets))
            for b, value in curve(found, truth, k_i, budgets).items():
                totals.setdefault(k_i, {}).setdefault(b, 0.0)
                totals[k_i][b] += value * len(fold) / len(pool)
    return totals


def best_ki(cv: dict[int, dict[int, float]], budgets: list[int]) -> dict[int, int]:
    """Per budget, the k_i with the best cross-validated recall (ties: the smaller k_i)."""
    return {b: max((k for k in cv if b in cv[k]), key=lambda k, b=b: (cv[k][b], -k)) for b in budgets
            if any(b in v for v in cv.values())}


def check_real_scorer(spec: dict, store: RowStore, corpus: Corpus, test: Queries, anchors: Queries,
                      rcond: float) -> None:
    """The ``anncur`` encoder with the real cross-encoder as scorer on a 60-document slice equals
    the lookup path (relative to the largest value); stored rows equal fresh scores."""
    texts = corpus.documents()[:60]
    pool = [anchors.texts[i] for i in range(5)]
    real = Anncur(k_q=5, k_i=5, seed=0, rcond=rcond, scorer=spec, show_progress=False).fit(texts, anchor_queries=pool)
    lookup = Anncur(k_q=5, k_i=5, seed=0, rcond=rcond, scorer={"name": LookupScorer.name},
                    show_progress=False).fit(texts, anchor_queries=pool)
    queries = list(test.texts[:2])
    fresh = real.scorer.score_pairs([test.texts[0]] * 8, corpus.documents()[:8])
    pairs = [(real.encode_documents(texts), lookup.encode_documents(texts)),
             (real.encode_queries(queries), lookup.encode_queries(queries)),
             (fresh, store.get("test", test.ids[0])[:8])]
    gaps = [float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)) for a, b in pairs]
    print(f"check: anncur with the real cross-encoder vs the lookup path, max relative |diff| E {gaps[0]:.1e}, "
          f"c_q {gaps[1]:.1e}; stored rows vs fresh scores {gaps[2]:.1e}; {real.scorer_calls} cross-encoder "
          "calls", flush=True)
    assert max(gaps) < 1e-3, "the stored rows or the lookup path differ from the real scorer"


def describe_scores(test_rows: np.ndarray, truth: np.ndarray, prior: np.ndarray) -> None:
    """How query-dependent the cross-encoder's top 10 is: overlap between claims' top-10 lists, with
    the query-independent prior's top 10, and the share of the score matrix in its first singular
    direction (uncentred, and after removing each document's mean score)."""
    sets = [set(t.tolist()) for t in truth]
    pairs = [len(a & b) / TOP for i, a in enumerate(sets) for b in sets[i + 1:]]
    prior_top = set(top(prior[:1], TOP)[0].tolist())
    singular = np.linalg.svd(test_rows, compute_uv=False)
    centred = np.linalg.svd(test_rows - test_rows.mean(axis=0), compute_uv=False)
    print(f"cross-encoder top-{TOP} lists: mean overlap between two test claims {np.mean(pairs):.3f}, with the "
          f"document prior's top-{TOP} {np.mean([len(s & prior_top) / TOP for s in sets]):.3f}; first singular "
          f"direction holds {singular[0] ** 2 / (singular ** 2).sum():.3f} of the score matrix's energy "
          f"({centred[0] ** 2 / (centred ** 2).sum():.3f} after removing each document's mean)")


def ndcg(query_ids: np.ndarray, doc_ids: np.ndarray, scores: np.ndarray, qrels: dict) -> float:
    order = top(scores, TOP)
    ranking = Ranking(query_ids, doc_ids[order], np.take_along_axis(scores, order, axis=1))
    return float(evaluate(ranking, qrels, ["nDCG@10"]).aggregates["nDCG@10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a trained yes/no cross-encoder (saved state)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--test-queries", type=int, default=50)
    parser.add_argument("--anchors", type=int, default=50, help="anchor pool (training claims scored exactly)")
    parser.add_argument("--max-length", type=int, default=128, help="cross-encoder tokens per pair")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=20.0, help="stop scoring after this (resumable)")
    parser.add_argument("--kq", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--ki", type=int, nargs="+", default=[5, 10, 20, 30, 50])
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 30, 50, 100, 200])
    parser.add_argument("--rcond", type=float, default=1e-3, help="pinv cut-off (1e-3: k_i may equal k_q)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-check", action="store_true", help="skip the real-scorer check (~70 CE calls)")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    common.report_load()
    budgets = sorted(args.budgets)

    dataset = common.load("scifact")
    corpus, test_all, anchors_all, extra = sample_setup(dataset, args)
    spec = {"name": "yesno", "model_path": str(args.model.resolve()), "backend": "onnx",
            "max_length": args.max_length, "num_threads": args.threads, "k": len(corpus), "keep_tail": False,
            "show_progress": False}
    scorer = embedlab.create("reranker", **spec)
    store = store_for(args.model, args, corpus)
    print(f"sub-corpus {len(corpus)} SciFact documents ({extra['relevant']} of them relevant to the "
          f"{len(test_all)} test claims), anchor pool {len(anchors_all)} "
          f"training claims; cross-encoder {args.model} at {args.max_length} tokens, ONNX, "
          f"{args.threads} thread(s); rows in {store.folder}", flush=True)
    complete = score_rows(scorer, store, corpus, test_all, anchors_all, args.minutes)
    test, test_rows = stored(store, "test", test_all)
    pool, pool_rows = stored(store, "anchor", anchors_all)
    if len(test) < 5 or len(pool) < 10:
        print(f"too few rows for the analysis yet ({len(test)} test, {len(pool)} anchor): rerun to continue")
        return
    totals = store.totals()
    per_pair = totals["seconds"] / totals["pairs"]
    texts = corpus.documents()
    rows = {t: r for t, r in zip(test.texts, test_rows)} | {t: r for t, r in zip(pool.texts, pool_rows)}
    register(LookupScorer.name, lambda **p: LookupScorer(rows=rows, doc_texts=texts, **p))
    if not args.no_check:
        check_real_scorer(spec, store, corpus, test, pool, args.rcond)

    n = len(corpus)
    status = "complete" if complete else "PARTIAL (rerun the same command to finish)"
    print(f"\nrows used ({status}): {len(test)} test claims, {len(pool)} anchor claims, {n} documents; "
          f"{totals['pairs']:,} cross-encoder pairs scored in {totals['seconds']:.0f} s = "
          f"{1e3 * per_pair:.1f} ms/pair (under load; load now {common.load_text()})")

    full = common.encode_split(dataset, "test")
    query_rows = [full.query_ids.index(q) for q in test.ids.tolist()]
    dense = full.queries[query_rows] @ full.docs[extra["positions"]].T
    bm25 = embedlab.create("encoder", "bm25")
    bm25.fit(texts)
    lexical = np.asarray((bm25.encode_queries(list(test.texts)) @ bm25.encode_documents(texts).T).toarray())
    qrels = {q: extra["qrels"][q] for q in test.ids.tolist()}
    prior = pool_rows.mean(axis=0)
    print(f"nDCG@10 on the sub-corpus ({len(test)} test claims): cross-encoder exhaustive "
          f"{ndcg(test.ids, corpus.ids, test_rows, qrels):.4f}, cross-encoder minus the document prior "
          f"{ndcg(test.ids, corpus.ids, test_rows - prior, qrels):.4f}, MiniLM "
          f"{ndcg(test.ids, corpus.ids, dense, qrels):.4f}, BM25 {ndcg(test.ids, corpus.ids, lexical, qrels):.4f}")
    describe_scores(test_rows, top(test_rows, TOP), np.broadcast_to(prior, test_rows.shape))
    first_stages = {"MiniLM top-B + CE rerank": dense, "BM25 top-B + CE rerank": lexical}
    results = {}
    for variant, shift in (("cross-encoder", 0.0), ("cross-encoder minus the document prior", prior)):
        stages = dict(first_stages)
        if variant == "cross-encoder":
            stages[f"document prior (mean CE score of the {len(pool)} anchor claims) top-B + CE rerank"] = \
                np.broadcast_to(prior, test_rows.shape)
        rows.update({t: r - shift for t, r in zip(test.texts, test_rows)})
        rows.update({t: r - shift for t, r in zip(pool.texts, pool_rows)})
        results[variant] = compare(variant, texts, test, test_rows - shift, pool, pool_rows - shift, stages, args,
                                   budgets)
    print(f"\nindexing cost of ANNCUR: k_q x {n} cross-encoder calls (k_q={len(pool)}: {len(pool) * n:,} calls, "
          f"~{len(pool) * n * per_pair / 60:.0f} min at the measured rate); exhaustive search: {n} calls per claim")
    if args.plot:
        plot(args.plot, budgets, {v: r[0] for v, r in results.items()}, n, len(test))
    if args.json:
        common.write_json(args.json, args, {"complete": complete, "documents": n, "test_queries": len(test),
                                            "anchor_queries": len(pool), "ms_per_pair": 1e3 * per_pair,
                                            "results": {v: dict(zip(("table", "every", "cv"), r))
                                                        for v, r in results.items()}})


def compare(variant: str, texts: list[str], test: Queries, test_rows: np.ndarray, pool: Queries,
            pool_rows: np.ndarray, stages: dict[str, np.ndarray], args: argparse.Namespace,
            budgets: list[int]) -> tuple[dict, dict, dict]:
    """Recall of the exact top 10 of ``test_rows`` (the lookup scorer serves the same rows) vs calls:
    each first stage's top B reranked, and ANNCUR per k_q with k_i chosen by cross-validation."""
    truth = top(test_rows, TOP)
    table = {label: curve(top(scores, max(budgets)), truth, 0, budgets) for label, scores in stages.items()}
    ki = [k for k in args.ki if k <= len(texts)]
    every: dict[str, dict[int, dict[int, float]]] = {}
    cv: dict[str, dict[int, dict[int, float]]] = {}
    print(f"\n[{variant}] test recall of the exact top-{TOP} by k_q, k_i and budget B = k_i + k_r "
          f"(rcond {args.rcond:g}); k_i per budget chosen by 5-fold cross-validation on the anchor pool "
          "(training claims held out of the anchors), * = chosen")
    print(f"{'k_q':>4} {'k_i':>4} " + " ".join(f"{'B=' + str(b):>7}" for b in budgets))
    for k_q in sorted({min(k, len(pool)) for k in args.kq}):
        cv[str(k_q)] = cv_q = cross_validate(texts, pool, pool_rows, k_q, ki, budgets, args.rcond, args.seed)
        chosen = best_ki(cv_q, budgets)
        every[str(k_q)] = {}
        for k_i in ki:
            found, _ = anncur_candidates(texts, list(pool.texts), list(test.texts), k_q, k_i, args.rcond,
                                         args.seed, max(budgets))
            every[str(k_q)][k_i] = values = curve(found, truth, k_i, budgets)
            print(f"{k_q:>4} {k_i:>4} " + " ".join(
                f"{values[b]:>6.3f}{'*' if chosen.get(b) == k_i else ' '}" if b in values else f"{'-':>7}"
                for b in budgets))
        table[f"ANNCUR k_q={k_q} (k_i by CV)"] = {b: every[str(k_q)][k][b] for b, k in chosen.items()}
    print(f"\n[{variant}] top-{TOP} recall of the exact top-{TOP} vs cross-encoder calls per test claim "
          f"(SciFact sub-corpus of {len(texts)} documents, {len(test)} test claims)")
    print("| method | " + " | ".join(f"B={b}" for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for label, values in table.items():
        print(f"| {label} | " + " | ".join(f"{values[b]:.3f}" if b in values else "-" for b in budgets) + " |")
    return table, every, cv


def plot(path: Path, budgets: list[int], tables: dict[str, dict[str, dict[int, float]]], n: int,
         queries: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6.5 * len(tables), 4.8), sharey=True, squeeze=False)
    for ax, (variant, table) in zip(axes[0], tables.items()):
        for label, values in table.items():
            xs = [b for b in budgets if b in values]
            short = label.replace(" top-B + CE rerank", " top-B").replace(" (mean CE score of the", " (mean over the")
            ax.plot(xs, [values[b] for b in xs], "--s" if label.startswith("ANNCUR") else "-o", label=short)
        ax.set_xscale("log")
        ax.set_xlabel("cross-encoder calls per test claim (B)")
        ax.set_title(f"truth: top-{TOP} of the {variant}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"top-{TOP} recall")
    fig.suptitle(f"ANNCUR vs retrieve-and-rerank, yes/no cross-encoder, SciFact sub-corpus ({n} docs, "
                 f"{queries} claims)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
