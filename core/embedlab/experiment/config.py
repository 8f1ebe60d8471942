"""The experiment TOML file, validated into attrs classes with errors that name line and key.

::

    [dataset]
    path = "../shared/data/scifact/beir"   # or: name = "python-stdlib", plus its parameters
    split = "test"
    train_split = "train"   # optional: judged queries that learning components are trained on

    [experiment]
    metrics = ["nDCG@10", "RR@10", "R@100"]
    baseline = "bm25"
    k = 100            # depth of every ranking (default: the largest metric cutoff, at least 100)
    executor = "local" # or "ray", or { name = "ray", address = "auto" }: where encoding and indexing run

    [[pipeline]]
    name = "bm25"
    encoder = { name = "bm25" }
    index = { name = "exact" }
    # compressor = { name = ..., ... } and reranker = { name = ..., ... } likewise

    [[pipeline]]
    name = "minilm-passages"             # documents cut into passages, scored by their best one
    encoder = { name = "minilm" }
    passages = { by = "tokens", size = 128, overlap = 32, aggregate = "maxp" }

    [[pipeline]]
    name = "hybrid"                      # a fused first stage: other pipelines' first stages by name,
    retrievers = ["bm25", { encoder = "minilm" }]          # or first-stage tables
    fusion = { method = "rrf" }          # rrf | combsum | combmnz | linear; norm, weights, depth ...
    cascade = [{ reranker = { name = "maxsim" }, depth = 100 }]   # rerankers in sequence

A first stage is ``encoder`` (+ ``compressor``, ``index``, ``passages``), ``retriever`` (a registered
retriever component) or ``retrievers`` + optional ``fusion``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Mapping

import attrs

from embedlab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STAGES = ("encoder", "compressor", "index", "reranker")
#: ``[experiment] task``: rank documents (the default) or classify graph nodes with their vectors.
TASKS = ("retrieval", "node-classification")
#: ``[experiment]`` keys of the node-classification task (:class:`embedlab.graph.ClassificationProtocol`).
CLASSIFICATION_KEYS = ("train_ratios", "repeats", "C")
FIRST_STAGE_KEYS = ("encoder", "retriever", "retrievers")
PIPELINE_KEYS = ("name", *STAGES, "retriever", "retrievers", "fusion", "cascade", "passages")


@attrs.frozen
class PipelineConfig:
    """One ``[[pipeline]]`` table: a name, its first stage and its rerankers."""

    name: str = attrs.field(validator=attrs.validators.matches_re(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"))
    encoder: Mapping[str, Any] | None = None
    index: Mapping[str, Any] | None = None
    compressor: Mapping[str, Any] | None = None
    reranker: Mapping[str, Any] | None = None
    retriever: Mapping[str, Any] | None = None
    retrievers: tuple[Mapping[str, Any], ...] | None = None
    fusion: Mapping[str, Any] | None = None
    cascade: tuple[Mapping[str, Any], ...] = ()
    #: Segmentation and aggregate of an encoder first stage over passages (embedlab.passages).
    passages: Mapping[str, Any] | None = None

    def first_stage_spec(self) -> dict[str, Any]:
        """This pipeline's first stage as a first-stage table (see :mod:`embedlab.retrievers`)."""
        if self.retrievers is not None:
            return {"label": self.name, "retriever": {"name": "fusion", "retrievers": list(self.retrievers),
                                                      **dict(self.fusion or {})}}
        if self.retriever is not None:
            return {"label": self.name, "retriever": dict(self.retriever)}
        spec = {"label": self.name, "encoder": self.encoder, "index": self.index}
        if self.passages is not None:
            spec["passages"] = dict(self.passages)
        return spec | ({"compressor": self.compressor} if self.compressor else {})


