"""DSI's multi-task training (indexing: document text -> its id; retrieval: query -> a relevant
document's id) with embedlab-train's loop: seeded batches, AdamW schedule, resumable checkpoints and
held-out early stopping, with a step that is the id cross-entropy and a held-out evaluation that
decodes held-out *training* queries (Hits@10)."""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_train import Batch, Loss
from embedlab_train.data import TrainingSet
from embedlab_train.loop import Trainer

from embedlab.dataset import Corpus, Queries
from embedlab.errors import InvalidInputError
from embedlab_dsi.docids import Docids
from embedlab_dsi.model import DSIModel, TokenMemory
from embedlab_dsi.trie import DocidTrie, beam_search


@attrs.frozen(eq=False)
class Examples:
    """Every text the model reads (its memory row = its index in ``texts``) and the examples:
    ``(text row, corpus position)`` pairs; ``kinds[e]`` says ``"index"`` or ``"query"``."""

    texts: tuple[str, ...]
    rows: np.ndarray
    positions: np.ndarray
    kinds: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        if not (len(self.rows) == len(self.positions) == len(self.kinds)):
            raise InvalidInputError("DSI examples: rows, positions and kinds disagree")
        if not len(self.rows):
            raise InvalidInputError("DSI examples: nothing to train on")

    @classmethod
    def build(cls, groups: Sequence[tuple[str, Sequence[str], Sequence[int]]]) -> Examples:
        """From ``(kind, texts, positions)`` groups (one example per text)."""
        texts: list[str] = []
        positions: list[int] = []
        kinds: list[str] = []
        for kind, group_texts, group_positions in groups:
            if len(group_texts) != len(group_positions):
                raise InvalidInputError(f"DSI examples: {kind!r} has {len(group_texts)} texts and "
                                        f"{len(group_positions)} positions")
            texts += list(group_texts)
            positions += [int(p) for p in group_positions]
            kinds += [kind] * len(group_texts)
        return cls(tuple(texts), np.arange(len(texts)), np.asarray(positions, dtype=np.int64), tuple(kinds))

    def training_set(self, corpus: Corpus) -> TrainingSet:
        """The examples as an embedlab-train training set (each text is a "query" of one example)."""
        queries = Queries([f"t{i}" for i in range(len(self.texts))], list(self.texts))
        judged = [set() for _ in self.texts]
        for row, p in zip(self.rows.tolist(), self.positions.tolist()):
            judged[row].add(p)
        return TrainingSet(queries, corpus, self.rows, self.positions, judged)


class DocidCrossEntropy(Loss):
    """Token cross-entropy of the relevant document's id (teacher forcing); called by :class:`DSITrainer`."""

    name = "docid-ce"

    def __call__(self, batch: Batch) -> torch.Tensor:
        raise TypeError("docid-ce scores generated document ids; it is not a bi-encoder loss")


@attrs.frozen(eq=False)
class HitsValidation:
    """Held-out training queries (memory rows of ``memory``) and their relevant corpus positions:
    the share whose top ``depth`` decoded ids hold a relevant document picks the best weights."""

    memory: TokenMemory
    relevant: tuple[frozenset[int], ...]
    depth: int = 10

    def score(self, model: DSIModel, trie: DocidTrie, batch_size: int) -> float:
        found = decode(model, self.memory, trie, self.depth, batch_size)
        hits = [any(p in relevant for p, _ in row) for row, relevant in zip(found, self.relevant)]
        return float(np.mean(hits)) if hits else 0.0


def decode(model: DSIModel, memory: TokenMemory, trie: DocidTrie, beam: int,
           batch_size: int) -> list[list[tuple[int, float]]]:
    """Constrained beam search for every row of ``memory`` (batches of ``batch_size`` texts)."""
    was_training = model.training
    model.eval()
    results: list[list[tuple[int, float]]] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(memory), batch_size):
                states, mask = memory.batch(range(start, min(start + batch_size, len(memory))))
                results += beam_search(trie, len(states), _next_token(model, states, mask), beam)
    finally:
        model.train(was_training)
    return results


def _next_token(model: DSIModel, states: torch.Tensor, mask: torch.Tensor) -> Any:
    """The beam search's step function over one batch of encoder states."""

    def step(rows: np.ndarray, prefixes: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(rows)
        return model.model(states[index], mask[index], torch.from_numpy(prefixes))[:, -1]

    return step


class DSITrainer(Trainer):
    """embedlab-train's loop with the id cross-entropy step and the decoded held-out evaluation."""

    def __init__(self, *args: Any, docids: Docids, trie: DocidTrie, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.docids, self.trie = docids, trie

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        data = self.context.data
        targets = [self.docids.codes[p] for p in data.positive[rows].tolist()]
        return self.model.id_loss(data.query[rows].tolist(), targets)

    def validation_score(self) -> float:
        assert isinstance(self.validation, HitsValidation)
        return self.validation.score(self.model, self.trie, self.settings.eval_batch_size)
