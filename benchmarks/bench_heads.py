"""Pooling heads trained over frozen all-MiniLM-L6-v2 (embedlab-train's ``frozen-head``): NV-Embed's
latent attention (embedlab-nvembed), the multi-layer poolers (embedlab-mltp), MINER's probing and
fusion (embedlab-miner), against the same-budget supervised control (``linear``: mean pooling plus
a zero-initialised residual linear map) and the frozen model's own mean pooling (zero-shot).

Protocol (docs/benchmarks.md, rules for learned methods): every trained head is trained on the
train split with 10 % of the training queries held out; the learning rate of *every* method is
chosen from the same grid by the best held-out nDCG@10 (never by test); the chosen run is evaluated
on the whole test split, on its unseen subset (test queries none of whose relevant documents is
relevant to a training query; SciFact) and on python-stdlib; paired t-test and Wilcoxon per query
against zero-shot and against the linear control, Holm-corrected within each comparison family.

    python benchmarks/bench_heads.py features --datasets scifact python-stdlib     # hidden states, once
    python benchmarks/bench_heads.py quality --datasets scifact --methods linear nvembed \
        --json results/bench_heads_scifact.json
    python benchmarks/bench_heads.py layers --datasets scifact python-stdlib --plot docs/benchmarks/miner_layers.png \
        --probes results/bench_heads_scifact.json

Training runs are cached by their identity (``checkpoint_dir = "auto"``): a rerun only evaluates.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import common
import numpy as np
from embedlab_train import FrozenEncoder
from embedlab_transformers.model_files import default_model_dir

import embedlab
from embedlab import Dataset
from embedlab.cache import EmbeddingCache
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.pipeline import Pipeline
from embedlab.splits import unseen_qrels
from embedlab.stats import holm, paired_tests

#: dataset -> (train split, test split)
SPLITS = {"python-stdlib": ("train", "test"), "scifact": ("train", "test")}
#: method -> frozen-head parameters (the encoder name and its head).
METHODS: dict[str, dict[str, Any]] = {
    "mean": {"name": "frozen-head", "head": "mean"},
    "linear": {"name": "frozen-head", "head": "linear"},
    "nvembed": {"name": "nvembed", "head": {"name": "latent-attention", "latents": 512, "heads": 8}},
    "layer-mean": {"name": "frozen-head", "head": "layer-mean"},
    "scalar-mix": {"name": "frozen-head", "head": "scalar-mix"},
    "mltp": {"name": "frozen-head", "head": "mltp"},
    "miner": {"name": "miner"},
}
#: Parameter-free poolers: evaluated as they are, never trained (the last layer's mean is the zero-shot row).
FIXED = {"mean", "layer-mean"}
#: Training settings shared by every method (the learning rate comes from the grid).
BASE = {"epochs": 10, "train_batch_size": 32, "validation_fraction": 0.1, "validation_pool": 300, "patience": 2,
        "max_length": 256, "seed": 0}
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3)


def texts_of(dataset: Dataset, train: str, test: str) -> dict[str, list[str]]:
    return {"documents": dataset.corpus.documents(), "train queries": list(dataset.split(train).queries.texts),
            "test queries": list(dataset.split(test).queries.texts)}


def features(args: argparse.Namespace) -> dict:
    """Run frozen MiniLM once over every text the other commands need (cached hidden states)."""
    frozen = FrozenEncoder(default_model_dir(), 256, batch_size=32, num_threads=args.threads)
    out = {}
    for name in args.datasets:
        dataset = common.load(name)
        for what, texts in texts_of(dataset, *SPLITS[name]).items():
            started = time.perf_counter()
            states = frozen.states(texts)
            out[f"{name} {what}"] = {"texts": len(texts), "tokens": int(states.offsets[-1]),
                                     "seconds": time.perf_counter() - started}
            print(f"{name} {what}: {len(texts)} texts, {states.offsets[-1]} tokens, "
                  f"{out[f'{name} {what}']['seconds']:.0f} s", flush=True)
    return out


def make_encoder(method: str, lr: float | None, threads: int, epochs: int | None = None) -> Any:
    spec = dict(METHODS[method])
    name = spec.pop("name")
    params = {**BASE, **spec, "num_threads": threads}
    if epochs is not None:
        params["epochs"] = epochs
    if lr is not None:
        params["lr"] = lr
    return embedlab.create("encoder", name, **params)


def held_out_best(encoder: Any) -> float:
    """The best held-out nDCG@10 of a training run (what early stopping kept)."""
    return float(max(encoder.training_record.get("validation_ndcg10") or [float("nan")]))


def evaluate_encoder(encoder: Any, dataset: Dataset, train: str | None, test: str, cache: EmbeddingCache) -> Any:
    pipeline = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"), cache=cache, name=encoder.name)
    pipeline.build(dataset.corpus, train=None if train is None else dataset.split(train))
    return pipeline.search(dataset.split(test).queries, k=100)


def quality(args: argparse.Namespace) -> dict:
    """Train each method over the lr grid, keep the lr with the best held-out nDCG@10, evaluate."""
    cache, rows = EmbeddingCache(), []
    for name in args.datasets:
        dataset = common.load(name)
        train, test = SPLITS[name]
        qrels = dataset.split(test).qrels
        unseen = unseen_qrels(qrels, dataset.split(train).qrels)
        print(f"\n{name}: {len(qrels)} test queries, {len(unseen)} unseen", flush=True)
        per_query: dict[str, dict[str, float]] = {}
        zero = make_encoder("mean", None, args.threads)
        rankings = {"zero-shot": evaluate_encoder(zero, dataset, None, test, cache)}
        choices: dict[str, dict[str, Any]] = {"zero-shot": {"lr": None, "held_out": float("nan")}}
        for method in args.methods:
            if method == "mean":
                continue
            if method in FIXED:
                fixed = make_encoder(method, None, args.threads)
                rankings[method] = evaluate_encoder(fixed, dataset, None, test, cache)
                choices[method] = {"lr": None, "held_out": float("nan")}
                continue
            tried = {}
            for lr in args.lrs:
                encoder = make_encoder(method, lr, args.threads, args.epochs)
                started = time.perf_counter()
                ranking = evaluate_encoder(encoder, dataset, train, test, cache)
                tried[lr] = (held_out_best(encoder), ranking, encoder.training_record, time.perf_counter() - started)
                print(f"  {method} lr={lr:g}: held-out nDCG@10 {tried[lr][0]:.4f} "
                      f"({tried[lr][2].get('steps')} steps, {tried[lr][3]:.0f} s)", flush=True)
            best = max(tried, key=lambda lr: tried[lr][0])
            rankings[method] = tried[best][1]
            choices[method] = {"lr": best, "held_out": tried[best][0], "grid": {str(k): v[0] for k, v in tried.items()},
                               "steps": tried[best][2].get("steps"), "epochs_run": tried[best][2].get("epochs_run")}
            if method == "miner":
                choices[method]["layers"] = make_encoder(method, best, args.threads, args.epochs).train(
                    training_set(dataset, train)).layer_report()      # the finished run, reused
        unseen_query: dict[str, dict[str, float]] = {}
        for method, ranking in rankings.items():
            per_query[method] = evaluate(ranking, qrels, ["nDCG@10"]).query_values("nDCG@10")
            unseen_value = float("nan")
            if unseen and len(unseen) < len(qrels):             # a strict subset: tested on its own too
                unseen_query[method] = evaluate(ranking, unseen, ["nDCG@10"]).query_values("nDCG@10")
                unseen_value = float(np.mean(list(unseen_query[method].values())))
            elif unseen:
                unseen_value = float(np.mean(list(per_query[method].values())))
            rows.append({"dataset": name, "method": method, "ndcg10": float(np.mean(list(per_query[method].values()))),
                         "unseen": unseen_value, **choices[method]})
        ours = [r for r in rows if r["dataset"] == name]
        compare(ours, per_query, "")
        compare(ours, unseen_query, " (unseen)")
        print_table(ours)
    return {"rows": rows, "lr_grid": list(args.lrs), "base": {**BASE, "epochs": args.epochs or BASE["epochs"]}}


def compare(rows: list[dict], per_query: dict[str, dict[str, float]], subset: str) -> None:
    """Paired t-test and Wilcoxon of every method against zero-shot and against ``linear`` over
    ``per_query`` (Holm within each family), into ``rows[i]["vs <baseline><subset>"]``."""
    for baseline in ("zero-shot", "linear"):
        others = [m for m in per_query if m not in (baseline, "zero-shot")]
        if baseline not in per_query or not others:
            continue
        tests = [paired_tests(per_query[m], per_query[baseline], system_name=m, baseline_name=baseline)
                 for m in others]
        for t, p_t, p_w in zip(tests, holm([t.p_ttest for t in tests]), holm([t.p_wilcoxon for t in tests])):
            row = next(r for r in rows if r["method"] == t.system)
            row[f"vs {baseline}{subset}"] = {"delta": t.mean_difference, "t_p_holm": float(p_t),
                                             "wilcoxon_p_holm": float(p_w), "improved": t.improved,
                                             "degraded": t.degraded}


def training_set(dataset: Dataset, train: str) -> Any:
    from embedlab_train import TrainingSet

    from embedlab.training import TrainingData

    return TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split(train)))


def layers(args: argparse.Namespace) -> dict:
    """Zero-shot nDCG@10 of every hidden state's mean (0 = embeddings) on the test split and its
    unseen subset: MINER's layer diagnostic (no training, nothing tuned). ``--probes FILE...``: add the
    held-out nDCG@10 of the probes from ``quality --methods miner`` results."""
    cache, curves = EmbeddingCache(), {}
    for name in args.datasets:
        dataset = common.load(name)
        train, test = SPLITS[name]
        qrels = dataset.split(test).qrels
        unseen = unseen_qrels(qrels, dataset.split(train).qrels)
        curve = []
        for layer in range(7):
            encoder = embedlab.create("encoder", "frozen-head", head={"name": "layer", "layer": layer}, max_length=256,
                                      num_threads=args.threads)
            ranking = evaluate_encoder(encoder, dataset, None, test, cache)
            curve.append({"layer": layer, "ndcg10": evaluate(ranking, qrels, ["nDCG@10"]).aggregates["nDCG@10"],
                          "unseen": evaluate(ranking, unseen, ["nDCG@10"]).aggregates["nDCG@10"] if unseen else None})
            print(f"{name} layer {layer}: nDCG@10 {curve[-1]['ndcg10']:.4f}", flush=True)
        curves[name] = curve
    probes = {}
    for path in args.probes or []:
        import json

        for row in json.loads(open(path).read())["results"]["rows"]:
            if row["method"] == "miner" and "layers" in row:
                probes[row["dataset"]] = row["layers"]["layer_scores"]
    if args.plot:
        plot_layers(curves, probes, args.plot)
    return {"curves": curves, "probe_held_out": probes}


def plot_layers(curves: dict, probes: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        line, = ax.plot([c["layer"] for c in curve], [c["ndcg10"] for c in curve], marker="o",
                        label=f"{name}: zero-shot layer mean (test)")
        if name in probes:
            ax.plot(range(1, len(probes[name]) + 1), probes[name], marker="s", linestyle="--", color=line.get_color(),
                    label=f"{name}: trained probe (held-out train queries)")
    ax.set_xlabel("hidden state (0 = embeddings)")
    ax.set_ylabel("nDCG@10")
    ax.set_title("all-MiniLM-L6-v2: retrieval quality per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def print_table(rows: list[dict]) -> None:
    print(f"{'method':<12} {'lr':>7} {'held-out':>9} {'nDCG@10':>8} {'unseen':>7}  "
          f"{'vs zero-shot (Holm p)':<22} {'vs linear':<22} {'unseen vs zero-shot':<22} unseen vs linear")
    for r in rows:
        cells = []
        for key in ("zero-shot", "linear", "zero-shot (unseen)", "linear (unseen)"):
            c = r.get(f"vs {key}")
            cells.append(f"{c['delta']:+.4f} ({c['t_p_holm']:.2g})" if c else "-")
        lr = "-" if r["lr"] is None else f"{r['lr']:g}"
        print(f"{r['method']:<12} {lr:>7} {r['held_out']:>9.4f} {r['ndcg10']:>8.4f} {r['unseen']:>7.4f}  "
              + " ".join(f"{c:<22}" for c in cells[:3]) + f" {cells[3]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("features", "quality", "layers"):
        p = sub.add_parser(command)
        p.add_argument("--datasets", nargs="+", default=["python-stdlib", "scifact"], choices=sorted(SPLITS))
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--json", help="write the results here")
    sub.choices["quality"].add_argument("--methods", nargs="+", default=["linear", "nvembed"], choices=sorted(METHODS))
    sub.choices["quality"].add_argument("--lrs", nargs="+", type=float, default=list(LR_GRID))
    sub.choices["quality"].add_argument("--epochs", type=int, help="epochs of every trained method (default 10)")
    sub.choices["layers"].add_argument("--plot", help="write the layer curve here (PNG)")
    sub.choices["layers"].add_argument("--probes", nargs="+", help="quality --json results with miner's probe scores")
    args = parser.parse_args()
    common.report_load()
    results = {"features": features, "quality": quality, "layers": layers}[args.command](args)
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
