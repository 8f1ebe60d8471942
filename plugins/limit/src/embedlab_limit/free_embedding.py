"""Free embeddings: query and document vectors optimised directly on a relevance matrix.

The LIMIT paper's "best case" for any embedding model: no encoder, just one free unit vector per
query and per document, trained full-batch on the test qrels themselves
(google-deepmind/limit ``code/free_embedding_experiment.py``):

* init N(0, 1) rows, L2-normalised; Adam (lr 0.01); after every update all rows are renormalised;
* loss: InfoNCE over all documents, temperature 0.1, each relevant document a separate positive;
* every ``eval_every`` steps the top-k accuracy is measured; a problem is *solved* once it reaches
  100% (or, with ``criterion="margin"``, once every query's relevant documents outrank all others
  by a positive margin; ``"global-margin"``: one score threshold shared by all queries separates
  relevant from other pairs; ``"zero-margin"``: that threshold is 0, the retrieval margin of
  Bangachev et al.); it stops early on a loss plateau (no improvement by ``min_delta`` in
  ``patience`` steps) or after ``max_steps``.

Several problems (different numbers of documents, queries or dimensions) are optimised as one
zero-padded batch. Adam acts element-wise and the batch loss is the sum of the problems' losses, so
each problem follows the same trajectory as if it were optimised alone (up to float32 rounding: padding
changes the summation order of the matrix products, which over thousands of steps can flip a problem
that sits right at the solvability boundary); padded dimensions stay exactly zero and padded rows are
masked out of losses and measures. Finished problems leave the batch. A given call is deterministic.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol, Sequence

import attrs
import numpy as np
import torch
from attrs import validators as v
from tqdm.auto import tqdm

from embedlab.errors import InvalidInputError
from embedlab.threads import torch_threads
from embedlab_limit.evaluation import MARGINS, min_row_margin, top_k_accuracy

CRITERIA = ("accuracy", *MARGINS)


def _relevance(value: object) -> np.ndarray:
    matrix = np.asarray(value, dtype=bool)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise InvalidInputError(f"relevance must be a non-empty (queries, documents) matrix, got shape {matrix.shape}")
    if not matrix.any(axis=1).all():
        raise InvalidInputError(f"relevance: {int((~matrix.any(axis=1)).sum())} query row(s) have no relevant "
                                "document; drop them")
    return matrix


@attrs.frozen(eq=False)
class Problem:
    """One free-embedding problem: a relevance matrix, a dimension and the seed of its initial vectors."""

    relevance: np.ndarray = attrs.field(converter=_relevance)
    dim: int = attrs.field(validator=[v.instance_of(int), v.ge(1)])
    seed: int = attrs.field(default=42, validator=v.instance_of(int))

    @property
    def queries(self) -> int:
        return int(self.relevance.shape[0])

    @property
    def documents(self) -> int:
        return int(self.relevance.shape[1])

    def initial_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded N(0, 1) query and document rows, L2-normalised (independent of any batch)."""
        generator = torch.Generator().manual_seed(self.seed)
        queries = torch.randn(self.queries, self.dim, generator=generator)
        documents = torch.randn(self.documents, self.dim, generator=generator)
        return _normalise(queries), _normalise(documents)


@attrs.frozen
class OptimiserConfig:
    """Optimisation and stopping rules (defaults: the LIMIT code's)."""

    learning_rate: float = attrs.field(default=0.01, validator=v.gt(0))
    max_steps: int = attrs.field(default=100_000, validator=[v.instance_of(int), v.ge(1)])
    eval_every: int = attrs.field(default=50, validator=[v.instance_of(int), v.ge(1)])
    patience: int = attrs.field(default=1000, validator=[v.instance_of(int), v.ge(1)])
    min_delta: float = attrs.field(default=1e-5, validator=v.ge(0))
    criterion: str = attrs.field(default="accuracy", validator=v.in_(CRITERIA))
    #: torch threads while optimising (restored afterwards): these small matrices run fastest on one
    #: thread, and far slower on several when the cores are shared with other jobs.
    threads: int = attrs.field(default=1, validator=[v.instance_of(int), v.ge(1)])


@attrs.frozen(eq=False)
class Masks:
    """Which (query, document) pairs are relevant and which exist, ``(batch, queries, documents)``,
    as booleans and as the float factors losses multiply with (computed once per batch)."""

    relevant: torch.Tensor
    pairs: torch.Tensor
    positive: torch.Tensor  # 1.0 on relevant pairs
    valid: torch.Tensor  # 1.0 on existing pairs
    sign: torch.Tensor  # -1.0 on relevant pairs, +1.0 elsewhere

    @classmethod
    def of(cls, relevant: torch.Tensor, pairs: torch.Tensor) -> Masks:
        positive = relevant.float()
        return cls(relevant, pairs, positive, pairs.float(), 1.0 - 2.0 * positive)

    def select(self, rows: torch.Tensor) -> Masks:
        return Masks(*(getattr(self, f.name)[rows] for f in attrs.fields(Masks)))


