"""Helpers for plugin test suites: an embedding cache seeded as a pipeline would seed it, an
exact first stage to rerank, seeded clustered unit vectors, the neighbour margin of node vectors,
test doubles registered by name (``registered``) and a torch-free encoder with a tokenizer and a
length limit (``TokenLimitedHashing``), and an experiment run through ``embedlab run`` next to the
same pipeline through the Python API (``run_cli_experiment``, ``api_aggregates``).

Plain functions (no pytest, no torch import), so every plugin's ``conftest.py`` wraps them in its
own fixtures instead of carrying a copy.

>>> cache = seeded_cache(tmp_path, encoder, dataset.corpus)               # doctest: +SKIP
>>> docs = cached_documents(cache, encoder, dataset.corpus)               # doctest: +SKIP
>>> ranking = exact_first_stage(encoder, docs, dataset.corpus, dataset.split("test").queries, k=30)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import attrs
import numpy as np

from embedlab.cache import EmbeddingCache
from embedlab.dataset import Corpus, Queries
from embedlab.hashing import HashingEncoder
from embedlab.ranking import Ranking
from embedlab.texts import check_texts

_TOKEN = re.compile(r"\w+|[^\w\s]")


def cached_documents(cache: EmbeddingCache, encoder: object, corpus: Corpus) -> np.ndarray:
    """``corpus``'s document embeddings under the key a pipeline with an untrained ``encoder``
    uses, computed and stored on a miss (so a pipeline built later on ``cache`` is a hit)."""
    key = cache.key(encoder, "documents", corpus.content_hash)
    return cache.get_or_compute(key, lambda: encoder.encode_documents(corpus.documents())).embeddings


def seeded_cache(directory: str | Path, encoder: object, corpus: Corpus) -> EmbeddingCache:
    """A cache in ``directory`` already holding ``corpus``'s document embeddings (see
    :func:`cached_documents`)."""
    cache = EmbeddingCache(Path(directory))
    cached_documents(cache, encoder, corpus)
    return cache


def exact_first_stage(encoder: object, doc_vectors: np.ndarray, corpus: Corpus, queries: Queries, k: int,
                      limit: int | None = None) -> Ranking:
    """Exact inner-product top-``k`` of the first ``limit`` queries (all when None) over
    ``doc_vectors`` (``corpus`` order); ties keep corpus order."""
    ids = queries.ids[:limit]
    sims = np.asarray(encoder.encode_queries(list(queries.texts[:limit]))) @ doc_vectors.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return Ranking(ids, corpus.ids[top], np.take_along_axis(sims, top, axis=1))


def clustered_unit_vectors(n: int, dim: int, clusters: int, seed: int, noise: float = 0.6) -> np.ndarray:
    """``(n, dim)`` float32 unit vectors around ``clusters`` random centres (Gaussian spread
    ``noise``): seeded data with the geometry of sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def neighbour_margin(adjacency: Any, vectors: np.ndarray) -> float:
    """Mean cosine similarity of linked node pairs minus that of unlinked pairs (self excluded): a
    proximity-preserving graph embedding scores clearly above 0, random vectors about 0."""
    linked = np.asarray(adjacency.toarray() if hasattr(adjacency, "toarray") else adjacency) > 0
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    unlinked = ~linked & ~np.eye(len(vectors), dtype=bool)
    return float(similarity[linked].mean() - similarity[unlinked].mean())


@contextmanager
def registered(kind: str, name: str, factory: Callable[..., Any], *, plugin: str = "tests") -> Iterator[Any]:
    """Register ``factory`` as ``(kind, name)`` in the process-wide registry for the ``with`` block, so
    a test can reach a double through code that builds components by name::

        with registered("pair-filter", "drop-odd", DropOddQueries):
            encoder = FineTunedEncoder(filters=["drop-odd"])
    """
    import embedlab
    from embedlab.registry import ComponentSpec

    registry = embedlab.registry()
    registry.kind(kind)
    spec = ComponentSpec(kind, name, factory, plugin, plugin, "0")
    registry.add_spec(spec)
    try:
        yield spec
    finally:
        registry.remove_spec(spec)