@attrs.frozen
class ExperimentConfig:
    """A whole experiment file."""

    dataset: Mapping[str, Any]
    split: str
    metrics: tuple[str, ...] = attrs.field(converter=tuple, validator=attrs.validators.min_len(1))
    pipelines: tuple[PipelineConfig, ...] = attrs.field(converter=tuple,
                                                        validator=attrs.validators.min_len(1))
    baseline: str | None = None
    k: int = attrs.field(default=100, validator=attrs.validators.gt(0))
    seed: int = 0
    base_dir: Path = attrs.field(default=Path("."), converter=Path)
    train_split: str | None = None
    #: ``{"name": ..., **params}`` of the executor (None: this process); see embedlab.executors.
    executor: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    task: str = attrs.field(default="retrieval", validator=attrs.validators.in_(TASKS))
    #: Protocol settings of the node-classification task (train_ratios, repeats, C).
    classification: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        names = [p.name for p in self.pipelines]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"pipeline names must be unique; repeated: {', '.join(duplicates)}")
        if self.train_split is not None and self.train_split == self.split:
            raise ConfigError(f"dataset.train_split = {self.train_split!r} is the evaluated split; "
                              "train on another split (e.g. train or dev)")
        if self.baseline is not None and self.baseline not in names:
            raise ConfigError(f"experiment.baseline = {self.baseline!r} names no pipeline; "
                              f"pipelines: {', '.join(names)}")

    def pipeline(self, name: str) -> PipelineConfig:
        return next(p for p in self.pipelines if p.name == name)


