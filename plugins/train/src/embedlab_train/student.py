"""What every trainable encoder of embedlab-train shares: building its loss, sampler and filters,
the identity and directory of a training run, reusing a finished run, and the run itself (held-out
training queries, pair filters, the loop, the final state).

An encoder mixes in :class:`TrainsStudent` and implements three hooks:

* :meth:`TrainsStudent.build_student` - the module being trained (a :class:`embedlab_train.model.Student`);
* :meth:`TrainsStudent.base_identity` - what the student starts from (base weights' sha256, a seed...);
* :meth:`TrainsStudent.adopt` - encode with the trained state of a run directory from now on.

``finetune`` trains the whole transformer; ``frozen-head`` (:mod:`embedlab_train.heads`) trains a
pooling head over a frozen encoder's cached hidden states; plugins train their own students (a
recurrent encoder from scratch in embedlab-cart) through the same loop, checkpoints and early stopping.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch

from embedlab.cache import EmbeddingCache
from embedlab.components import describe, fingerprint
from embedlab.errors import ConfigError
from embedlab.persistence import load_state, save_state
from embedlab.threads import torch_threads
from embedlab.training import TrainingData, holdout_split
from embedlab_train.checkpoints import FINAL, complete, run_directory
from embedlab_train.components import create
from embedlab_train.context import TrainingContext
from embedlab_train.data import TrainingSet
from embedlab_train.loop import StepCallback, Trainer
from embedlab_train.model import Student, resolve_device
from embedlab_train.settings import run_settings
from embedlab_train.validation import ValidationSet

logger = logging.getLogger(__name__)


@attrs.frozen
class Trained:
    """A trained state: the directory holding it, the sha256 of its weights, what training recorded."""

    directory: Path
    weights_sha256: str
    record: dict[str, Any]


class TrainsStudent:
    """Mixin for a ``Component`` whose ``Config`` has :class:`embedlab_train.settings.TrainingSettings`
    (plus ``num_threads``, ``batch_size`` and ``show_progress``). Call :meth:`setup_training` from
    ``__init__``."""

    name: str
    config: Any
    _trained: Trained | None
    _temporary: tempfile.TemporaryDirectory | None

    def setup_training(self) -> None:
        """Build the ``loss``, ``negatives`` and ``filters`` components named by the config."""
        config = self.config
        try:
            self.loss = create("loss", config.loss)
            self.negatives = create("negatives", config.negatives)
            self.filters = [create("pair-filter", spec) for spec in config.filters]
        except (ConfigError, TypeError) as error:
            raise ConfigError(f"{self.name}: {error}") from error
        self._trained = None
        self._temporary = None

    # -- hooks ------------------------------------------------------------------------------

    def build_student(self, device: torch.device) -> Student:
        """The freshly initialised module to train (seeded: called with torch's RNG seeded by ``seed``)."""
        raise NotImplementedError

    def base_identity(self) -> dict[str, Any]:
        """What the student's initial state depends on besides the config (e.g. base weights' sha256)."""
        raise NotImplementedError

    def adopt(self, directory: Path) -> Trained:
        """Encode with the trained state saved in ``directory`` from now on; return it as :class:`Trained`."""
        raise NotImplementedError

    def prepare_student(self, student: Student, data: TrainingSet) -> None:
        """Called before training with the training set (e.g. precompute cached features). Default: nothing."""

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
        distributions' versions), the base state and the training data."""
        return {"encoder": fingerprint(self), "loss": fingerprint(self.loss), "negatives": fingerprint(self.negatives),
                "filters": [fingerprint(f) for f in self.filters], **self.base_identity(), "data": data.content_hash}

    # -- training -------------------------------------------------------------------------

    def fit_queries(self, data: TrainingData) -> Any:
        """Pipeline training on a judged split: one example per (query, document judged >=
        ``min_grade``). Ctrl-C or an error leaves the encoder as it was (and the run's last
        checkpoint on disk)."""
        return self.train(TrainingSet.from_training_data(data, self.config.min_grade))

    def train(self, data: TrainingSet, *, callbacks: Sequence[StepCallback] = (),
              cache: EmbeddingCache | None = None) -> Any:
        """Train from the initial state on ``data``; ``callbacks`` are called after every step with
        a :class:`embedlab_train.loop.StepInfo`; ``cache`` stores the first stages' encodings for
        mining (default: the embedlab cache). A finished run of the same identity is reused."""
        config = self.config
        device = resolve_device(config.device)
        identity = self.run_identity(data)
        run_hash = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        run_dir = self._run_dir(run_hash)
        final = run_dir / FINAL
        if complete(final) and load_state(final, verify=False).meta.get("run") == run_hash:
            logger.warning("%s: reusing the finished training run in %s", self.name, run_dir)
            self._trained = self.adopt(final)
            return self
        with torch_threads(config.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            student = self.build_student(device)
            self.prepare_student(student, data)
            progress, trainer = self._run(student, data, run_dir, run_hash, callbacks, cache or EmbeddingCache())
            record = {"losses": progress.losses, "validation_ndcg10": progress.validation,
                      "steps": progress.step, "epochs_run": progress.epoch, "stopped_early": progress.stopped,
                      "examples": len(data), "train_examples": len(trainer.context.data),
                      "held_out_queries": 0 if trainer.validation is None else len(trainer.validation.queries),
                      "run_dir": str(run_dir)}
            save_state(final, None, files=student.state_files(), meta={"run": run_hash, "record": record},
                       identity=describe(self))
        self._trained = self.adopt(final)
        return self

    def _run(self, student: Student, data: TrainingSet, run_dir: Path, run_hash: str,
             callbacks: Sequence[StepCallback], cache: EmbeddingCache) -> Any:
        config = self.config
        queries = sorted(set(data.query.tolist()))
        order = torch.randperm(len(queries), generator=torch.Generator().manual_seed(config.seed)).numpy()
        train_rows, held_rows = (order, order[:0]) if config.validation_fraction == 0 else \
            holdout_split(order, config.validation_fraction)
        train_set = data.for_queries([queries[i] for i in train_rows])
        context = TrainingContext(train_set, student.dim, student.device, config.seed, cache, student,
                                  bool(config.show_progress))
        for pair_filter in self.filters:
            keep = pair_filter.keep(context)
            context.data = context.data.select(keep)
            logger.info("%s: filter %s kept %d of %d examples", self.name, pair_filter.name, int(keep.sum()),
                        len(keep))
        if not len(context.data):
            raise ConfigError(f"{self.name}: the filters left no training example")
        self.negatives.prepare(context)
        self.loss.prepare(context)
        held = [queries[i] for i in held_rows] if not set(held_rows) >= set(train_rows) else []
        validation = ValidationSet.build(data, np.asarray(held, dtype=np.int64), context, config.validation_pool,
                                         config.seed)
        trainer = Trainer(student, self.loss, self.negatives, context, validation, run_settings(config),
                          run_dir if config.checkpoint_dir is not None else None, describe(self), run_hash, callbacks)
        return trainer.run(), trainer

    def _run_dir(self, run_hash: str) -> Path:
        directory, temporary = run_directory(self.config.checkpoint_dir, run_hash)
        self._temporary = temporary or self._temporary
        return directory
