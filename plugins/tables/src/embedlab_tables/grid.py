"""The benchmark's grid: every method at every compression ratio and seed, a table and a plot.

From the command line (``embedlab tables-grid``, see :func:`add_arguments`)::

    embedlab tables-grid --methods full,hash,qr,int8 --ratios 1,10,100 --seeds 0,1,2 --output grid/
    embedlab tables-grid --criteo criteo.txt --model deepfm --output grid/

or from Python with :func:`run_grid`. Each seed trains every method once on the same data and split
(the seed sets table and network initialisation, the batch order and the method's own randomness),
so the methods are paired by seed: each (method, ratio) is compared with the uncompressed ``full``
table of the same seeds by a paired t-test over seeds (Holm-corrected across the grid).

A method that cannot reach a ratio (quantisation beyond 4x, Q-R beyond its smallest tables...)
gets an "out of reach" row saying why, never a number.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import numpy as np

from embedlab.errors import EmbedlabError, InvalidInputError
from embedlab.stats import compare_systems
from embedlab_tables.data import CTRData
from embedlab_tables.method import KIND
from embedlab_tables.models import ModelConfig
from embedlab_tables.schema import BudgetError
from embedlab_tables.training import TableRun, TrainConfig, progress_bar

BASELINE = "full"
Splits = tuple[CTRData, CTRData, CTRData]


@attrs.frozen
class MethodSpec:
    """``name`` of an ``embedding-table`` component and its parameters (``"hash:scope=field"``)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MethodSpec:
        name, _, rest = text.strip().partition(":")
        if not name:
            raise InvalidInputError(f"empty method name in {text!r}")
        params = []
        for item in filter(None, rest.split(";" if ";" in rest else ",")) if rest else []:
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise InvalidInputError(f"method parameter {item!r} in {text!r} is not KEY=VALUE")
            params.append((key.strip(), _value(value.strip())))
        return cls(name, tuple(params))

    @property
    def label(self) -> str:
        return self.name + ("" if not self.params else ":" + ";".join(f"{k}={v}" for k, v in self.params))

    def create(self, ratio: float) -> Any:
        import embedlab

        return embedlab.registry().create(KIND, self.name, ratio=ratio, **dict(self.params))


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@attrs.frozen
class GridPoint:
    """One trained table: test AUC and log-loss, served bytes, compression, seconds."""

    method: str
    ratio: float
    seed: int
    status: str
    auc: float = math.nan
    logloss: float = math.nan
    bytes: int = 0
    compression: float = math.nan
    train_s: float = math.nan
    infer_s: float = math.nan
    plan: str = ""


@attrs.frozen
class GridRow:
    """Mean over seeds of one (method, ratio), and its paired test against ``full`` at ratio 1."""

    method: str
    ratio: float
    seeds: int
    status: str
    auc: float
    auc_std: float
    logloss: float
    bytes: float
    compression: float
    delta_auc: float
    p_ttest: float
    p_holm: float
    train_s: float
    infer_s: float


def run_grid(methods: Sequence[MethodSpec], ratios: Sequence[float], seeds: Sequence[int],
             splits: Callable[[int], Splits], *, model: ModelConfig | None = None,
             training: TrainConfig | None = None, progress: bool = True,
             log: Callable[[str], None] | None = None, done: Sequence[GridPoint] = (),
             on_point: Callable[[GridPoint], None] | None = None) -> list[GridPoint]:
    """Train every (method, ratio, seed); ``splits(seed)`` gives (train, valid, test).

    Points in ``done`` (an interrupted run's, see :func:`read_checkpoint`) are reused, not trained
    again; ``on_point`` sees every newly trained point (the CLI appends it to the checkpoint)."""
    if not methods or not ratios or not seeds:
        raise InvalidInputError("the grid needs at least one method, one ratio and one seed")
    if len(set(seeds)) != len(seeds):
        raise InvalidInputError(f"duplicate seeds: {list(seeds)}")
    for spec in methods:  # fail on an unknown name or bad parameter before any training
        spec.create(float(ratios[0]))
    points = []
    reuse = {(p.method, p.ratio, p.seed): p for p in done}
    total = len(methods) * len(ratios) * len(seeds)
    bar = _bar(total, progress)
    for seed in seeds:
        todo = [(s, float(r)) for s in methods for r in ratios if (s.label, float(r), seed) not in reuse]
        train, valid, test = splits(seed) if todo else (None, None, None)
        for spec in methods:
            for ratio in ratios:
                key = (spec.label, float(ratio), seed)
                if key in reuse:
                    points.append(reuse[key])
                    bar.update(1)
                    continue
                run = TableRun(train, valid, test, model=model, training=training, seed=seed)
                points.append(_fit_one(spec, float(ratio), seed, run))
                bar.update(1)
                if on_point is not None:
                    on_point(points[-1])
                if log is not None:
                    p = points[-1]
                    log(f"{p.method} x{p.ratio:g} seed {seed}: " + (f"AUC {p.auc:.4f}, {p.bytes} B, "
                        f"{p.train_s:.0f} s" if p.status == "ok" else p.status))
    bar.close()
    return points


