"""The run manifest written into every ``--output`` directory (``manifest.json``), and
``embedlab reproduce DIR``, which re-runs it and says whether the numbers match.

The manifest records everything that can change a number: the experiment file's text, the
dataset (path, name, split, training split and a content hash of the corpus, the evaluated queries
and their judgments), the versions of Python, the libraries and every plugin, each pipeline's
component descriptions (kind, name, full config, distribution and version) and fingerprints, the
seed, thread settings, the CPU model, the evaluation's tie-breaking policy and whether documents
whose id equals the query id are ignored, and the aggregates to compare against.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from embedlab.dataset import Dataset, Split
from embedlab.errors import ConfigError

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
#: How equal scores are ordered, from the first stage to the metrics.
TIE_POLICY = {
    "index": "equal scores keep ascending corpus position (exact index; other indexes: their own order)",
    "fusion": "equal fused scores: ascending document id",
    "evaluation": "trec_eval's: documents re-sorted by score, ties by document id descending",
}
LIBRARIES = ("numpy", "scipy", "attrs", "pluggy", "tqdm", "pytrec_eval-terrier", "faiss-cpu", "torch",
             "onnxruntime", "transformers", "numba", "PyStemmer", "regex", "bm25s")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change results (absent ones left out)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def thread_settings() -> dict[str, Any]:
    """CPU count, the thread environment variables and, if torch is already imported, its threads."""
    settings: dict[str, Any] = {"cpu_count": os.cpu_count(),
                                "environment": {v: os.environ[v] for v in THREAD_VARIABLES if v in os.environ}}
    torch = sys.modules.get("torch")
    if torch is not None:
        settings["torch_threads"] = torch.get_num_threads()
    return settings


def split_hash(dataset: Dataset, split: Split) -> str:
    """sha256 over the corpus content, the split's queries and its judgments."""
    judgments = sorted(f"{q}\t{d}\t{g}" for q, docs in split.qrels.items() for d, g in docs.items())
    digest = hashlib.sha256()
    for part in (dataset.corpus.content_hash, split.queries.content_hash, "\n".join(judgments)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def build_manifest(result: Any) -> dict[str, Any]:
    """The manifest of an :class:`~embedlab.experiment.runner.ExperimentResult`."""
    from embedlab import __version__, plugin_host

    config = result.config
    dataset_spec = dict(config.dataset)
    if "path" in dataset_spec:
        path = Path(dataset_spec["path"]).expanduser()
        if not path.is_absolute() and not path.exists():
            path = config.base_dir / path
        dataset_spec["path"] = str(path.resolve())
    return {
        "manifest_version": MANIFEST_VERSION,
        "experiment": {"text": _toml_of(config.raw),
                       "source": str(config.base_dir.resolve())},
        "dataset": {"spec": dataset_spec, "name": result.dataset.name, "split": result.split.name,
                    "train_split": config.train_split, "documents": len(result.dataset.corpus),
                    "queries": len(result.split.queries), "content_sha256": split_hash(result.dataset, result.split)},
        "seed": config.seed,
        "k": config.k,
        "metrics": list(result.metrics),
        "evaluation": {"ties": TIE_POLICY, "ignore_identical_ids": False,
                       "note": "a document whose id equals the query id is scored like any other "
                               "(BEIR's ignore_identical_ids=True and Pyserini's --remove-query drop it)"},
        "versions": {"embedlab": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
                     "libraries": library_versions(),
                     "plugins": {p.distribution: p.version for p in plugin_host().plugins}},
        "hardware": {"cpu": cpu_model(), **thread_settings()},
        "pipelines": [{"name": o.name, "components": o.components, "fingerprints": o.fingerprints,
                       "fitted": o.fitted, "aggregates": dict(o.evaluation.aggregates)} for o in result.outcomes],
    }


def _toml_of(raw: Any) -> str:
    """TOML text of a parsed experiment (for configs built in Python, without a source file)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + " }"
        raise ConfigError(f"cannot write {v!r} as TOML")

    for table, content in raw.items():
        if isinstance(content, list):
            for item in content:
                lines.append(f"[[{table}]]")
                lines += [f"{json.dumps(str(k))} = {value(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{table}]")
            lines += [f"{json.dumps(str(k))} = {value(v)}" for k, v in content.items()]
        lines.append("")
    return "\n".join(lines)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of an ``--output`` directory, with a clear error when absent or unreadable."""
    file = Path(directory) / MANIFEST_FILE
    if not file.is_file():
        raise ConfigError(f"{directory}: no {MANIFEST_FILE} (write one with `embedlab run ... --output DIR`)")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ConfigError(f"{file}: not an embedlab run manifest (version {MANIFEST_VERSION})")
    return manifest


def reproduce(directory: str | Path, *, tolerance: float = 1e-9, cache: Any = None,
              progress: bool = False) -> tuple[bool, list[str]]:
    """Re-run the experiment of a manifest; (whether every aggregate matches, report lines)."""
    from embedlab.experiment.config import parse_config
    from embedlab.experiment.runner import run_experiment

    manifest = read_manifest(directory)
    config = parse_config(manifest["experiment"]["text"], source=f"{directory}/{MANIFEST_FILE}",
                          base_dir=manifest["experiment"]["source"])
    spec = manifest["dataset"]["spec"]
    if "path" in spec:
        config = attrs.evolve(config, dataset=dict(spec))
    result = run_experiment(config, cache=cache, progress=progress)
    now = build_manifest(result)
    lines, ok = [], True
    if now["dataset"]["content_sha256"] != manifest["dataset"]["content_sha256"]:
        ok = False
        lines.append("dataset: content differs from the recorded run (corpus, queries or judgments changed)")
    for name in ("embedlab", "python"):
        if now["versions"][name] != manifest["versions"][name]:
            lines.append(f"note: {name} {manifest['versions'][name]} then, {now['versions'][name]} now")
    for dist, version in manifest["versions"]["plugins"].items():
        if now["versions"]["plugins"].get(dist) != version:
            lines.append(f"note: {dist} {version} then, {now['versions']['plugins'].get(dist, 'absent')} now")
    recorded = {p["name"]: p for p in manifest["pipelines"]}
    for pipeline in now["pipelines"]:
        before = recorded.get(pipeline["name"])
        if before is None:
            ok = False
            lines.append(f"{pipeline['name']}: not in the recorded run")
            continue
        for metric, value in pipeline["aggregates"].items():
            old = before["aggregates"].get(metric)
            same = old is not None and abs(float(old) - float(value)) <= tolerance
            ok &= same
            lines.append(f"{pipeline['name']} {metric}: recorded {old}, now {value:.6g} "
                         f"{'match' if same else 'DIFFERS'}")
    lines.append("reproduced: every number matches" if ok else "NOT reproduced: see the lines above")
    return ok, lines

