"""DSI++ (embedlab-dsi-pp): forgetting of earlier documents over continual-indexing increments.

The corpus is cut (seeded order) into ``D0`` (``--first`` documents) and ``--increments`` further
corpora of ``--size`` documents. ``build`` trains a DSI on ``D0`` with the retrieval task on the
training queries whose relevant documents are all in ``D0``; each ``add`` continues training on the
next corpus. After every step two scores per corpus seen so far: **indexing accuracy** (a
document's own text decodes to its own id, Hits@1; up to ``--probe`` documents per corpus) and
**query Hits@10** (test queries whose relevant documents are all in that corpus). From them
``ContinualScores`` gives average performance A, learning accuracy LA and forgetting F.

Rows: ``none`` (continued training on the new documents only), ``pseudo-queries`` (DSI++'s
generative-memory replay, extractive pseudo-queries here), ``indexing`` (replay of earlier
documents' own text: experience replay), ``pseudo-queries+sam`` (the same with SAM, rho
``--rho``, from ``D0`` on). Rows without SAM continue from one shared ``D0`` model.

    python benchmarks/bench_dsi_pp.py --dataset python-stdlib:1200 --first 600 --size 300 --increments 2 \\
        --threads 2 --json results/bench_dsi_pp_stdlib.json
"""

from __future__ import annotations

import argparse
import copy

import attrs
import common
import numpy as np
from embedlab_dsi_pp import ContinualScores, DSIPPRetriever

from embedlab.dataset import Corpus, Queries, Split
from embedlab.datasets import load_dataset_spec
from embedlab.metrics import evaluate

ROWS = {"none": {"replay": "none"}, "pseudo-queries": {"replay": "pseudo-queries"},
        "indexing": {"replay": "indexing"}, "pseudo-queries+sam": {"replay": "pseudo-queries"}}


def load(spec: str):
    name, _, limit = spec.partition(":")
    return load_dataset_spec(name, limit=int(limit)) if limit else common.load(name)


def sub_split(split: Split, documents: set[str], name: str) -> Split | None:
    """The queries of ``split`` all of whose relevant documents are in ``documents``."""
    keep = [i for i, q in enumerate(split.queries.ids.tolist())
            if split.qrels.get(q) and set(split.qrels[q]) <= documents]
    if not keep:
        return None
    ids = [split.queries.ids[i] for i in keep]
    return Split(name, Queries(ids, [split.queries.texts[i] for i in keep]), {q: split.qrels[q] for q in ids})


def scores(retriever: DSIPPRetriever, corpora: list[Corpus], tests: list[Split | None], probe: int,
           seed: int) -> tuple[list[float], list[float]]:
    """Indexing accuracy and query Hits@10 of every corpus in ``corpora``."""
    accuracy, hits = [], []
    for i, corpus in enumerate(corpora):
        rows = np.sort(np.random.default_rng([seed, i]).permutation(len(corpus))[:probe])
        docs = corpus.documents()
        queries = Queries([f"self-{corpus.ids[r]}" for r in rows], [docs[r] for r in rows])
        found = retriever.search(queries, 1)
        accuracy.append(float(np.mean(found.doc_ids[:, 0] == corpus.ids[rows])))
        test = tests[i]
        if test is None:
            hits.append(float("nan"))
        else:
            ranking = retriever.search(test.queries, 10)
            hits.append(float(evaluate(ranking, test.qrels, ["Success@10"]).aggregates["Success@10"]))
    return accuracy, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="python-stdlib:1200")
    parser.add_argument("--first", type=int, default=600)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--increments", type=int, default=2)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--increment-epochs", type=int, default=10)
    parser.add_argument("--rho", type=float, default=0.05)
    parser.add_argument("--probe", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    common.report_load()
    dataset = load(args.dataset)
    order = np.random.default_rng(args.seed).permutation(len(dataset.corpus))
    bounds = [0, args.first] + [args.first + args.size * (i + 1) for i in range(args.increments)]
    if bounds[-1] > len(dataset.corpus):
        parser.error(f"{bounds[-1]} documents needed, the dataset has {len(dataset.corpus)}")
    docs = dataset.corpus.documents()
    corpora = [Corpus(dataset.corpus.ids[order[a:b]], [docs[p] for p in order[a:b]])
               for a, b in zip(bounds[:-1], bounds[1:])]
    train = sub_split(dataset.split("train"), set(corpora[0].ids.tolist()), "train")
    tests = [sub_split(dataset.split("test"), set(c.ids.tolist()), f"test-D{i}") for i, c in enumerate(corpora)]
    print(f"{args.dataset}: D0 {len(corpora[0])} documents ({len(train.queries) if train else 0} training queries), "
          f"{args.increments} increments of {args.size}; test queries per corpus "
          f"{[len(t.queries) if t else 0 for t in tests]}", flush=True)
    params = {"epochs": args.epochs, "increment_epochs": args.increment_epochs, "num_threads": args.threads,
              "show_progress": True, "seed": args.seed, "capacity": bounds[-1]}
    shared: DSIPPRetriever | None = None
    results = {}
    for row in args.rows:
        sam = row.endswith("+sam")
        if sam or shared is None:
            base = DSIPPRetriever(**params, **ROWS[row], sam_rho=args.rho if sam else 0.0)
            base.build(corpora[0], train=train)
            if not sam:
                shared = base
        retriever = copy.deepcopy(shared) if not sam else base
        retriever.config = attrs.evolve(retriever.config, **ROWS[row])
        accuracy, hits = [], []
        for step in range(len(corpora)):
            if step:
                retriever.add(corpora[step])
            a, h = scores(retriever, corpora[:step + 1], tests[:step + 1], args.probe, args.seed)
            accuracy.append(a)
            hits.append(h)
            print(f"  {row:<20} after D{step}: indexing accuracy {np.round(a, 3).tolist()}  "
                  f"Hits@10 {np.round(h, 3).tolist()}", flush=True)
        table = ContinualScores(accuracy)
        t = len(corpora) - 1
        summary = {"A": table.average(t), "LA": table.learning_accuracy(t), "F": table.forgetting(t)}
        results[row] = {"indexing_accuracy": accuracy, "hits10": hits, "summary_indexing": summary,
                        "steps": retriever.training_record.get("steps")}
        print(f"  {row:<20} indexing accuracy: A {summary['A']:.3f}  LA {summary['LA']:.3f}  "
              f"F {summary['F']:.3f}", flush=True)
        if args.json:
            common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
