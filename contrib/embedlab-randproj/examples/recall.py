"""Recall@10 of L2 search on randproj codes (Fashion-MNIST 1k, 784-d), against scikit-learn's
GaussianRandomProjection at the same code size in the same run.

    python examples/recall.py [--data ../shared/data/ann-fmnist1k]

Needs scikit-learn (the reference only; the plugin does not depend on it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from embedlab_randproj import RandomProjection
from sklearn.random_projection import GaussianRandomProjection

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ann-fmnist1k"
RATIOS = (0.01, 0.02, 0.05, 0.1, 0.25)
SEEDS = range(5)
K = 10


def read_vecs(path: Path, dtype: str) -> np.ndarray:
    """texmex .fvecs/.ivecs: each row is an int32 dimension followed by that many values."""
    raw = np.fromfile(path, dtype=np.int32)
    return raw.reshape(-1, raw[0] + 1)[:, 1:].view(dtype)


def recall_at_k(queries: np.ndarray, base: np.ndarray, truth: np.ndarray) -> float:
    distances = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None, :]
    top = np.argsort(distances, axis=1)[:, :K]
    return float(np.mean([len(set(t) & set(g)) / K for t, g in zip(top, truth[:, :K])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    base = read_vecs(args.data / "fmnist1k_base.fvecs", "float32").astype(np.float64)
    queries = read_vecs(args.data / "fmnist1k_query.fvecs", "float32").astype(np.float64)
    truth = read_vecs(args.data / "fmnist1k_groundtruth.ivecs", "int32")
    print(f"recall@{K}, mean over seeds {list(SEEDS)}")
    print(f"{'ratio':>6} {'dim':>4} {'bytes':>6} {'recall@10':>10} {'sklearn':>8} {'ours/sk':>8}")
    for ratio in RATIOS:
        ours, reference = [], []
        for seed in SEEDS:
            compressor = RandomProjection(ratio=ratio, seed=seed).fit(base)
            ours.append(recall_at_k(compressor.encode(queries), compressor.encode(base), truth))
            sk = GaussianRandomProjection(n_components=compressor.projection.shape[0],
                                          random_state=seed).fit(base)
            reference.append(recall_at_k(sk.transform(queries), sk.transform(base), truth))
        print(f"{ratio:>6} {compressor.projection.shape[0]:>4} {compressor.bytes_per_vector:>6.0f} "
              f"{np.mean(ours):>10.3f} {np.mean(reference):>8.3f} {np.mean(ours) / np.mean(reference):>8.3f}")
    print(f"exact float32: {base.shape[1] * 4} bytes, recall@{K} = {recall_at_k(queries, base, truth):.3f}")


if __name__ == "__main__":
    main()
