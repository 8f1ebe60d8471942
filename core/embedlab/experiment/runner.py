"""Run every pipeline of an experiment on one dataset split and compare them with the baseline."""

from __future__ import annotations

import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import attrs
from tqdm.auto import tqdm

from embedlab import interrupts, stats
from embedlab.cache import EmbeddingCache
from embedlab.components import describe
from embedlab.dataset import Dataset, Split
from embedlab.errors import ConfigError, EmbedlabError, PluginError
from embedlab.executors import Executor, create_executor
from embedlab.experiment.config import DEFAULT_K, STAGES, ExperimentConfig, PipelineConfig
from embedlab.metrics import EvaluationResult, evaluate, parse_metric
from embedlab.pipeline import Pipeline, Timings, create_component
from embedlab.ranking import Ranking


@attrs.define
class PipelineOutcome:
    """What one pipeline produced: its ranking, evaluation, timings and size."""

    name: str
    fingerprints: dict[str, str]
    ranking: Ranking
    evaluation: EvaluationResult
    timings: Timings
    bytes_per_document: float
    #: What the first stage learned on the training split (a fusion's tuned weights), if anything.
    fitted: dict[str, Any] = attrs.field(factory=dict)
    #: :func:`embedlab.describe` of the first stage and of each reranker, in order (run manifest).
    components: list[dict[str, Any]] = attrs.field(factory=list)


@attrs.frozen
class Comparison:
    """One pipeline against the baseline on one metric (p-values Holm-corrected across pipelines)."""

    pipeline: str
    metric: str
    mean_difference: float
    p_ttest: float
    p_wilcoxon: float
    p_ttest_holm: float
    p_wilcoxon_holm: float
    improved: int
    degraded: int
    tied: int


@attrs.frozen
class PipelineFailure:
    """A pipeline that failed while running: its name and the error (type and message)."""

    pipeline: str
    error: str

    def __str__(self) -> str:
        return f"pipeline {self.pipeline!r} failed: {self.error}"


@attrs.define
class ExperimentResult:
    """All outcomes of an experiment plus the significance comparisons; ``failures`` lists the
    pipelines that raised (the others ran and are in ``outcomes``)."""

    config: ExperimentConfig
    dataset: Dataset
    split: Split
    metrics: list[str]
    outcomes: list[PipelineOutcome]
    comparisons: list[Comparison]
    seconds: float
    failures: list[PipelineFailure] = attrs.field(factory=list)

    def comparison(self, pipeline: str, metric: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.pipeline == pipeline and c.metric == metric), None)

    def to_json(self) -> dict[str, Any]:
        """Aggregates, per-query values, p-values, timings, fingerprints and versions."""
        from embedlab import plugin_host

        return {
            "dataset": {"name": self.dataset.name, "split": self.split.name, "train_split": self.config.train_split,
                        "documents": len(self.dataset.corpus), "queries": len(self.split.queries),
                        "metadata": dict(self.dataset.metadata)},
            "metrics": self.metrics,
            "baseline": self.config.baseline,
            "k": self.config.k,
            "seed": self.config.seed,
            "seconds": self.seconds,
            "versions": {"python": sys.version, "platform": platform.platform(),
                         "plugins": {p.distribution: p.version for p in plugin_host().plugins}},
            "config": self.config.raw,
            "pipelines": [_outcome_json(o) for o in self.outcomes],
            "comparisons": [attrs.asdict(c) for c in self.comparisons],
            "failures": [attrs.asdict(f) for f in self.failures],
        }


def _outcome_json(outcome: PipelineOutcome) -> dict[str, Any]:
    evaluation = outcome.evaluation
    timings = attrs.asdict(outcome.timings)
    timings.update(build_s=outcome.timings.build_s, latency_ms=outcome.timings.latency_ms,
                   stage_latency_ms=outcome.timings.stage_latencies_ms())
    return {"name": outcome.name, "fingerprints": outcome.fingerprints,
            "aggregates": dict(evaluation.aggregates),
            "per_query": {metric: dict(zip(evaluation.query_ids, map(float, values)))
                          for metric, values in evaluation.per_query.items()},
            "timings": timings, "bytes_per_document": outcome.bytes_per_document, "fitted": outcome.fitted}


def load_experiment_dataset(config: ExperimentConfig) -> Dataset:
    """The dataset named in ``[dataset]``; a relative path is tried against the current directory
    first, then against the experiment file's folder. Errors name the file and ``[dataset]``."""
    from embedlab.datasets import load_dataset_spec

    params = dict(config.dataset)
    if "path" in params:
        path = Path(params["path"]).expanduser()
        if not path.is_absolute() and not path.exists():
            path = config.base_dir / path
        params["path"] = str(path)
    try:
        return load_dataset_spec(**params)
    except EmbedlabError as error:
        key = next((k for k in params if f" {k} must " in f" {error} " or f"'{k}'" in str(error)), None)  # its line
        raise _located(error, config.where("dataset", key=key)) from None


