"""Seismic index (embedlab-seismic, numba) against the official pyseismic-lsr wheel (Rust) and exact
scipy sparse search, same process, one thread each.

    python benchmarks/bench_seismic.py                                   # toy, scifact, pypi 200k
    python benchmarks/bench_seismic.py --datasets pypi --docs 50000 --plot ''

Data: the toy SPLADE vectors of the Seismic repository, and BM25 vectors (embedlab-bm25:
documents carry the BM25 weights, queries the term counts) of SciFact (5,183 abstracts, 1,109
claims) and of PyPI summaries (``--docs`` rows, seeded sample; queries are ``--queries`` held-out
summaries). Both indexes get the same build parameters; ours uses ``pruning="global"``, the
wheel's only strategy. Accuracy@k = fraction of the exact top-k found, a returned document counting
when its exact score reaches the exact k-th score (so ties are not penalised); queries without
any matching document are left out. Every search is repeated, alternating ours and the wheel
(paired), and the ratios are medians of per-repetition time ratios. The wheel's batch_search takes
string token ids (``"42"``): converting our CSR queries to them is done once, outside the timing.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the wheel's thread pool: read once, at first use

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

import common  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import seismic  # noqa: E402
from embedlab_seismic import SeismicIndex, read_jsonl  # noqa: E402
from tqdm import tqdm  # noqa: E402

import embedlab  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Build parameters per data set (the official defaults, except where noted in the docs).
BUILDS = {
    "toy": [{"n_postings": 3500, "centroid_fraction": 0.1, "summary_energy": 0.4}],
    "scifact": [{"n_postings": 1000, "centroid_fraction": 0.1, "summary_energy": 0.4},
                {"n_postings": 1000, "centroid_fraction": 0.1, "summary_energy": 0.8}],
    "pypi": [{"n_postings": 2000, "centroid_fraction": 0.1, "summary_energy": 0.4},
             {"n_postings": 2000, "centroid_fraction": 0.1, "summary_energy": 0.8}],
}
QUERY_CUTS = {"toy": (3, 5, 10, 20), "scifact": (2, 3, 5, 10, 20), "pypi": (1, 2, 3, 5, 10)}
HEAP_FACTORS = (1.0, 0.9, 0.8, 0.7, 0.5)
TARGETS = (0.8, 0.9, 0.95, 0.98, 0.99)


# -- data -----------------------------------------------------------------------------------

def load(name: str, n_docs: int, n_queries: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    if name == "toy":
        _, docs, vocabulary = read_jsonl(DATA / "seismic-toy-splade" / "documents.jsonl")
        return docs, read_jsonl(DATA / "seismic-toy-splade" / "queries.jsonl", vocabulary)[1]
    if name == "scifact":
        root = DATA / "scifact" / "beir"
        corpus = [json.loads(line) for line in open(root / "corpus.jsonl", encoding="utf-8")]
        documents = [f"{d['title']} {d['text']}" for d in corpus]
        queries = [json.loads(line)["text"] for line in open(root / "queries.jsonl", encoding="utf-8")]
    else:
        with gzip.open(DATA / "pypi-summaries" / "pypi-summaries.tsv.gz", "rt", encoding="utf-8") as handle:
            column = handle.readline().rstrip("\n").split("\t").index("summary")
            summaries = [line.rstrip("\n").split("\t")[column] for line in handle]
        order = np.random.default_rng(seed).permutation(len(summaries))
        documents = [summaries[i] for i in order[:n_docs]]
        queries = [summaries[i] for i in order[n_docs:n_docs + n_queries]]
    bm25 = embedlab.create("encoder", "bm25")
    bm25.fit(documents)
    return bm25.encode_documents(documents), bm25.encode_queries(queries)


# -- exact search and accuracy --------------------------------------------------------------

def exact_search(docs: sp.csr_matrix, queries: sp.csr_matrix, k: int, batch: int = 256
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by scipy sparse products (dense score rows, argpartition, sort). Returns, per
    query, the k-th best positive score and how many of the top k are positive (at most k)."""
    kth = np.zeros(queries.shape[0], dtype=np.float32)
    n_positive = np.zeros(queries.shape[0], dtype=np.int64)
    transposed = docs.T.tocsc()
    for start in range(0, queries.shape[0], batch):
        scores = (queries[start:start + batch] @ transposed).toarray()
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best = -np.sort(-np.take_along_axis(scores, part, axis=1), axis=1)
        n_positive[start:start + batch] = (best > 0).sum(axis=1)
        kth[start:start + batch] = np.where(best > 0, best, np.inf).min(axis=1)
    kth[n_positive == 0] = 0
    return kth, n_positive


