"""The harness: train a CTR model with a given embedding table, select on validation, evaluate.

:class:`TableRun` holds the data splits (as tensors), the schema the tables are built for (vocabulary
sizes and the *training* split's frequencies), the model and training configs and a seed. Methods
receive it in ``fit`` and call :meth:`TableRun.train` once or several times (multi-stage methods:
warm-up, search, retrain) and :meth:`TableRun.evaluate` (searches that score candidates on the
validation split).

Training follows the benchmark's code: Adam for the network, lazy (sparse) Adam for tables looked
up row-wise, validation AUC checked ``evals_per_epoch`` times per epoch, the best state kept and
restored (the core's :class:`embedlab.early_stopping.EarlyStopping`, check 0 = before training), and
training stops after ``patience`` checks without improvement.
"""

from __future__ import annotations

import time
from typing import Callable

import attrs
import numpy as np
import torch
from scipy.special import expit

from embedlab.components import NOT_IDENTITY
from embedlab.early_stopping import EarlyStopping
from embedlab.errors import InvalidInputError
from embedlab.threads import torch_threads
from embedlab_tables.data import CTRData
from embedlab_tables.metrics import auc, log_loss
from embedlab_tables.models import CTRModel, ModelConfig
from embedlab_tables.schema import TableSchema
from embedlab_tables.table import EmbeddingTable

_v = attrs.validators


@attrs.frozen
class TrainConfig:
    """``epochs`` (at most), ``batch_size``, Adam ``lr``, validation checks per epoch, ``patience``
    (checks without a better validation AUC before stopping)."""

    epochs: int = attrs.field(default=2, validator=[_v.instance_of(int), _v.ge(1)])
    batch_size: int = attrs.field(default=1024, validator=[_v.instance_of(int), _v.ge(1)])
    lr: float = attrs.field(default=1e-3, converter=float, validator=_v.gt(0))
    evals_per_epoch: int = attrs.field(default=2, validator=[_v.instance_of(int), _v.ge(1)])
    patience: int = attrs.field(default=2, validator=[_v.instance_of(int), _v.ge(1)])
    eval_batch_size: int = attrs.field(default=16384, validator=[_v.instance_of(int), _v.ge(1)])
    num_threads: int | None = attrs.field(default=1, metadata=NOT_IDENTITY,
                                          validator=_v.optional([_v.instance_of(int), _v.ge(1)]))
    progress: bool = attrs.field(default=False, metadata=NOT_IDENTITY, validator=_v.instance_of(bool))


@attrs.frozen
class Scores:
    auc: float
    logloss: float
    seconds: float
    rows: int


@attrs.frozen
class TrainLog:
    """What one :meth:`TableRun.train` call did."""

    steps: int
    checks: int
    best_check: int
    best_valid_auc: float
    seconds: float
    history: tuple[tuple[int, float], ...]


@attrs.frozen(eq=False)
class Split:
    """One split as tensors: global ids, dense features, labels."""

    ids: torch.Tensor
    dense: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def to_split(data: CTRData, schema: TableSchema) -> Split:
    if tuple(data.vocab_sizes) != tuple(schema.vocab_sizes):
        raise InvalidInputError("every split must share the training split's vocabularies")
    ids = torch.from_numpy(data.categorical + schema.offsets[:-1])
    return Split(ids, torch.from_numpy(data.dense), torch.from_numpy(data.labels))


StepHook = Callable[[int], None]


