"""EmbedLens token triage (embedlab-embedlens) for a MaxSim index: storage vs nDCG@10.

all-MiniLM-L6-v2's last-layer token vectors of every document (the hidden-states cache of
embedlab-train: the same vectors as ``minilm-tokens`` before normalisation) are probed against
MiniLM's input-embedding matrix (``top_k = 3``); documents keep their alive tokens (``triage``:
dead and sink dropped) at every ``--dead-below`` threshold, against the controls at equal bytes:
the same number of tokens dropped per document at random (``random``, 3 seeds) and, at
``--control-threshold``, drawn from the alive tokens (``alive``: EmbedLens's own control), and
MUVERA's fixed dimensional encodings of the full token sets (FDE only, no rerank: 4 bytes x
``R_reps x 2**k_sim x d_proj``) at several ``R_reps``. Queries keep every token. Exact MaxSim over
the whole corpus, nDCG@10 on the test split, paired t-test and Wilcoxon of triage against random
at each threshold (Holm). Bytes: float32 token vectors (4 x 384 per kept token). Nothing is tuned
on the test split: the thresholds are a sweep (a curve), not a choice.

    python benchmarks/bench_embedlens.py --datasets python-stdlib --plot docs/benchmarks/embedlens.png \
        --json results/bench_embedlens.json
"""

from __future__ import annotations

import argparse
import collections
import time

import common
import numpy as np
from embedlab_embedlens import EmbedLens
from embedlab_embedlens.lens import CLASSES, DEAD, SINK, classify, keep_mask
from embedlab_muvera import FDEConfig, encode_documents_fde, encode_queries_fde
from embedlab_train.hidden import FrozenEncoder
from embedlab_transformers.model_files import default_model_dir

from embedlab import MultiVectorEmbeddings, Ranking
from embedlab.cache import default_cache_dir
from embedlab.index.maxsim import maxsim_scores
from embedlab.metrics import evaluate
from embedlab.stats import holm, paired_tests

THRESHOLDS = (0.18, 0.22, 0.25, 0.28, 0.32)
SEEDS = (0, 1, 2)
MUVERA_REPS = (2, 5, 10, 20, 40)


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def per_query(scores: np.ndarray, query_ids: list[str], doc_ids: np.ndarray, qrels: object) -> dict[str, float]:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    ranking = Ranking(query_ids, doc_ids[top], np.take_along_axis(scores, top, axis=1))
    return evaluate(ranking, qrels, ["nDCG@10"]).query_values("nDCG@10")


