"""The experiment table and the files of ``--output DIR``: results.json, manifest.json (the run
manifest, :mod:`embedlab.manifest`), TREC runs, results.csv."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from embedlab.atomic import write_file_atomically
from embedlab.errors import ConfigError, InvalidInputError
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


#: What ``--output DIR`` holds. The folder is replaced as a whole, so one holding anything else is
#: refused (before the experiment runs) rather than emptied.
OUTPUT_NAMES = ("results.json", MANIFEST_FILE, "results.csv", "runs")


def check_output_directory(directory: str | Path) -> Path:
    """``directory`` when the results can be written there; otherwise :class:`ConfigError` (run it
    before the experiment, so that a wrong ``--output`` costs nothing): it is a file, holds files
    that are not embedlab results, or cannot be created."""
    out = Path(directory).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {out}: exists and is not a directory")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUT_NAMES)
        if foreign:
            raise ConfigError(f"--output {out}: holds files that are not embedlab results ({', '.join(foreign[:5])}"
                              f"{', ...' if len(foreign) > 5 else ''}); the folder is replaced as a whole, so "
                              "choose a new or empty one")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {out}: cannot create it ({parent} is not a writable directory)")
    return out


@contextlib.contextmanager
def staged_output(directory: str | Path) -> Iterator[Path]:
    """A new folder beside ``directory`` to write the results into; when the block ends without
    error it replaces ``directory`` in one step (the previous results as a whole; a failure leaves
    them as they were, never a mix of old and new files). Files and folders get the user's umask."""
    out = check_output_directory(directory)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir(parents=True)
        yield staging
        _publish(staging, out)
    except OSError as error:
        raise InvalidInputError(f"--output {out}: cannot write the results ({error.strerror or error}); "
                                "the previous contents are unchanged") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_output_file(path: str | Path, option: str = "--report") -> Path:
    """``path`` when a file can be written there; otherwise :class:`ConfigError` (run it before
    the experiment): it is a directory, or its folder cannot be created."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"{option} {target}: is a directory; give a file name such as report.html")
    parent = next((p for p in target.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {target}: cannot create it ({parent} is not a writable directory)")
    return target


def write_text_atomically(path: str | Path, text: str, option: str = "--report") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`embedlab.atomic.atomic_file`: a
    temporary beside it and a rename, so a reader sees the old file or the new one, never a part;
    the mode a plain ``open(path, "w")`` gives). A failed write becomes :class:`InvalidInputError`
    naming ``option``; the temporary file is removed."""
    target = check_output_file(path, option)
    try:
        write_file_atomically(target, text)
    except OSError as error:
        raise InvalidInputError(f"{option} {target}: cannot write it ({error.strerror or error})") from None
    return target


def write_outputs(result: ExperimentResult, directory: str | Path) -> list[Path]:
    """Write results.json, manifest.json, results.csv and runs/<pipeline>.trec as one unit
    (:func:`staged_output`); return the written paths."""
    from embedlab.trec import write_run

    written = [Path("results.json"), Path(MANIFEST_FILE), *(Path("runs") / f"{o.name}.trec" for o in result.outcomes),
               Path("results.csv")]
    with staged_output(directory) as staging:
        (staging / "runs").mkdir()
        (staging / "results.json").write_text(json.dumps(result.to_json(), indent=2, default=str), encoding="utf-8")
        (staging / MANIFEST_FILE).write_text(json.dumps(build_manifest(result), indent=2, default=str),
                                             encoding="utf-8")
        for outcome, path in zip(result.outcomes, written[2:]):
            write_run(outcome.ranking, staging / path, tag=outcome.name)
        _write_csv(result, staging / "results.csv")
    return [Path(directory).expanduser() / path for path in written]


def _publish(staging: Path, out: Path) -> None:
    """Move the filled ``staging`` folder to ``out``, the old ``out`` (if any) moved aside first
    and removed after."""
    if not out.exists():
        os.replace(staging, out)
        return
    aside = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
    os.replace(out, aside)
    os.replace(staging, out)
    shutil.rmtree(aside, ignore_errors=True)


def _write_csv(result: ExperimentResult, path: Path) -> None:
    fields = ["pipeline", *result.metrics, "p_ttest_holm", "p_wilcoxon_holm", "improved", "degraded",
              "latency_ms", "bytes_per_document", "build_s"]
    first = result.metrics[0]
    with open(path, "w", newline="", encoding="utf-8") as handle:
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
