"""BiDR's contrastive quantisation against FAISS PQ/OPQ + IndexRefineFlat at equal code bytes.

    python benchmarks/bench_bidr_training.py --datasets scifact python-stdlib --m 32 --seeds 0 1 2 \\
        --json results/bench_bidr_training.json

For each dataset (cached MiniLM vectors), seed and ``--m`` (bytes of code per document in memory),
the codebooks are trained on the *train* split's queries (BiDR's stage 1 on frozen vectors:
:mod:`embedlab_bidr.contrastive`) and everything is evaluated on the *test* split, on all test
queries and on the unseen subset (test queries none of whose relevant documents is relevant to a
training query). Rows:

* ``FAISS PQ{m} + RefineFlat`` and ``FAISS OPQ{m},PQ{m} + RefineFlat``: FAISS's own two-tier
  search (codes find ``k_factor * k`` candidates, the float vectors, in RAM there, re-score them);
* ``bidr OPQ (untrained)``: the bidr index with the core ``pq`` compressor ``opq=True`` (FAISS's
  OPQ training, the start of the contrastive training);
* ``bidr contrastive PQ``: the same after contrastive quantisation (codebooks only; the
  document encoder stays frozen, unlike the paper).

Columns: recall@100 of the relevant documents in the code tier alone (the paper's quantisation
ablation reports R@100), nDCG@10 from the codes alone and after re-scoring N candidates, the
unseen subset's nDCG@10, recall@10 against exact search. The learning rate is chosen among
``--lr`` by the held-out *training* queries' code-tier recall@100 (first seed), then used for every
seed. Paired tests: per-query values averaged over the seeds, contrastive vs each FAISS row, t-test
and Wilcoxon, Holm-corrected.
"""

from __future__ import annotations

import argparse
import copy
import time

import common
import faiss
import numpy as np
from embedlab_bidr import BiDRIndex
from embedlab_bidr.contrastive import ContrastiveSettings, train_contrastive_pq

from embedlab import Ranking, SearchResult
from embedlab.metrics import evaluate
from embedlab.pq_compressor import PQCompressor
from embedlab.stats import holm, paired_tests


def positions(split: common.EncodedSplit) -> list[list[int]]:
    """Relevant corpus positions of every query of ``split`` (grade > 0)."""
    where = {d: i for i, d in enumerate(split.doc_ids)}
    qrels = split.qrels
    return [[where[d] for d, g in qrels.get(q, {}).items() if g > 0 and d in where] for q in split.query_ids]


def code_recall(top: np.ndarray, relevant: list[list[int]]) -> dict[int, float]:
    """Per query (row), the share of its relevant positions among ``top``."""
    return {i: len(set(row.tolist()) & set(rel)) / len(rel) for i, (row, rel) in enumerate(zip(top, relevant)) if rel}


