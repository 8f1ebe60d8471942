"""LMEB's task format (``KaLM-Embedding/LMEB``): one folder per (dataset, subset) with

* ``corpus.jsonl``: ``{"id", "title", "text"}`` per document;
* ``queries.jsonl``: ``{"id", "text"}`` per query;
* ``qrels.tsv``: ``query-id  corpus-id  score`` with a header line;
* ``candidates.jsonl`` (optional): ``{"scene_id", "candidate_doc_ids"}``, the documents a query of
  that scene may return (e.g. the one conversation a question is about).

Retrieval runs over the whole corpus and each query's results are then kept only within its scene's
candidates (``SubsetRetrieval._filter_results_by_mapping``). A query's scene is the scene whose id
equals the query id, else the one whose id is the query id's first two ``_``-separated parts
(LMEB's dialogue datasets); a query with no scene keeps every document, as LMEB does. Here the
filtering is the split's exclusions (every non-candidate), which the pipeline removes before
evaluation.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import InvalidInputError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         delete=False)
    with handle:
        handle.write(text)
    os.replace(handle.name, path)


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidInputError(f"{path}:{number}: not JSON ({error.msg})") from None


def _field(row: dict, key: str, path: Path) -> str:
    if key not in row:
        raise InvalidInputError(f"{path}: a row has no {key!r} field (keys: {', '.join(sorted(row))})")
    return str(row[key])


def scene_of(query_id: str, scenes: Mapping[str, object]) -> str | None:
    """The scene of a query: its own id, else its id's first two ``_`` parts, else None."""
    if query_id in scenes:
        return query_id
    prefix = "_".join(query_id.split("_")[:2])
    return prefix if prefix in scenes else None


def load_lmeb(path: str | Path, *, name: str | None = None) -> Dataset:
    """An LMEB task folder as a dataset with split ``test`` (exclusions = outside the scene)."""
    root = Path(path).expanduser()
    for required in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        if not (root / required).is_file():
            raise InvalidInputError(f"LMEB task {root}: no {required} (an LMEB task folder has corpus.jsonl, "
                                    "queries.jsonl, qrels.tsv and optionally candidates.jsonl)")
    rows = list(_jsonl(root / "corpus.jsonl"))
    if not rows:
        raise InvalidInputError(f"{root / 'corpus.jsonl'}: no documents")
    corpus = Corpus([_field(r, "id", root / "corpus.jsonl") for r in rows], [str(r.get("text", "")) for r in rows],
                    titles=[str(r.get("title") or "") for r in rows])
    query_rows = list(_jsonl(root / "queries.jsonl"))
    queries = Queries([_field(r, "id", root / "queries.jsonl") for r in query_rows],
                      [_field(r, "text", root / "queries.jsonl") for r in query_rows])
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels.tsv").open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if number == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # the header
            if len(row) < 3:
                raise InvalidInputError(f"{root / 'qrels.tsv'}:{number}: expected query-id, corpus-id, score")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
            except ValueError:
                raise InvalidInputError(f"{root / 'qrels.tsv'}:{number}: score {row[2]!r} is not a number") from None
    exclude: dict[str, list[str]] = {}
    scenes: dict[str, list[str]] = {}
    if (root / "candidates.jsonl").is_file():
        for row in _jsonl(root / "candidates.jsonl"):
            scenes[_field(row, "scene_id", root / "candidates.jsonl")] = [str(d) for d in row["candidate_doc_ids"]]
        everything = set(corpus.ids.tolist())
        for query_id in queries.ids.tolist():
            scene = scene_of(query_id, scenes)
            if scene is not None:
                exclude[query_id] = sorted(everything - set(scenes[scene]))
    return Dataset(name or f"lmeb-{root.name}", corpus, queries, {"test": qrels},
                   metadata={"path": str(root), "scenes": len(scenes)}, exclude={"test": exclude} if exclude else {})


def write_lmeb(dataset: Dataset, path: str | Path, scenes: Mapping[str, Sequence[str]] | None = None,
               split: str = "test") -> Path:
    """Write ``dataset`` (one split) as an LMEB task folder; ``scenes`` maps scene ids to candidates."""
    root = Path(path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    corpus = dataset.corpus
    titles = corpus.titles or [""] * len(corpus)
    atomic_write_text(root / "corpus.jsonl", "".join(
        json.dumps({"id": i, "title": t, "text": x}) + "\n"
        for i, t, x in zip(corpus.ids.tolist(), titles, corpus.texts)))
    atomic_write_text(root / "queries.jsonl", "".join(
        json.dumps({"id": i, "text": x}) + "\n" for i, x in zip(dataset.queries.ids.tolist(), dataset.queries.texts)))
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, judged in dataset.qrels[split].items()
                                             for d, g in judged.items()]
    atomic_write_text(root / "qrels.tsv", "\n".join(lines) + "\n")
    if scenes:
        atomic_write_text(root / "candidates.jsonl", "".join(
            json.dumps({"scene_id": s, "candidate_doc_ids": list(docs)}) + "\n" for s, docs in scenes.items()))
    return root
