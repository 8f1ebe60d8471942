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

import json
from pathlib import Path
from typing import Mapping, Sequence

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.datasets.beir import read_jsonl, read_qrels
from embedlab.errors import InvalidInputError
from embedlab.experiment.report import write_text_atomically
from embedlab.ids import check_id

#: How errors of :func:`write_lmeb` name the writer.
WRITER = "write_lmeb"


def _field(row: dict, key: str, path: Path, number: int) -> str:
    if key not in row:
        raise InvalidInputError(f"{path}:{number}: no {key!r} field (keys: {', '.join(sorted(row))})")
    return str(row[key])


def _id(row: dict, key: str, path: Path, number: int, what: str) -> str:
    return check_id(_field(row, key, path, number), f"{path}:{number}", what)


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
    corpus_file, queries_file = root / "corpus.jsonl", root / "queries.jsonl"
    candidates_file = root / "candidates.jsonl"
    rows = list(read_jsonl(corpus_file))
    if not rows:
        raise InvalidInputError(f"{corpus_file}: no documents")
    corpus = Corpus([_id(r, "id", corpus_file, n, "document id") for n, r in rows],
                    [str(r.get("text", "")) for _, r in rows], titles=[str(r.get("title") or "") for _, r in rows])
    query_rows = list(read_jsonl(queries_file))
    queries = Queries([_id(r, "id", queries_file, n, "query id") for n, r in query_rows],
                      [_field(r, "text", queries_file, n) for n, r in query_rows])
    qrels = read_qrels(root / "qrels.tsv")
    exclude: dict[str, list[str]] = {}
    scenes: dict[str, list[str]] = {}
    if candidates_file.is_file():
        for number, row in read_jsonl(candidates_file):
            candidates = row.get("candidate_doc_ids")
            if not isinstance(candidates, list):
                raise InvalidInputError(f"{candidates_file}:{number}: 'candidate_doc_ids' must be a list of "
                                        f"document ids, got {type(candidates).__name__}")
            scenes[_field(row, "scene_id", candidates_file, number)] = [str(d) for d in candidates]
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
    write_text_atomically(root / "corpus.jsonl", "".join(
        json.dumps({"id": i, "title": t, "text": x}) + "\n"
        for i, t, x in zip(corpus.ids.tolist(), titles, corpus.texts)), WRITER)
    write_text_atomically(root / "queries.jsonl", "".join(
        json.dumps({"id": i, "text": x}) + "\n" for i, x in zip(dataset.queries.ids.tolist(), dataset.queries.texts)),
        WRITER)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, judged in dataset.qrels[split].items()
                                             for d, g in judged.items()]
    write_text_atomically(root / "qrels.tsv", "\n".join(lines) + "\n", WRITER)
    if scenes:
        write_text_atomically(root / "candidates.jsonl", "".join(
            json.dumps({"scene_id": s, "candidate_doc_ids": list(docs)}) + "\n" for s, docs in scenes.items()),
            WRITER)
    return root