class _Locator:
    """Finds the line of a key in the TOML text, for error messages."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def line_of(self, table: str, index: int | None = None, key: str | None = None) -> int | None:
        header = re.compile(rf"^\s*\[\[\s*{table}\s*\]\]" if index is not None else rf"^\s*\[\s*{table}\s*\]")
        seen, start = -1, None
        for number, line in enumerate(self.lines, 1):
            if header.match(line):
                seen += 1
                if index is None or seen == index:
                    start = number
                    break
        if start is None or key is None:
            return start
        for number in range(start, len(self.lines)):
            text = self.lines[number]
            if re.match(r"^\s*\[", text):
                break
            if re.match(rf"^\s*{re.escape(key)}\s*[=.]", text):
                return number + 1
        return start

    def error(self, message: str, table: str, index: int | None = None, key: str | None = None) -> ConfigError:
        line = self.line_of(table, index, key)
        where = f"{self.source}, line {line}" if line else self.source
        path = f"{table}[{index}]" if index is not None else table
        if key:
            path += f".{key}"
        return ConfigError(f"{where}: {path}: {message}")


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file; relative dataset paths resolve against it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"experiment file {file} does not exist")
    return parse_config(file.read_text(encoding="utf-8"), source=str(file), base_dir=file.parent)


def _component(value: Any, locator: _Locator, index: int, stage: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict):
        raise locator.error("must be a table such as { name = \"exact\" }", "pipeline", index, stage)
    if not isinstance(value.get("name"), str):
        raise locator.error("the table needs a string 'name'", "pipeline", index, stage)
    return dict(value)


def _check_classification(experiment: Mapping[str, Any], settings: Mapping[str, Any], locator: _Locator) -> None:
    """Validate the node-classification keys (and metrics) of ``[experiment]``."""
    from embedlab.graph.classification import MEASURES, ClassificationProtocol

    try:
        ClassificationProtocol(**{k: ([v] if k == "C" and isinstance(v, (int, float)) else v)
                                  for k, v in settings.items()})
    except (TypeError, ValueError) as error:
        key = next(iter(settings), "task")
        raise locator.error(str(error), "experiment", key=key) from None
    metrics = experiment.get("metrics", list(MEASURES))
    if not isinstance(metrics, list) or any(m not in MEASURES for m in metrics):
        raise locator.error(f"node classification measures are {', '.join(MEASURES)}; got {metrics!r}",
                            "experiment", key="metrics")
def _first_stage_extras(table: Mapping[str, Any], locator: _Locator, i: int,
                        earlier: list[PipelineConfig]) -> dict[str, Any]:
    """retriever / retrievers / fusion / cascade of one [[pipeline]] table, checked for shape.

    A string in ``retrievers`` names an earlier [[pipeline]] whose first stage is fused.
    """
    out: dict[str, Any] = {}
    if "passages" in table:
        if "encoder" not in table:
            raise locator.error("'passages' cuts documents for an encoder first stage; this pipeline has no "
                                "'encoder'", "pipeline", i, "passages")
        if not isinstance(table["passages"], dict):
            raise locator.error("must be a table such as { by = \"tokens\", size = 128, overlap = 32 }",
                                "pipeline", i, "passages")
        from embedlab.components import make_config
        from embedlab.passages import PassageConfig

        try:
            make_config(PassageConfig, dict(table["passages"]), "passages")
        except ConfigError as error:
            raise locator.error(str(error), "pipeline", i, "passages") from None
        out["passages"] = dict(table["passages"])
    if "retriever" in table:
        out["retriever"] = _component(table["retriever"], locator, i, "retriever")
    if "fusion" in table:
        if "retrievers" not in table:
            raise locator.error("'fusion' needs 'retrievers' (the first stages to fuse)", "pipeline", i, "fusion")
        if not isinstance(table["fusion"], dict):
            raise locator.error("must be a table such as { method = \"rrf\" }", "pipeline", i, "fusion")
        out["fusion"] = dict(table["fusion"])
    if "retrievers" in table:
        items = table["retrievers"]
        if not isinstance(items, list) or len(items) < 2:
            raise locator.error("must list at least two first stages to fuse", "pipeline", i, "retrievers")
        by_name = {p.name: p for p in earlier}
        specs = []
        for item in items:
            if isinstance(item, str):
                if item not in by_name:
                    raise locator.error(f"{item!r} names no earlier [[pipeline]]; earlier pipelines: "
                                        f"{', '.join(by_name) or 'none'}", "pipeline", i, "retrievers")
                specs.append(by_name[item].first_stage_spec())
            elif isinstance(item, dict):
                specs.append(dict(item))
            else:
                raise locator.error("each item is a pipeline name or a first-stage table such as "
                                    "{ encoder = \"bm25\" }", "pipeline", i, "retrievers")
        out["retrievers"] = tuple(specs)
    if "cascade" in table:
        stages = table["cascade"]
        if "reranker" in table:
            raise locator.error("give 'reranker' or 'cascade', not both", "pipeline", i, "cascade")
        if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) for s in stages):
            raise locator.error("must be a list of tables such as { reranker = \"maxsim\", depth = 100 }",
                                "pipeline", i, "cascade")
        for stage in stages:
            unknown = sorted(set(stage) - {"reranker", "depth", "label"})
            if unknown or "reranker" not in stage:
                raise locator.error("each stage needs 'reranker' and optional 'depth', 'label'"
                                    + (f"; unknown key(s) {', '.join(unknown)}" if unknown else ""),
                                    "pipeline", i, "cascade")
            depth = stage.get("depth")
            if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0):
                raise locator.error(f"depth must be a positive integer, got {depth!r}", "pipeline", i, "cascade")
        out["cascade"] = tuple(dict(s, reranker=_component(s["reranker"], locator, i, "cascade"))
                               for s in stages)
    return out


def parse_config(text: str, *, source: str = "<string>", base_dir: str | Path = ".") -> ExperimentConfig:
    """Parse experiment TOML text (see the module docstring for the shape)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: malformed TOML: {error}") from None
    locator = _Locator(text, source)
    unknown = sorted(set(raw) - {"dataset", "experiment", "pipeline"})
    if unknown:
        raise locator.error(f"unknown table(s) {', '.join(unknown)}; expected dataset, experiment, "
                            "[[pipeline]]", unknown[0])
    dataset = raw.get("dataset")
    if not isinstance(dataset, dict) or ("path" not in dataset and "name" not in dataset):
        raise locator.error("needs 'name' (a registered dataset) or 'path' (a BEIR folder); 'path' "
                            "with 'name' is that dataset's file or folder", "dataset")
    dataset = dict(dataset)
    split = dataset.pop("split", "test")
    train_split = dataset.pop("train_split", None)
    if train_split is not None and not isinstance(train_split, str):
        raise locator.error("must be a split name such as \"train\"", "dataset", key="train_split")
    experiment = raw.get("experiment", {})
    if not isinstance(experiment, dict):
        raise locator.error("must be a table", "experiment")
    task = experiment.get("task", "retrieval")
    if task not in TASKS:
        raise locator.error(f"must be one of {', '.join(TASKS)}, got {task!r}", "experiment", key="task")
    allowed = {"metrics", "baseline", "k", "seed", "task", "executor"}
    if task == "node-classification":
        allowed |= set(CLASSIFICATION_KEYS)
    extra = sorted(set(experiment) - allowed)
    if extra:
        raise locator.error(f"unknown key(s) {', '.join(extra)}; allowed for task {task!r}: "
                            f"{', '.join(sorted(allowed))}", "experiment", key=extra[0])
    classification = {key: experiment[key] for key in CLASSIFICATION_KEYS if key in experiment}
    if task == "node-classification":
        _check_classification(experiment, classification, locator)
    default_metrics = ["Micro-F1", "Macro-F1"] if task == "node-classification" else ["nDCG@10", "RR@10", "R@100"]
    metrics = experiment.get("metrics", default_metrics)
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise locator.error("must be a list of measure strings such as \"nDCG@10\"", "experiment",
                            key="metrics")
    executor = experiment.get("executor")
    if isinstance(executor, str):
        executor = {"name": executor}
    if executor is not None and not (isinstance(executor, dict) and isinstance(executor.get("name"), str)):
        raise locator.error("must be an executor name such as \"ray\" or a table with a string 'name'",
                            "experiment", key="executor")
    tables = raw.get("pipeline")
    if not isinstance(tables, list) or not tables:
        raise locator.error("at least one [[pipeline]] table is required", "pipeline", 0)
    pipelines: list[PipelineConfig] = []
    for i, table in enumerate(tables):
        extra = sorted(set(table) - set(PIPELINE_KEYS))
        if extra:
            raise locator.error(f"unknown key(s) {', '.join(extra)}; allowed: {', '.join(PIPELINE_KEYS)}",
                                "pipeline", i, extra[0])
        if "name" not in table:
            raise locator.error("missing 'name'", "pipeline", i, "name")
        given = [key for key in FIRST_STAGE_KEYS if key in table]
        if len(given) != 1:
            raise locator.error("needs exactly one first stage: 'encoder' (+ 'index', 'compressor'), "
                                f"'retriever' or 'retrievers' (+ 'fusion'); got {', '.join(given) or 'none'}",
                                "pipeline", i, given[1] if len(given) > 1 else None)
        stages = {stage: _component(table.get(stage), locator, i, stage) for stage in STAGES}
        if "encoder" in table:
            stages["index"] = stages["index"] or {"name": "exact"}
        else:
            for stage in ("index", "compressor"):
                if stages[stage] is not None:
                    raise locator.error(f"'{stage}' belongs to an encoder first stage; this pipeline has "
                                        f"'{given[0]}'", "pipeline", i, stage)
        extras = _first_stage_extras(table, locator, i, pipelines)
        try:
            pipelines.append(PipelineConfig(name=table["name"], **stages, **extras))
        except (TypeError, ValueError) as error:
            raise locator.error(str(error), "pipeline", i, "name") from None
    try:
        return ExperimentConfig(dataset=dataset, split=split, metrics=metrics, pipelines=pipelines,
                                baseline=experiment.get("baseline"), k=experiment.get("k", 100),
                                seed=experiment.get("seed", 0), base_dir=base_dir,
                                train_split=train_split, executor=executor, raw=raw, task=task,
                                classification=classification)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (TypeError, ValueError) as error:
        raise locator.error(str(error), "experiment") from None
