"""An embedlab pipeline as MTEB v2's ``SearchProtocol``, and an MTEB retrieval task from an embedlab
dataset split (no download: the task's data is set from memory)."""

from __future__ import annotations

from typing import Any

import datasets
import mteb
from mteb.abstasks.retrieval import AbsTaskRetrieval

from embedlab import Corpus, Dataset, Pipeline, Queries
from embedlab.errors import ConfigError

#: Model metadata MTEB keeps with results; copied from a bundled entry (no download) and renamed.
_BASE_META = "sentence-transformers/all-MiniLM-L6-v2"
#: Task metadata template (bundled with mteb): a BEIR-style English retrieval task, nDCG@10 main score.
_BASE_TASK = "SciFact"


class MTEBSearch:
    """``mteb`` ``SearchProtocol`` over an embedlab :class:`~embedlab.Pipeline` (any first stage,
    fusion or cascade). ``index`` builds the pipeline on MTEB's corpus, ``search`` returns its
    top-k as ``{query_id: {doc_id: score}}``. :meth:`from_encoder` wraps a bare encoder with the
    exact index, so any embedlab encoder runs in MTEB too.
    """

    def __init__(self, pipeline: Pipeline, name: str | None = None) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(f"MTEBSearch wraps an embedlab Pipeline, got {type(pipeline).__name__}")
        self.pipeline = pipeline
        self._meta = mteb.get_model_meta(_BASE_META).model_copy(
            update={"name": name or f"embedlab/{pipeline.name}", "loader": None, "revision": None})

    @classmethod
    def from_encoder(cls, encoder: Any, name: str | None = None, **pipeline_options: Any) -> MTEBSearch:
        """An encoder (object, name or ``{"name": ..., **params}``) with the exact index."""
        return cls(Pipeline.from_names(encoder=encoder, **pipeline_options), name)

    @property
    def mteb_model_meta(self) -> Any:
        return self._meta

    def index(self, corpus: Any, *, task_metadata: Any = None, hf_split: str = "", hf_subset: str = "",
              encode_kwargs: Any = None, num_proc: int | None = None, **kwargs: Any) -> None:
        columns = corpus.column_names
        titles = [t or "" for t in corpus["title"]] if "title" in columns else None
        self.pipeline.build(Corpus([str(i) for i in corpus["id"]], list(corpus["text"]), titles=titles))

    def search(self, queries: Any, *, task_metadata: Any = None, hf_split: str = "", hf_subset: str = "",
               top_k: int = 100, encode_kwargs: Any = None, top_ranked: Any = None, num_proc: int | None = None,
               **kwargs: Any) -> dict[str, dict[str, float]]:
        if top_ranked is not None:
            raise ConfigError("MTEBSearch runs retrieval tasks; reranking tasks (top_ranked) are not supported")
        ranking = self.pipeline.search(Queries([str(i) for i in queries["id"]], list(queries["text"])), k=top_k)
        return ranking.to_dict()


def local_retrieval_task(dataset: Dataset, split: str = "test", name: str | None = None) -> AbsTaskRetrieval:
    """An MTEB retrieval task holding ``dataset``'s corpus and ``split`` (queries and qrels), built
    in memory: MTEB evaluates it without downloading anything."""
    chosen = dataset.split(split)
    corpus = dataset.corpus
    task_name = name or f"embedlab-{dataset.name}-{split}"
    metadata = mteb.get_task(_BASE_TASK).metadata.model_copy(
        update={"name": task_name, "eval_splits": [split], "description": f"{dataset.name} from embedlab",
                "dataset": {"path": f"embedlab/{dataset.name}", "revision": corpus.content_hash[:12]}})
    task_class = type("EmbedlabRetrievalTask", (AbsTaskRetrieval,), {"metadata": metadata})
    task = task_class()
    titles = [t or "" for t in corpus.titles] if corpus.titles is not None else [""] * len(corpus)
    task.dataset = {"default": {split: {
        "corpus": datasets.Dataset.from_dict({"id": corpus.ids.tolist(), "title": titles, "text": list(corpus.texts)}),
        "queries": datasets.Dataset.from_dict({"id": chosen.queries.ids.tolist(), "text": list(chosen.queries.texts)}),
        "relevant_docs": {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in chosen.qrels.items()},
        "top_ranked": None}}}
    task.data_loaded = True
    return task
