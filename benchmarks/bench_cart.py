"""CART (embedlab-cart) against dense baselines, trained from scratch on python-stdlib's training queries.

Every model uses MiniLM's WordPiece vocabulary, width 128, 4 heads, feed-forward x4, 128 tokens,
InfoNCE with in-batch negatives through embedlab-train's loop, 10 % of the training queries held out
for early stopping and for choosing the learning rate from the same grid (never the test split):

* ``cart``: prelude P = 1, core iterations R = 4, latent 64 (the paper's finding to reproduce:
  it does not beat the dense baseline at matched parameters);
* ``dense-stored``: the dense depth with CART's stored body parameters (2 layers);
* ``dense-effective``: as deep as CART unrolled (P + R = 5 layers: effective-parameter parity).

Prints nDCG@10 on the test split (paired t-test and Wilcoxon of each dense model against CART,
Holm), the parameter counts, CART's gate spectral radius, nDCG@10 of the trained CART run with other
numbers of iterations (variable-R inference), and plots the training curves (held-out nDCG@10 and
loss per epoch).

    python benchmarks/bench_cart.py --plot docs/benchmarks/cart.png --json results/bench_cart.json
"""

from __future__ import annotations

import argparse
import time

import common
import numpy as np
from embedlab_train import TrainingSet

import embedlab
from embedlab.metrics import evaluate
from embedlab.stats import holm, paired_tests
from embedlab.training import TrainingData

MODELS = {"cart": {"architecture": "recurrent", "prelude": 1, "iterations": 4},
          "dense-stored": {"architecture": "dense"},
          "dense-effective": {"architecture": "dense", "layers": 5}}
BASE = {"dim": 128, "heads": 4, "mult": 4, "latent": 64, "max_length": 128, "train_batch_size": 32,
        "batch_size": 64, "validation_fraction": 0.1, "validation_pool": 300, "patience": 3, "seed": 0}


def test_values(encoder, dataset, iterations: int | None = None) -> dict[str, float]:
    part = dataset.split("test")
    q = encoder.encode_queries(list(part.queries.texts), iterations)
    d = encoder.encode_documents(dataset.corpus.documents(), iterations)
    sims = q @ d.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :100]
    ranking = embedlab.Ranking(list(part.queries.ids), np.asarray(dataset.corpus.ids)[top],
                               np.take_along_axis(sims, top, axis=1))
    return evaluate(ranking, part.qrels, ["nDCG@10"]).query_values("nDCG@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="python-stdlib")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-3])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot")
    parser.add_argument("--json")
    args = parser.parse_args()
    common.report_load()
    dataset = common.load(args.dataset)
    train = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    rows, values, curves = {}, {}, {}
    for name in args.models:
        tried = {}
        for lr in args.lrs:
            encoder = embedlab.create("encoder", "cart", **BASE, **MODELS[name], lr=lr, epochs=args.epochs,
                                      num_threads=args.threads)
            started = time.perf_counter()
            encoder.train(train)
            record = encoder.training_record
            tried[lr] = (max(record["validation_ndcg10"]), encoder, time.perf_counter() - started)
            print(f"{name} lr={lr:g}: held-out nDCG@10 {tried[lr][0]:.4f} ({record['steps']} steps, "
                  f"{record['epochs_run']} epochs, {tried[lr][2]:.0f} s)", flush=True)
        best = max(tried, key=lambda lr: tried[lr][0])
        encoder = tried[best][1]
        values[name] = test_values(encoder, dataset)
        record = encoder.training_record
        curves[name] = {"validation_ndcg10": record["validation_ndcg10"], "losses": record["losses"]}
        rows[name] = {"lr": best, "held_out": tried[best][0], "ndcg10": float(np.mean(list(values[name].values()))),
                      "parameters": encoder.parameters, "steps": record["steps"], "epochs_run": record["epochs_run"],
                      "grid": {str(k): v[0] for k, v in tried.items()}}
        if name == "cart":
            rows[name]["gate_spectral_radius"] = encoder.module.gate.spectral_radius()
            rows[name]["variable_r"] = {r: float(np.mean(list(test_values(encoder, dataset, r).values())))
                                        for r in (1, 2, 3, 4, 5, 6, 8)}
        print(f"{name}: lr {best:g}, test nDCG@10 {rows[name]['ndcg10']:.4f}, parameters {encoder.parameters}"
              + (f", gate spectral radius {rows[name]['gate_spectral_radius']:.3f}, variable R "
                 f"{rows[name]['variable_r']}" if name == "cart" else ""), flush=True)
    tests = {}
    if "cart" in values:
        others = [m for m in values if m != "cart"]
        found = [paired_tests(values[m], values["cart"], system_name=m, baseline_name="cart") for m in others]
        for m, f, p_t, p_w in zip(others, found, holm([x.p_ttest for x in found]), holm([x.p_wilcoxon for x in found])):
            tests[f"{m} vs cart"] = {"delta": f.mean_difference, "t_p_holm": float(p_t), "wilcoxon_p_holm": float(p_w)}
            print(f"{m} - cart: {f.mean_difference:+.4f} (Holm t p {p_t:.2g}, Wilcoxon p {p_w:.2g})", flush=True)
    if args.plot:
        plot(curves, args.plot)
    if args.json:
        common.write_json(args.json, args, {"rows": rows, "tests": tests, "curves": curves})


def plot(curves: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, curve in curves.items():
        left.plot(range(1, len(curve["validation_ndcg10"]) + 1), curve["validation_ndcg10"], marker="o", label=name)
        right.plot(range(1, len(curve["losses"]) + 1), curve["losses"], marker="o", label=name)
    left.set(xlabel="epoch", ylabel="held-out nDCG@10 (training queries)", title="trained from scratch")
    right.set(xlabel="epoch", ylabel="mean InfoNCE loss", title="training loss")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
