"""A MaxSim -> cross-encoder cascade on SciFact (issue #13): each stage with its own depth, timed per stage.

The first stage is all-MiniLM-L6-v2 with exact search; MaxSim (late interaction over MiniLM's token
vectors, embedlab-transformers) reranks its top ``--maxsim-depth``; the yes/no cross-encoder
(embedlab-qwen3 ``yesno``, trained by SFT on SciFact *train* by ``bench_yesno.py --save``) reranks the
top ``--ce-depth`` of that. Controls with the same budgets: MaxSim alone, the cross-encoder alone on
the first stage's top ``--ce-depth``. The cross-encoder reads ``--ce-max-length`` tokens per pair
(default 128, its SFT length). Paired t-test / Wilcoxon against MiniLM (Holm over the three
reranked pipelines) on the whole test split and nDCG@10 on the unseen subset (test claims none of
whose relevant abstracts is relevant to a training claim: the cross-encoder was trained on SciFact).

    python benchmarks/bench_yesno.py --dataset scifact --set objective=yes-no train_max_length=128 \\
        epochs=2 --save results/yesno-scifact          # once (resumable; rerun until it finishes)
    python benchmarks/bench_cascade.py --model results/yesno-scifact --json docs/benchmarks/cascade.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import common

from embedlab import stats
from embedlab.cache import EmbeddingCache
from embedlab.experiment import load_config
from embedlab.experiment.runner import run_experiment
from embedlab.splits import unseen_qrels

REPO = Path(__file__).resolve().parents[1]
BASELINE = "minilm"

TEMPLATE = """
[dataset]
path = "{data}"
split = "test"

[experiment]
metrics = ["nDCG@10", "RR@10", "R@100"]
baseline = "minilm"

[[pipeline]]
name = "minilm"
encoder = {{ name = "minilm", backend = "onnx" }}

[[pipeline]]
name = "maxsim-{m}"
encoder = {{ name = "minilm", backend = "onnx" }}
cascade = [{{ reranker = {maxsim}, depth = {m} }}]

[[pipeline]]
name = "yesno-{c}"
encoder = {{ name = "minilm", backend = "onnx" }}
cascade = [{{ reranker = {yesno}, depth = {c} }}]

[[pipeline]]
name = "maxsim-{m}+yesno-{c}"
encoder = {{ name = "minilm", backend = "onnx" }}
cascade = [{{ reranker = {maxsim}, depth = {m} }}, {{ reranker = {yesno}, depth = {c} }}]
"""


def experiment_file(folder: Path, model: Path, maxsim_depth: int, ce_depth: int, ce_max_length: int) -> Path:
    path = folder / "cascade.toml"
    path.write_text(TEMPLATE.format(
        data=REPO.parent / "shared" / "data" / "scifact" / "beir", m=maxsim_depth, c=ce_depth,
        maxsim='{ name = "maxsim", backend = "onnx" }',
        yesno=f'{{ name = "yesno", model_path = "{model.resolve()}", backend = "onnx", '
              f'max_length = {ce_max_length} }}'))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the trained yes/no cross-encoder")
    parser.add_argument("--maxsim-depth", type=int, default=100)
    parser.add_argument("--ce-depth", type=int, default=20)
    parser.add_argument("--ce-max-length", type=int, default=128,
                        help="tokens per query-document pair (the SFT's train_max_length)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    common.report_load("before")
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(experiment_file(Path(folder), args.model, args.maxsim_depth, args.ce_depth,
                                                  args.ce_max_length))
        result = run_experiment(config, cache=EmbeddingCache())
    unseen = unseen_qrels(result.split.qrels, result.dataset.split("train").qrels)
    per_query = {o.name: dict(zip(o.evaluation.query_ids, o.evaluation.per_query["nDCG@10"]))
                 for o in result.outcomes}
    reranked = [o for o in result.outcomes if o.name != BASELINE]
    tests = [stats.paired_tests(per_query[o.name], per_query[BASELINE]) for o in reranked]
    holm_t, holm_w = stats.holm([t.p_ttest for t in tests]), stats.holm([t.p_wilcoxon for t in tests])
    print(f"\nSciFact test: {len(result.split.queries)} queries ({len(unseen)} unseen)\n")
    print("| pipeline | nDCG@10 | vs minilm: diff, p(t), p(W), +/- | nDCG@10 unseen | R@100 | ms/query by stage |")
    print("|---|---|---|---|---|---|")
    rows = []
    for outcome in result.outcomes:
        cell = ""
        if outcome.name != BASELINE:
            i = reranked.index(outcome)
            cell = (f"{tests[i].mean_difference:+.4f}, {holm_t[i]:.2g}, {holm_w[i]:.2g}, "
                    f"{tests[i].improved}/{tests[i].degraded}")
        unseen_ndcg = sum(per_query[outcome.name][q] for q in unseen) / max(len(unseen), 1)
        stages = outcome.timings.stage_latencies_ms()
        print(f"| {outcome.name} | {outcome.evaluation.aggregates['nDCG@10']:.4f} | {cell} | {unseen_ndcg:.4f} | "
              f"{outcome.evaluation.aggregates['R@100']:.4f} | "
              f"{' + '.join(f'{ms:.1f}' for ms in stages.values())} |")
        rows.append({"pipeline": outcome.name, "aggregates": dict(outcome.evaluation.aggregates),
                     "unseen_ndcg10": unseen_ndcg, "stage_ms": stages})
    common.report_load("after")
    if args.json:
        common.write_json(args.json, args, {"queries": len(result.split.queries), "unseen": len(unseen),
                                            "pipelines": rows})


if __name__ == "__main__":
    main()
