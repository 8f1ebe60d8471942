"""``embedlab run`` for ``[experiment] task = "node-classification"``: fit every pipeline's graph
encoder on the whole graph, classify the nodes with their vectors (:mod:`embedlab.graph.classification`)
and compare each pipeline with the baseline by paired tests over the shared shuffles.

::

    [dataset]
    name = "blogcatalog"

    [experiment]
    task = "node-classification"
    train_ratios = [0.1, 0.5, 0.9]
    repeats = 5
    C = [0.1, 1.0]        # several values: chosen per split by cross-validation on training nodes
    baseline = "spectral"

    [[pipeline]]
    name = "fastrp"
    encoder = { name = "fastrp", dim = 512 }
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import attrs
from tqdm.auto import tqdm

from embedlab import stats
from embedlab.components import fingerprint
from embedlab.embeddings import as_dense
from embedlab.errors import ConfigError
from embedlab.experiment.config import ExperimentConfig, PipelineConfig
from embedlab.graph.classification import ClassificationProtocol, ClassificationResult, classify_nodes
from embedlab.graph.tasks import GraphDataset
from embedlab.protocols import GraphEncoder

SIGNIFICANCE = 0.05


@attrs.define
class ClassificationOutcome:
    """One pipeline: its scores per ratio and repeat, and the seconds its encoder took to embed."""

    name: str
    fingerprint: str
    result: ClassificationResult
    embed_s: float


@attrs.frozen
class ClassificationComparison:
    """One pipeline against the baseline on one measure and train ratio (paired over repeats,
    p-values Holm-corrected across pipelines)."""

    pipeline: str
    measure: str
    train_ratio: float
    mean_difference: float
    p_ttest: float
    p_ttest_holm: float


@attrs.define
class NodeClassificationResult:
    """All outcomes of a node-classification experiment."""

    config: ExperimentConfig
    dataset: GraphDataset
    protocol: ClassificationProtocol
    measures: list[str]
    outcomes: list[ClassificationOutcome]
    comparisons: list[ClassificationComparison]
    seconds: float

    def comparison(self, pipeline: str, measure: str, ratio: float) -> ClassificationComparison | None:
        return next((c for c in self.comparisons if (c.pipeline, c.measure, c.train_ratio) ==
                     (pipeline, measure, ratio)), None)

    def to_json(self) -> dict[str, Any]:
        graph = self.dataset.graph
        return {"task": "node-classification",
                "dataset": {"name": self.dataset.name, "nodes": graph.n_nodes, "edges": graph.n_edges,
                            "labels": int(graph.labels.shape[1]) if graph.labels is not None else 0},
                "measures": self.measures, "baseline": self.config.baseline, "seed": self.config.seed,
                "protocol": attrs.asdict(self.protocol), "seconds": self.seconds, "config": self.config.raw,
                "pipelines": [{"name": o.name, "fingerprint": o.fingerprint, "embed_s": o.embed_s,
                               **o.result.to_json()} for o in self.outcomes],
                "comparisons": [attrs.asdict(c) for c in self.comparisons]}

    def format_table(self) -> str:
        """One row per pipeline: mean (and std over repeats) of each measure at each ratio."""
        header = ["pipeline"] + [f"{m} {r:.0%}" for r in self.protocol.train_ratios for m in self.measures]
        header.append("embed s")
        rows = []
        for outcome in self.outcomes:
            row = [outcome.name + (" (baseline)" if outcome.name == self.config.baseline else "")]
            for i, ratio in enumerate(self.protocol.train_ratios):
                for measure in self.measures:
                    values = outcome.result.scores[measure][i]
                    comparison = self.comparison(outcome.name, measure, ratio)
                    mark = " "
                    if comparison is not None and comparison.p_ttest_holm < SIGNIFICANCE:
                        mark = "+" if comparison.mean_difference > 0 else "-"
                    row.append(f"{values.mean():.4f}±{values.std(ddof=1):.3f}{mark}")
            row.append(f"{outcome.embed_s:.2f}")
            rows.append(row)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        graph = self.dataset.graph
        title = (f"{self.dataset.name}: node classification, {graph.n_nodes:,} nodes, "
                 f"{graph.labels.shape[1]} labels; {self.protocol.repeats} shuffles per train ratio, "
                 f"one-vs-rest logistic regression, C in {list(self.protocol.C)}")
        notes = ["mean±std over the shuffles (the same shuffles for every pipeline); embed s: fitting the "
                 "graph encoder on the whole graph."]
        if self.config.baseline:
            notes.append(f"+/- after a value: significantly better/worse than {self.config.baseline} (paired "
                         f"t-test over shuffles, Holm-corrected across pipelines, p < {SIGNIFICANCE}).")
        return "\n".join([title, "", *lines, "", *notes])

    def write_outputs(self, directory: str | Path) -> list[Path]:
        """results.json and results.csv (one row per pipeline, measure and ratio), written as one
        unit (:func:`embedlab.experiment.report.staged_output`)."""
        from embedlab.experiment.report import staged_output

        with staged_output(directory) as staging:
            (staging / "results.json").write_text(json.dumps(self.to_json(), indent=2, default=str), encoding="utf-8")
            with open(staging / "results.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["pipeline", "measure", "train_ratio", "mean", "std", "p_ttest_holm", "embed_s"])
                for outcome in self.outcomes:
                    for i, ratio in enumerate(self.protocol.train_ratios):
                        for measure in self.measures:
                            values = outcome.result.scores[measure][i]
                            comparison = self.comparison(outcome.name, measure, ratio)
                            writer.writerow([outcome.name, measure, ratio, values.mean(), values.std(ddof=1),
                                             "" if comparison is None else comparison.p_ttest_holm,
                                             outcome.embed_s])
        return [Path(directory).expanduser() / "results.json", Path(directory).expanduser() / "results.csv"]


def _encoder(spec: PipelineConfig) -> Any:
    from embedlab.pipeline import create_component

    if spec.compressor is not None or spec.reranker is not None:
        raise ConfigError(f"pipeline {spec.name!r}: node classification uses the encoder's vectors only; "
                          "remove its compressor/reranker")
    encoder = create_component("encoder", spec.encoder)
    if not isinstance(encoder, GraphEncoder):
        raise ConfigError(f"pipeline {spec.name!r}: encoder {spec.encoder.get('name')!r} does not embed "
                          "graph nodes (it has no fit_graph); use a graph encoder such as spectral or fastrp")
    return encoder


def run_node_classification(config: ExperimentConfig, dataset: Any, *,
                            progress: bool = True) -> NodeClassificationResult:
    """Embed the whole graph with every pipeline's encoder and classify its labelled nodes."""
    start = time.perf_counter()
    if not isinstance(dataset, GraphDataset):
        raise ConfigError(f"dataset {dataset.name!r} is not a graph; node classification needs a graph "
                          "dataset such as karate, blogcatalog or airports-usa")
    graph = dataset.graph
    if graph.labels is None:
        raise ConfigError(f"graph {graph.name!r} has no node labels to classify")
    settings = dict(config.classification)
    if isinstance(settings.get("C"), (int, float)):
        settings["C"] = [settings["C"]]
    protocol = ClassificationProtocol(**settings, seed=config.seed)
    measures = list(config.metrics)
    encoders = [(spec, _encoder(spec)) for spec in config.pipelines]  # every pipeline checked first
    outcomes = []
    for spec, encoder in tqdm(encoders, desc="pipelines", unit="pipeline", disable=not progress):
        began = time.perf_counter()
        encoder.fit_graph(graph)
        vectors = as_dense(encoder.encode_documents(graph.node_ids.tolist()), name=f"{spec.name} vectors")
        embed_s = time.perf_counter() - began
        result = classify_nodes(vectors, graph.labels, protocol, progress=progress, desc=spec.name)
        outcomes.append(ClassificationOutcome(spec.name, fingerprint(encoder), result, embed_s))
    comparisons = _compare(outcomes, config.baseline, measures, protocol) if config.baseline else []
    return NodeClassificationResult(config, dataset, protocol, measures, outcomes, comparisons,
                                    time.perf_counter() - start)


def _compare(outcomes: list[ClassificationOutcome], baseline: str, measures: list[str],
             protocol: ClassificationProtocol) -> list[ClassificationComparison]:
    base = next(o for o in outcomes if o.name == baseline)
    others = [o for o in outcomes if o.name != baseline]
    comparisons = []
    for measure in measures:
        for i, ratio in enumerate(protocol.train_ratios):
            tests = [stats.paired_tests(o.result.scores[measure][i], base.result.scores[measure][i]) for o in others]
            holm = stats.holm([t.p_ttest for t in tests]) if tests else []
            for outcome, test, p in zip(others, tests, holm):
                comparisons.append(ClassificationComparison(outcome.name, measure, ratio, test.mean_difference,
                                                            test.p_ttest, float(p)))
    return comparisons