def _fit_one(spec: MethodSpec, ratio: float, seed: int, run: TableRun) -> GridPoint:
    method = spec.create(ratio)
    try:
        fitted = method.fit(run)
    except BudgetError as error:
        return GridPoint(spec.label, ratio, seed, f"out of reach: {error}")
    scores = run.evaluate(fitted.model, "test")
    nbytes = fitted.storage_bytes
    plan = json.dumps({k: v for k, v in fitted.plan.items() if not isinstance(v, list) or len(v) <= 8})
    return GridPoint(spec.label, ratio, seed, "ok", scores.auc, scores.logloss, nbytes,
                     run.schema.full_bytes / nbytes, fitted.train_seconds, scores.seconds, plan)


CHECKPOINT = "points.jsonl"


def append_checkpoint(path: Path, point: GridPoint) -> None:
    """Append one point as a JSON line and flush it to disk (a killed run loses at most that line)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(attrs.asdict(point)) + "\n")
        handle.flush()


def read_checkpoint(path: Path) -> list[GridPoint]:
    """The points of a checkpoint; a torn last line (the run was killed while writing it) is skipped."""
    if not path.is_file():
        return []
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            points.append(GridPoint(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return points


def merge_pieces(directories: Sequence[Path]) -> tuple[list[GridPoint], dict[str, Any]]:
    """The points of several grid outputs (pieces of one grid split by method) and their common
    settings, with ``seconds`` summed and ``pieces`` listing each piece's methods and seconds.

    The pieces must share data, model and training settings (their seeds pair them; a piece may run
    fewer seeds, its rows then have paired deltas but no test); a (method, ratio, seed) present in
    two pieces is an error unless both have the same AUC."""
    points: dict[tuple[str, float, int], GridPoint] = {}
    common: dict[str, Any] | None = None
    pieces = []
    ignore = {"methods", "output", "seconds", "quiet", "resume", "merge", "pieces", "reused_points", "load_average",
              "seeds"}
    for directory in directories:
        path = Path(directory) / "grid.json"
        if not path.is_file():
            raise InvalidInputError(f"{directory}: no grid.json (not an output of embedlab tables-grid)")
        saved = json.loads(path.read_text(encoding="utf-8"))
        settings = saved["settings"]
        shared = {k: v for k, v in settings.items() if k not in ignore}
        if common is None:
            common = shared
        elif shared != common:
            differ = sorted(k for k in set(shared) | set(common) if shared.get(k) != common.get(k))
            raise InvalidInputError(f"{directory}: settings differ from the first piece's in {differ}; "
                                    "only pieces of one grid can be merged")
        pieces.append({"output": str(directory), "methods": settings.get("methods"), "seeds": settings.get("seeds"),
                       "seconds": settings.get("seconds"), "load_average": settings.get("load_average")})
        for item in saved["points"]:
            point = GridPoint(**item)
            key = (point.method, point.ratio, point.seed)
            if key in points and not math.isclose(points[key].auc, point.auc, abs_tol=1e-9) \
                    and point.status == "ok":
                raise InvalidInputError(f"{directory}: {key} was also trained in another piece with a "
                                        "different AUC")
            points.setdefault(key, point)
    settings = dict(common or {}, pieces=pieces,
                    seconds=sum(p["seconds"] or 0.0 for p in pieces),
                    seeds=sorted({seed for p in pieces for seed in p["seeds"] or ()}),
                    methods=",".join(dict.fromkeys(p.method for p in points.values())))
    return list(points.values()), settings


def summarize(points: Sequence[GridPoint], baseline: str = BASELINE) -> list[GridRow]:
    """One row per (method, ratio), in grid order, with paired tests against ``baseline`` at ratio 1.

    ``delta_auc`` is the mean difference to the baseline on the same seeds; a row whose seeds are a
    subset of the baseline's (a piece run with fewer seeds) gets the delta but no test."""
    keys = list(dict.fromkeys((p.method, p.ratio) for p in points))
    base = {p.seed: p.auc for p in points if p.method == baseline and p.ratio == 1 and p.status == "ok"}
    groups = {key: [p for p in points if (p.method, p.ratio) == key] for key in keys}
    testable = {}
    for key, group in groups.items():
        ok = {p.seed: p.auc for p in group if p.status == "ok"}
        if len(base) >= 2 and set(ok) == set(base) and len(ok) == len(group) and key != (baseline, 1.0):
            testable[key] = ok
    tests = {}
    if testable:  # every system has the baseline's seeds: one baseline array pairs with all
        seeds = sorted(base)
        results = compare_systems({f"{k[0]}@{k[1]:g}": [v[s] for s in seeds] for k, v in testable.items()},
                                  [base[s] for s in seeds])
        tests = dict(zip(testable, results))
    rows = []
    base_mean = float(np.mean(list(base.values()))) if base else math.nan
    for key, group in groups.items():
        ok = [p for p in group if p.status == "ok"]
        if not ok:
            reasons = sorted({p.status for p in group})
            rows.append(GridRow(key[0], key[1], len(group), reasons[0], *([math.nan] * 10)))
            continue
        test = tests.get(key)
        auc = np.array([p.auc for p in ok])
        paired = [p.auc - base[p.seed] for p in ok if p.seed in base]  # against full on the same seeds
        delta = float(np.mean(paired)) if len(paired) == len(ok) else float(auc.mean() - base_mean)
        rows.append(GridRow(
            key[0], key[1], len(ok), "ok" if len(ok) == len(group) else f"{len(group) - len(ok)} seed(s) failed",
            float(auc.mean()), float(auc.std(ddof=1)) if len(ok) > 1 else 0.0,
            float(np.mean([p.logloss for p in ok])), float(np.mean([p.bytes for p in ok])),
            float(np.mean([p.compression for p in ok])), delta,
            test.p_ttest if test else math.nan, test.p_ttest_holm if test else math.nan,
            float(np.mean([p.train_s for p in ok])), float(np.mean([p.infer_s for p in ok]))))
    return rows


