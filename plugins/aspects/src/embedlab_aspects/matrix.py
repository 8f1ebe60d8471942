"""Every space on every aspect: do aspect heads beat the generic embedding on their own aspect, and
only there? ``python -m embedlab_aspects --output DIR``.

Three retrievers are built on the same generated task (:func:`embedlab_aspects.people`) with the
same frozen all-MiniLM-L6-v2:

* ``generic``: MiniLM's own mean-pooled vector for every aspect (no training);
* ``control``: one residual linear head trained on *all* aspects' training pairs together (the
  same-budget supervised control: one space learned from the same data);
* ``heads``: one residual linear head per aspect, trained on that aspect's pairs (the method).

Each space is then searched with every aspect's test queries (``search(..., aspect=space)``), the
query's own document and every training document excluded, and scored with MAP@10 (``AP@10``,
normalised by all relevant documents, as the paper's ``avg_p``) and nDCG@10. Paired tests (t-test
and Wilcoxon, per query) compare each head with ``generic`` and with ``control`` on every aspect,
Holm-corrected over the whole family of comparisons.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from embedlab import stats
from embedlab.cache import EmbeddingCache
from embedlab.dataset import Dataset
from embedlab.metrics import evaluate
from embedlab_aspects.people import ASPECTS, people
from embedlab_aspects.retriever import AspectRetriever

METRICS = ("AP@10", "nDCG@10")


def retrievers(aspects: tuple[str, ...], head: dict[str, Any]) -> dict[str, AspectRetriever]:
    """``generic``, ``control`` and ``heads`` (see the module docstring); ``head`` holds the
    ``frozen-head`` settings (training budget, threads) shared by the trained ones."""
    generic = {key: head[key] for key in ("model_path", "max_length", "num_threads", "show_progress") if key in head}
    return {"generic": AspectRetriever(aspects=aspects, shared=True, encoder={"name": "frozen-head", **generic}),
            "control": AspectRetriever(aspects=aspects, shared=True,
                                       encoder={"name": "frozen-head", "head": "linear", **head}),
            "heads": AspectRetriever(aspects=aspects, encoder={"name": "frozen-head", "head": "linear", **head})}


def per_query(retriever: AspectRetriever, data: Dataset, space: str, aspect: str) -> dict[str, dict[str, float]]:
    """``{metric: {query: value}}`` of ``space`` searched with ``aspect``'s test queries."""
    split = data.split(f"test-{aspect}")
    ranking = retriever.search(split.queries, len(data.corpus), aspect=space).without(split.exclude or {}, 10)
    result = evaluate(ranking, split.qrels, list(METRICS))
    return {m: result.query_values(m) for m in METRICS}


def run(data: Dataset, head: dict[str, Any], cache: EmbeddingCache | None = None) -> dict[str, Any]:
    """Build the three retrievers, fill the space x aspect table, run the paired tests."""
    aspects = tuple(data.metadata.get("aspects", ASPECTS))
    train = data.split("train")
    values: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    records = {}
    for label, retriever in retrievers(aspects, head).items():
        retriever.use_cache(cache)
        retriever.build(data.corpus, None if label == "generic" else train)
        for space in (aspects if label == "heads" else aspects[:1]):
            row = label if label != "heads" else f"head-{space}"
            values[row] = {aspect: per_query(retriever, data, space, aspect) for aspect in aspects}
            records[row] = getattr(retriever.stage(space).encoder, "training_record", {})
    table = {row: {a: {m: float(np.mean(list(v[m].values()))) for m in METRICS} for a, v in cells.items()}
             for row, cells in values.items()}
    comparisons = []
    for space in aspects:
        for aspect in aspects:
            for baseline in ("generic", "control"):
                comparisons.append((f"head-{space}", baseline, aspect))
    tests = [stats.paired_tests(values[s][a]["AP@10"], values[b][a]["AP@10"], system_name=s, baseline_name=b)
             for s, b, a in comparisons]
    t_holm = stats.holm([t.p_ttest for t in tests])
    w_holm = stats.holm([t.p_wilcoxon for t in tests])
    tested = [{"aspect": a, **attrs.evolve(t, p_ttest_holm=float(th), p_wilcoxon_holm=float(wh)).to_json()}
              for (_, _, a), t, th, wh in zip(comparisons, tests, t_holm, w_holm)]
    return {"aspects": list(aspects), "metrics": list(METRICS), "table": table, "tests": tested,
            "queries": {a: len(data.split(f"test-{a}").queries) for a in aspects},
            "training": records, "dataset": dict(data.metadata)}


def markdown(result: dict[str, Any], metric: str = "AP@10") -> str:
    """The space x aspect table of ``metric``; the best of each column in bold."""
    aspects, table = result["aspects"], result["table"]
    lines = [f"| space \\ aspect ({metric}) | " + " | ".join(aspects) + " |", "|---" * (len(aspects) + 1) + "|"]
    best = {a: max(table[r][a][metric] for r in table) for a in aspects}
    for row, cells in table.items():
        shown = [f"**{cells[a][metric]:.3f}**" if cells[a][metric] == best[a] else f"{cells[a][metric]:.3f}"
                 for a in aspects]
        lines.append(f"| {row} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def tests_markdown(result: dict[str, Any]) -> str:
    """One line per comparison: means, improved/degraded queries, Holm-corrected p-values."""
    lines = ["| head | vs | aspect | MAP@10 head | MAP@10 baseline | +/- queries | p t-test (Holm) | "
             "p Wilcoxon (Holm) |", "|---|---|---|---|---|---|---|---|"]
    for t in result["tests"]:
        lines.append(f"| {t['system']} | {t['baseline']} | {t['aspect']} | {t['mean_system']:.3f} | "
                     f"{t['mean_baseline']:.3f} | {t['improved']}/{t['degraded']} | {t['p_ttest_holm']:.2g} | "
                     f"{t['p_wilcoxon_holm']:.2g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-batch-size", type=int, default=128, help="queries per step (in-batch negatives)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True, help="folder for results.json and results.md")
    args = parser.parse_args(argv)
    data = people(documents=args.documents, train_fraction=args.train_fraction, seed=args.seed)
    head = {"epochs": args.epochs, "train_batch_size": args.train_batch_size, "lr": args.lr, "seed": args.seed,
            "num_threads": args.threads, "show_progress": False}
    result = run(data, head, EmbeddingCache())
    result["command"] = {k: v for k, v in vars(args).items() if k != "output"}
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    text = "\n\n".join([markdown(result), markdown(result, "nDCG@10"), tests_markdown(result)])
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    print(text)
