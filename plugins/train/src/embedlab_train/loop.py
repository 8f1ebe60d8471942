"""The training loop: AdamW with linear warm-up and decay, gradient clipping, seeded batches and
negatives per epoch, held-out early stopping (core ``EarlyStopping``), atomic checkpoints every
``checkpoint_every`` steps that a new process resumes from to the same final weights.

Determinism: the batch order and the negatives of epoch ``e`` come from generators seeded by
``(seed, e)``, dropout from torch's global generator (seeded once, saved in every checkpoint), and
the learning rate is a function of the step, so nothing else needs saving.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import attrs
import numpy as np
import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping
from embedlab_train.checkpoints import (
    BEST,
    CHECKPOINT,
    LOSS_PARAMETERS,
    TRAINER_STATE,
    load_tensors,
    read_progress,
    restore_trainer_state,
    save_model_state,
    tensors_bytes,
    trainer_state_bytes,
)
from embedlab_train.context import TrainingContext
from embedlab_train.data import epoch_batches
from embedlab_train.losses import Batch, Loss
from embedlab_train.model import Student
from embedlab_train.negatives import NegativeSampler
from embedlab_train.validation import ValidationSet, evaluate

#: Called after every optimiser step (and after that step's checkpoint, if any).
StepCallback = Callable[["StepInfo"], None]
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@attrs.frozen
class StepInfo:
    step: int
    epoch: int
    loss: float
    total_steps: int


@attrs.define
class Progress:
    """Where training stands; saved in every checkpoint's meta."""

    epoch: int = 0
    batch: int = 0  # next batch of ``epoch``
    step: int = 0
    losses: list[float] = attrs.field(factory=list)  # mean loss of every finished epoch
    epoch_loss: float = 0.0  # sum over the batches of the current epoch
    validation: list[float] = attrs.field(factory=list)  # held-out nDCG@10: before training, then each evaluation
    stopper: dict[str, Any] = attrs.field(factory=dict)
    stopped: bool = False


@attrs.frozen
class RunSettings:
    """The loop's hyper-parameters (taken from the encoder config)."""

    epochs: int
    batch_size: int
    lr: float
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float | None
    seed: int
    patience: int
    eval_steps: int | None
    eval_batch_size: int
    checkpoint_every: int | None
    show_progress: bool | None
    #: Sharpness-Aware Minimization's radius (Foret et al., ICLR 2021); 0: plain AdamW steps.
    sam_rho: float = 0.0


