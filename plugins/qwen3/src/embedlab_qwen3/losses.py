"""Qwen3-VL-Embedding's text objectives as embedlab-train losses.

``qwen3`` (report eq. 1): InfoNCE whose partition function sums the positive, the query's own hard
negatives, the other in-batch queries (q-q), the other in-batch positives contrasted with the
query's positive (d-d) and with the query (q-d), each term masked as a false negative when its
similarity exceeds the positive's by more than ``false_negative_margin`` (0.1) or when the document
is the positive itself (same corpus position or same text). Stage 2 of the report drops the q-q
and d-d terms (``query_query = false``, ``document_document = false``).

``cosent`` (report eq. 2, Huang et al. 2024): ``log(1 + sum_{label(a) > label(b)}
exp((cos(b) - cos(a)) / temperature))`` over the batch's (query, document) pairs, labels from the
qrels grades (``TrainingSet.grade``); equal to sentence-transformers' ``CoSENTLoss``.

Matryoshka over any of them is embedlab-train's ``matryoshka`` loss (``base = { name = "qwen3" }``).
"""

from __future__ import annotations

import attrs
import torch
from embedlab_train import Batch, InfoNCE, Loss, cosine
from embedlab_train.losses import positive_number

_v = attrs.validators
NEG_INF = float("-inf")


class Qwen3(InfoNCE):
    """InfoNCE with Qwen3-Embedding's five-term partition function and false-negative mask. With
    ``false_negative_margin = None``, ``mask_identical = false``, both extra blocks off and
    ``other_hard_negatives = true`` it is ``infonce``."""

    name = "qwen3"

    @attrs.frozen(kw_only=True)
    class Config(InfoNCE.Config):
        """``false_negative_margin``: mask a term whose similarity exceeds the positive's by more
        than this (None: no such mask); ``mask_identical``: mask documents identical to the
        positive (position or text); ``query_query`` / ``document_document``: add the q-q and d-d
        terms (stage 1; stage 2 drops them); ``other_hard_negatives``: also contrast the query with
        the other examples' hard negatives (sentence-transformers' MNRL does; the report's ``Z_i``
        holds the query's own hard negatives only)."""

        false_negative_margin: float | None = attrs.field(
            default=0.1, validator=_v.optional([_v.instance_of((int, float)), _v.not_(_v.instance_of(bool))]))
        mask_identical: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        query_query: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        document_document: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        other_hard_negatives: bool = attrs.field(default=False, validator=_v.instance_of(bool))

    def false_negatives(self, scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """Where a similarity exceeds the row's positive similarity by more than the margin (no gradient
        through the test); all False when the margin is None."""
        if self.config.false_negative_margin is None:
            return torch.zeros_like(scores, dtype=torch.bool)
        return scores.detach() > positive.detach().unsqueeze(1) + self.config.false_negative_margin

    def identical(self, batch: Batch, columns: int) -> torch.Tensor:
        """``(B, columns)``: document ``j`` is query ``i``'s positive (same corpus position or text),
        ``j != i``."""
        b = batch.size
        mask = torch.zeros((b, columns), dtype=torch.bool, device=batch.queries.device)
        if not self.config.mask_identical:
            return mask
        positions = batch.doc_positions[:columns].tolist()
        texts = [batch.data.documents[p] for p in positions]
        for i in range(b):
            for j in range(columns):
                mask[i, j] = j != i and (positions[j] == positions[i] or texts[j] == texts[i])
        return mask

    def own_negatives_only(self, batch: Batch, columns: int) -> torch.Tensor:
        """``(B, columns)``: True on other examples' hard negatives (columns past the B positives
        that are not row ``i``'s own)."""
        b = batch.size
        column = torch.arange(columns, device=batch.queries.device)
        owner = torch.where(column < b, column, column % b)
        return (column.unsqueeze(0) >= b) & (owner.unsqueeze(0) != torch.arange(b, device=column.device).unsqueeze(1))

    def logits(self, batch: Batch) -> torch.Tensor:
        b, rows = batch.size, torch.arange(batch.size, device=batch.queries.device)
        scores = batch.scores()
        positive = scores[rows, rows]
        qd = super().logits(batch)  # cosine / temperature, judged documents masked
        mask = self.false_negatives(scores, positive) | self.identical(batch, scores.shape[1])
        if not self.config.other_hard_negatives:
            mask = mask | self.own_negatives_only(batch, scores.shape[1])
        mask[rows, rows] = False  # never the positive
        blocks = [qd.masked_fill(mask, NEG_INF)]
        eye = torch.eye(b, dtype=torch.bool, device=scores.device)
        if self.config.query_query:
            qq = cosine(batch.queries, batch.queries)
            blocks.append((qq / self.temperature()).masked_fill(self.false_negatives(qq, positive) | eye, NEG_INF))
        if self.config.document_document:
            positives = batch.documents[:b]
            dd = cosine(positives, positives)
            judged = batch.judged_mask()[:, :b] if self.config.mask_judged else torch.zeros_like(eye)
            dd_mask = self.false_negatives(dd, positive) | self.identical(batch, b) | judged | eye
            blocks.append((dd / self.temperature()).masked_fill(dd_mask, NEG_INF))
        return torch.cat(blocks, dim=1)


class CoSent(Loss):
    """CoSENT: every pair of (query, document) pairs whose labels are ordered contributes
    ``exp((cos(lower) - cos(higher)) / temperature)`` inside ``log(1 + sum ...)``. Pairs are each
    query with its positive (label: its qrels grade) and with its own hard negatives (label 0);
    ``in_batch`` adds the query with the other examples' positives (label 0 unless judged for the
    query, then left out)."""

    name = "cosent"

    @attrs.frozen(kw_only=True)
    class Config:
        """``temperature``: sentence-transformers' ``scale`` is 1 / temperature (20 = 0.05);
        ``in_batch``: also pair each query with the other examples' positives."""

        temperature: float = attrs.field(default=0.05, validator=positive_number)
        in_batch: bool = attrs.field(default=False, validator=_v.instance_of(bool))

    def pairs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query rows, document rows and labels of the scored pairs."""
        b, columns = batch.size, batch.documents.shape[0]
        grades = torch.as_tensor(batch.data.grade[batch.rows], dtype=torch.float64)
        query_rows, doc_rows, labels = [], [], []
        judged = batch.judged_mask() if self.config.in_batch else None
        for i in range(b):
            for j in range(columns):
                own = j == i or (j >= b and j % b == i)
                if own or (judged is not None and j < b and not judged[i, j]):
                    query_rows.append(i)
                    doc_rows.append(j)
                    labels.append(float(grades[i]) if j == i else 0.0)
        return torch.tensor(query_rows), torch.tensor(doc_rows), torch.tensor(labels, dtype=torch.float64)

    def __call__(self, batch: Batch) -> torch.Tensor:
        query_rows, doc_rows, labels = self.pairs(batch)
        q = torch.nn.functional.normalize(batch.queries[query_rows], p=2, dim=1)
        d = torch.nn.functional.normalize(batch.documents[doc_rows], p=2, dim=1)
        scores = (q * d).sum(1) / self.config.temperature
        differences = scores.unsqueeze(0) - scores.unsqueeze(1)  # [a, b] = s_b - s_a
        ordered = labels.to(scores.device).unsqueeze(1) > labels.to(scores.device).unsqueeze(0)  # label_a > label_b
        terms = differences[ordered]
        return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)


__all__ = ["CoSent", "Qwen3"]
