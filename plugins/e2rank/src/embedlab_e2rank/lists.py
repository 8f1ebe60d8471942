"""Training lists for :meth:`E2Rank.fit`: judged positives first, then first-stage hard negatives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from embedlab.dataset import Corpus, Split
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError
from embedlab.ranking import Ranking
from embedlab.rerank import document_positions, encode_cached, query_texts
from embedlab_e2rank.order import by_first_stage_score, unit
from embedlab_e2rank.training import TrainingLists

if TYPE_CHECKING:
    from embedlab_e2rank.reranker import E2Rank


def training_lists(reranker: E2Rank, ranking: Ranking, split: Split, corpus: Corpus) -> TrainingLists:
    """One list of ``list_size`` documents per ranked query of ``split`` with a judged relevant
    document in the corpus: its relevant documents by grade (at most ``list_size - 1``), then the
    first stage's highest-ranked documents not judged relevant. The prompt is built from the first
    stage's top ``prompt_docs``, exactly as at reranking time. Query and prompt embeddings go
    through the reranker's embedding cache, when it has one (a rerun of training encodes nothing)."""
    owner = reranker.name
    if not any(len(judged) for judged in split.qrels.values()):
        raise InvalidInputError(f"{owner}: split {split.name!r} has no qrels; training needs relevance "
                                "judgements: pass a split with qrels (e.g. dataset.split('train'))")
    ranking = by_first_stage_score(ranking)
    size = reranker.config.list_size
    rows, lists, grades = [], [], []
    for row, (query, candidates, _) in enumerate(ranking):
        judged = split.qrels.get(query, {})
        relevant = sorted(((g, d) for d, g in judged.items() if g > 0 and d in corpus.position),
                          key=lambda item: (-item[0], item[1]))[:size - 1]
        negatives = [d for d in candidates.tolist() if judged.get(d, 0) <= 0][:size - len(relevant)]
        if relevant and negatives:
            rows.append(row)
            documents = [d for _, d in relevant] + negatives
            lists.append(documents + [""] * (size - len(documents)))
            grades.append([g for g, _ in relevant] + [0] * (size - len(relevant)))
    if not rows:
        raise InvalidInputError(f"{owner}: no ranked query of split {split.name!r} has both a judged "
                                "relevant document in the corpus and a first-stage negative; check "
                                "that the ranking is the first stage's result for this split")
    kept = Ranking(ranking.query_ids[rows], ranking.doc_ids[rows], ranking.scores[rows])
    texts = query_texts(kept, split.queries, owner)
    top = document_positions(kept.doc_ids[:, :reranker.config.prompt_docs], corpus, owner)
    positions = document_positions(np.asarray(lists, dtype=str), corpus, owner)
    cache = reranker.disk_cache
    queries = unit(as_dense(encode_cached(reranker.encoder, "queries", texts, cache), name=f"{owner} queries"))
    prompts = encode_cached(reranker.encoder, "queries", reranker.prompts(texts, top, corpus), cache)
    prompts = unit(as_dense(prompts, name=f"{owner} prompts"))
    documents = reranker.document_vectors(positions, corpus)
    return TrainingLists(torch.from_numpy(queries), torch.from_numpy(prompts), torch.from_numpy(documents),
                         torch.as_tensor(grades, dtype=torch.long), torch.from_numpy(positions >= 0))