def accuracy(found: np.ndarray, docs: sp.csr_matrix, queries: sp.csr_matrix, kth: np.ndarray,
             n_positive: np.ndarray) -> float:
    """Mean fraction of the (positive) exact top-k reached by the returned documents: a returned
    document counts when its exact score is positive and at least the exact k-th score."""
    rows, cols = np.nonzero(found >= 0)
    exact = np.asarray(docs[found[rows, cols]].multiply(queries[rows]).sum(axis=1)).ravel()
    good = np.zeros(found.shape, dtype=bool)
    good[rows, cols] = (exact > 0) & (exact >= kth[rows] * (1 - 1e-4))
    judged = n_positive > 0
    return float(np.mean(np.minimum(good[judged].sum(axis=1), n_positive[judged]) / n_positive[judged]))


# -- the official wheel ---------------------------------------------------------------------

class Official:
    """pyseismic-lsr built on the same CSR matrix (component ids used as token strings)."""

    def __init__(self, docs: sp.csr_matrix, queries: sp.csr_matrix, **params: float) -> None:
        large = docs.shape[1] > 65535
        dataset = (seismic.SeismicDatasetLV if large else seismic.SeismicDataset)(dim=docs.shape[1])
        dataset.add_documents_by_id([str(i) for i in range(docs.shape[0])], docs.indices.astype(np.int64),
                                    docs.data.astype(np.float32), docs.indptr.astype(np.int64))
        cls = seismic.SeismicIndexLV if large else seismic.SeismicIndex
        start = time.process_time()
        with _stdout_to(None):
            self.index = cls.build_from_dataset(dataset, **params)
        self.build_cpu_s = time.process_time() - start
        string = seismic.get_seismic_string()
        self.ids = np.array([str(i) for i in range(queries.shape[0])], dtype=string)
        self.components = [np.array([str(t) for t in queries.indices[a:b]], dtype=string)
                           for a, b in zip(queries.indptr[:-1], queries.indptr[1:])]
        self.values = [queries.data[a:b].astype(np.float32) for a, b in zip(queries.indptr[:-1], queries.indptr[1:])]

    def search(self, k: int, cut: int, heap_factor: float) -> np.ndarray:
        results = self.index.batch_search(self.ids, self.components, self.values, k, cut, heap_factor)
        found = np.full((len(results), k), -1, dtype=np.int64)
        for row, hits in enumerate(results):
            found[row, :len(hits)] = [int(doc) for _, _, doc in hits]
        return found

    @property
    def memory_bytes(self) -> int:
        """The wheel's own count (``print_space_usage_byte``, read back from stdout)."""
        with tempfile.TemporaryFile("w+") as capture:
            with _stdout_to(capture):
                self.index.print_space_usage_byte()
            capture.seek(0)
            match = re.search(r"Total:\s*(\d+)", capture.read())
        return int(match.group(1)) if match else -1


@contextlib.contextmanager
def _stdout_to(handle) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Redirect file descriptor 1 (the wheel prints from Rust) to ``handle`` or /dev/null."""
    target = handle if handle is not None else open(os.devnull, "w")
    saved = os.dup(1)
    try:
        os.dup2(target.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        if handle is None:
            target.close()


# -- timing ---------------------------------------------------------------------------------

def paired(runs: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Wall seconds of each run per repetition (order alternating), after one warm-up each."""
    outputs = {name: run() for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return times, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["toy", "scifact", "pypi"], choices=list(BUILDS))
    parser.add_argument("--docs", type=int, default=200_000, help="PyPI documents")
    parser.add_argument("--queries", type=int, default=1000, help="PyPI held-out queries")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="docs/benchmarks/seismic.png", help="accuracy-vs-QPS PNG ('' for none)")
    args = parser.parse_args()
    common.report_load()
    print(f"embedlab-seismic vs pyseismic-lsr, k={args.k}, single thread (RAYON_NUM_THREADS="
          f"{os.environ['RAYON_NUM_THREADS']}), load average {os.getloadavg()[0]:.1f}")
    curves = {}
    for name in args.datasets:
        docs, queries = load(name, args.docs, args.queries, args.seed)
        docs, queries = docs.astype(np.float32), queries.astype(np.float32)
        start = time.perf_counter()
        truth = exact_search(docs, queries, args.k)
        exact_qps = queries.shape[0] / (time.perf_counter() - start)
        print(f"\n== {name}: {docs.shape[0]:,} documents, {queries.shape[0]:,} queries, vocabulary "
              f"{docs.shape[1]:,}, {docs.nnz / docs.shape[0]:.1f} terms/document, "
              f"{queries.nnz / queries.shape[0]:.1f} terms/query; exact scipy search {exact_qps:,.0f} QPS")
        for build in BUILDS[name]:
            curves[(name, build["summary_energy"])] = run_grid(name, build, docs, queries, truth, exact_qps, args)
    if args.plot and any(n != "toy" for n, _ in curves):
        plot(curves, args.plot)


