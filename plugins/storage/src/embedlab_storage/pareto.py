"""Storage-vs-quality sweep: one pipeline per storage spec, a table and a plot with the Pareto front.

From the command line (an experiment TOML gives the dataset, metrics and the base pipeline, whose
encoder and index every point shares)::

    embedlab-pareto experiment.toml --output pareto/            # the paper's grid of specs
    embedlab-pareto experiment.toml --specs float16,int8,pca:0.5+float8_e4m3 --metric nDCG@10

or from Python with :func:`pareto_sweep`. A point is on the Pareto front when no other point is
at least as good on the metric with at most as many bytes per document, and better on one.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import attrs
import numpy as np
from tqdm.auto import tqdm

from embedlab.cache import EmbeddingCache
from embedlab.dataset import Dataset
from embedlab.errors import ConfigError, EmbedlabError
from embedlab.pipeline import Pipeline, create_component
from embedlab_storage.compressor import StorageCompressor
from embedlab_storage.spec import canonical_spec

#: The paper's grid on one model (float4 left out), plus kernel PCA and the random projections at
#: 50%. The autoencoder and UMAP need optional extras: add them with ``--specs``.
DEFAULT_SPECS = (
    "float32", "float16", "bfloat16", "float8_e4m3", "float8_e5m2", "int8", "binary",
    *(f"pca:{f}{q}" for f in (0.9, 0.75, 0.5, 0.25)
      for q in ("", "+float16", "+float8_e4m3", "+int8", "+binary")),
    "kpca:0.5+float8_e4m3", "grp:0.5+float8_e4m3", "srp:0.5+float8_e4m3",
)
BASELINE_SPEC = "float32"


@attrs.frozen
class ParetoPoint:
    """One configuration: bytes of its codes per document (index overhead and attribute columns
    left out), metric value, ``relative`` change and ``compression`` ratio vs float32, compressor
    fit seconds, search milliseconds per query (batched; query encoding left out)."""

    spec: str
    bytes_per_document: float
    value: float
    relative: float
    compression: float
    fit_s: float
    search_ms: float
    on_front: bool


@attrs.frozen
class ParetoResult:
    """All points of a sweep, in the order of the specs."""

    metric: str
    dataset: str
    points: tuple[ParetoPoint, ...]

    def front(self) -> list[ParetoPoint]:
        """The Pareto-optimal points, smallest first."""
        return sorted((p for p in self.points if p.on_front), key=lambda p: p.bytes_per_document)

    def best_within(self, budget_bytes: float) -> ParetoPoint | None:
        """The best point using at most ``budget_bytes`` per document (the paper's selection rule)."""
        fitting = [p for p in self.points if p.bytes_per_document <= budget_bytes]
        return max(fitting, key=lambda p: (p.value, -p.bytes_per_document), default=None)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "dataset": self.dataset,
                "points": [attrs.asdict(p) for p in self.points]}


