"""The prefix trie of valid document ids, and constrained beam search over it.

Decoding is constrained as in DSI/NCI: at every step the decoder may only emit a token that
continues some document's id, so every finished hypothesis is a real document. Scores are sums of
log-probabilities renormalised over the allowed tokens (so the scores of all complete ids of one
query sum to probability 1); a hypothesis that reaches a complete id keeps its score and competes
with the longer ones still being extended.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from embedlab_dsi.docids import Docids

#: ``step(rows, prefixes)``: next-token log-probabilities (``(len(rows), vocab)``) of the queries at
#: ``rows`` (indices into the batch) after ``prefixes`` (``(len(rows), t)`` token ids, t >= 0).
StepFunction = Callable[[np.ndarray, np.ndarray], torch.Tensor]


class DocidTrie:
    """Which tokens may follow each id prefix, and which document a complete id names."""

    def __init__(self, docids: Docids) -> None:
        self.vocab = docids.vocab
        self.max_length = docids.max_length
        self.documents: dict[tuple[int, ...], int] = {code: p for p, code in enumerate(docids.codes)}
        children: dict[tuple[int, ...], set[int]] = {}
        for code in docids.codes:
            for t in range(len(code)):
                children.setdefault(code[:t], set()).add(code[t])
        clash = [code for code in self.documents if code in children]
        if clash:
            raise ValueError(f"docids are not prefix-free: {clash[0]} is a prefix of another id")
        self._masks: dict[tuple[int, ...], np.ndarray] = {}
        for prefix, tokens in children.items():
            mask = np.zeros(self.vocab, dtype=bool)
            mask[sorted(tokens)] = True
            self._masks[prefix] = mask

    def allowed(self, prefix: tuple[int, ...]) -> np.ndarray:
        """Boolean ``(vocab,)`` mask of the tokens that may follow ``prefix`` (all False at a leaf)."""
        mask = self._masks.get(prefix)
        return np.zeros(self.vocab, dtype=bool) if mask is None else mask

    def document(self, prefix: tuple[int, ...]) -> int | None:
        """The corpus position whose id is ``prefix``, or None."""
        return self.documents.get(prefix)


def beam_search(trie: DocidTrie, n_queries: int, step: StepFunction, beam: int) -> list[list[tuple[int, float]]]:
    """The ``beam`` best complete ids of each of ``n_queries`` queries as ``(position, log-prob)``
    lists, best first (fewer when the trie has fewer documents)."""
    live: list[list[tuple[tuple[int, ...], float]]] = [[((), 0.0)] for _ in range(n_queries)]
    done: list[list[tuple[tuple[int, ...], float]]] = [[] for _ in range(n_queries)]
    for _ in range(trie.max_length):
        rows = [(q, prefix, score) for q in range(n_queries) for prefix, score in live[q]]
        if not rows:
            break
        query_rows = np.asarray([q for q, _, _ in rows], dtype=np.int64)
        width = len(rows[0][1])
        prefixes = np.asarray([prefix for _, prefix, _ in rows], dtype=np.int64).reshape(len(rows), width)
        logits = step(query_rows, prefixes).detach().to(torch.float64).cpu().numpy()
        masks = np.stack([trie.allowed(prefix) for _, prefix, _ in rows])
        logits = np.where(masks, logits, -np.inf)
        top = logits.max(axis=1, keepdims=True)
        logprobs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
        totals = logprobs + np.asarray([score for _, _, score in rows])[:, None]
        candidates: list[list[tuple[tuple[int, ...], float]]] = [[] for _ in range(n_queries)]
        for r, (q, prefix, _) in enumerate(rows):
            for token in np.flatnonzero(masks[r]).tolist():
                candidates[q].append(((*prefix, token), float(totals[r, token])))
        for q in range(n_queries):
            pool = candidates[q] + done[q]
            if not candidates[q]:
                continue
            pool.sort(key=lambda item: -item[1])
            kept = pool[:beam]
            done[q] = [(p, s) for p, s in kept if trie.document(p) is not None]
            live[q] = [(p, s) for p, s in kept if trie.document(p) is None]
    return [[(trie.documents[p], s) for p, s in sorted(done[q], key=lambda item: -item[1])] for q in range(n_queries)]