def faiss_rows(factory: str, docs: np.ndarray, queries: np.ndarray, seed: int, sizes: list[int]) -> dict:
    index = faiss.index_factory(docs.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    quantiser = faiss.downcast_index(index.index if isinstance(index, faiss.IndexPreTransform) else index)
    quantiser.pq.cp.seed = seed
    index.train(docs)
    refine = faiss.IndexRefineFlat(index)    # wraps the empty base: FAISS requires both to hold the same rows
    refine.add(docs)                         # adds the codes to the base and the vectors to the flat refine index
    codes_top = index.search(queries, 100)[1]
    results = {0: SearchResult(*index.search(queries, 10))}
    for n in sizes:
        refine.k_factor = n / 10
        results[n] = SearchResult(*refine.search(queries, 10))
    return {"codes_top": codes_top, "results": results, "bytes": index.sa_code_size()}


def bidr_rows(pq: PQCompressor, docs: np.ndarray, queries: np.ndarray, sizes: list[int]) -> dict:
    scores = pq.score(queries, pq.encode(docs))
    codes_top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    index = BiDRIndex(candidates=10)
    index.use_compressor(pq)
    index.build(docs)
    results = {0: index.search_codes(queries, k=10)}
    for n in sizes:
        results[n] = index.search(queries, k=10, candidates=n)
    return {"codes_top": codes_top, "results": results, "bytes": pq.bytes_per_vector}


def train_pq(start: PQCompressor, seed: int, lr: float, train: common.EncodedSplit, docs: np.ndarray,
             relevant: list[list[int]], args: argparse.Namespace) -> tuple[PQCompressor, dict, float]:
    """A copy of the fitted ``start`` with contrastively trained codebooks."""
    pq = copy.deepcopy(start)
    begin = time.perf_counter()
    settings = ContrastiveSettings(epochs=args.epochs, lr=lr, seed=seed, num_threads=args.threads,
                                   tau=args.tau, temperature=args.temperature, show_progress=False)
    record = train_contrastive_pq(pq, docs, train.queries, relevant, settings)
    return pq, record, time.perf_counter() - begin


def run_dataset(name: str, args: argparse.Namespace) -> list[dict]:
    dataset = common.load(name)
    test, train = common.encode_split(dataset, "test"), common.encode_split(dataset, "train")
    docs, queries = test.docs, test.queries
    train_relevant, test_relevant = positions(train), positions(test)
    unseen = test.unseen_qrels(train)
    unseen_rows = {i for i, q in enumerate(test.query_ids) if q in unseen}
    exact = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :10]
    print(f"\n## {name}: {len(docs)} documents; {len(train.queries)} train queries, {len(queries)} test queries "
          f"({len(unseen)} unseen); m = {args.m}; seeds {args.seeds}")
    starts = {seed: PQCompressor(m=args.m, opq=True, seed=seed, iterations=25).fit(docs) for seed in args.seeds}
    lr, grid = args.lr[0], {}
    if len(args.lr) > 1:
        print("\n| lr | held-out train recall@100 (start -> best) | best epoch | fit s |\n|---|---|---|---|")
        held = []
        for candidate in args.lr:
            grid[candidate] = train_pq(starts[args.seeds[0]], args.seeds[0], candidate, train, docs, train_relevant,
                                       args)
            values, record = grid[candidate][1]["validation_recall"], grid[candidate][1]
            held.append(max(values))
            print(f"| {candidate:g} | {values[0]:.4f} -> {held[-1]:.4f} | {record['best_epoch']} | "
                  f"{grid[candidate][2]:.1f} |", flush=True)
        lr = args.lr[int(np.argmax(held))]
        print(f"chosen on held-out training queries: lr = {lr:g}")
    rows = []
    for seed in args.seeds:
        factories = {"PQ": f"PQ{args.m}", "OPQ": f"OPQ{args.m},PQ{args.m}"}
        systems = {f"FAISS {factories[kind]} + RefineFlat": faiss_rows(factories[kind], docs, queries, seed,
                                                                       args.candidates) for kind in args.faiss}
        systems["bidr OPQ (untrained)"] = bidr_rows(starts[seed], docs, queries, args.candidates)
        # the first seed's run of the chosen rate is the grid's (same start, seed and data)
        trained, record, fit = grid[lr] if seed == args.seeds[0] and lr in grid else \
            train_pq(starts[seed], seed, lr, train, docs, train_relevant, args)
        systems["bidr contrastive PQ"] = bidr_rows(trained, docs, queries, args.candidates)
        print(f"seed {seed}: contrastive training {fit:.1f} s, best epoch {record['best_epoch']}, held-out recall "
              f"{record['validation_recall'][0]:.4f} -> {max(record['validation_recall']):.4f}", flush=True)
        for method, system in systems.items():
            row = {"dataset": name, "seed": seed, "method": method, "bytes": system["bytes"],
                   "code_recall100": code_recall(system["codes_top"], test_relevant)}
            for n, result in system["results"].items():
                ranking = Ranking.from_search(test.query_ids, result, test.doc_ids)
                row[f"ndcg_{n}"] = evaluate(ranking, test.qrels, ["nDCG@10"]).query_values("nDCG@10")
                row[f"unseen_{n}"] = evaluate(ranking, unseen, ["nDCG@10"]).query_values("nDCG@10") if unseen else {}
                row[f"recall10_{n}"] = common.recall_at_k(exact, result.indices, 10)
            rows.append(row)
    print_tables(rows, args.candidates, unseen_rows)
    return rows


