"""The loop's extension points: per-parameter learning rates of a loss, loss parameters kept with the
best held-out weights, and the hooks a subclass overrides (batch_loss, validation_score, epoch_plan)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_train import InBatch, InfoNCE, TrainingContext, TrainingSet
from embedlab_train.loop import RunSettings, Trainer
from embedlab_train.model import TrainableModel
from embedlab_train.validation import ValidationSet

from embedlab.training import TrainingData


class ScaledInfoNCE(InfoNCE):
    """InfoNCE with a learnable logit scale that trains at its own learning rate."""

    name = "scaled-infonce-test"

    def __init__(self, rate: float = 0.05) -> None:
        super().__init__()
        self.scale = torch.tensor(1.0, requires_grad=True)
        self.rate = rate

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"scale": self.scale}

    def learning_rates(self) -> dict[str, float]:
        return {"scale": self.rate}

    def logits(self, batch):  # type: ignore[no-untyped-def]
        return super().logits(batch) * self.scale


def make_trainer(tiny_model, dataset, loss, *, trainer_class=Trainer, held=(), run_dir=None, epochs=1,
                 lr=1e-3, patience=2):
    torch.manual_seed(0)
    model = TrainableModel(tiny_model, pooling="mean", normalize=True, max_length=32, device=torch.device("cpu"))
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    context = TrainingContext(data, model.dim, model.device, 0, None, model)
    validation = ValidationSet.build(data, np.asarray(held, dtype=np.int64), context, 8, 0)
    settings = RunSettings(epochs, 8, lr, 0.0, 0.0, 1.0, 0, patience, None, 16, None, False)
    return trainer_class(model, loss, InBatch(), context, validation, settings, run_dir, {"test": True}, "run")


def model_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.model.state_dict().items()}


def test_a_loss_parameter_trains_at_its_own_learning_rate(tiny_model, dataset):
    loss = ScaledInfoNCE(rate=0.05)
    trainer = make_trainer(tiny_model, dataset, loss, lr=1e-3)
    groups = trainer.optimizer.param_groups
    own = [g for g in groups if any(p is loss.scale for p in g["params"])]
    assert len(own) == 1 and own[0]["params"] == [loss.scale] and own[0]["base_lr"] == 0.05
    assert own[0]["weight_decay"] == 0.0 and all(g["base_lr"] == 1e-3 for g in groups if g is not own[0])
    before = model_weights(trainer)
    seen: list[tuple[float, float]] = []

    def after_step(info):
        if info.step == 1:
            moved = max(float((v - before[k]).abs().max()) for k, v in model_weights(trainer).items()
                        if v.dtype.is_floating_point)
            seen.append((abs(float(loss.scale.detach()) - 1.0), moved))

    trainer.callbacks.append(after_step)
    trainer.run()
    step_scale, step_model = seen[0]
    # Adam's first step moves every parameter by its learning rate (warm-up 0, decay factor 1 at step 0)
    assert step_scale == pytest.approx(0.05, rel=1e-3)
    assert step_model == pytest.approx(1e-3, rel=1e-2)


def test_learning_rates_must_name_parameters_of_the_loss(tiny_model, dataset):
    loss = ScaledInfoNCE()
    loss.learning_rates = lambda: {"nope": 0.1}  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"names \['nope'\], which are not among its parameters"):
        make_trainer(tiny_model, dataset, loss)


class WorseEveryEvaluation(Trainer):
    """Held-out scores that only fall: early stopping keeps evaluation 0 (the start)."""

    def validation_score(self) -> float:
        return 1.0 / (1 + len(self.progress.validation))


@pytest.mark.parametrize("on_disk", [False, True])
def test_early_stopping_restores_the_loss_parameters_with_the_weights(tiny_model, dataset, tmp_path, on_disk):
    loss = ScaledInfoNCE(rate=0.05)
    trainer = make_trainer(tiny_model, dataset, loss, trainer_class=WorseEveryEvaluation, held=[0, 1, 2],
                           run_dir=tmp_path / "run" if on_disk else None, epochs=3, patience=1)
    start = model_weights(trainer)
    progress = trainer.run()
    assert progress.stopped and progress.validation == [1.0, 0.5]
    assert float(loss.scale.detach()) == 1.0                     # the start's value, not the trained one
    assert all(torch.equal(v, start[k]) for k, v in model_weights(trainer).items())
    if on_disk:
        assert (tmp_path / "run" / "best" / "loss.safetensors").is_file()


class Planned(Trainer):
    """Batches given by the test; records what the loop hands batch_loss."""

    plan = [np.array([3, 0]), np.array([5]), np.array([1, 2, 4])]

    def epoch_plan(self, epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        negatives = np.full((len(self.context.data), 1), 7 + epoch, dtype=np.int64)
        return self.plan, negatives

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        self.seen.append((rows.tolist(), negatives[rows, 0].tolist()))
        return super().batch_loss(rows, negatives)


def test_epoch_plan_and_batch_loss_are_what_the_loop_uses(tiny_model, dataset):
    trainer = make_trainer(tiny_model, dataset, InfoNCE(), trainer_class=Planned, epochs=2)
    trainer.seen = []
    progress = trainer.run()
    expected = [(b.tolist(), [7 + e] * len(b)) for e in range(2) for b in Planned.plan]
    assert trainer.seen == expected and progress.step == 6


class Reversed(InBatch):
    """A sampler that composes the batches: the examples in reverse order, two at a time."""

    def batches(self, context, epoch, negatives, batch_size):  # type: ignore[no-untyped-def]
        order = np.arange(len(context.data))[::-1]
        return [order[i:i + 2] for i in range(0, len(order), 2)]


def test_a_sampler_that_composes_batches_is_followed(tiny_model, dataset):
    trainer = make_trainer(tiny_model, dataset, InfoNCE())
    trainer.sampler = Reversed()
    batches, negatives = trainer.epoch_plan(0)
    n = len(trainer.context.data)
    assert [b.tolist() for b in batches] == [list(range(n - 1, -1, -1))[i:i + 2] for i in range(0, n, 2)]
    assert negatives.shape == (n, 0)
    default, _ = make_trainer(tiny_model, dataset, InfoNCE()).epoch_plan(0)
    assert sorted(np.concatenate(default).tolist()) == list(range(n)) and len(default[0]) == 8
