"""DSI (embedlab-dsi) against MiniLM exact search and BM25: Hits@1, Hits@10 (``Success@k``) and nDCG@10.

Every first stage runs through ``embedlab.Pipeline`` on the same corpus; the learned ones train on
the *train* split (DSI: indexing every document + the retrieval task on the training queries, early
stopping on held-out training queries) and everything is evaluated on the *test* split, and on
SciFact's unseen subset (test claims none of whose relevant abstracts is relevant to a training
claim). ``--docids`` picks the id schemes (semantic, naive, atomic) and ``--rows`` adds DSI
variants (``indexing-only``: no training queries; ``se-dsi``: SE-DSI, and ``se-dsi-semantic``: its
rehearsal contents over semantic ids, both at about DSI's number of optimiser steps). Trained
models stay in the embedlab cache (``checkpoint_dir="auto"``): a rerun reuses finished runs and
resumes killed ones.

    python benchmarks/bench_dsi.py --datasets python-stdlib --docids semantic --epochs 20 --threads 2 \\
        --json results/bench_dsi_stdlib.json
    python benchmarks/bench_dsi.py --datasets scifact --docids semantic --epochs 20 --threads 2
    python benchmarks/bench_dsi.py --datasets python-stdlib --baselines --docids --rows se-dsi --epochs 20
    python benchmarks/bench_dsi.py --datasets python-stdlib --baselines --docids --rows se-dsi-semantic --epochs 20

``--datasets python-stdlib:2000`` takes the dataset's deterministic 2,000-document subset. Every
row is compared with each ``--paired-to`` row (default: DSI with semantic ids; e.g. also ``"MiniLM
exact"``) on the same queries: paired t-test and Wilcoxon signed-rank per metric, Holm-adjusted across
the rows (``embedlab.stats.compare_systems``); the per-query values go to the JSON.
"""

from __future__ import annotations

import argparse
import time

import common

from embedlab.cache import EmbeddingCache
from embedlab.datasets import load_dataset_spec
from embedlab.metrics import evaluate
from embedlab.pipeline import Pipeline
from embedlab.splits import unseen_qrels
from embedlab.stats import compare_systems

METRICS = ["Success@1", "Success@10", "nDCG@10"]


def load(spec: str):
    """``name`` or ``name:limit`` (python-stdlib's deterministic subset of ``limit`` documents)."""
    name, _, limit = spec.partition(":")
    if limit:
        return load_dataset_spec(name, limit=int(limit))
    return common.load(name)


def se_epochs(dataset, train, args: argparse.Namespace, **params) -> int:
    """Epochs that give SE-DSI about DSI's number of optimiser steps (its rehearsal contents add
    examples per document): ``--epochs`` x DSI's examples / SE-DSI's examples."""
    import embedlab

    se = embedlab.create("retriever", "se-dsi", **params)
    pairs = sum(len(train.qrels.get(q, {})) for q in train.queries.ids.tolist())
    indexing = sum(len(texts) for _, texts, _ in se.indexing_groups(dataset.corpus))
    return max(1, round(args.epochs * (len(dataset.corpus) + pairs) / (indexing + pairs)))


def first_stages(args: argparse.Namespace, dataset=None, train=None) -> dict[str, dict]:
    stages: dict[str, dict] = {}
    if "minilm" in args.baselines:
        stages["MiniLM exact"] = {"encoder": {"name": "minilm", **common.ENCODER_PARAMS["minilm"]}}
    if "bm25" in args.baselines:
        stages["BM25"] = {"encoder": "bm25"}
    # semantic ids from the same MiniLM vectors as the dense baseline (one cache entry)
    base = {"name": "dsi", "id_encoder": {"name": "minilm", **common.ENCODER_PARAMS["minilm"]},
            "epochs": args.epochs, "beam_size": args.beam, "num_threads": args.threads, "show_progress": True,
            "seed": args.seed, "layers": args.layers, "c": args.c, "k": args.k, "patience": args.patience}
    for scheme in args.docids:
        stages[f"DSI {scheme} ids"] = {"retriever": {**base, "docids": scheme}}
    if "indexing-only" in args.rows:
        stages["DSI semantic ids, indexing only"] = {"retriever": {**base, "docids": "semantic", "queries": False}}
    for row, docids in (("se-dsi", "ed"), ("se-dsi-semantic", "semantic")):
        if row in args.rows:
            epochs = se_epochs(dataset, train, args, docids=docids, id_encoder=base["id_encoder"])
            label = "SE-DSI (ED ids + rehearsal)" if docids == "ed" else "DSI semantic ids + rehearsal"
            stages[f"{label}, {epochs} ep"] = {"retriever": {**base, "name": "se-dsi", "docids": docids,
                                                             "epochs": epochs}}
    return stages