class TableRun:
    """Data, schema, model and training settings shared by the methods of one comparison."""

    def __init__(self, train: CTRData, valid: CTRData, test: CTRData | None = None, *,
                 model: ModelConfig | None = None, training: TrainConfig | None = None, seed: int = 0) -> None:
        self.model_config = model or ModelConfig()
        self.training = training or TrainConfig()
        self.seed = int(seed)
        self.schema = TableSchema.from_counts(train.counts(), self.model_config.dim, train.field_names)
        self.n_dense = train.n_dense
        if valid.n_dense != self.n_dense or (test is not None and test.n_dense != self.n_dense):
            raise InvalidInputError("every split must have the same dense features")
        self.splits = {"train": to_split(train, self.schema), "valid": to_split(valid, self.schema)}
        if test is not None:
            self.splits["test"] = to_split(test, self.schema)

    # -- models ------------------------------------------------------------------------------------
    def new_model(self, table: EmbeddingTable, seed_offset: int = 0) -> CTRModel:
        """A CTR model around ``table`` with seeded network weights."""
        return CTRModel(table, self.n_dense, self.model_config, self.seed * 1000 + 7 + seed_offset)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise InvalidInputError(f"no split {name!r}; splits: {', '.join(self.splits)}")
        return self.splits[name]

    # -- prediction --------------------------------------------------------------------------------
    def predict(self, model: CTRModel, split: str = "valid") -> np.ndarray:
        """Logits of every row of ``split`` (model in eval mode)."""
        data = self.split(split)
        step = self.training.eval_batch_size
        was_training = model.training
        model.eval()
        out = []
        with torch_threads(self.training.num_threads), torch.no_grad():
            for start in range(0, len(data), step):
                out.append(model(data.ids[start:start + step], data.dense[start:start + step]))
        model.train(was_training)
        return torch.cat(out).numpy().astype(np.float64)

    def evaluate(self, model: CTRModel, split: str = "valid") -> Scores:
        start = time.perf_counter()
        logits = self.predict(model, split)
        seconds = time.perf_counter() - start
        labels = self.split(split).labels.numpy()
        return Scores(auc(labels, logits), log_loss(labels, expit(logits)), seconds, len(labels))

    # -- training ----------------------------------------------------------------------------------
    def train(self, model: CTRModel, *, epochs: int | None = None, step_hook: StepHook | None = None,
              label: str = "train", lr: float | None = None, table_lr: float | None = None) -> TrainLog:
        """Train ``model`` in place on the training split, keep the state with the best validation
        AUC (among states the table reports as :meth:`ready`), restore it and return the log."""
        cfg = self.training
        epochs = cfg.epochs if epochs is None else epochs
        data = self.split("train")
        start = time.perf_counter()
        with torch_threads(cfg.num_threads):
            optimizers = self._optimizers(model, cfg.lr if lr is None else lr, table_lr)
            steps_per_epoch = max(1, -(-len(data) // cfg.batch_size))
            check_every = max(1, steps_per_epoch // cfg.evals_per_epoch)
            ready = getattr(model.table, "ready", lambda: True)
            initial = self._valid_auc(model) if ready() else None
            stopper = EarlyStopping(initial, _snapshot(model), patience=cfg.patience, mode="max")
            history: list[tuple[int, float]] = []
            step = 0
            bar = progress_bar(epochs * steps_per_epoch, label, cfg.progress)
            loss_fn = torch.nn.BCEWithLogitsLoss()
            stop = False
            for epoch in range(epochs):
                order = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
                for first in range(0, len(data), cfg.batch_size):
                    rows = order[first:first + cfg.batch_size]
                    model.train()
                    logits = model(data.ids[rows], data.dense[rows])
                    loss = loss_fn(logits, data.labels[rows])
                    penalty = model.table.penalty()
                    if penalty is not None:
                        loss = loss + penalty
                    for optimizer in optimizers:
                        optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    for optimizer in optimizers:
                        optimizer.step()
                    step += 1
                    model.table.after_step(step)
                    if step_hook is not None:
                        step_hook(step)
                    bar.update(1)
                    last = first + cfg.batch_size >= len(data)
                    if step % check_every == 0 or last:
                        if not ready():
                            continue
                        value = self._valid_auc(model)
                        history.append((step, value))
                        bar.set_postfix(valid_auc=f"{value:.4f}")
                        if stopper.update(value, lambda: _snapshot(model)):
                            stop = True
                            break
                if stop:
                    break
            bar.close()
            if history or initial is not None:  # never ready: keep the last state (finalize() follows)
                model.load_state_dict(stopper.best_state)
        best = stopper.best_value if stopper.best_value is not None else float("nan")
        return TrainLog(step, len(history), stopper.best_epoch, float(best), time.perf_counter() - start,
                        tuple(history))

    def _valid_auc(self, model: CTRModel) -> float:
        return self.evaluate(model, "valid").auc

    def _optimizers(self, model: CTRModel, lr: float, table_lr: float | None) -> list[torch.optim.Optimizer]:
        table = model.table
        special = table.optimizer_groups()
        special_ids = {id(p) for group in special for p in group.params}
        sparse = [p for p in table.sparse_parameters() if id(p) not in special_ids]
        sparse_ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids | special_ids]
        table_dense = {id(p) for p in table.parameters()}
        net = [p for p in dense if id(p) not in table_dense]
        tab = [p for p in dense if id(p) in table_dense]
        optimizers: list[torch.optim.Optimizer] = []
        groups = [{"params": net, "lr": lr}] if net else []
        if tab:
            groups.append({"params": tab, "lr": table_lr or lr})
        if groups:
            optimizers.append(torch.optim.Adam(groups))
        if sparse:
            optimizers.append(torch.optim.SparseAdam(sparse, lr=table_lr or lr))
        for group in special:
            if group.kind == "sgd":
                optimizers.append(torch.optim.SGD(group.params, lr=group.lr, weight_decay=group.weight_decay))
            elif group.kind == "adam":
                optimizers.append(torch.optim.Adam(group.params, lr=group.lr, weight_decay=group.weight_decay))
        return optimizers


def _snapshot(model: CTRModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **_: object) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, label: str, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="step", leave=False)
