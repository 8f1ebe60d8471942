"""The training parameters every trainable encoder of embedlab-train shares (``finetune``,
``frozen-head`` and plugins' students): the loss, sampler and filters, the optimiser and schedule,
early stopping on held-out training queries, device and checkpoints."""

from __future__ import annotations

from typing import Any

import attrs
from embedlab_transformers.config_fields import int_at_least

from embedlab.components import NOT_IDENTITY
from embedlab_train.components import component_spec, filter_specs
from embedlab_train.loop import RunSettings
from embedlab_train.losses import positive_number

_v = attrs.validators
_optional_int = _v.optional(int_at_least(1))


def fraction(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Validator: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def non_negative(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Validator: a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")


def _checkpoint_dir(value: Any) -> str | None:
    return None if value is None else str(value)


# slots=False: a mixin next to another slotted attrs base (EncoderSettings) in a Config class.
@attrs.frozen(kw_only=True, slots=False)
class TrainingSettings:
    """``loss``, ``negatives`` (a name or ``{name = ..., ...}``), ``filters`` (a list of those);
    ``epochs``; ``train_batch_size`` (queries per step); ``lr``, ``warmup_ratio``,
    ``weight_decay``, ``max_grad_norm`` (AdamW, linear schedule, clipping; None: no clipping);
    ``min_grade``: qrels grade that makes a positive; ``seed``; ``validation_fraction`` of the
    training queries held out for early stopping (0: none), ``validation_pool`` random documents
    they are ranked among (plus their positives and the first stages' top 20), ``patience``
    evaluations without gain, ``eval_steps`` (evaluate every N steps too; None: once per epoch);
    ``device`` (cpu, cuda, auto); ``checkpoint_dir`` ("auto": a folder of the embedlab cache named
    by the run's identity, so a rerun reuses a finished run and resumes a killed one; None: a
    temporary folder, no resuming) and ``checkpoint_every`` steps."""

    loss: Any = attrs.field(default="infonce", converter=lambda v: component_spec(v, "loss"))
    negatives: Any = attrs.field(default="in-batch", converter=lambda v: component_spec(v, "negatives"))
    filters: tuple[Any, ...] = attrs.field(default=(), converter=filter_specs)
    epochs: int = attrs.field(default=1, validator=int_at_least(1))
    train_batch_size: int = attrs.field(default=32, validator=int_at_least(2))
    lr: float = attrs.field(default=2e-5, validator=positive_number)
    warmup_ratio: float = attrs.field(default=0.1, validator=fraction)
    weight_decay: float = attrs.field(default=0.01, validator=non_negative)
    max_grad_norm: float | None = attrs.field(default=1.0, validator=_v.optional(positive_number))
    min_grade: int = attrs.field(default=1, validator=int_at_least(1))
    seed: int = attrs.field(default=0, validator=int_at_least(0))
    validation_fraction: float = attrs.field(default=0.1, validator=fraction)
    validation_pool: int = attrs.field(default=1000, validator=int_at_least(0))
    patience: int = attrs.field(default=2, validator=int_at_least(1))
    eval_steps: int | None = attrs.field(default=None, validator=_optional_int)
    device: str = attrs.field(default="cpu", validator=_v.instance_of(str), metadata=NOT_IDENTITY)
    checkpoint_dir: str | None = attrs.field(default="auto", converter=_checkpoint_dir, metadata=NOT_IDENTITY)
    checkpoint_every: int | None = attrs.field(default=200, validator=_optional_int, metadata=NOT_IDENTITY)


def run_settings(config: Any) -> RunSettings:
    """The loop's settings from a config with :class:`TrainingSettings` (and ``batch_size``,
    ``show_progress`` of the encoder: the held-out evaluation's batch and the progress bar)."""
    return RunSettings(config.epochs, config.train_batch_size, config.lr, config.warmup_ratio, config.weight_decay,
                       config.max_grad_norm, config.seed, config.patience, config.eval_steps, config.batch_size,
                       config.checkpoint_every, config.show_progress)