def run_grid(name: str, build: dict, docs: sp.csr_matrix, queries: sp.csr_matrix,
             truth: tuple[np.ndarray, np.ndarray], exact_qps: float,
             args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    ours = SeismicIndex(pruning="global", max_fraction=1.5, **build)
    start = time.process_time()
    ours.build(docs)
    ours_build = time.process_time() - start
    official = Official(docs, queries, max_fraction=1.5, **build)
    print(f"\n-- build {build}: CPU seconds ours {ours_build:.2f}, wheel {official.build_cpu_s:.2f}; "
          f"memory ours {ours.memory_bytes / 1e6:.1f} MB, wheel {official.memory_bytes / 1e6:.1f} MB")
    header = (f"{'cut':>4} {'hf':>4} | {'acc ours':>8} {'acc wheel':>9} | {'QPS ours':>9} {'QPS wheel':>9} "
              f"| {'ours/wheel':>10} {'ours/scipy':>10}")
    print(header + "\n" + "-" * len(header))
    n = queries.shape[0]
    points: dict[str, list[tuple[float, float]]] = {"ours": [], "wheel": []}
    grid = [(cut, hf) for cut in QUERY_CUTS[name] for hf in HEAP_FACTORS]
    for cut, hf in tqdm(grid, desc=f"{name} grid", leave=False):
        times, out = paired({
            "ours": lambda cut=cut, hf=hf: ours.search(queries, args.k, query_cut=cut, heap_factor=hf).indices,
            "wheel": lambda cut=cut, hf=hf: official.search(args.k, cut, hf)}, args.repeats)
        acc = {s: accuracy(out[s], docs, queries, *truth) for s in out}
        qps = {s: n / statistics.median(times[s]) for s in times}
        ratio = statistics.median(w / o for o, w in zip(times["ours"], times["wheel"]))
        for s in points:
            points[s].append((acc[s], qps[s]))
        tqdm.write(f"{cut:>4} {hf:>4.1f} | {acc['ours']:>8.3f} {acc['wheel']:>9.3f} | {qps['ours']:>9,.0f} "
                   f"{qps['wheel']:>9,.0f} | {ratio:>10.2f} {qps['ours'] / exact_qps:>10.1f}")
    print(f"best QPS reaching an accuracy (ratio ours/wheel; exact scipy: {exact_qps:,.0f} QPS):")
    for target in TARGETS:
        best = {s: max((q for a, q in points[s] if a >= target), default=0.0) for s in points}
        missing = [s for s in best if not best[s]]
        if missing:
            print(f"  acc >= {target:.2f}: not reached by {' nor '.join(missing)} on this grid")
        else:
            print(f"  acc >= {target:.2f}: ours {best['ours']:>9,.0f}  wheel {best['wheel']:>9,.0f}  "
                  f"ratio {best['ours'] / best['wheel']:.2f}")
    return points


def plot(curves: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({n for n, _ in curves if n != "toy"})
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for (dataset, energy), points in curves.items():
            if dataset != name:
                continue
            for system, marker in (("ours", "o"), ("wheel", "x")):
                acc, qps = zip(*_frontier(points[system]))
                ax.plot(qps, acc, marker=marker, label=f"{system}, summary_energy {energy}")
        ax.set_xscale("log")
        ax.set_xlabel("queries per second (one thread)")
        ax.set_ylabel("accuracy@10 vs exact")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def _frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Pareto-optimal (accuracy, QPS) points, by increasing accuracy."""
    best: list[tuple[float, float]] = []
    for acc, qps in sorted(points, key=lambda p: (-p[1], -p[0])):
        if not best or acc > best[-1][0]:
            best.append((acc, qps))
    return sorted(best)


if __name__ == "__main__":
    main()