def adamw(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """AdamW with the fused kernel (CPU and CUDA, torch >= 2.4; the Hugging Face Trainer's default
    ``adamw_torch_fused``); the multi-tensor one where fused is unavailable. The per-tensor loop,
    torch's CPU default, costs seconds per step on MiniLM's 30k x 384 word embeddings."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, foreach=True)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total`` (HF's "linear")."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class Trainer:
    """One training run of ``model`` on ``data`` with ``loss`` and ``sampler`` (see module docstring)."""

    def __init__(self, model: Student, loss: Loss, sampler: NegativeSampler, context: TrainingContext,
                 validation: ValidationSet | None, settings: RunSettings, run_dir: Path | None,
                 identity: Mapping[str, Any], run_hash: str, callbacks: Sequence[StepCallback] = ()) -> None:
        self.model, self.loss, self.sampler, self.context = model, loss, sampler, context
        self.validation, self.settings, self.run_dir = validation, settings, run_dir
        self.identity, self.run_hash, self.callbacks = identity, run_hash, list(callbacks)
        self.loss_parameters = loss.parameters()
        own_rates = dict(loss.learning_rates())
        unknown = sorted(set(own_rates) - set(self.loss_parameters))
        if unknown:
            raise ValueError(f"{type(loss).__name__}.learning_rates() names {unknown}, which are not among "
                             f"its parameters() {sorted(self.loss_parameters)}")
        named = [(f"model.{n}", p) for n, p in model.model.named_parameters() if p.requires_grad]
        named += [(f"loss.{n}", p) for n, p in self.loss_parameters.items() if n not in own_rates]
        decay = [(n, p) for n, p in named if n.startswith("model.") and not n.endswith(NO_DECAY)]
        rest = [(n, p) for n, p in named if not (n.startswith("model.") and not n.endswith(NO_DECAY))]
        groups = [(decay, settings.weight_decay, settings.lr), (rest, 0.0, settings.lr)]
        groups += [([(f"loss.{n}", self.loss_parameters[n])], 0.0, rate) for n, rate in own_rates.items()]
        groups = [g for g in groups if g[0]]
        self.names = [n for members, _, _ in groups for n, _ in members]
        self.optimizer = adamw([{"params": [p for _, p in members], "weight_decay": decay_rate, "base_lr": rate}
                                for members, decay_rate, rate in groups], settings.lr)
        self.batches_per_epoch = len(epoch_batches(context.data, settings.batch_size, settings.seed, 0))
        self.total_steps = settings.epochs * self.batches_per_epoch
        self.warmup = math.ceil(settings.warmup_ratio * self.total_steps)
        self.progress = Progress()

    # -- checkpoints ----------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {"run": self.run_hash, "progress": attrs.asdict(self.progress)}

    def save_checkpoint(self) -> None:
        if self.run_dir is None:
            return
        extra = {TRAINER_STATE: trainer_state_bytes(self.optimizer, self.names, self.loss_parameters)}
        rng = {"torch_rng": torch.get_rng_state().numpy()}
        save_model_state(self.run_dir / CHECKPOINT, self.model, self.identity, self._meta(), arrays=rng,
                         extra_files=extra)

    def resume(self) -> bool:
        """Load the run directory's checkpoint, if any; True when training continues from it."""
        if self.run_dir is None:
            return False
        state = read_progress(self.run_dir, self.run_hash)
        if state is None:
            return False
        try:  # a checkpoint edited or written by another version: a clear error, not a traceback
            self.model.load_weights(state.files[self.model.weights_name])
            restore_trainer_state(state.files[TRAINER_STATE], self.optimizer, self.names, self.loss_parameters)
            torch.set_rng_state(torch.from_numpy(np.array(state.arrays["torch_rng"], dtype=np.uint8)))
            self.progress = Progress(**state.value("progress", dict))
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, SafetensorError) as error:
            raise state.error(f"unusable training checkpoint ({type(error).__name__}: {str(error)[:200]}); "
                              "delete it to train from the start") from None
        return True

    def _snapshot_best(self) -> int:
        """Keep the current weights and the loss's own parameters as the best so far (on disk when
        there is a run directory)."""
        if self.run_dir is not None:
            extra = {LOSS_PARAMETERS: tensors_bytes(self.loss_parameters)} if self.loss_parameters else None
            save_model_state(self.run_dir / BEST, self.model, self.identity, {"run": self.run_hash},
                             extra_files=extra)
        else:
            self._best_memory = {k: v.detach().clone() for k, v in self.model.model.state_dict().items()}
            self._best_loss = {k: v.detach().clone() for k, v in self.loss_parameters.items()}
        return len(self.progress.validation)

    def best_weights(self) -> None:
        """Load the weights and loss parameters early stopping kept (when held-out queries exist)."""
        if self.validation is None:
            return
        if self.run_dir is not None:
            self.model.load_weights(self.run_dir / BEST / self.model.weights_name)
            if self.loss_parameters:
                load_tensors(self.run_dir / BEST / LOSS_PARAMETERS, self.loss_parameters)
        else:
            self.model.model.load_state_dict(self._best_memory)
            with torch.no_grad():
                for name, tensor in self.loss_parameters.items():
                    tensor.copy_(self._best_loss[name])

    # -- training -------------------------------------------------------------------------

    def validation_score(self) -> float:
        """Held-out nDCG@10 of the current weights (override for a model that is not a bi-encoder)."""
        assert self.validation is not None
        return evaluate(self.model, self.context.data, self.validation, self.settings.eval_batch_size)

    def _evaluate(self) -> float | None:
        if self.validation is None:
            return None
        value = self.validation_score()
        self.progress.validation.append(value)
        return value

    def _stopper(self) -> EarlyStopping:
        saved = self.progress.stopper
        stopper: EarlyStopping = EarlyStopping(saved.get("best_value"), saved.get("best_state"),
                                               self.settings.patience, mode="max")
        for field in ("best_epoch", "epoch", "stale"):
            setattr(stopper, field, saved.get(field, 0))
        return stopper

    def _record_evaluation(self) -> bool:
        """Evaluate, update early stopping; True when training should stop."""
        stopper = self._stopper()
        stop = stopper.update(self._evaluate(), self._snapshot_best)
        self.progress.stopper = {"best_value": stopper.best_value, "best_state": stopper.best_state,
                                 "best_epoch": stopper.best_epoch, "epoch": stopper.epoch, "stale": stopper.stale}
        return stop

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        """The loss of the examples ``rows`` with their hard ``negatives`` (one row per example):
        both sides embedded, then ``loss(Batch)``. A subclass overrides it to train another kind of
        model with this loop (a cross-encoder scoring (query, document) pairs)."""
        data = self.context.data
        positives = data.positive[rows]
        doc_positions = np.concatenate([positives, negatives[rows].T.reshape(-1)])
        documents = [data.documents[p] for p in doc_positions.tolist()]
        queries = self.model.embed([data.queries.texts[q] for q in data.query[rows].tolist()])
        return self.loss(Batch(queries, self.model.embed(documents), rows, doc_positions, data))

    def epoch_plan(self, epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The batches of ``epoch`` (example indices) and every example's hard negatives
        (``(n_examples, count)`` corpus positions): seeded batches without duplicate queries or
        positives (or the sampler's own, :meth:`NegativeSampler.batches`), negatives from the sampler.
        A subclass may override it; it must depend only on the seed and ``epoch``, so a resumed run
        sees the same batches."""
        settings = self.settings
        negatives = self.sampler.sample(self.context, epoch, np.random.default_rng([settings.seed, epoch, 1]))
        batches = self.sampler.batches(self.context, epoch, negatives, settings.batch_size)
        if batches is None:
            batches = epoch_batches(self.context.data, settings.batch_size, settings.seed, epoch)
        return batches, negatives

    def _step(self, rows: np.ndarray, negatives: np.ndarray) -> float:
        loss = self.batch_loss(rows, negatives)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {float(loss)} at step {self.progress.step}; "
                                     "lower lr or check the loss's parameters")
        factor = lr_factor(self.progress.step, self.total_steps, self.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.sam_rho > 0:
            self._sharpness_aware_gradients(rows, negatives)
        if self.settings.max_grad_norm:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.settings.max_grad_norm)
        self.optimizer.step()
        return float(loss.detach())

    def _sharpness_aware_gradients(self, rows: np.ndarray, negatives: np.ndarray) -> None:
        """SAM: replace the gradients by those at ``w + rho g / ||g||`` (the worst nearby weights to
        first order), so the optimiser step prefers flat minima; the weights are put back."""
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.norm(torch.stack([p.grad.detach().norm() for p in params]))
        scale = self.settings.sam_rho / (norm + 1e-12)
        with torch.no_grad():
            shifts = [p.grad * scale for p in params]
            for p, shift in zip(params, shifts):
                p.add_(shift)
        self.optimizer.zero_grad(set_to_none=True)
        self.batch_loss(rows, negatives).backward()
        with torch.no_grad():
            for p, shift in zip(params, shifts):
                p.sub_(shift)

    def run(self) -> Progress:
        """Train (resuming from the run directory's checkpoint when there is one); ends with the
        best held-out weights loaded into the model."""
        settings = self.settings
        if not self.resume():
            torch.manual_seed(settings.seed)
            if self.validation is not None:
                self._record_evaluation()  # evaluation 0: the weights before training
            self.save_checkpoint()
        progress = self.progress
        self.model.train()
        disable = None if settings.show_progress is None else not settings.show_progress
        with tqdm(total=self.total_steps, initial=progress.step, desc=f"train {type(self.loss).name}",
                  unit="step", disable=disable) as bar:
            started, pairs = time.perf_counter(), 0
            while progress.epoch < settings.epochs and not progress.stopped:
                batches, negatives = self.epoch_plan(progress.epoch)
                while progress.batch < len(batches):
                    rows = batches[progress.batch]
                    value = self._step(rows, negatives)
                    progress.batch += 1
                    progress.step += 1
                    progress.epoch_loss += value
                    pairs += len(rows)
                    elapsed = time.perf_counter() - started
                    bar.update()
                    bar.set_postfix(loss=f"{value:.4f}", pairs_per_s=f"{pairs / max(elapsed, 1e-9):.1f}")
                    evaluate_now = settings.eval_steps and progress.step % settings.eval_steps == 0 \
                        and progress.batch < len(batches)
                    if evaluate_now and self._record_evaluation():
                        progress.stopped = True
                    if settings.checkpoint_every and progress.step % settings.checkpoint_every == 0:
                        self.save_checkpoint()
                    for callback in self.callbacks:
                        callback(StepInfo(progress.step, progress.epoch, value, self.total_steps))
                    if progress.stopped:
                        break
                progress.losses.append(progress.epoch_loss / max(progress.batch, 1))
                progress.epoch, progress.batch, progress.epoch_loss = progress.epoch + 1, 0, 0.0
                if not progress.stopped and self.validation is not None and self._record_evaluation():
                    progress.stopped = True
                self.save_checkpoint()
        self.best_weights()
        self.model.eval()
        return progress