class TokenLimitedHashing(HashingEncoder):
    """The ``hashing`` encoder with a tokenizer (words and punctuation marks, ``\\w+|[^\\w\\s]``)
    and a limit: only a text's first ``max_tokens`` tokens are encoded, as a transformer truncates.
    A torch-free stand-in for tests of passages (:class:`~embedlab.protocols.Tokenizes`)."""

    name = "token-limited-hashing"

    @attrs.frozen
    class Config(HashingEncoder.Config):
        """``max_tokens``: tokens of a text that are encoded (the rest is cut)."""

        max_tokens: int = attrs.field(default=16, validator=[attrs.validators.instance_of(int),
                                                             attrs.validators.gt(0)])

    @property
    def max_tokens(self) -> int:
        return int(self.config.max_tokens)

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray([m.span() for m in _TOKEN.finditer(t)], dtype=np.int64).reshape(-1, 2)
                for t in check_texts(texts, f"{self.name} texts")]

    def _encode(self, texts: Sequence[str], what: str) -> np.ndarray:
        items = check_texts(texts, f"{self.name} {what}")
        kept = [t[:int(s[self.max_tokens - 1, 1])] if len(s) > self.max_tokens else t
                for t, s in zip(items, self.token_spans(items))]
        return super()._encode(kept, what)


def reseal(path: str | Path) -> None:
    """Recompute the sizes and sha256 of every file of a saved state, and the pins of its parts
    (parts first), as someone forging a state would: what remains to catch is structure."""
    import json
    import os

    from embedlab.persistence import MANIFEST, sha256_file

    root = Path(path)
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    for name in manifest.get("parts", {}):
        if (root / name / MANIFEST).is_file():
            reseal(root / name)
            manifest["parts"][name] = {"manifest_sha256": sha256_file(root / name / MANIFEST)}
    for name in manifest.get("files", {}):
        file = root / name
        if file.is_file():
            manifest["files"][name] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
    replacement = root / f".{MANIFEST}.reseal"
    replacement.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(replacement, root / MANIFEST)  # a new file: a hard-linked copy of the state is not touched


def run_cli_experiment(directory: str | Path, dataset: Any, pipelines: Sequence[dict[str, Any]], *,
                       metrics: Sequence[str] = ("nDCG@10",), split: str = "test",
                       train_split: str | None = None) -> dict[str, dict[str, Any]]:
    """Run ``pipelines`` (``[[pipeline]]`` tables as dicts) on ``dataset`` as a user does: the
    dataset saved as a folder (``directory / "dataset"``) and an experiment TOML file written in ``directory``, then
    ``embedlab run FILE -q --no-cache --output DIR`` through the CLI's entry point. Returns each
    pipeline's entry of results.json (``aggregates``, ``fingerprints``...) by name; an
    AssertionError when the command exits non-zero (one pipeline failed, a bad table...)."""
    import json

    from embedlab.cli import main
    from embedlab.datasets.saved import save_dataset
    from embedlab.manifest import _toml_of

    root = Path(directory)
    save_dataset(dataset, root / "dataset")
    data = {"path": str(root / "dataset"), "split": split, **({"train_split": train_split} if train_split else {})}
    config = root / "experiment.toml"
    config.write_text(_toml_of({"dataset": data, "experiment": {"metrics": list(metrics)},
                                "pipeline": list(pipelines)}), encoding="utf-8")
    code = main(["run", str(config), "-q", "--no-cache", "--output", str(root / "out")])
    if code != 0:
        raise AssertionError(f"embedlab run {config} exited with {code}:\n{config.read_text()}")
    results = json.loads((root / "out" / "results.json").read_text(encoding="utf-8"))
    return {p["name"]: p for p in results["pipelines"]}


def api_aggregates(pipeline: Any, dataset: Any, *, metrics: Sequence[str] = ("nDCG@10",), split: str = "test",
                   train_split: str | None = None, k: int = 100) -> dict[str, float]:
    """The same evaluation through the Python API: build ``pipeline`` on ``dataset``'s corpus
    (trained on ``train_split``), search ``split``'s queries (top ``k``) and aggregate ``metrics``."""
    from embedlab.metrics import evaluate

    pipeline.build(dataset.corpus, train=None if train_split is None else dataset.split(train_split))
    part = dataset.split(split)
    return dict(evaluate(pipeline.search(part.queries, k=k), part.qrels, list(metrics)).aggregates)
