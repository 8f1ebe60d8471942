"""The experiment table and the files of ``--output DIR``: results.json, manifest.json (the run
manifest, :mod:`embedlab.manifest`), TREC runs, results.csv."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from embedlab.experiment.runner import ExperimentResult
from embedlab.manifest import MANIFEST_FILE, build_manifest

SIGNIFICANCE = 0.05


def _marker(result: ExperimentResult, pipeline: str, metric: str) -> str:
    comparison = result.comparison(pipeline, metric)
    if comparison is None or comparison.p_ttest_holm >= SIGNIFICANCE:
        return " "
    return "+" if comparison.mean_difference > 0 else "-"


def format_table(result: ExperimentResult) -> str:
    """One row per pipeline: metrics (with significance markers), p-values on the first metric,
    queries improved/degraded, latency, bytes per document and build time."""
    first = result.metrics[0]
    baseline = result.config.baseline
    header = ["pipeline", *result.metrics]
    if baseline:
        header += [f"p(t) {first}", f"p(W) {first}", "+/-"]
    header += ["ms/query", "bytes/doc", "build s"]
    cascades = any(o.timings.rerank_stages for o in result.outcomes)
    if cascades:
        header.append("ms/query by stage")
    rows = []
    for outcome in result.outcomes:
        row = [outcome.name + (" (baseline)" if outcome.name == baseline else "")]
        row += [f"{outcome.evaluation.aggregates[m]:.4f}{_marker(result, outcome.name, m)}"
                for m in result.metrics]
        if baseline:
            comparison = result.comparison(outcome.name, first)
            row += ([f"{comparison.p_ttest_holm:.3g}", f"{comparison.p_wilcoxon_holm:.3g}",
                     f"{comparison.improved}/{comparison.degraded}"] if comparison else ["", "", ""])
        timings = outcome.timings
        row += [f"{timings.latency_ms:.2f}", f"{outcome.bytes_per_document:,.0f}", f"{timings.build_s:.1f}"]
        if cascades:
            row.append(" + ".join(f"{ms:.2f}" for ms in timings.stage_latencies_ms().values()))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    split = result.split
    title = (f"{result.dataset.name} / {split.name}: {len(result.dataset.corpus):,} documents, "
             f"{len(split.queries):,} queries"
             + (f"; learning components trained on {result.config.train_split!r}" if result.config.train_split else ""))
    notes = []
    if baseline:
        notes.append(f"+/- after a value: significantly better/worse than {baseline} (paired t-test, "
                     f"Holm-corrected across pipelines, p < {SIGNIFICANCE}); p(t)/p(W): Holm-corrected "
                     f"t-test/Wilcoxon on {first}; +/-: queries improved/degraded on {first}.")
    notes.append("ms/query: query encoding + search + reranking, batched, divided by the number of "
                 "queries; build s: encoder fit + document encoding + compressor fit + indexing. Encoding "
                 "served from the cache counts the seconds it took when first computed.")
    if cascades:
        notes.append("ms/query by stage: first stage + each reranking stage in order ("
                     + "; ".join(f"{o.name}: " + " > ".join(o.timings.stage_latencies_ms())
                                 for o in result.outcomes if o.timings.rerank_stages) + ").")
    return "\n".join([title, "", *lines, "", *notes])


def write_outputs(result: ExperimentResult, directory: str | Path) -> list[Path]:
    """Write results.json, manifest.json, results.csv and runs/<pipeline>.trec; return the written paths."""
    from embedlab.trec import write_run

    out = Path(directory)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    written = [_atomic_text(out / "results.json", json.dumps(result.to_json(), indent=2, default=str)),
               _atomic_text(out / MANIFEST_FILE, json.dumps(build_manifest(result), indent=2, default=str))]
    for outcome in result.outcomes:
        path = out / "runs" / f"{outcome.name}.trec"
        write_run(outcome.ranking, path, tag=outcome.name)
        written.append(path)
    written.append(_write_csv(result, out / "results.csv"))
    return written


def _write_csv(result: ExperimentResult, path: Path) -> Path:
    fields = ["pipeline", *result.metrics, "p_ttest_holm", "p_wilcoxon_holm", "improved", "degraded",
              "latency_ms", "bytes_per_document", "build_s"]
    first = result.metrics[0]
    with tempfile.NamedTemporaryFile("w", newline="", dir=path.parent, delete=False,
                                     suffix=".tmp") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for outcome in result.outcomes:
            comparison = result.comparison(outcome.name, first)
            row = {"pipeline": outcome.name, **outcome.evaluation.aggregates,
                   "latency_ms": outcome.timings.latency_ms,
                   "bytes_per_document": outcome.bytes_per_document, "build_s": outcome.timings.build_s}
            if comparison:
                row.update(p_ttest_holm=comparison.p_ttest_holm,
                           p_wilcoxon_holm=comparison.p_wilcoxon_holm,
                           improved=comparison.improved, degraded=comparison.degraded)
            writer.writerow(row)
    os.replace(handle.name, path)
    return path


def _atomic_text(path: Path, text: str) -> Path:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)
    return path