def maxsim_pruned(queries: MultiVectorEmbeddings, vectors: np.ndarray, offsets: np.ndarray,
                  keeps: list[np.ndarray], block: int = 256) -> list[np.ndarray]:
    """Exact MaxSim of the queries against the documents restricted to each mask of ``keeps``:
    the query-token x document-token similarities are computed once per block of query tokens and
    every mask is a max over the kept tokens only (every document keeps at least one token)."""
    starts = offsets[:-1]
    out = [np.zeros((len(queries), len(starts)), np.float32) for _ in keeps]
    q_offsets = queries.offsets
    bounds = list(range(0, len(queries), max(1, block // 16))) + [len(queries)]
    for q0, q1 in zip(bounds[:-1], bounds[1:]):
        part = queries.vectors[q_offsets[q0]:q_offsets[q1]]
        similarity = part @ vectors.T
        for keep, scores in zip(keeps, out):
            masked = np.where(keep[None, :], similarity, -np.inf)
            per_token = np.maximum.reduceat(masked, starts, axis=1)
            scores[q0:q1] = np.add.reduceat(per_token, q_offsets[q0:q1] - q_offsets[q0], axis=0)
    return out


def probe_cached(name: str, lens: EmbedLens, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top-3 probe of every document token, kept on disk next to the hidden states (recomputed
    when the token count changes)."""
    path = default_cache_dir().expanduser() / "embedlens" / f"{name}-top3.npz"
    if path.exists():
        saved = np.load(path)
        if len(saved["ids"]) == len(tokens):
            return saved["ids"], saved["sims"]
    started = time.perf_counter()
    ids, sims = lens.probe.nearest(tokens, 3)
    print(f"{name}: probed {len(tokens)} tokens against {len(lens.probe.vocabulary)} vocabulary rows in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=ids, sims=sims)
    return ids, sims


def class_examples(labels: np.ndarray, token_ids: np.ndarray, tokenizer: object, top: int = 12) -> dict:
    out = {}
    for name, value in CLASSES.items():
        counts = collections.Counter(token_ids[labels == value].tolist())
        out[name] = {"fraction": float(np.mean(labels == value)),
                     "most_common": [(tokenizer.convert_ids_to_tokens(i), n) for i, n in counts.most_common(top)]}
    return out


def run_dataset(name: str, args: argparse.Namespace) -> dict:
    dataset = common.load(name)
    split = dataset.split("test")
    frozen = FrozenEncoder(default_model_dir(), 256, batch_size=32, num_threads=args.threads)
    doc_states = frozen.states(dataset.corpus.documents())
    query_states = frozen.states(list(split.queries.texts))
    tokens = np.asarray(doc_states.tokens, dtype=np.float32)
    offsets = np.asarray(doc_states.offsets)
    queries = MultiVectorEmbeddings(unit(np.asarray(query_states.tokens)), np.asarray(query_states.offsets))
    doc_ids = np.asarray(dataset.corpus.ids)
    query_ids = list(split.queries.ids)
    lens = EmbedLens(encoder={"name": "minilm-tokens", "show_progress": False})
    ids, sims = probe_cached(name, lens, tokens)
    norms = np.linalg.norm(tokens, axis=1)
    normalised = unit(tokens)
    token_ids = np.concatenate(frozen.tokenizer(dataset.corpus.documents(), truncation=True, max_length=256,
                                                add_special_tokens=True)["input_ids"])
    assert len(token_ids) == len(tokens), "token ids do not line up with the cached token vectors"
    full_bytes = 4.0 * tokens.shape[1] * len(tokens) / len(doc_ids)

    configs: list[tuple[str, float | None, int, np.ndarray]] = [("full", None, 0, np.ones(len(tokens), bool))]
    labels_at = {}
    for threshold in args.dead_below:
        labels = classify(ids, sims, lens.probe.special, norms, offsets, dead_below=threshold, sink_norm_z=None)
        labels_at[threshold] = labels
        priority = -labels.astype(np.float32)
        seeds = tuple(range(args.seeds))
        policies = [("triage", (0,)), ("random", seeds)] + ([("alive", seeds)] if threshold == args.control_threshold
                                                            else [])
        for policy, seeds in policies:
            configs.extend((policy, threshold, seed,
                            keep_mask(labels, offsets, [DEAD, SINK], policy, seed, 1, priority)) for seed in seeds)
    started = time.perf_counter()
    scores = maxsim_pruned(queries, normalised, offsets, [c[3] for c in configs])
    print(f"{name}: MaxSim of {len(configs)} prunings in {time.perf_counter() - started:.0f} s", flush=True)
    check = configs[1][3]                                          # the same scores as the core's MaxSim
    kept_before = np.concatenate([[0], np.cumsum(check, dtype=np.int64)])
    reference = maxsim_scores(MultiVectorEmbeddings(queries.vectors[:queries.offsets[5]], queries.offsets[:6]),
                              MultiVectorEmbeddings(normalised[check], kept_before[offsets]))
    np.testing.assert_allclose(scores[1][:5], reference, rtol=1e-5, atol=1e-5)
    rows, values, grouped = [], {}, collections.defaultdict(list)
    for (policy, threshold, _seed, keep), found in zip(configs, scores):
        grouped[(policy, threshold)].append((per_query(found, query_ids, doc_ids, split.qrels),
                                             4.0 * tokens.shape[1] * keep.sum() / len(doc_ids)))
    for (policy, threshold), runs in grouped.items():
        mean = {q: float(np.mean([r[0][q] for r in runs])) for q in runs[0][0]}
        values[(policy, threshold)] = mean
        size = float(np.mean([r[1] for r in runs]))
        row = {"method": policy, "threshold": threshold, "bytes": size, "kept": size / full_bytes,
               "ndcg10": float(np.mean(list(mean.values())))}
        if threshold is not None:
            row["classes"] = {c: float(np.mean(labels_at[threshold] == v)) for c, v in CLASSES.items()}
        rows.append(row)
        print(f"{name} {policy} dead_below={threshold}: kept {row['kept']:.3f} of the tokens "
              f"({size / 1024:.1f} KiB per document), nDCG@10 {row['ndcg10']:.4f}", flush=True)
    for reps in args.muvera_reps:
        config = FDEConfig(k_sim=5, d_proj=16, R_reps=reps)
        q = encode_queries_fde(queries, config)
        d = encode_documents_fde(MultiVectorEmbeddings(normalised, offsets), config)
        found = per_query(q @ d.T, query_ids, doc_ids, split.qrels)
        rows.append({"method": "muvera", "R_reps": reps, "bytes": 4.0 * d.shape[1],
                     "ndcg10": float(np.mean(list(found.values())))})
        print(f"{name} muvera R={reps}: {d.shape[1]} dims ({rows[-1]['bytes'] / 1024:.1f} KiB), "
              f"nDCG@10 {rows[-1]['ndcg10']:.4f}", flush=True)
    full = values[("full", None)]
    examples = class_examples(labels_at[args.control_threshold], token_ids, frozen.tokenizer)
    tests = {}
    for baseline in ("random", "full"):
        found = [paired_tests(values[("triage", t)], full if baseline == "full" else values[(baseline, t)],
                              system_name=f"triage:{t}", baseline_name=f"{baseline}:{t}") for t in args.dead_below]
        for t, f, p_t, p_w in zip(args.dead_below, found, holm([x.p_ttest for x in found]),
                                  holm([x.p_wilcoxon for x in found])):
            tests[f"triage vs {baseline} at {t}"] = {"delta": f.mean_difference, "t_p_holm": float(p_t),
                                                     "wilcoxon_p_holm": float(p_w)}
            print(f"{name} triage vs {baseline} at dead_below={t}: {f.mean_difference:+.4f} "
                  f"(Holm t p {p_t:.2g}, Wilcoxon p {p_w:.2g})", flush=True)
    control = [paired_tests(values[("triage", args.control_threshold)], values[("alive", args.control_threshold)],
                            system_name="triage", baseline_name="alive")][0]
    tests["triage vs alive"] = {"delta": control.mean_difference, "t_p": float(control.p_ttest),
                                "wilcoxon_p": float(control.p_wilcoxon)}
    print(f"{name} triage vs alive-token dropping at {args.control_threshold}: {control.mean_difference:+.4f} "
          f"(t p {control.p_ttest:.2g}, Wilcoxon p {control.p_wilcoxon:.2g})", flush=True)
    for c, info in examples.items():
        print(f"{name} {c}: {info['fraction']:.3f} of document tokens; most common: {info['most_common']}", flush=True)
    return {"rows": rows, "tests": tests, "classes": examples, "queries": len(query_ids),
            "documents": len(doc_ids), "tokens": int(len(tokens))}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.5), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        for method, marker in (("triage", "o"), ("random", "s"), ("alive", "^"), ("muvera", "D")):
            rows = sorted((r for r in result["rows"] if r["method"] == method), key=lambda r: r["bytes"])
            if rows:
                ax.plot([r["bytes"] / 1024 for r in rows], [r["ndcg10"] for r in rows], marker=marker,
                        label=method if method != "muvera" else "MUVERA FDE (no rerank)")
        full = next(r for r in result["rows"] if r["method"] == "full")
        ax.scatter([full["bytes"] / 1024], [full["ndcg10"]], color="k", zorder=3, label="all tokens")
        ax.set_xscale("log")
        ax.set_xlabel("KiB per document (float32)")
        ax.set_ylabel("nDCG@10 (test, MaxSim)")
        ax.set_title(f"{name}: token triage vs dropping at random, equal bytes", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["python-stdlib"])
    parser.add_argument("--dead-below", nargs="+", type=float, default=list(THRESHOLDS))
    parser.add_argument("--control-threshold", type=float, default=0.25)
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds of the random controls")
    parser.add_argument("--muvera-reps", nargs="+", type=int, default=list(MUVERA_REPS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", help="write the storage-vs-nDCG@10 plot here (PNG)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.control_threshold not in args.dead_below:
        parser.error("--control-threshold must be one of --dead-below")
    common.report_load()
    results = {name: run_dataset(name, args) for name in args.datasets}
    if args.plot:
        plot(results, args.plot)
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
