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
    seed = 0           # 0 .. 2**31 - 1, given to every component that draws random numbers
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

Validation has two steps, and every error names the file, the line and the key:

1. :func:`parse_config` checks the shape: TOML syntax and encoding, known tables and keys, and
   the value of every key through the attrs validators of :class:`ExperimentConfig` and
   :class:`PipelineConfig` (from :mod:`embedlab.validators`); a failing field is reported at
   the line of its key (``experiment.toml, line 9: experiment.k: must be a positive integer,
   got True``).
2. :func:`embedlab.experiment.runner.build_pipelines` (run before any pipeline runs) parses
   every metric and creates every component, whose own configs check their parameters; errors
   name the pipeline and the line of its table (``line 17: pipeline[1].index: pipeline
   'hnsw': faiss: efSearch must be a positive integer, got 0``).

To add a key: add an attrs field with a validator from :mod:`embedlab.validators` to
:class:`PipelineConfig` (a ``[[pipeline]]`` key; list it in :data:`PIPELINE_KEYS`) or
:class:`ExperimentConfig` (list it in :data:`EXPERIMENT_KEYS` or :data:`DATASET_KEYS` so that its
errors point at its table), and pass it from :func:`parse_config`; line lookup and messages come
with it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Mapping

import attrs

from embedlab import validators as v
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
#: :class:`ExperimentConfig` fields read from ``[experiment]`` and from ``[dataset]``.
EXPERIMENT_KEYS = ("metrics", "baseline", "k", "seed", "task", "executor")
DATASET_KEYS = ("split", "train_split")
#: Pipeline names become file names (``runs/<name>.trec``) and TREC run tags.
PIPELINE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}"
#: Ranking depth when ``[experiment] k`` is not given (raised to the largest metric cut-off).
DEFAULT_K = 100


@attrs.frozen
class PipelineConfig:
    """One ``[[pipeline]]`` table: a name, its first stage and its rerankers."""

    name: str = attrs.field(validator=v.matches(PIPELINE_NAME, "1-100 letters, digits, '_', '.', '+' or '-', "
                                                               "starting with a letter or digit"))
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