def _split(config: ExperimentConfig, dataset: Dataset, key: str) -> Split:
    """The split named by ``[dataset] split`` or ``train_split``; an unknown one names its line."""
    try:
        return dataset.split(getattr(config, key))
    except EmbedlabError as error:
        raise _located(error, config.where("dataset", key=key)) from None


def _located(error: EmbedlabError, where: str) -> EmbedlabError:
    """The same kind of error, its message prefixed with ``where`` (file, line, key)."""
    try:
        return type(error)(f"{where}: {error}")
    except TypeError:  # an error class with another signature
        return ConfigError(f"{where}: {error}")


def parse_metrics(config: ExperimentConfig) -> list[Any]:
    """The measure objects of ``[experiment] metrics``; an unknown one names its line."""
    try:
        return [parse_metric(m) for m in config.metrics]
    except EmbedlabError as error:
        raise _located(error, config.where("experiment", key="metrics")) from None


def build_pipeline(spec: PipelineConfig, *, cache: EmbeddingCache | None = None, seed: int = 0,
                   executor: Executor | None = None) -> Pipeline:
    """The (unbuilt) pipeline of one ``[[pipeline]]`` table, every component created and validated;
    ``executor`` runs an encoder first stage's encoding and indexing (None: this process)."""
    if spec.encoder is not None:
        first = {"encoder": spec.encoder, "index": spec.index, "compressor": spec.compressor,
                 "passages": spec.passages}
    elif spec.retriever is not None:
        first = {"retriever": spec.retriever}
    else:
        first = {"retrievers": spec.retrievers, "fusion": spec.fusion}
    return Pipeline.from_names(**first, reranker=spec.reranker, cascade=list(spec.cascade), name=spec.name,
                               cache=cache, seed=seed, executor=executor)


def _component_tables(spec: PipelineConfig) -> list[tuple[str, str, Any]]:
    """(kind, TOML key, table) of every component a pipeline table names directly."""
    direct = [(stage, stage, getattr(spec, stage)) for stage in (*STAGES, "retriever")]
    cascade = [("reranker", "cascade", stage["reranker"]) for stage in spec.cascade]
    return [item for item in direct + cascade if item[2] is not None]


def build_pipelines(config: ExperimentConfig, *, cache: EmbeddingCache | None = None,
                    executor: Executor | None = None) -> list[Pipeline]:
    """Every pipeline of ``config`` with its components created (their configs validated), nothing
    fitted or loaded yet: run before the first pipeline runs, so that a mistake in the last
    pipeline of a file costs seconds, not the hours of the ones before. Errors name the pipeline,
    its key and the TOML line."""
    pipelines = []
    for i, spec in enumerate(config.pipelines):
        at: str | None = None  # the key whose component is being created
        try:
            for kind, key, table in _component_tables(spec):
                at = key
                create_component(kind, table)
            at = "retrievers" if spec.retrievers is not None else None
            pipelines.append(build_pipeline(spec, cache=cache, seed=config.seed, executor=executor))
        except EmbedlabError as error:
            raise _located(error, f"{config.where('pipeline', i, at)}: pipeline {spec.name!r}") from None
        except Exception as error:  # noqa: BLE001 - a plugin's constructor failed: say where
            raise PluginError(f"{config.where('pipeline', i, at)}: pipeline {spec.name!r}: "
                              f"{type(error).__name__}: {error}") from error
    return pipelines


def ranking_depth(config: ExperimentConfig, metrics: list[Any], n_documents: int) -> int:
    """``[experiment] k``, raised to the largest metric cut-off, bounded by the corpus (a warning
    says so when a cut-off or ``k`` beyond the default depth asks for more documents than there
    are)."""
    cutoffs = [c for c in (getattr(m, "cutoff", None) for m in metrics) if c]
    k = max([config.k, *cutoffs])
    if k > max(n_documents, DEFAULT_K):
        warnings.warn(f"{config.where('experiment', key='k')}: rankings are {k:,} deep (k and metric "
                      f"cut-offs) but the corpus has {n_documents:,} documents: every document is ranked",
                      stacklevel=2)
    return min(k, n_documents)