def pareto_front(sizes: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Boolean mask of the non-dominated points (smaller size and larger value are better)."""
    size, value = np.asarray(sizes, float), np.asarray(values, float)
    if size.shape != value.shape:
        raise ConfigError(f"pareto_front: {size.size} sizes but {value.size} values")
    dominated = ((size[None, :] <= size[:, None]) & (value[None, :] >= value[:, None])
                 & ((size[None, :] < size[:, None]) | (value[None, :] > value[:, None])))
    return ~dominated.any(axis=1)


def pareto_sweep(dataset: Dataset, split: str, specs: Iterable[str], *, encoder: Any,
                 index: str | Mapping[str, Any] = "exact", metric: str = "nDCG@10", k: int = 100,
                 options: Mapping[str, Any] | None = None, cache: Any = None, seed: int = 0,
                 progress: bool = True) -> ParetoResult:
    """Build one pipeline per spec (same ``encoder`` and ``index``, the storage compressor fitted
    on the corpus vectors), evaluate ``metric`` on ``split`` and mark the Pareto front.

    ``encoder`` is an encoder object or registry spec (``"minilm"``), ``index`` a registry spec
    (``"exact"``, ``{"name": "exact", "metric": "cosine"}``: a fresh index per spec); ``options`` are further
    storage parameters (``int8_range``...). The corpus and queries are encoded once: through
    ``cache`` (an :class:`embedlab.cache.EmbeddingCache`), else a temporary one.
    """
    from embedlab.metrics import evaluate

    specs = list(dict.fromkeys(canonical_spec(s) for s in [BASELINE_SPEC, *specs]))
    encoder = create_component("encoder", encoder) if isinstance(encoder, (str, Mapping)) else encoder
    queries, qrels = dataset.split(split).queries, dataset.split(split).qrels
    measured = []
    with tempfile.TemporaryDirectory(prefix="embedlab-pareto-") as scratch:
        cache = cache if cache is not None else EmbeddingCache(scratch)  # encode the corpus once
        for spec in tqdm(specs, desc="storage specs", unit="spec", disable=not progress or None):
            compressor = StorageCompressor(spec=spec, **{"seed": seed, **(options or {})})
            pipeline = Pipeline(encoder=encoder, index=create_component("index", index),
                                compressor=compressor, cache=cache, seed=seed, name=spec)
            pipeline.build(dataset.corpus)
            evaluation = evaluate(pipeline.search(queries, k), qrels, [metric])
            timings = pipeline.timings
            measured.append((spec, compressor.bytes_per_vector, float(evaluation[evaluation.metrics[0]]),
                             timings.fit_compressor_s, 1000 * timings.search_s / len(queries)))
    sizes = [m[1] for m in measured]
    values = [m[2] for m in measured]
    front = pareto_front(sizes, values)
    base_size, base_value = sizes[0], values[0]
    points = tuple(ParetoPoint(spec, size, value, value / base_value - 1 if base_value else float("nan"),
                               base_size / size, fit_s, search_ms, bool(on))
                   for (spec, size, value, fit_s, search_ms), on in zip(measured, front))
    return ParetoResult(evaluation.metrics[0], dataset.name, points)


def format_table(result: ParetoResult) -> str:
    """One row per spec: bytes/document, compression vs float32, metric, relative change."""
    header = ["spec", "bytes/doc", "ratio", result.metric, "vs float32", "fit s", "search ms/query",
              "front"]
    rows = [[p.spec, f"{p.bytes_per_document:,.0f}", f"{p.compression:.1f}x", f"{p.value:.4f}",
             f"{100 * p.relative:+.2f}%", f"{p.fit_s:.2f}", f"{p.search_ms:.3f}", "*" if p.on_front else ""]
            for p in result.points]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([f"{result.dataset}: {result.metric} vs storage (* = Pareto front)", *lines])


def plot(result: ParetoResult, path: str | Path) -> Path:
    """Scatter of metric vs bytes/document (log2 axis), Pareto front drawn as a step line and
    labelled, the baseline (float32) as a dashed line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ConfigError("plotting needs matplotlib: pip install 'embedlab-storage[plot]' "
                          f"({error})") from None
    figure, axes = plt.subplots(figsize=(9, 6))
    others = [p for p in result.points if not p.on_front]
    front = result.front()
    axes.scatter([p.bytes_per_document for p in others], [p.value for p in others], color="0.6",
                 label="dominated")
    axes.step([p.bytes_per_document for p in front], [p.value for p in front], where="post",
              color="tab:red", marker="o", label="Pareto front")
    for i, p in enumerate(front):  # dominated points are named in the table, not on the plot
        axes.annotate(p.spec, (p.bytes_per_document, p.value), fontsize=8, rotation=35,
                      xytext=(4, 4 + 10 * (i % 2)), textcoords="offset points", color="tab:red")
    axes.axhline(result.points[0].value, color="tab:blue", linestyle="--", linewidth=1,
                 label=f"{result.points[0].spec} (baseline)")
    values = [p.value for p in result.points]
    span = (max(values) - min(values)) or 1.0
    axes.set_ylim(min(values) - 0.05 * span, max(values) + 0.25 * span)  # room for the labels
    axes.set_xscale("log", base=2)
    axes.set_xlabel("bytes per document")
    axes.set_ylabel(result.metric)
    axes.set_title(f"{result.dataset}: {result.metric} vs storage")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(target, dpi=120)
    plt.close(figure)
    return target


def write_outputs(result: ParetoResult, directory: str | Path) -> list[Path]:
    """Write pareto.png, pareto.csv and pareto.json into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pareto.json").write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    with open(out / "pareto.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        fields = [f.name for f in attrs.fields(ParetoPoint)]
        writer.writerow(fields)
        writer.writerows([getattr(p, f) for f in fields] for p in result.points)
    return [plot(result, out / "pareto.png"), out / "pareto.csv", out / "pareto.json"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedlab-pareto`` (reusable by an ``embedlab pareto`` subcommand)."""
    parser.add_argument("config", type=Path, help="experiment TOML: [dataset], [experiment] and the "
                        "base [[pipeline]] whose encoder and index every point uses")
    parser.add_argument("--pipeline", help="name of the base pipeline (default: the first)")
    parser.add_argument("--specs", help="comma-separated storage specs (default: the paper's grid)")
    parser.add_argument("--metric", help="quality measure (default: the experiment's first metric)")
    parser.add_argument("--output", "-o", type=Path, default=Path("pareto"),
                        help="folder for pareto.png, pareto.csv, pareto.json (default: ./pareto)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run a sweep described by parsed :func:`add_arguments` options; print the table."""
    from embedlab.experiment import load_config
    from embedlab.experiment.runner import load_experiment_dataset

    config = load_config(args.config)
    names = [p.name for p in config.pipelines]
    if args.pipeline is not None and args.pipeline not in names:
        raise ConfigError(f"--pipeline {args.pipeline!r} is not in {args.config}; pipelines: "
                          f"{', '.join(names)}")
    base = config.pipeline(args.pipeline or names[0])
    options = dict(base.compressor or {})
    if options and options.pop("name") != StorageCompressor.name:
        raise ConfigError(f"pipeline {base.name!r} has a compressor other than 'storage'; the sweep "
                          "replaces it, so give a pipeline without one or with the storage compressor")
    options.pop("spec", None)
    specs = DEFAULT_SPECS if args.specs is None else [s for s in args.specs.split(",") if s.strip()]
    result = pareto_sweep(load_experiment_dataset(config), config.split, specs, encoder=base.encoder,
                          index=base.index, metric=args.metric or config.metrics[0], k=config.k,
                          options=options, cache=None if args.no_cache else EmbeddingCache(),
                          seed=config.seed, progress=not args.quiet)
    print(format_table(result))
    for path in write_outputs(result, args.output):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``embedlab-pareto`` script."""
    parser = argparse.ArgumentParser(prog="embedlab-pareto", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except EmbedlabError as error:
        print(f"embedlab-pareto: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("embedlab-pareto: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
