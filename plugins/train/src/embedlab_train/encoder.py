"""The ``finetune`` encoder: a transformers encoder (all-MiniLM-L6-v2 by default) whose weights are
trained with a contrastive loss on judged queries, then encodes like any ``transformers`` encoder
(torch or ONNX backend) with the trained weights."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Sequence

import attrs
import torch
from embedlab_transformers.config_fields import int_at_least, model_path_field
from embedlab_transformers.encoder import EncoderSettings, TransformersEncoder
from embedlab_transformers.model_files import model_max_length, weights_sha256

from embedlab.cache import EmbeddingCache
from embedlab.components import NOT_IDENTITY, describe, fingerprint
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.threads import torch_threads
from embedlab.training import TrainingData, holdout_split
from embedlab_train.checkpoints import FINAL, complete, run_directory, save_model_state
from embedlab_train.components import component_spec, create, filter_specs
from embedlab_train.context import TrainingContext
from embedlab_train.data import TrainingSet
from embedlab_train.loop import RunSettings, StepCallback, Trainer
from embedlab_train.losses import positive_number
from embedlab_train.model import WEIGHTS, TrainableModel, check_model_dir, model_files, resolve_device
from embedlab_train.validation import ValidationSet

logger = logging.getLogger(__name__)
_v = attrs.validators
_optional_int = _v.optional(int_at_least(1))


def _fraction(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def _non_negative(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")


def _checkpoint_dir(value: Any) -> str | None:
    return None if value is None else str(value)


@attrs.frozen
class Trained:
    """A trained state: the model directory holding it and what training recorded."""

    model_dir: Path
    weights_sha256: str
    record: dict[str, Any]


class FineTunedEncoder(TransformersEncoder):
    """A transformers encoder fine-tuned with a contrastive loss (``LearnsFromQueries``).

    Untrained it encodes exactly like ``transformers`` with the same ``model_path`` (all-MiniLM-L6-v2
    by default). ``fit_queries`` (``[dataset] train_split`` in an experiment) or :meth:`train` runs
    the loop of :mod:`embedlab_train.loop`; afterwards the encoder uses the trained weights, with the
    torch or the ONNX backend. ``loss``, ``negatives`` and ``filters`` name components of the kinds
    ``loss``, ``negatives`` and ``pair-filter`` (any installed plugin's).
    """

    name = "finetune"

    @attrs.frozen(kw_only=True)
    class Config(EncoderSettings):
        """Encoder settings (as ``transformers``) plus training: ``loss``, ``negatives`` (a name or
        ``{name = ..., ...}``), ``filters`` (a list of those); ``epochs``; ``train_batch_size``
        (queries per step); ``lr``, ``warmup_ratio``, ``weight_decay``, ``max_grad_norm`` (AdamW,
        linear schedule, clipping; None: no clipping); ``train_max_length`` (tokens while training,
        None: ``max_length``); ``min_grade``: qrels grade that makes a positive; ``seed``;
        ``validation_fraction`` of the training queries held out for early stopping (0: none),
        ``validation_pool`` random documents they are ranked among (plus their positives and the
        first stages' top 20), ``patience`` evaluations without gain, ``eval_steps`` (evaluate
        every N steps too; None: once per epoch); ``device`` (cpu, cuda, auto);
        ``checkpoint_dir`` ("auto": a folder of the embedlab cache named by the run's identity, so a
        rerun reuses a finished run and resumes a killed one; None: a temporary folder, no
        resuming) and ``checkpoint_every`` steps."""

        model_path: str | None = model_path_field()
        max_length: int | None = attrs.field(default=256, validator=_optional_int)
        loss: Any = attrs.field(default="infonce", converter=lambda v: component_spec(v, "loss"))
        negatives: Any = attrs.field(default="in-batch", converter=lambda v: component_spec(v, "negatives"))
        filters: tuple[Any, ...] = attrs.field(default=(), converter=filter_specs)
        epochs: int = attrs.field(default=1, validator=int_at_least(1))
        train_batch_size: int = attrs.field(default=32, validator=int_at_least(2))
        lr: float = attrs.field(default=2e-5, validator=positive_number)
        warmup_ratio: float = attrs.field(default=0.1, validator=_fraction)
        weight_decay: float = attrs.field(default=0.01, validator=_non_negative)
        max_grad_norm: float | None = attrs.field(default=1.0, validator=_v.optional(positive_number))
        train_max_length: int | None = attrs.field(default=None, validator=_v.optional(int_at_least(2)))
        min_grade: int = attrs.field(default=1, validator=int_at_least(1))
        seed: int = attrs.field(default=0, validator=int_at_least(0))
        validation_fraction: float = attrs.field(default=0.1, validator=_fraction)
        validation_pool: int = attrs.field(default=1000, validator=int_at_least(0))
        patience: int = attrs.field(default=2, validator=int_at_least(1))
        eval_steps: int | None = attrs.field(default=None, validator=_optional_int)
        device: str = attrs.field(default="cpu", validator=_v.instance_of(str), metadata=NOT_IDENTITY)
        checkpoint_dir: str | None = attrs.field(default="auto", converter=_checkpoint_dir, metadata=NOT_IDENTITY)
        checkpoint_every: int | None = attrs.field(default=200, validator=_optional_int, metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if self.output != "dense":
                raise ValueError("finetune trains pooled sentence embeddings: output must be 'dense'")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        config = self.config
        try:
            self.loss = create("loss", config.loss)
            self.negatives = create("negatives", config.negatives)
            self.filters = [create("pair-filter", spec) for spec in config.filters]
        except (ConfigError, TypeError) as error:
            raise ConfigError(f"{self.name}: {error}") from error
        self.base_dir = self.model_dir
        self._trained: Trained | None = None
        self._temporary: tempfile.TemporaryDirectory | None = None

    # -- identity -------------------------------------------------------------------------

    @property
    def state_fingerprint(self) -> str | None:
        """sha256 of the trained weights (None before training): part of the fingerprint, hence of
        embedding cache keys, so vectors of different trained weights never mix."""
        return None if self._trained is None else self._trained.weights_sha256

    @property
    def trained(self) -> bool:
        return self._trained is not None

    @property
    def training_record(self) -> dict[str, Any]:
        """Losses per epoch, held-out nDCG@10 per evaluation, steps, examples, the run directory."""
        return {} if self._trained is None else dict(self._trained.record)

    def run_identity(self, data: TrainingSet) -> dict[str, Any]:
        """Everything the trained weights depend on: configs (encoder and each component, with their
        distributions' versions), the base weights and the training data."""
        return {"encoder": fingerprint(self), "loss": fingerprint(self.loss), "negatives": fingerprint(self.negatives),
                "filters": [fingerprint(f) for f in self.filters], "base_weights": weights_sha256(self.base_dir),
                "data": data.content_hash}

    # -- training -------------------------------------------------------------------------

    def fit_queries(self, data: TrainingData) -> FineTunedEncoder:
        """Pipeline training on a judged split: one example per (query, document judged >=
        ``min_grade``). Ctrl-C or an error leaves the encoder as it was (and the run's last
        checkpoint on disk)."""
        return self.train(TrainingSet.from_training_data(data, self.config.min_grade))

    def train(self, data: TrainingSet, *, callbacks: Sequence[StepCallback] = (),
              cache: EmbeddingCache | None = None) -> FineTunedEncoder:
        """Train from the base weights on ``data``; ``callbacks`` are called after every step with
        a :class:`embedlab_train.loop.StepInfo`; ``cache`` stores the first stages' encodings for
        mining (default: the embedlab cache)."""
        config = self.config
        check_model_dir(self.base_dir)
        device = resolve_device(config.device)
        identity = self.run_identity(data)
        run_hash = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        run_dir = self._run_dir(run_hash)
        final = run_dir / FINAL
        if complete(final) and load_state(final, verify=False).meta.get("run") == run_hash:
            logger.warning("finetune: reusing the finished training run in %s", run_dir)
            self._adopt(final)
            return self
        with torch_threads(config.num_threads), torch.random.fork_rng(devices=[]):
            model = TrainableModel(self.base_dir, pooling=config.pooling, normalize=config.normalize,
                                   max_length=2, device=device)
            model.max_length = config.train_max_length or config.max_length or \
                model_max_length(self.base_dir, model.model.config, model.tokenizer)
            progress, trainer = self._run(model, data, run_dir, run_hash, callbacks, cache or EmbeddingCache())
            record = {"losses": progress.losses, "validation_ndcg10": progress.validation,
                      "steps": progress.step, "epochs_run": progress.epoch, "stopped_early": progress.stopped,
                      "examples": len(data), "train_examples": len(trainer.context.data),
                      "held_out_queries": 0 if trainer.validation is None else len(trainer.validation.queries),
                      "run_dir": str(run_dir)}
            save_model_state(final, model, describe(self), {"run": run_hash, "record": record})
        self._adopt(final)
        return self

    def _run(self, model: TrainableModel, data: TrainingSet, run_dir: Path, run_hash: str,
             callbacks: Sequence[StepCallback], cache: EmbeddingCache) -> Any:
        config = self.config
        queries = sorted(set(data.query.tolist()))
        order = torch.randperm(len(queries), generator=torch.Generator().manual_seed(config.seed)).numpy()
        train_rows, held_rows = (order, order[:0]) if config.validation_fraction == 0 else \
            holdout_split(order, config.validation_fraction)
        train_set = data.for_queries([queries[i] for i in train_rows])
        context = TrainingContext(train_set, model.dim, model.device, config.seed, cache, model,
                                  bool(config.show_progress))
        for pair_filter in self.filters:
            keep = pair_filter.keep(context)
            context.data = context.data.select(keep)
            logger.info("finetune: filter %s kept %d of %d examples", pair_filter.name, int(keep.sum()), len(keep))
        if not len(context.data):
            raise ConfigError(f"{self.name}: the filters left no training example")
        self.negatives.prepare(context)
        self.loss.prepare(context)
        held = [queries[i] for i in held_rows] if not set(held_rows) >= set(train_rows) else []
        validation = ValidationSet.build(data, _array(held), context, config.validation_pool, config.seed)
        settings = RunSettings(config.epochs, config.train_batch_size, config.lr, config.warmup_ratio,
                               config.weight_decay, config.max_grad_norm, config.seed, config.patience,
                               config.eval_steps, config.batch_size, config.checkpoint_every, config.show_progress)
        trainer = Trainer(model, self.loss, self.negatives, context, validation, settings,
                          run_dir if config.checkpoint_dir is not None else None, describe(self), run_hash, callbacks)
        return trainer.run(), trainer

    def _run_dir(self, run_hash: str) -> Path:
        directory, temporary = run_directory(self.config.checkpoint_dir, run_hash)
        self._temporary = temporary or self._temporary
        return directory

    def _adopt(self, model_dir: Path) -> None:
        """Encode with the trained weights in ``model_dir`` from now on."""
        state = load_state(model_dir, kind=self.kind, name=self.name)
        self.model_dir = model_dir.resolve()
        self._model = None
        self._trained = Trained(self.model_dir, weights_sha256(self.model_dir), dict(state.meta.get("record", {})))

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """The config, the (trained) weights and the model files as one state directory, which is
        also a model directory that ``transformers`` / sentence-transformers read."""
        directory = self.model_dir
        files = {**model_files(directory), WEIGHTS: (directory / WEIGHTS).read_bytes()}
        save_state(path, self, files=files, meta={"record": self.training_record, "trained": self.trained})

    @classmethod
    def load(cls, path: str | Path) -> FineTunedEncoder:
        """Read an encoder written by :meth:`save` (or a run's checkpoint, best or final folder);
        files are checked against their sha256."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        try:
            encoder = cls(**{**state.config, "checkpoint_dir": None})
        except ConfigError as error:
            raise StateError(f"{path}: saved config is invalid here: {error}") from None
        if WEIGHTS not in state.files or "config.json" not in state.files:
            raise StateError(f"{path}: {WEIGHTS} or config.json missing from the finetune state")
        encoder._adopt(Path(path))
        return encoder


def _array(values: list[int]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.int64)