class PairLoss(Protocol):
    """A loss on the batched score matrix; returns one value per problem."""

    name: str

    def initial_parameters(self, batch: int) -> dict[str, torch.Tensor]:
        """Extra learnable parameters, one value per problem (shape ``(batch,)``)."""

    def __call__(self, scores: torch.Tensor, masks: Masks, parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        """``scores`` is ``(batch, queries, documents)``; padded pairs are False in ``masks.pairs``."""


@attrs.frozen
class InfoNCE:
    """LIMIT's loss: softmax over all documents at temperature ``temperature``, averaged over every
    (query, relevant document) pair."""

    temperature: float = attrs.field(default=0.1, validator=v.gt(0))
    name = "infonce"

    def initial_parameters(self, batch: int) -> dict[str, torch.Tensor]:
        return {}

    def __call__(self, scores: torch.Tensor, masks: Masks, parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = (scores / self.temperature).masked_fill(~masks.pairs, -1e4)
        log_probs = torch.log_softmax(logits, dim=-1)
        return -(log_probs * masks.positive).sum((1, 2)) / masks.positive.sum((1, 2)).clamp_min(1.0)


@attrs.frozen(eq=False)
class Outcome:
    """How one problem ended."""

    problem: Problem
    solved: bool
    stop_reason: str  # "solved", "plateau" or "max_steps"
    steps: int
    best_accuracy: float
    best_margin: float  # of the criterion's margin (the row margin for "accuracy")
    final_loss: float
    seconds: float
    queries: np.ndarray
    documents: np.ndarray
    parameters: dict[str, float]


class Adam:
    """Adam (Kingma & Ba; torch/optax defaults) on tensors whose first axis indexes problems, so
    that finished problems can be dropped from the parameters and the moments alike."""

    def __init__(self, parameters: list[torch.Tensor], learning_rate: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.parameters = parameters
        self.learning_rate = learning_rate
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.first = [torch.zeros_like(p) for p in parameters]
        self.second = [torch.zeros_like(p) for p in parameters]

    @torch.no_grad()
    def step(self, gradients: Sequence[torch.Tensor]) -> None:
        beta1, beta2 = self.betas
        self.step_count += 1
        step_size = self.learning_rate / (1 - beta1**self.step_count)
        root_correction = (1 - beta2**self.step_count) ** 0.5
        for parameter, gradient, first, second in zip(self.parameters, gradients, self.first, self.second):
            first.mul_(beta1).add_(gradient, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            denominator = (second.sqrt() / root_correction).add_(self.eps)
            parameter.addcdiv_(first, denominator, value=-step_size)

    def keep(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Keep only the problems ``rows``; returns the new parameter tensors (leaves)."""
        self.parameters = [p.detach()[rows].requires_grad_(True) for p in self.parameters]
        self.first = [m[rows] for m in self.first]
        self.second = [m[rows] for m in self.second]
        return self.parameters


def _normalise(rows: torch.Tensor) -> torch.Tensor:
    return rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@attrs.define
class _Batch:
    """Zero-padded tensors of the problems still being optimised."""

    index: torch.Tensor  # position of each row in the caller's problem list
    masks: Masks

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> tuple[_Batch, torch.Tensor, torch.Tensor]:
        size = len(problems)
        n_q = max(p.queries for p in problems)
        n_d = max(p.documents for p in problems)
        dim = max(p.dim for p in problems)
        queries = torch.zeros(size, n_q, dim)
        documents = torch.zeros(size, n_d, dim)
        queries[:, :, 0] = 1.0  # padded rows: any unit vector (masked out everywhere)
        documents[:, :, 0] = 1.0
        relevant = torch.zeros(size, n_q, n_d, dtype=torch.bool)
        pairs = torch.zeros(size, n_q, n_d, dtype=torch.bool)
        for row, problem in enumerate(problems):
            q, d = problem.initial_vectors()
            queries[row, : problem.queries] = 0.0
            documents[row, : problem.documents] = 0.0
            queries[row, : problem.queries, : problem.dim] = q
            documents[row, : problem.documents, : problem.dim] = d
            relevant[row, : problem.queries, : problem.documents] = torch.from_numpy(problem.relevance)
            pairs[row, : problem.queries, : problem.documents] = True
        return cls(torch.arange(size), Masks.of(relevant, pairs)), queries, documents

    def keep(self, rows: torch.Tensor) -> None:
        self.index, self.masks = self.index[rows], self.masks.select(rows)


def _outcome(problem: Problem, solved: bool, reason: str, steps: int, accuracy: torch.Tensor, margin: torch.Tensor,
             loss: torch.Tensor, seconds: float, queries: torch.Tensor, documents: torch.Tensor,
             parameters: dict[str, torch.Tensor]) -> Outcome:
    """The outcome of one problem from its (padded) rows of the batch."""
    return Outcome(problem, solved, reason, steps, float(accuracy), float(margin), float(loss), seconds,
                   queries[: problem.queries, : problem.dim].detach().numpy().copy(),
                   documents[: problem.documents, : problem.dim].detach().numpy().copy(),
                   {name: float(value.detach()) for name, value in parameters.items()})


def _reached(criterion: str, accuracy: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Whether the success criterion holds for the best accuracy / margin seen."""
    return accuracy >= 1.0 if criterion == "accuracy" else margin > 0


def _margin(criterion: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The margin a criterion tracks (the row margin for "accuracy", reported alongside)."""
    return MARGINS.get(criterion, min_row_margin)


def optimise(problems: Sequence[Problem], loss: PairLoss | None = None, config: OptimiserConfig | None = None, *,
             progress: bool = True, description: str = "free embeddings") -> list[Outcome]:
    """Optimise every problem (as one batch) and return their outcomes in order."""
    if not problems:
        raise InvalidInputError("optimise: no problems given")
    config = config if config is not None else OptimiserConfig()
    with torch_threads(config.threads):
        return _optimise(problems, loss if loss is not None else InfoNCE(), config, progress, description)


def _optimise(problems: Sequence[Problem], loss: PairLoss, config: OptimiserConfig, progress: bool,
              description: str) -> list[Outcome]:
    start = time.perf_counter()
    margin_of = _margin(config.criterion)
    batch, queries, documents = _Batch.of(problems)
    extra = loss.initial_parameters(len(problems))
    names = list(extra)
    parameters = [t.requires_grad_(True) for t in (queries, documents, *extra.values())]
    adam = Adam(parameters, config.learning_rate)
    size = len(problems)
    best_loss = torch.full((size,), float("inf"))
    stale = torch.zeros(size, dtype=torch.long)
    best_accuracy = torch.zeros(size)
    best_margin = torch.full((size,), float("-inf"))
    outcomes: list[Outcome | None] = [None] * size
    bar = tqdm(total=config.max_steps, desc=description, unit="step", disable=not progress, leave=False,
               mininterval=1.0)
    for step in range(config.max_steps):
        queries, documents, *values = parameters
        current = dict(zip(names, values))
        scores = queries @ documents.transpose(1, 2)
        losses = loss(scores, batch.masks, current)
        gradients = torch.autograd.grad(losses.sum(), parameters)
        adam.step(gradients)
        with torch.no_grad():
            queries.copy_(_normalise(queries))
            documents.copy_(_normalise(documents))
            losses = losses.detach()
            improved = losses < best_loss - config.min_delta
            best_loss = torch.where(improved, losses, best_loss)
            stale = torch.where(improved, torch.zeros_like(stale), stale + 1)
            plateau = stale >= config.patience
            solved = torch.zeros_like(plateau)
            last = step == config.max_steps - 1
            if step % config.eval_every == 0 or last:
                scores = queries @ documents.transpose(1, 2)
                masks = batch.masks
                best_accuracy = torch.maximum(best_accuracy, top_k_accuracy(scores, masks.relevant, masks.pairs))
                best_margin = torch.maximum(best_margin, margin_of(scores, masks.relevant, masks.pairs))
                solved = _reached(config.criterion, best_accuracy, best_margin) & ~plateau
                bar.update(min(config.eval_every, config.max_steps - bar.n))
                bar.set_postfix(active=len(batch.index), solved=sum(o is not None and o.solved for o in outcomes),
                                loss=f"{float(losses.mean()):.4f}")
            finished = solved | plateau | last
        if not bool(finished.any()):
            continue
        for row in torch.nonzero(finished).flatten().tolist():
            reason = "solved" if solved[row] else "plateau" if plateau[row] else "max_steps"
            solo = {name: value[row] for name, value in current.items()}
            outcomes[int(batch.index[row])] = _outcome(
                problems[int(batch.index[row])], bool(_reached(config.criterion, best_accuracy[row], best_margin[row])),
                reason, step + 1, best_accuracy[row], best_margin[row], losses[row], time.perf_counter() - start,
                queries[row], documents[row], solo)
        keep = torch.nonzero(~finished).flatten()
        if keep.numel() == 0:
            break
        batch.keep(keep)
        parameters = adam.keep(keep)
        best_loss, stale = best_loss[keep], stale[keep]
        best_accuracy, best_margin = best_accuracy[keep], best_margin[keep]
    bar.close()
    return [o for o in outcomes if o is not None]