def seed_mean(rows: list[dict], method: str, key: str) -> dict:
    group = [r[key] for r in rows if r["method"] == method]
    return {q: float(np.mean([g[q] for g in group])) for q in group[0]}


def mean(values: dict) -> float:
    return float(np.mean(list(values.values()))) if values else float("nan")


def print_tables(rows: list[dict], sizes: list[int], unseen_rows: set[int]) -> None:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    columns = [0, *sizes]
    print("\n| method | code bytes | code-tier R@100 (all; unseen) | "
          + " | ".join(f"nDCG@10 {'codes' if n == 0 else f'N={n}'}" for n in columns)
          + f" | unseen nDCG@10 codes / N={sizes[-1]} | recall@10 vs exact, codes / N={sizes[0]} |")
    print("|---|---|---|" + "---|" * len(columns) + "---|---|")
    for method in methods:
        group = [r for r in rows if r["method"] == method]
        recall = [mean(r["code_recall100"]) for r in group]
        recall_unseen = [np.mean([v for i, v in r["code_recall100"].items() if i in unseen_rows]) for r in group]
        cells = [f"{np.mean([mean(r[f'ndcg_{n}']) for r in group]):.4f}" for n in columns]
        print(f"| {method} | {group[0]['bytes']} | {np.mean(recall):.4f}; {np.mean(recall_unseen):.4f} | "
              + " | ".join(cells)
              + f" | {np.mean([mean(r['unseen_0']) for r in group]):.4f} / "
                f"{np.mean([mean(r[f'unseen_{sizes[-1]}']) for r in group]):.4f} | "
                f"{np.mean([r['recall10_0'] for r in group]):.3f} / "
                f"{np.mean([r[f'recall10_{sizes[0]}'] for r in group]):.3f} |")
    ours = "bidr contrastive PQ"
    tests = []
    for key in ("code_recall100", "ndcg_0", f"ndcg_{sizes[0]}", "unseen_0"):
        for baseline in methods:
            if baseline == ours:
                continue
            a, b = seed_mean(rows, ours, key), seed_mean(rows, baseline, key)
            if a and b:
                tests.append((key, baseline, paired_tests(a, b)))
    p_t, p_w = holm([t.p_ttest for *_, t in tests]), holm([t.p_wilcoxon for *_, t in tests])
    print(f"\n{ours} vs each row: per-query values averaged over the seeds (Holm across this table)")
    print("\n| measure | vs | difference | p t-test | p Wilcoxon | queries better / worse |\n|---|---|---|---|---|---|")
    for (key, baseline, test), pt, pw in zip(tests, p_t, p_w):
        print(f"| {key} | {baseline} | {test.mean_difference:+.4f} | {pt:.2g} | {pw:.2g} | "
              f"{test.improved} / {test.degraded} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--m", type=int, default=32, help="code bytes per document")
    parser.add_argument("--candidates", nargs="+", type=int, default=[20, 50, 100], help="N re-scored")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--lr", nargs="+", type=float, default=[1e-3, 3e-3],
                        help="Adam learning rates of the codebooks, chosen on held-out training queries")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--tau", type=float, default=0.01, help="softness of the codeword assignment")
    parser.add_argument("--temperature", type=float, default=0.05, help="InfoNCE temperature")
    parser.add_argument("--faiss", nargs="+", default=["PQ", "OPQ"], choices=["PQ", "OPQ"],
                        help="FAISS baselines (each + IndexRefineFlat); an OPQ fit is ~3 min at one thread")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(args.threads)
    rows = [row for name in args.datasets for row in run_dataset(name, args)]
    if args.json:
        common.write_json(args.json, args, rows)


if __name__ == "__main__":
    main()
