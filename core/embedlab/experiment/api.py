"""One way to run an experiment file, shared by ``embedlab run`` and :func:`embedlab.run_experiment`:
same loading, same plugin warnings, same dispatch on the task, same cache, same files written."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import attrs

from embedlab.errors import ConfigError
from embedlab.experiment.config import ExperimentConfig, load_config

#: The ``cache`` argument: True (the default cache), False/None (none), a cache directory (as
#: ``--cache-dir``), or an :class:`embedlab.cache.EmbeddingCache`.
CacheChoice = Any


@attrs.frozen
class CompletedExperiment:
    """What running an experiment produced: its result, its table and the files written."""

    result: Any  # ExperimentResult, or the node-classification result for task = "node-classification"
    table: str
    written: list[Path]


def _warn(line: str) -> None:
    warnings.warn(line, stacklevel=4)


def _cache(choice: CacheChoice) -> Any:
    from embedlab.cache import EmbeddingCache

    if choice is True:
        return EmbeddingCache()
    if choice is None or choice is False:
        return None
    if isinstance(choice, (str, Path)):
        return EmbeddingCache(Path(choice) / "embeddings")
    return choice


def run(config: str | Path | ExperimentConfig, *, output: str | Path | None = None,
        report: str | Path | None = None, cache: CacheChoice = True, progress: bool = True,
        executor: Any = None, warn: Callable[[str], None] = _warn) -> CompletedExperiment:
    """Run ``config`` (an experiment TOML file or a parsed :class:`ExperimentConfig`) as
    ``embedlab run`` does; ``warn`` receives one line per plugin that failed to load and per
    ambiguous component name. ``output`` is checked before anything runs and written as one unit
    (:func:`embedlab.experiment.report.staged_output`); pipelines that failed are in
    ``result.failures`` (the table and files hold the others; nothing is written when none ran)."""
    import embedlab
    from embedlab.experiment.report import check_output_directory, check_output_file
    from embedlab.experiment.runner import run_classification_experiment, run_experiment

    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    if output is not None:
        check_output_directory(output)  # before the expensive work
    if report is not None:
        check_output_file(report)
    for line in embedlab.plugin_host().problems():
        warn(f"{line} (see `embedlab plugins`)")
    if config.task == "node-classification":
        if report is not None:
            raise ConfigError("the HTML report is written for retrieval experiments; node-classification "
                              "experiments write their table and results with output=")
        outcome = run_classification_experiment(config, progress=progress)
        return CompletedExperiment(outcome, outcome.format_table(),
                                   outcome.write_outputs(output) if output is not None else [])
    from embedlab.experiment.report import format_table, write_outputs

    result = run_experiment(config, cache=_cache(cache), progress=progress, executor=executor)
    if not result.outcomes:
        return CompletedExperiment(result, "", [])
    written = write_outputs(result, output) if output is not None else []
    if report is not None:
        from embedlab.experiment.html import write_report

        written.append(write_report(result, report))
    return CompletedExperiment(result, format_table(result), written)
