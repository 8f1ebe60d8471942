"""The yes/no cross-encoder (embedlab-qwen3 ``yesno``) trained by SFT on a training split, reranking
zero-shot MiniLM's top ``--depth`` test candidates: nDCG@10 before and after on the whole test split
and on the unseen subset (test queries none of whose relevant documents is relevant to a training
query), paired t-test and Wilcoxon per query; the same scores also give rerank depths 20 and 50 (a
prefix of the candidates).

The first stage is MiniLM (ONNX, the benchmarks' encoder) with exact search. Training negatives come
from its ranking of the training queries (ranks ``negative_start``..``negative_depth``, judged
documents skipped); early stopping on held-out *training* queries. Training resumes from its last
checkpoint and reranking from its last finished chunk of queries, so ``--max-minutes`` splits a long
run into several invocations (the heavy-run queue's 30-minute rule): rerun the same command until it
prints the table (exit status 3 means "not finished, rerun").

    python benchmarks/bench_yesno.py --dataset scifact --set train_max_length=128 epochs=2 \
        --json results/bench_yesno_scifact.json
    python benchmarks/bench_yesno.py --dataset python-stdlib --train-queries 640 --set objective=yes-no
    (--test-queries N reranks only the first N test queries: a reduced run, said so in its output)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import common
import numpy as np
from embedlab_qwen3 import YesNoReranker
from embedlab_qwen3.sft import candidates_from_ranking
from embedlab_train import TrainingSet

from embedlab import Dataset, Ranking, Split
from embedlab.cache import EmbeddingCache, default_cache_dir
from embedlab.metrics import evaluate
from embedlab.persistence import load_state, save_state
from embedlab.rerank import reorder
from embedlab.splits import unseen_qrels
from embedlab.stats import paired_tests
from embedlab.training import TrainingData

#: dataset -> (train split, test split)
SPLITS = {"python-stdlib": ("train", "test"), "scifact": ("train", "test"), "cosqa": ("dev", "test")}
#: Queries reranked per saved chunk.
CHUNK = 20
NOT_FINISHED = 3


class OutOfTime(Exception):
    """This invocation's time budget is spent; rerun the command to continue."""


def training_split(dataset: Dataset, name: str, limit: int | None, seed: int) -> Split:
    """The training split, or a seeded sample of ``limit`` of its queries (with their qrels)."""
    split = dataset.split(name)
    if limit is None or limit >= len(split.queries):
        return split
    ids = sorted(np.random.default_rng(seed).choice(split.queries.ids, limit, replace=False).tolist())
    return Split(split.name, split.queries.select(ids), {q: split.qrels[q] for q in ids})


def first_queries(split: Split, count: int | None) -> Split:
    """The split's first ``count`` queries (all when None): a prefix, so reranked chunks are shared
    with the whole split's run."""
    if count is None or count >= len(split.queries):
        return split
    if count <= 0 or count % CHUNK:
        raise SystemExit(f"--test-queries must be a positive multiple of {CHUNK}, got {count}")
    ids = split.queries.ids[:count].tolist()
    return Split(split.name, split.queries.select(ids), {q: split.qrels[q] for q in ids if q in split.qrels})


def first_stage(dataset: Dataset, split: Split, k: int) -> Ranking:
    """Zero-shot MiniLM's exact top ``k`` for the split's queries (embeddings from the shared cache)."""
    encoder, cache = common.encoder(), EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", dataset.corpus.content_hash),
                                lambda: encoder.encode_documents(dataset.corpus.documents())).embeddings
    queries = cache.get_or_compute(cache.key(encoder, "queries", split.queries.content_hash),
                                   lambda: encoder.encode_queries(list(split.queries.texts))).embeddings
    scores = np.asarray(queries) @ np.asarray(docs).T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return Ranking(split.queries.ids, dataset.corpus.ids[top], np.take_along_axis(scores, top, axis=1))


def train(reranker: YesNoReranker, dataset: Dataset, split: Split, deadline: float) -> None:
    """SFT on ``split`` with negatives from the first stage; stops (checkpointed) at the deadline."""
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, split), reranker.config.min_grade)
    candidates = candidates_from_ranking(first_stage(dataset, split, 100), data)
    every = reranker.config.checkpoint_every

    def budget(info: Any) -> None:
        if time.time() > deadline and every and info.step % every == 0:
            raise OutOfTime(f"training stopped after step {info.step} of {info.total_steps} (checkpointed)")

    reranker.train(data, candidates=candidates, callbacks=[budget])


def rerank_scores(reranker: YesNoReranker, dataset: Dataset, ranking: Ranking, folder: Path,
                  deadline: float) -> np.ndarray:
    """``(queries, depth)`` reranker scores of the ranking's candidates, chunk by chunk, each chunk
    saved atomically under ``folder`` (a rerun skips finished chunks); -inf on padding."""
    folder.mkdir(parents=True, exist_ok=True)
    out = np.full(ranking.doc_ids.shape, -np.inf)
    texts = dict(zip(dataset.queries.ids.tolist(), dataset.queries.texts))
    documents, position = dataset.corpus.documents(), dataset.corpus.position
    for start in range(0, len(ranking), CHUNK):
        part = folder / f"{start:05d}"
        if not (part / "manifest.json").is_file():
            if time.time() > deadline:
                raise OutOfTime(f"reranking stopped before query {start} of {len(ranking)}")
            rows, cols = np.nonzero(ranking.doc_ids[start:start + CHUNK] != "")
            ids = ranking.doc_ids[start:start + CHUNK][rows, cols]
            flat = reranker.score_pairs([texts[q] for q in ranking.query_ids[start:start + CHUNK][rows].tolist()],
                                        [documents[position[d]] for d in ids.tolist()])
            block = np.full(ranking.doc_ids[start:start + CHUNK].shape, -np.inf)
            block[rows, cols] = flat
            save_state(part, None, arrays={"scores": block})
            print(f"  reranked queries {start}..{start + len(block) - 1}", flush=True)
        out[start:start + CHUNK] = load_state(part).arrays["scores"]
    return out