def run(dataset_spec: str, args: argparse.Namespace, done: dict) -> dict:
    dataset = load(dataset_spec)
    train, test = dataset.split("train"), dataset.split("test")
    unseen = unseen_qrels(test.qrels, train.qrels)
    subsets = {"test": test.qrels}
    if len(unseen) < len([q for q in test.qrels if test.qrels[q]]):
        subsets["unseen"] = unseen
    print(f"{dataset_spec}: {len(dataset.corpus)} documents, {len(train.queries)} train / {len(test.queries)} test "
          f"queries ({len(unseen)} unseen)", flush=True)
    results = {}
    cache = EmbeddingCache()
    for label, spec in first_stages(args, dataset, train).items():
        pipeline = Pipeline.from_names(**spec, cache=cache, name=label)
        start = time.perf_counter()
        pipeline.build(dataset.corpus, train=train)
        build_s = time.perf_counter() - start
        ranking = pipeline.search(test.queries, k=10)
        row = {"build_s": build_s, "search_s": pipeline.timings.search_s + pipeline.timings.encode_queries_s,
               "bytes_per_document": pipeline.bytes_per_document}
        per_query: dict[str, dict] = {}
        for subset, qrels in subsets.items():
            evaluation = evaluate(ranking, qrels, METRICS)
            row[subset] = {m: float(evaluation.aggregates[m]) for m in METRICS}
            per_query[subset] = {m: evaluation.query_values(m) for m in METRICS}
        row["per_query"] = per_query
        record = getattr(pipeline.first_stage, "training_record", None)
        if record:
            row["training"] = {k: record[k] for k in ("epochs_run", "steps", "validation_hits10", "examples",
                                                      "docid_length", "docid_vocab") if k in record}
        results[label] = row
        done[dataset_spec] = {"rows": results}
        if args.json:  # after every row: a run killed later keeps what it measured
            common.write_json(args.json, args, done)
        cells = "  ".join(f"{subset} " + " ".join(f"{m}={row[subset][m]:.3f}" for m in METRICS) for subset in subsets)
        steps = f", {record['steps']} steps, {record['epochs_run']} epochs" if record else ""
        print(f"  {label:<34} {cells}  build {build_s:.0f}s{steps}", flush=True)
    tests = {reference: found for reference in args.paired_to if (found := paired(results, reference))}
    if tests:
        done[dataset_spec] = {"rows": results, "paired": tests}
        if args.json:
            common.write_json(args.json, args, done)
    return {"documents": len(dataset.corpus), "test_queries": len(test.queries), "unseen_queries": len(unseen),
            "rows": results, "paired": tests}


def paired(rows: dict[str, dict], reference: str) -> dict[str, dict]:
    """Every other row against ``reference`` per subset and metric (paired t-test and Wilcoxon,
    Holm-adjusted across the rows); printed and returned as ``{subset: {metric: {row: test}}}``
    (JSON: ``paired[reference][subset][metric][row]``)."""
    if reference not in rows or len(rows) < 2:
        return {}
    others = [label for label in rows if label != reference]
    tests: dict[str, dict] = {}
    for subset, by_metric in rows[reference]["per_query"].items():
        for metric in METRICS:
            systems = {label: rows[label]["per_query"][subset][metric] for label in others}
            found = compare_systems(systems, by_metric[metric], baseline_name=reference)
            tests.setdefault(subset, {})[metric] = {f.system: f.to_json() for f in found}
            for f in found:
                print(f"  {subset} {metric}: {f.system} {f.mean_system:.3f} vs {reference} {f.mean_baseline:.3f} "
                      f"({f.mean_difference:+.3f}; better/worse/tied {f.improved}/{f.degraded}/{f.tied}; "
                      f"Holm p t {f.p_ttest_holm:.2g}, Wilcoxon {f.p_wilcoxon_holm:.2g})", flush=True)
    return tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["python-stdlib"])
    parser.add_argument("--docids", nargs="*", default=["semantic"], choices=["semantic", "naive", "atomic"])
    parser.add_argument("--rows", nargs="*", default=[], choices=["indexing-only", "se-dsi", "se-dsi-semantic"],
                        help="extra rows: DSI without training queries; SE-DSI (ED ids + rehearsal contents) and "
                             "its control (semantic ids + rehearsal contents), at about DSI's optimiser steps")
    parser.add_argument("--baselines", nargs="*", default=["minilm", "bm25"], choices=["minilm", "bm25"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--c", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=5,
                        help="epochs without a better held-out Hits@10 before training stops (atomic ids can "
                             "sit at 0 for more than 5 epochs before they start to generalise)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paired-to", nargs="*", default=["DSI semantic ids"],
                        help="rows every other row is tested against (paired, per query)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    common.report_load()
    results: dict = {}
    for spec in args.datasets:
        results[spec] = run(spec, args, results)
    if args.json:
        common.write_json(args.json, args, results)
    print("summary (mean over test queries):")
    for spec, result in results.items():
        for label, row in result["rows"].items():
            print(f"| {spec} | {label} | " + " | ".join(f"{row['test'][m]:.3f}" for m in METRICS)
                  + (" | unseen " + " ".join(f"{row['unseen'][m]:.3f}" for m in METRICS) if "unseen" in row else "")
                  + " |")


if __name__ == "__main__":
    main()