def run_pipeline(pipeline: Pipeline, dataset: Dataset, split: Split, k: int, metrics: list[Any],
                 train: Split | None = None) -> PipelineOutcome:
    """Build one (unbuilt) pipeline on the corpus (training learning components on ``train``),
    search the split's queries, evaluate."""
    pipeline.build(dataset.corpus, train=train)
    ranking = pipeline.search(split.queries, k, exclude=split.exclude)
    evaluation = evaluate(ranking, split.qrels, metrics)
    return PipelineOutcome(pipeline.name, pipeline.fingerprints(), ranking, evaluation, pipeline.timings,
                           pipeline.bytes_per_document, dict(getattr(pipeline.first_stage, "fitted_params", {})),
                           [describe(pipeline.first_stage), *(describe(s.reranker) for s in pipeline.cascade)])


def compare_to_baseline(outcomes: list[PipelineOutcome], baseline: str, metrics: list[str]) -> list[Comparison]:
    """Paired t-test and Wilcoxon per metric, Holm-corrected across the compared pipelines."""
    base = next(o for o in outcomes if o.name == baseline)
    others = [o for o in outcomes if o.name != baseline]
    comparisons: list[Comparison] = []
    for metric in metrics:
        reference = base.evaluation.per_query[metric]
        tests = [stats.paired_tests(o.evaluation.per_query[metric], reference) for o in others]
        holm_t = stats.holm([t.p_ttest for t in tests])
        holm_w = stats.holm([t.p_wilcoxon for t in tests])
        for outcome, test, p_t, p_w in zip(others, tests, holm_t, holm_w):
            comparisons.append(Comparison(outcome.name, metric, test.mean_difference, test.p_ttest,
                                          test.p_wilcoxon, float(p_t), float(p_w), test.improved,
                                          test.degraded, test.tied))
    return comparisons


def run_classification_experiment(config: ExperimentConfig, *, progress: bool = True) -> Any:
    """A ``task = "node-classification"`` experiment (:mod:`embedlab.graph.experiment`)."""
    from embedlab.graph.experiment import run_node_classification

    return run_node_classification(config, load_experiment_dataset(config), progress=progress)


def run_experiment(config: ExperimentConfig, *, cache: EmbeddingCache | None = None,
                   progress: bool = True, executor: Any = None) -> ExperimentResult:
    """Run all pipelines of ``config``; see :mod:`embedlab.experiment.report` for the table. A
    ``node-classification`` experiment is run by :func:`run_classification_experiment` instead.

    Every metric is parsed and every pipeline built (:func:`build_pipelines`) before the first one
    runs. A pipeline that fails while running is recorded in ``failures`` and the others still
    run; Ctrl-C stops the experiment, even where a component swallowed the ``KeyboardInterrupt``
    (:mod:`embedlab.interrupts`). Comparisons need the baseline to have run.

    ``executor`` (a name such as ``"ray"``, ``{"name": ..., **params}`` or an executor object)
    overrides ``[experiment] executor``; one executor serves every pipeline and is closed at the end
    unless it was passed as an object."""
    if config.task != "retrieval":
        raise ConfigError(f"run_experiment runs retrieval experiments; task {config.task!r} runs with "
                          "run_classification_experiment (embedlab run picks it for you)")
    start = time.perf_counter()
    metrics = parse_metrics(config)
    names = [str(m) for m in metrics]
    outcomes: list[PipelineOutcome] = []
    failures: list[PipelineFailure] = []
    owned = executor is None or isinstance(executor, (str, Mapping))
    runner = create_executor(executor if executor is not None else config.executor)
    try:
        pipelines: list[Pipeline | None] = list(build_pipelines(config, cache=cache, executor=runner))
        dataset = load_experiment_dataset(config)
        split = _split(config, dataset, "split")
        train = _split(config, dataset, "train_split") if config.train_split is not None else None
        k = ranking_depth(config, metrics, len(dataset.corpus))
        for pipeline in pipelines:  # input kinds (text, images) before any pipeline does work
            assert pipeline is not None
            pipeline.check_inputs(dataset.corpus, split.queries, train.queries if train is not None else None)
        with interrupts.watch():
            bar = tqdm(range(len(pipelines)), desc="pipelines", unit="pipeline", disable=not progress)
            for i in bar:
                pipeline, pipelines[i] = pipelines[i], None  # its memory goes once it has run
                assert pipeline is not None
                bar.set_postfix_str(pipeline.name)
                try:
                    outcomes.append(run_pipeline(pipeline, dataset, split, k, metrics, train))
                except Exception as error:  # noqa: BLE001 - recorded; the other pipelines still run
                    interrupts.check()
                    failures.append(PipelineFailure(pipeline.name, f"{type(error).__name__}: {error}"))
                interrupts.check()
    finally:
        if owned:
            runner.close()
    ran = {o.name for o in outcomes}
    comparisons = compare_to_baseline(outcomes, config.baseline, names) if config.baseline in ran else []
    return ExperimentResult(config, dataset, split, names, outcomes, comparisons,
                            time.perf_counter() - start, failures)