def report(dataset: Dataset, test: Split, unseen: dict, ranking: Ranking, scores: np.ndarray,
           depths: list[int]) -> dict:
    base = evaluate(ranking, test.qrels, ["nDCG@10", "R@100"])
    rows = [{"method": "zero-shot MiniLM", "depth": 0, "ndcg10": base.aggregates["nDCG@10"],
             "unseen": evaluate(ranking, unseen, ["nDCG@10"]).aggregates["nDCG@10"] if unseen else float("nan")}]
    base_q = base.query_values("nDCG@10")
    base_unseen = {q: v for q, v in base_q.items() if q in unseen}
    for depth in depths:
        reranked = reorder(ranking, scores[:, :depth], keep_tail=True)
        result = evaluate(reranked, test.qrels, ["nDCG@10"])
        ours = result.query_values("nDCG@10")
        tests = paired_tests(ours, base_q)
        row = {"method": f"+ yesno rerank top {depth}", "depth": depth, "ndcg10": result.aggregates["nDCG@10"],
               "p_ttest": tests.p_ttest, "p_wilcoxon": tests.p_wilcoxon, "improved": tests.improved,
               "degraded": tests.degraded}
        if unseen:
            ours_unseen = {q: v for q, v in ours.items() if q in unseen}
            unseen_tests = paired_tests(ours_unseen, base_unseen)
            row.update(unseen=float(np.mean(list(ours_unseen.values()))), p_unseen_ttest=unseen_tests.p_ttest,
                       p_unseen_wilcoxon=unseen_tests.p_wilcoxon)
        else:
            row["unseen"] = float("nan")
        rows.append(row)
    print(f"\n{dataset.name}: {len(test.queries)} test queries ({len(unseen)} unseen), first-stage R@100 "
          f"{base.aggregates['R@100']:.4f}")
    print("| method | nDCG@10 | p (t / Wilcoxon) | unseen nDCG@10 | unseen p (t / Wilcoxon) |")
    print("|---|---|---|---|---|")
    for row in rows:
        p = f"{row['p_ttest']:.2g} / {row['p_wilcoxon']:.2g}" if "p_ttest" in row else "-"
        pu = f"{row['p_unseen_ttest']:.2g} / {row['p_unseen_wilcoxon']:.2g}" if "p_unseen_ttest" in row else "-"
        print(f"| {row['method']} | {row['ndcg10']:.4f} | {p} | {row['unseen']:.4f} | {pu} |")
    return {"rows": rows, "first_stage_recall100": base.aggregates["R@100"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scifact", choices=sorted(SPLITS))
    parser.add_argument("--train-queries", type=int, default=None,
                        help="train on a seeded sample of this many training queries (default: all)")
    parser.add_argument("--depth", type=int, default=100, help="candidates reranked per test query")
    parser.add_argument("--test-queries", type=int, default=None,
                        help=f"rerank only the first N test queries (a multiple of {CHUNK}: the finished chunks "
                             "of a full run are reused): a reduced run when the whole split does not fit")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="yesno parameters (JSON values), e.g. objective=yes-no train_max_length=128")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop (resumably) after this many minutes; rerun the command to continue")
    parser.add_argument("--train-only", action="store_true",
                        help="stop after training (its held-out curve is in the printed record)")
    parser.add_argument("--save", type=Path, help="save the trained reranker here (a teacher's model_path)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else float("inf")
    common.report_load("before")
    dataset = common.load(args.dataset)
    train_name, test_name = SPLITS[args.dataset]
    split = training_split(dataset, train_name, args.train_queries, args.seed)
    params = {"backend": "onnx", "num_threads": args.threads, "checkpoint_every": 20, "seed": args.seed,
              **common.overrides(args.set)}
    reranker = YesNoReranker(**params)
    try:
        train(reranker, dataset, split, deadline)
        print(f"trained: {json.dumps(reranker.record)}", flush=True)
        if args.save:
            reranker.save(args.save)
        if args.train_only:
            return
        test = first_queries(dataset.split(test_name), args.test_queries)
        ranking = first_stage(dataset, test, args.depth)
        folder = default_cache_dir().expanduser() / "bench-yesno" / reranker.fingerprint[:24] / \
            f"{args.dataset}-{test_name}-{args.depth}"
        scores = rerank_scores(reranker, dataset, ranking, folder, deadline)
    except OutOfTime as stop:
        print(f"not finished: {stop}; rerun the same command to continue", flush=True)
        sys.exit(NOT_FINISHED)
    unseen = unseen_qrels(test.qrels, dataset.split(train_name).qrels)
    depths = sorted({d for d in (20, 50, args.depth) if d <= args.depth})
    results = report(dataset, test, unseen, ranking, scores, depths)
    results.update(params=params, record=reranker.record, train_queries=len(split.queries))
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