def markdown(rows: Sequence[GridRow]) -> str:
    """The summary as a Markdown table."""
    lines = ["| method | ratio | seeds | test AUC (mean +- sd) | delta vs full | p (t, Holm) | log-loss | "
             "bytes | actual x | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.status.startswith("out of reach"):
            lines.append(f"| {r.method} | {r.ratio:g} | - | {r.status.split(':', 1)[0]} | | | | | | |")
            continue
        lines.append(f"| {r.method} | {r.ratio:g} | {r.seeds} | {r.auc:.4f} +- {r.auc_std:.4f} | {r.delta_auc:+.4f} | "
                     f"{_p(r.p_holm)} | {r.logloss:.4f} | {r.bytes:,.0f} | {r.compression:.1f} | {r.train_s:.1f} |")
    return "\n".join(lines) + "\n"


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


def plot(rows: Sequence[GridRow], path: Path, title: str) -> None:
    """AUC against bytes (log scale), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for method in dict.fromkeys(r.method for r in rows):
        ok = sorted((r for r in rows if r.method == method and r.status == "ok"), key=lambda r: r.bytes)
        if ok:
            ax.errorbar([r.bytes for r in ok], [r.auc for r in ok], yerr=[r.auc_std for r in ok], marker="o",
                        capsize=2, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("table bytes (served)")
    ax.set_ylabel("test AUC")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(points: Sequence[GridPoint], rows: Sequence[GridRow], output: Path, title: str,
                  settings: dict[str, Any]) -> dict[str, Path]:
    """``points.csv``, ``summary.csv``, ``summary.md``, ``grid.json`` and ``auc_vs_bytes.png`` in ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {name: output / name for name in ("points.csv", "summary.csv", "summary.md", "grid.json",
                                               "auc_vs_bytes.png")}
    for path, items in ((paths["points.csv"], points), (paths["summary.csv"], rows)):
        fields = [f.name for f in attrs.fields(type(items[0]))]
        with _atomic(path) as handle:
            writer = csv.writer(handle)
            writer.writerow(fields)
            writer.writerows([getattr(item, f) for f in fields] for item in items)
    with _atomic(paths["summary.md"]) as handle:
        handle.write(f"{title}\n\n{markdown(rows)}")
    with _atomic(paths["grid.json"]) as handle:
        json.dump({"settings": settings, "points": [attrs.asdict(p) for p in points],
                   "summary": [attrs.asdict(r) for r in rows]}, handle, indent=1, default=str)
    plot(rows, paths["auc_vs_bytes.png"], title)
    return paths


class _atomic:
    """Write a text file through a temporary file renamed into place."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.handle = self.tmp.open("w", encoding="utf-8", newline="")
        return self.handle

    def __exit__(self, kind, *_: object) -> None:  # type: ignore[no-untyped-def]
        self.handle.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# -- command line -----------------------------------------------------------------------------------

DEFAULT_METHODS = ("full", "hash", "qr", "tt-rec", "dhe", "robe", "adaptemb", "dpq", "mgqe", "dedup", "mde",
                   "autodim", "deeplight", "pep", "autosrh", "int8", "int16", "alpt8", "alpt16")


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="comma-separated embedding-table components, parameters after a colon separated "
                             "by ';' (e.g. 'full,hash:scope=field,qr'); default: every method of embedlab-tables")
    parser.add_argument("--ratios", type=_floats, default=[1.0, 2.0, 10.0, 100.0],
                        help="compression ratios (>= 1), comma-separated (default 1,2,10,100)")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="training seeds (default 0,1,2)")
    data = parser.add_argument_group("data (synthetic unless --criteo)")
    data.add_argument("--criteo", type=Path, help="a Criteo-format file (tab- or comma-separated)")
    data.add_argument("--min-count", type=int, default=1, help="Criteo: values seen fewer times share id 0")
    data.add_argument("--rows", type=int, default=100_000, help="synthetic rows (default 100,000)")
    data.add_argument("--zipf", type=float, default=1.1, help="synthetic skew (Zipf exponent, default 1.1)")
    data.add_argument("--vocab-scale", type=float, default=0.25,
                      help="synthetic vocabularies: Criteo-like cardinalities times this (default 0.25)")
    data.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data and of the split")
    model = parser.add_argument_group("model and training")
    model.add_argument("--model", choices=("dlrm", "deepfm", "fm"), default="dlrm")
    model.add_argument("--dim", type=int, default=16)
    model.add_argument("--epochs", type=int, default=2)
    model.add_argument("--batch-size", type=int, default=1024)
    model.add_argument("--lr", type=float, default=1e-3)
    model.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--output", type=Path, required=True, help="directory for the table, plot and raw points")
    parser.add_argument("--resume", action="store_true",
                        help=f"reuse the points of an interrupted run in --output ({CHECKPOINT}, one line a point)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                        help="train nothing: merge these outputs (pieces of one grid run by method groups, "
                             "same settings) into one table and plot in --output, seconds summed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-point lines")


def data_factory(args: argparse.Namespace) -> tuple[Callable[[int], Splits], str]:
    """``splits(seed)`` for the arguments (data and split fixed by ``--data-seed``) and a title."""
    if args.criteo is not None:
        from embedlab_tables.criteo import read_criteo

        data, _ = read_criteo(args.criteo, min_count=args.min_count)
        title = f"{args.criteo.name} ({len(data)} rows)"
    else:
        from embedlab_tables.synthetic import CRITEO_LIKE_VOCABS, generate

        vocabs = tuple(max(2, int(v * args.vocab_scale)) for v in CRITEO_LIKE_VOCABS)
        data = generate(rows=args.rows, zipf=args.zipf, vocab_sizes=vocabs, seed=args.data_seed).data
        title = f"synthetic ({args.rows} rows, zipf {args.zipf:g}, {sum(data.vocab_sizes)} features)"
    parts = data.split((0.8, 0.1, 0.1), seed=args.data_seed)
    return (lambda seed: parts), title  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    """``embedlab tables-grid``: train the grid, write the outputs, print the summary."""
    try:
        if args.merge:
            return _merge(args)
        methods = [MethodSpec.parse(m) for m in args.methods.split(",") if m.strip()]
        splits, title = data_factory(args)
        model = ModelConfig(kind=args.model, dim=args.dim)
        training = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, num_threads=args.threads)
        args.output.mkdir(parents=True, exist_ok=True)
        checkpoint = args.output / CHECKPOINT
        done = read_checkpoint(checkpoint) if args.resume else []
        if not args.resume:
            checkpoint.unlink(missing_ok=True)
        previous = sum(p.train_s + p.infer_s for p in done if p.status == "ok")
        load = os.getloadavg()[0]
        start = time.perf_counter()
        points = run_grid(methods, args.ratios, args.seeds, splits, model=model, training=training,
                          progress=not args.quiet, log=None if args.quiet else lambda m: print(m, file=sys.stderr),
                          done=done, on_point=lambda p: append_checkpoint(checkpoint, p))
        rows = summarize(points)
        title = f"{args.model} on {title}"
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
        settings["seconds"] = time.perf_counter() - start + previous
        settings["reused_points"] = len(done)
        settings["load_average"] = round(load, 2)
        paths = write_outputs(points, rows, args.output, title, settings)
    except (EmbedlabError, ValueError, TypeError) as error:
        print(f"embedlab tables-grid: {error}", file=sys.stderr)
        return 2
    print(markdown(rows))
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({settings['seconds']:.0f} s)")
    return 0


def _merge(args: argparse.Namespace) -> int:
    points, settings = merge_pieces(args.merge)
    rows = summarize(points)
    title = f"{settings.get('model', '')} grid merged from {len(args.merge)} pieces"
    paths = write_outputs(points, rows, args.output, title, settings)
    print(markdown(rows))
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({settings['seconds']:.0f} s summed over pieces)")
    return 0


def _bar(total: int, enabled: bool):  # type: ignore[no-untyped-def]
    return progress_bar(total, "grid", enabled)
