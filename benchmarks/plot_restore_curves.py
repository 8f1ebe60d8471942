"""RESTORE precision curves: precision of the K most similar node pairs against the k-hop pairs, for
FastRP, IRWE (position), spectral, DeepWalk and random vectors, k = 1 and 2, as a PNG.

    python benchmarks/plot_restore_curves.py --graph airports-brazil
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from embedlab_irwe import IRWE
from embedlab_restore import evaluate_reconstruction

import embedlab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", default="airports-brazil")
    parser.add_argument("--output", default="docs/benchmarks/restore_precision_{graph}.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graph = embedlab.load_dataset(args.graph).graph
    vectors = {
        "fastrp": embedlab.create("encoder", "fastrp", dim=128).fit_graph(graph).node_vectors,
        "irwe-position": IRWE(epochs=60, output="position").fit_graph(graph).node_vectors,
        "spectral": embedlab.create("encoder", "spectral",
                                    dim=min(64, graph.n_nodes // 4)).fit_graph(graph).node_vectors,
        "deepwalk": embedlab.create("encoder", "deepwalk", dim=64, walks_per_node=10, walk_length=80,
                                    workers=2).fit_graph(graph).node_vectors,
        "random": np.random.default_rng(0).standard_normal((graph.n_nodes, 64)),
    }
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, hops in zip(axes, (1, 2)):
        for name, x in vectors.items():
            result = evaluate_reconstruction(graph, x, hops=(hops,), similarity="cosine")[hops]
            axis.plot(result.cutoffs, result.precision, marker=".", label=f"{name} (mAP {result.map:.2f})")
            print(f"{args.graph} k={hops} {name}: mAP {result.map:.3f}, P@{result.cutoffs[6]} "
                  f"{result.precision[6]:.3f}, P@{result.cutoffs[10]} {result.precision[10]:.3f}")
        axis.set(xscale="log", xlabel="K most similar node pairs", title=f"{args.graph}: {hops}-hop pairs")
        axis.legend(fontsize=8)
    axes[0].set_ylabel("precision")
    figure.tight_layout()
    path = Path(args.output.format(graph=args.graph))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
