"""The ``finetune`` encoder: a transformers encoder (all-MiniLM-L6-v2 by default) whose weights are
trained with a contrastive loss on judged queries, then encodes like any ``transformers`` encoder
(torch or ONNX backend) with the trained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
from embedlab_transformers.config_fields import int_at_least, model_path_field
from embedlab_transformers.encoder import EncoderSettings, TransformersEncoder
from embedlab_transformers.model_files import model_max_length, weights_sha256

from embedlab.errors import StateError
from embedlab.persistence import load_state, save_state
from embedlab_train.data import TrainingSet
from embedlab_train.model import WEIGHTS, TrainableModel, check_model_dir, model_files
from embedlab_train.settings import TrainingSettings
from embedlab_train.student import Trained, TrainsStudent

_v = attrs.validators


class FineTunedEncoder(TrainsStudent, TransformersEncoder):
    """A transformers encoder fine-tuned with a contrastive loss (``LearnsFromQueries``).

    Untrained it encodes exactly like ``transformers`` with the same ``model_path`` (all-MiniLM-L6-v2
    by default). ``fit_queries`` (``[dataset] train_split`` in an experiment) or :meth:`train` runs
    the loop of :mod:`embedlab_train.loop`; afterwards the encoder uses the trained weights, with the
    torch or the ONNX backend. ``loss``, ``negatives`` and ``filters`` name components of the kinds
    ``loss``, ``negatives`` and ``pair-filter`` (any installed plugin's).
    """

    name = "finetune"

    @attrs.frozen(kw_only=True)
    class Config(EncoderSettings, TrainingSettings):
        """Encoder settings (as ``transformers``), the training settings of
        :class:`embedlab_train.settings.TrainingSettings`, ``train_max_length`` (tokens while
        training, None: ``max_length``) and ``train_queries`` (train on a seeded sample of that many
        of the training split's queries, None: all of them; held-out queries come from the sample)."""

        model_path: str | None = model_path_field()
        max_length: int | None = attrs.field(default=256, validator=_v.optional(int_at_least(1)))
        train_max_length: int | None = attrs.field(default=None, validator=_v.optional(int_at_least(2)))
        train_queries: int | None = attrs.field(default=None, validator=_v.optional(int_at_least(2)))

        def __attrs_post_init__(self) -> None:
            if self.output != "dense":
                raise ValueError("finetune trains pooled sentence embeddings: output must be 'dense'")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.setup_training()
        self.base_dir = self.model_dir

    def train(self, data: TrainingSet, **options: Any) -> FineTunedEncoder:
        """:meth:`TrainsStudent.train` on ``data``, or on the ``train_queries`` sample of it."""
        return super().train(data.sample_queries(self.config.train_queries, self.config.seed), **options)

    # -- the student ----------------------------------------------------------------------

    def base_identity(self) -> dict[str, Any]:
        check_model_dir(self.base_dir)
        return {"base_weights": weights_sha256(self.base_dir)}

    def build_student(self, device: torch.device) -> TrainableModel:
        config = self.config
        model = TrainableModel(self.base_dir, pooling=config.pooling, normalize=config.normalize, max_length=2,
                               device=device)
        model.max_length = config.train_max_length or config.max_length or \
            model_max_length(self.base_dir, model.model.config, model.tokenizer)
        return model

    def adopt(self, directory: Path) -> Trained:
        """Encode with the trained weights in ``directory`` from now on."""
        state = load_state(directory, kind=self.kind, name=self.name)
        self.model_dir = directory.resolve()
        self._model = None
        return Trained(self.model_dir, weights_sha256(self.model_dir), state.value("record", dict, default={}))

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
        encoder = state.build(cls, checkpoint_dir=None)
        if WEIGHTS not in state.files or "config.json" not in state.files:
            raise StateError(f"{path}: {WEIGHTS} or config.json missing from the finetune state")
        encoder._trained = encoder.adopt(Path(path))
        return encoder
