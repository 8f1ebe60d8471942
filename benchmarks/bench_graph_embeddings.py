"""Graph embeddings side by side: FastRP, IRWE (identity / position / both), spectral and DeepWalk.

1. **roles vs communities**: node classification (DeepWalk protocol, 50 % train, 5 shuffles, C = 1)
   on the airports graphs (labels = structural roles) and on karate / cora (labels = communities),
   with the seconds each encoder took;
2. **inductive IRWE**: 20 % of the nodes are removed before training; the trained units embed the
   whole graph afterwards; a classifier trained on the seen nodes labels the unseen ones (accuracy),
   next to IRWE fitted on the whole graph;
3. **RESTORE**: k-hop reconstruction mAP (cosine) at k = 1, 2, 3 and the label semantic test.

    python benchmarks/bench_graph_embeddings.py            # ~20 min on 2 cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from common import write_json
from embedlab_irwe import IRWE
from embedlab_restore import evaluate_reconstruction, label_reconstruction

import embedlab
from embedlab.graph import ClassificationProtocol, classify_nodes

ROLES = ("airports-brazil", "airports-europe", "airports-usa")
COMMUNITIES = ("karate", "cora")


def encoders(graph, epochs: int) -> dict:
    small = graph.n_nodes < 200
    return {
        "fastrp": lambda: embedlab.create("encoder", "fastrp", dim=128).fit_graph(graph).node_vectors,
        "spectral": lambda: embedlab.create("encoder", "spectral",
                                            dim=16 if small else 64).fit_graph(graph).node_vectors,
        "deepwalk": lambda: embedlab.create("encoder", "deepwalk", dim=64, walks_per_node=10, walk_length=80,
                                            workers=2).fit_graph(graph).node_vectors,
        "irwe": lambda: IRWE(epochs=epochs).fit_graph(graph).identity_and_position(graph),
    }


def embed_all(graph, epochs: int) -> tuple[dict, dict]:
    vectors, seconds = {}, {}
    for name, run in encoders(graph, epochs).items():
        start = time.perf_counter()
        out = run()
        seconds[name] = time.perf_counter() - start
        if name == "irwe":
            identity, position = out
            vectors.update({"irwe-identity": identity, "irwe-position": position,
                            "irwe-both": np.hstack([identity, position])})
        else:
            vectors[name] = out
    vectors["random"] = np.random.default_rng(0).standard_normal((graph.n_nodes, 64))
    return vectors, seconds


def inductive(graph, epochs: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    unseen = np.sort(rng.choice(graph.n_nodes, size=graph.n_nodes // 5, replace=False))
    seen = np.setdiff1d(np.arange(graph.n_nodes), unseen)
    sub = graph.subgraph(seen)
    sub = sub.subgraph(np.setdiff1d(np.arange(sub.n_nodes), sub.isolated()))  # nodes that lost every edge
    out = {}
    for label, encoder_graph in (("inductive", sub), ("transductive", graph)):
        encoder = IRWE(epochs=epochs).fit_graph(encoder_graph)
        identity, position = encoder.identity_and_position(graph)
        for part, x in (("identity", identity), ("position", position), ("both", np.hstack([identity, position]))):
            out[f"{label} {part}"] = _holdout_accuracy(x, graph.labels, seen, unseen)
    return out


def _holdout_accuracy(x: np.ndarray, labels: sp.csr_matrix, train: np.ndarray, test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels.argmax(axis=1)).ravel()
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x[train], y[train])
    return float((model.predict(x[test]) == y[test]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60, help="IRWE training epochs")
    parser.add_argument("--graphs", nargs="*", default=[*ROLES, *COMMUNITIES])
    parser.add_argument("--output", default="docs/benchmarks/graph_embeddings.json")
    args = parser.parse_args()
    protocol = ClassificationProtocol(train_ratios=(0.5,), repeats=5)
    results: dict = {"classification": {}, "seconds": {}, "restore": {}, "inductive": {}}
    for name in args.graphs:
        graph = embedlab.load_dataset(name).graph
        vectors, seconds = embed_all(graph, args.epochs)
        results["seconds"][name] = seconds
        scores = {}
        for method, x in vectors.items():
            result = classify_nodes(x, graph.labels, protocol)
            scores[method] = (result.mean("Micro-F1", 0.5), result.mean("Macro-F1", 0.5))
        results["classification"][name] = scores
        print(f"{name} ({'roles' if name in ROLES else 'communities'}), Micro/Macro-F1 at 50 %: "
              + ", ".join(f"{m} {a:.3f}/{b:.3f}" for m, (a, b) in scores.items())
              + " | seconds: " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()), flush=True)
        if name in ("airports-brazil", "karate", "cora"):
            restore = {}
            for method, x in vectors.items():
                maps = evaluate_reconstruction(graph, x, hops=(1, 2, 3), similarity="cosine", cutoffs=[])
                semantic = label_reconstruction(graph, x)
                restore[method] = {**{f"mAP{k}": r.map for k, r in maps.items()}, **semantic,
                                   "reach": {k: r.mean_reach for k, r in maps.items()}}
            results["restore"][name] = restore
            print(f"RESTORE {name}: " + "; ".join(
                f"{m} mAP1/2/3 {r['mAP1']:.3f}/{r['mAP2']:.3f}/{r['mAP3']:.3f} label-mAP {r['label_mAP']:.3f} "
                f"dist-ratio {r['distance_ratio']:.2f}" for m, r in restore.items()), flush=True)
        if name in ("airports-usa", "karate"):
            results["inductive"][name] = inductive(graph, args.epochs)
            print(f"inductive IRWE {name} (accuracy on the 20 % unseen nodes): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in results["inductive"][name].items()), flush=True)
    print(f"wrote {write_json(args.output, args, results)}")


if __name__ == "__main__":
    main()
