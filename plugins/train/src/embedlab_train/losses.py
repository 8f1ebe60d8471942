"""Contrastive losses: the ``loss`` component kind, the :class:`Batch` every loss receives, and the
baseline InfoNCE / MultipleNegativesRanking loss that every method's loss reduces to.

A batch holds ``B`` queries and ``B * (1 + K)`` documents: the ``B`` positives first, then the hard
negatives column by column (negative ``k`` of every example, then negative ``k + 1``...), the order of
sentence-transformers' ``MultipleNegativesRankingLoss``. Query ``i``'s target is document ``i``.

A new loss subclasses :class:`InfoNCE` and overrides one hook (or :class:`Loss` for something else):

* :meth:`InfoNCE.logits` - the ``(B, C)`` logits, target in column ``i``; ``-inf`` removes a
  candidate (GIST's guided mask, false-negative masks, synthetic negatives appended as columns);
* :meth:`InfoNCE.example_weights` - per-query weights (focal reweighting), or None;
* :meth:`Loss.prepare` - one-off work before training (guide or teacher scores, cached);
* :meth:`Loss.parameters` - trainable tensors of the loss itself (a learnable temperature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from embedlab.components import Component

if TYPE_CHECKING:
    from embedlab_train.context import TrainingContext
    from embedlab_train.data import TrainingSet

_v = attrs.validators


def positive_number(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Validator: a real number > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a number > 0, got {value!r}")


@attrs.frozen(eq=False)
class Batch:
    """One training step: embeddings (with gradients) and where each row came from."""

    #: ``(B, d)`` query embeddings.
    queries: torch.Tensor
    #: ``(B * (1 + K), d)``: the B positives, then the hard negatives column by column.
    documents: torch.Tensor
    #: ``(B,)`` example indices into :attr:`data` (``data.query[rows]``, ``data.positive[rows]``).
    rows: np.ndarray
    #: ``(B * (1 + K),)`` corpus positions of :attr:`documents`.
    doc_positions: np.ndarray
    #: The training examples (texts, qrels) the rows index.
    data: TrainingSet

    @property
    def size(self) -> int:
        return int(self.queries.shape[0])

    @property
    def negatives_per_query(self) -> int:
        return self.documents.shape[0] // max(self.size, 1) - 1

    def scores(self) -> torch.Tensor:
        """``(B, C)`` cosine similarities of every query with every document of the batch."""
        return cosine(self.queries, self.documents)

    def judged_mask(self) -> torch.Tensor:
        """``(B, C)`` True where document ``j`` is judged relevant to query ``i`` (a false negative)
        and is not query ``i``'s own target (column ``i``)."""
        judged = self.data.judged
        mask = np.zeros((self.size, len(self.doc_positions)), dtype=bool)
        for i, query in enumerate(self.data.query[self.rows].tolist()):
            relevant = judged[query]
            mask[i] = [p in relevant for p in self.doc_positions.tolist()]
            mask[i, i] = False
        return torch.from_numpy(mask).to(self.queries.device)

    def truncated(self, dim: int) -> Batch:
        """The same batch with embeddings cut to their first ``dim`` coordinates (cosine scores
        re-normalise them: Matryoshka prefixes)."""
        return attrs.evolve(self, queries=self.queries[:, :dim], documents=self.documents[:, :dim])


def cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(n, m)`` cosine similarities (as sentence-transformers' ``cos_sim``)."""
    a = torch.nn.functional.normalize(a, p=2, dim=1, eps=eps)
    b = torch.nn.functional.normalize(b, p=2, dim=1, eps=eps)
    return a @ b.T


def cross_entropy_rows(logits: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row ``-log softmax(logits)[i, target_i]`` (target: column ``i`` of row ``i``)."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    columns = rows if target is None else target
    return torch.logsumexp(logits, dim=1) - logits[rows, columns]


class Loss(Component):
    """A training objective over a :class:`Batch` (plugin-extensible component kind ``loss``)."""

    kind = "loss"

    def prepare(self, context: TrainingContext) -> None:
        """Called once before training with the training set, its negatives and the caches
        (precompute guide or teacher scores here). Default: nothing."""

    def parameters(self) -> dict[str, torch.Tensor]:
        """Trainable tensors of the loss itself (optimised and checkpointed with the model, and
        kept with the best held-out weights)."""
        return {}

    def learning_rates(self) -> dict[str, float]:
        """Learning rates of those of :meth:`parameters` that do not train at the encoder's
        (JPQ's PQ centroids); same warm-up and decay, no weight decay. Default: none."""
        return {}

    def __call__(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


class InfoNCE(Loss):
    """InfoNCE / MultipleNegativesRanking: ``-log softmax(cos(q_i, d) / temperature)[i]`` over the
    batch's positives (in-batch negatives) and hard negatives. ``mask_judged`` removes candidates
    judged relevant to the query (other than its target), which in-batch sampling would otherwise
    push away. The baseline every method's loss reduces to at its neutral setting."""

    name = "infonce"

    @attrs.frozen(kw_only=True)
    class Config:
        """``temperature``: logits are cosine / temperature (sentence-transformers' ``scale`` =
        1 / temperature; its default 20 is 0.05); ``mask_judged``: leave judged-relevant
        documents out of a query's negatives."""

        temperature: float = attrs.field(default=0.05, validator=positive_number)
        mask_judged: bool = attrs.field(default=True, validator=_v.instance_of(bool))

    def temperature(self) -> torch.Tensor | float:
        """The temperature dividing cosine scores (a tensor when it is learned)."""
        return self.config.temperature

    def logits(self, batch: Batch) -> torch.Tensor:
        """``(B, C)`` logits, query ``i``'s target in column ``i``, ``-inf`` for removed candidates."""
        logits = batch.scores() / self.temperature()
        if self.config.mask_judged:
            logits = logits.masked_fill(batch.judged_mask(), float("-inf"))
        return logits

    def example_weights(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        """``(B,)`` weights of the per-query losses (None: all 1)."""
        return None

    def __call__(self, batch: Batch) -> torch.Tensor:
        logits = self.logits(batch)
        losses = cross_entropy_rows(logits)
        weights = self.example_weights(batch, logits)
        return (losses if weights is None else losses * weights).mean()


class Matryoshka(Loss):
    """Matryoshka representation learning: ``sum_m w_m * base(batch cut to its first m dims)``
    (each prefix re-normalised by the cosine), so truncated embeddings stay useful. Equals
    sentence-transformers' ``MatryoshkaLoss``; with ``dims = [full dim]`` and weight 1 it is the
    base loss."""

    name = "matryoshka"

    @attrs.frozen(kw_only=True)
    class Config:
        """``dims``: prefix sizes (each <= the model's dim); ``weights``: one per dim (default 1);
        ``base``: the loss applied to every prefix, as a ``{name = ..., ...}`` table."""

        dims: tuple[int, ...] = attrs.field(default=(384, 256, 128, 64, 32), converter=tuple)
        weights: tuple[float, ...] | None = attrs.field(default=None,
                                                        converter=attrs.converters.optional(tuple))
        base: Any = attrs.field(default="infonce")

        def __attrs_post_init__(self) -> None:
            if not self.dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.dims):
                raise ValueError(f"dims must be positive integers, got {self.dims!r}")
            if self.weights is not None and len(self.weights) != len(self.dims):
                raise ValueError(f"weights has {len(self.weights)} values for {len(self.dims)} dims")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        from embedlab_train.components import create_loss

        super().__init__(config, **params)
        self.base = create_loss(self.config.base)

    def prepare(self, context: TrainingContext) -> None:
        too_big = [d for d in self.config.dims if d > context.dim]
        if too_big:
            from embedlab.errors import ConfigError

            raise ConfigError(f"matryoshka: dims {too_big} exceed the model's {context.dim} dimensions")
        self.base.prepare(context)

    def parameters(self) -> dict[str, torch.Tensor]:
        return self.base.parameters()

    def __call__(self, batch: Batch) -> torch.Tensor:
        weights = self.config.weights or (1.0,) * len(self.config.dims)
        return sum(w * self.base(batch.truncated(d)) for d, w in zip(self.config.dims, weights))
