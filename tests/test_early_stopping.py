"""embedlab.early_stopping: best state kept, tolerance, patience, both directions, no held-out data."""

from __future__ import annotations

import pytest

from embedlab.early_stopping import EarlyStopping


def run(values, **params):  # type: ignore[no-untyped-def]
    """Feed ``values`` (epochs 1..n) with the epoch number as state; return the stopper and the
    epochs actually run."""
    stopper = EarlyStopping(params.pop("initial", 1.0), 0, **params)
    ran = 0
    for epoch, value in enumerate(values, start=1):
        ran = epoch
        if stopper.update(value, lambda e=epoch: e):
            break
    return stopper, ran


def test_keeps_the_best_epoch_and_stops_after_patience_epochs_without_one() -> None:
    stopper, ran = run([0.9, 0.8, 0.85, 0.81, 0.7, 0.75], patience=2)
    assert (stopper.best_epoch, stopper.best_state, stopper.best_value, ran) == (2, 2, 0.8, 4)


def test_a_loop_that_never_improves_returns_its_start() -> None:
    stopper, ran = run([1.0, 1.2, 1.1], patience=5)
    assert (stopper.best_epoch, stopper.best_state, ran) == (0, 0, 3)


def test_improvements_within_tol_do_not_count() -> None:
    stopper, _ = run([0.99995, 0.9], patience=3, tol=1e-4)
    assert stopper.best_epoch == 2 and stopper.stale == 0
    stopper, ran = run([0.99995, 0.99990], patience=2, tol=1e-4)
    assert (stopper.best_epoch, ran) == (0, 2)


def test_max_mode_and_no_held_out_data() -> None:
    stopper, _ = run([0.2, 0.5, 0.4], initial=0.3, mode="max", patience=3)
    assert stopper.best_epoch == 2
    stopper, ran = run([None, None, None], initial=None, patience=1)
    assert (stopper.best_epoch, ran) == (3, 3)  # nothing to compare: the last epoch is kept


def test_configuration_is_validated() -> None:
    for params in ({"patience": 0}, {"tol": -1.0}, {"mode": "up"}):
        with pytest.raises((ValueError, TypeError)):
            EarlyStopping(1.0, None, **params)
