"""``embedlab evaluate QRELS RUN -m nDCG@10 -m AP [--per-query] [--json]``: trec_eval for embedlab.

Prints ``measure<TAB>qid<TAB>value`` lines as trec_eval does (per query with ``--per-query``, then the
aggregate under qid ``all``). QRELS is a TREC qrels file or a BEIR qrels TSV; RUN a TREC run file.
Every query of the qrels counts: queries missing from the run score 0 (``trec_eval -c``).
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_METRICS = ("nDCG@10", "RR@10", "R@100", "AP")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate a TREC run against qrels (like trec_eval)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("qrels", help="TREC qrels file (qid 0 docid grade) or BEIR qrels TSV")
    parser.add_argument("run", help="TREC run file (qid Q0 docid rank score tag)")
    parser.add_argument("-m", "--metric", action="append", dest="metrics", metavar="MEASURE",
                        help="measure as ir_measures writes it, e.g. nDCG@10, AP, P(rel=2)@5; repeatable "
                             f"(default: {' '.join(DEFAULT_METRICS)})")
    parser.add_argument("-q", "--per-query", action="store_true", help="also print every query's values")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedlab.metrics import evaluate
    from embedlab.trec import load_qrels, read_run

    qrels = load_qrels(args.qrels)
    ranking = read_run(args.run)
    result = evaluate(ranking, qrels, args.metrics or list(DEFAULT_METRICS))
    unjudged = len(set(ranking.query_ids.tolist()) - set(result.query_ids.tolist()))
    missing = len(set(result.query_ids.tolist()) - set(ranking.query_ids.tolist()))
    if unjudged or missing:
        print(f"embedlab evaluate: {unjudged} run query(s) without qrels ignored; {missing} qrels "
              "query(s) absent from the run score 0", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(per_query=args.per_query), indent=2))
        return 0
    lines = []
    if args.per_query:
        for i, qid in enumerate(result.query_ids.tolist()):
            lines.extend(f"{m:<22}\t{qid}\t{result.per_query[m][i]:.4f}" for m in result.metrics)
    lines.extend(f"{m:<22}\tall\t{result.aggregates[m]:.4f}" for m in result.metrics)
    print("\n".join(lines))
    return 0
