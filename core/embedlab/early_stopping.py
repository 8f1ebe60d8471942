"""Early stopping for training loops: keep the best epoch's state, stop after ``patience`` epochs
without improvement.

Framework-free (the state is whatever the caller snapshots: torch tensors, numpy arrays, a dict).
Epoch 0 is the state before training, so a loop that never improves returns its starting point::

    stopper = EarlyStopping(held_out_loss(), snapshot(), patience=3, tol=1e-4)
    for epoch in range(epochs):
        ...                                              # one pass over the training data
        if stopper.update(held_out_loss(), snapshot):
            break
    best = stopper.best_state                            # and stopper.best_epoch
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

import attrs

S = TypeVar("S")


@attrs.define
class EarlyStopping(Generic[S]):
    """Tracks the best held-out ``value`` (lowest with ``mode="min"``, highest with ``"max"``); an
    epoch counts as better only when it beats the best by more than ``tol``. A ``value`` of None
    (nothing held out) counts as better, so the last epoch's state is kept."""

    best_value: float | None
    best_state: S
    patience: int = attrs.field(default=3, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    tol: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    mode: str = attrs.field(default="min", validator=attrs.validators.in_(("min", "max")))
    best_epoch: int = 0
    epoch: int = 0
    stale: int = 0

    def improves(self, value: float | None) -> bool:
        """Whether ``value`` would become the new best."""
        if value is None or self.best_value is None:
            return True
        if self.mode == "min":
            return value < self.best_value - self.tol
        return value > self.best_value + self.tol

    def update(self, value: float | None, snapshot: Callable[[], S]) -> bool:
        """Record the next epoch's held-out ``value``; ``snapshot()`` is called only when it is the
        new best. Returns True when training should stop (``patience`` epochs without a new best)."""
        self.epoch += 1
        if self.improves(value):
            self.best_value, self.best_state, self.best_epoch, self.stale = value, snapshot(), self.epoch, 0
            return False
        self.stale += 1
        return self.stale >= self.patience