def _executor(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not (isinstance(value, Mapping) and isinstance(value.get("name"), str)):
        raise v.InvalidValue(attribute.name, "must be an executor name such as \"ray\" or a table with a "
                             f"string 'name', got {v.shown(value)}")


@attrs.frozen
class ExperimentConfig:
    """A whole experiment file (``locator`` finds the line of a key in it, for messages)."""

    dataset: Mapping[str, Any]
    split: str = attrs.field(validator=v.non_empty_str)
    metrics: tuple[str, ...] = attrs.field(converter=tuple, validator=v.list_of(v.non_empty_str, min_length=1))
    pipelines: tuple[PipelineConfig, ...] = attrs.field(converter=tuple, validator=attrs.validators.min_len(1))
    baseline: str | None = attrs.field(default=None, validator=v.optional(v.non_empty_str))
    k: int = attrs.field(default=DEFAULT_K, validator=v.positive_int)
    seed: int = attrs.field(default=0, validator=v.seed)
    base_dir: Path = attrs.field(default=Path("."), converter=Path)
    train_split: str | None = attrs.field(default=None, validator=v.optional(v.non_empty_str))
    #: ``{"name": ..., **params}`` of the executor (None: this process); see embedlab.executors.
    executor: Mapping[str, Any] | None = attrs.field(default=None, validator=_executor)
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    task: str = attrs.field(default="retrieval", validator=v.choice(*TASKS))
    #: Protocol settings of the node-classification task (train_ratios, repeats, C).
    classification: Mapping[str, Any] = attrs.field(factory=dict)
    locator: _Locator | None = attrs.field(default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        names = [p.name for p in self.pipelines]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise v.InvalidValue("pipelines", f"names must be unique; repeated: {', '.join(duplicates)}")
        if self.train_split is not None and self.train_split == self.split:
            raise v.InvalidValue("train_split", f"{self.train_split!r} is the evaluated split; train on another "
                                 "split (e.g. train or dev)")
        if self.baseline is not None and self.baseline not in names:
            raise v.InvalidValue("baseline", f"{self.baseline!r} names no pipeline; pipelines: {', '.join(names)}")

    def pipeline(self, name: str) -> PipelineConfig:
        return next(p for p in self.pipelines if p.name == name)

    def where(self, table: str, index: int | None = None, key: str | None = None) -> str:
        """``"file, line N: table[index].key"`` for messages about that key."""
        if self.locator is None:
            return _path(table, index, key)
        return self.locator.where(table, index, key)


def _path(table: str, index: int | None, key: str | None) -> str:
    path = f"{table}[{index}]" if index is not None else table
    return f"{path}.{key}" if key else path


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
        if start is None:  # not a table header: maybe a key of that name (``pipeline = [1, 2]``)
            return next((n for n, line in enumerate(self.lines, 1) if re.match(rf"^\s*{table}\s*=", line)), None)
        if key is None:
            return start
        sub_table = re.compile(rf"^\s*\[\s*{table}\s*\.\s*{re.escape(key)}\s*\]")
        for number in range(start, len(self.lines)):
            text = self.lines[number]
            if sub_table.match(text) or re.match(rf"^\s*{re.escape(key)}\s*[=.]", text):
                return number + 1
            if re.match(r"^\s*\[", text):
                break
        return start

    def where(self, table: str, index: int | None = None, key: str | None = None) -> str:
        line = self.line_of(table, index, key)
        return f"{self.source}{f', line {line}' if line else ''}: {_path(table, index, key)}"

    def error(self, message: str, table: str, index: int | None = None, key: str | None = None) -> ConfigError:
        return ConfigError(f"{self.where(table, index, key)}: {message}")


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file (UTF-8, a byte-order mark is skipped); relative
    dataset paths resolve against its folder."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"experiment file {file} does not exist")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {file}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ConfigError(f"{file}, line {line}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return parse_config(text, source=str(file), base_dir=file.parent)


def _component(value: Any, locator: _Locator, index: int, stage: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict):
        raise locator.error("must be a table such as { name = \"exact\" }", "pipeline", index, stage)
    if not isinstance(value.get("name"), str) and not isinstance(value.get("load"), str):
        raise locator.error("the table needs a string 'name' (or 'load', a saved component's directory)",
                            "pipeline", index, stage)
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


def _loads(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: malformed TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{source}: malformed TOML: arrays or tables nested too deeply") from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise ConfigError(f"{source}: malformed TOML: {str(error).split(';')[0]}") from None


def _table(raw: Mapping[str, Any], name: str, locator: _Locator) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise locator.error(f"must be a table ([{name}]), got {v.shown(value)}", name)
    return dict(value)


def _check_dataset(dataset: dict[str, Any], locator: _Locator) -> None:
    if "path" not in dataset and "name" not in dataset:
        raise locator.error("needs 'name' (a registered dataset) or 'path' (a BEIR folder); 'path' "
                            "with 'name' is that dataset's file or folder", "dataset")
    for key in ("name", "path", *DATASET_KEYS):
        if key in dataset and not (isinstance(dataset[key], str) and dataset[key]):
            raise locator.error(f"must be a non-empty string, got {v.shown(dataset[key])}", "dataset", key=key)


def _field_error(error: Exception, locator: _Locator) -> ConfigError:
    """A validator's error on an :class:`ExperimentConfig` field, at the line of its key."""
    name, message = v.explain(error)
    if name in DATASET_KEYS:
        return locator.error(message, "dataset", key=name)
    if name == "pipelines":
        return locator.error(message, "pipeline", 0)
    return locator.error(message, "experiment", key=name if name in EXPERIMENT_KEYS else None)


def parse_config(text: str, *, source: str = "<string>", base_dir: str | Path = ".") -> ExperimentConfig:
    """Parse experiment TOML text (see the module docstring for the shape)."""
    text = text.removeprefix("\ufeff")
    raw = _loads(text, source)
    locator = _Locator(text, source)
    unknown = sorted(set(raw) - {"dataset", "experiment", "pipeline"})
    if unknown:
        raise locator.error(f"unknown table(s) {', '.join(unknown)}; expected dataset, experiment, "
                            "[[pipeline]]", unknown[0])
    if "dataset" not in raw:
        raise locator.error("a [dataset] table is required", "dataset")
    dataset = _table(raw, "dataset", locator)
    _check_dataset(dataset, locator)
    split = dataset.pop("split", "test")
    train_split = dataset.pop("train_split", None)
    experiment = _table(raw, "experiment", locator)
    task = experiment.get("task", "retrieval")
    if task not in TASKS:
        raise locator.error(f"must be one of {', '.join(TASKS)}, got {v.shown(task)}", "experiment", key="task")
    allowed = set(EXPERIMENT_KEYS)
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
    tables = raw.get("pipeline")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise locator.error("needs one or more [[pipeline]] tables", "pipeline", 0)
    pipelines: list[PipelineConfig] = []
    for i, table in enumerate(tables):
        pipelines.append(_pipeline(table, i, locator, pipelines))
    try:
        return ExperimentConfig(dataset=dataset, split=split, metrics=metrics, pipelines=pipelines,
                                baseline=experiment.get("baseline"), k=experiment.get("k", DEFAULT_K),
                                seed=experiment.get("seed", 0), base_dir=base_dir,
                                train_split=train_split, executor=executor, raw=raw, task=task,
                                classification=classification, locator=locator)
    except (TypeError, ValueError) as error:
        raise _field_error(error, locator) from None


def _pipeline(table: dict[str, Any], i: int, locator: _Locator, earlier: list[PipelineConfig]) -> PipelineConfig:
    """One [[pipeline]] table (``earlier``: the tables before it, which ``retrievers`` may name)."""
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
    extras = _first_stage_extras(table, locator, i, earlier)
    try:
        return PipelineConfig(name=table["name"], **stages, **extras)
    except (TypeError, ValueError) as error:
        raise locator.error(v.explain(error)[1], "pipeline", i, "name") from None
