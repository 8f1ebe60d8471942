"""``yesno``: Qwen3-VL-Reranker's yes/no cross-encoder built from a BERT-style encoder
(all-MiniLM-L6-v2 by default), trained by SFT on a judged split with hard negatives from the first
stage, reranking any first stage's top ``k``."""

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
from embedlab_train import TrainingContext, TrainingSet
from embedlab_train.checkpoints import FINAL, complete, save_model_state
from embedlab_train.context import Candidates, first_stage_spec
from embedlab_train.loop import RunSettings, StepCallback
from embedlab_train.losses import positive_number
from embedlab_train.model import WEIGHTS, check_model_dir, model_files, resolve_device
from embedlab_transformers.backends import make_backend
from embedlab_transformers.batching import Tokenized, length_sorted_batches, padding_values
from embedlab_transformers.config_fields import (
    backend_field,
    flag_field,
    int_at_least,
    model_path_field,
    progress_field,
    threads_field,
)
from embedlab_transformers.model_files import import_transformers, resolve_model_dir, weight_files, weights_sha256
from tqdm.auto import tqdm

from embedlab.cache import EmbeddingCache, default_cache_dir
from embedlab.components import NOT_IDENTITY, Component, describe, fingerprint
from embedlab.dataset import Corpus, Queries
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.ranking import Ranking
from embedlab.rerank import document_positions, query_texts, reorder
from embedlab.texts import check_texts
from embedlab.threads import torch_threads
from embedlab.training import TrainingData, holdout_split
from embedlab_qwen3.cross_encoder import OBJECTIVES, YesNoModel
from embedlab_qwen3.prompt import DEFAULT_INSTRUCTION, PairTokenizer, answer_positions
from embedlab_qwen3.sft import GivenCandidates, RerankValidation, SFTTrainer, YesNoSFT, candidates_from_ranking

logger = logging.getLogger(__name__)
_v = attrs.validators
_optional_int = _v.optional(int_at_least(1))
#: Pairs tokenised at once while reranking (bounds memory).
CHUNK_PAIRS = 2048


def _fraction(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


class YesNoReranker(Component):
    """Score = ``logit(yes) - logit(no)`` of the masked-LM decoder at the answer slot after
    ``<Instruct> <Query> <Document>`` (``output = "probability"``: its sigmoid, report eq. 5).

    Untrained it is the base encoder read at the answer slot (little better than chance);
    ``fit_queries`` (a pipeline's ``[dataset] train_split``) or :meth:`train` fine-tunes it by SFT on
    the answer token: judged pairs answer "yes", hard negatives from the first stage's ranking of the
    training queries answer "no". Any installed reranker consumer can use it: cascades, GIST's
    reranker guide, LG-ANNA's teacher (with ``k`` at least the candidates per query)."""

    kind = "reranker"
    name = "yesno"

    @attrs.frozen(kw_only=True)
    class Config:
        """Reranking: ``model_path`` (None: all-MiniLM-L6-v2; or a saved/trained ``yesno`` state),
        ``instruction``, ``max_length`` (tokens per pair), ``max_query_length``, ``k``,
        ``keep_tail``, ``output`` (``logit`` or ``probability``), ``batch_size``, ``backend``
        (torch/onnx), ``num_threads``, ``show_progress``. Training (SFT): ``objective``
        (``vocabulary``: cross-entropy over the whole vocabulary, the paper's LM loss; ``yes-no``:
        over the two answer tokens), ``epochs``, ``train_batch_size`` (positives per step, each with
        its ``negatives``), ``negatives``, ``negative_start`` / ``negative_depth`` (first-stage ranks
        negatives are drawn from, judged documents skipped), ``sampling`` (``uniform`` anew each
        epoch, or ``top``), ``first_stage`` (mines candidates when no pipeline ranking is given),
        ``lr``, ``warmup_ratio``, ``weight_decay``, ``max_grad_norm``, ``train_max_length``,
        ``min_grade``, ``seed``, ``validation_fraction`` of the training queries held out,
        ``validation_depth`` candidates of each reranked for early stopping, ``patience``,
        ``eval_steps``, ``device``, ``checkpoint_dir`` ("auto": the embedlab cache, so a rerun
        reuses a finished run and resumes a killed one), ``checkpoint_every``."""

        model_path: str | None = model_path_field()
        instruction: str = attrs.field(default=DEFAULT_INSTRUCTION, validator=_v.instance_of(str))
        max_length: int = attrs.field(default=256, validator=int_at_least(8))
        max_query_length: int = attrs.field(default=64, validator=int_at_least(1))
        k: int = attrs.field(default=100, validator=int_at_least(1))
        keep_tail: bool = flag_field(True)
        output: str = attrs.field(default="logit", validator=_v.in_(("logit", "probability")))
        batch_size: int = attrs.field(default=32, validator=int_at_least(1))
        backend: str = backend_field()
        num_threads: int | None = threads_field()
        show_progress: bool = progress_field()
        objective: str = attrs.field(default="vocabulary", validator=_v.in_(OBJECTIVES))
        epochs: int = attrs.field(default=1, validator=int_at_least(1))
        train_batch_size: int = attrs.field(default=8, validator=int_at_least(1))
        negatives: int = attrs.field(default=3, validator=int_at_least(1))
        negative_start: int = attrs.field(default=0, validator=int_at_least(0))
        negative_depth: int = attrs.field(default=30, validator=int_at_least(1))
        sampling: str = attrs.field(default="uniform", validator=_v.in_(("top", "uniform")))
        first_stage: Any = attrs.field(default="minilm", converter=first_stage_spec)
        lr: float = attrs.field(default=3e-5, validator=positive_number)
        warmup_ratio: float = attrs.field(default=0.1, validator=_fraction)
        weight_decay: float = attrs.field(default=0.01, validator=[_v.instance_of((int, float)), _v.ge(0)])
        max_grad_norm: float | None = attrs.field(default=1.0, validator=_v.optional(positive_number))
        train_max_length: int | None = attrs.field(default=None, validator=_v.optional(int_at_least(8)))
        min_grade: int = attrs.field(default=1, validator=int_at_least(1))
        seed: int = attrs.field(default=0, validator=int_at_least(0))
        validation_fraction: float = attrs.field(default=0.1, validator=_fraction)
        validation_depth: int = attrs.field(default=20, validator=int_at_least(2))
        patience: int = attrs.field(default=2, validator=int_at_least(1))
        eval_steps: int | None = attrs.field(default=None, validator=_optional_int)
        device: str = attrs.field(default="cpu", validator=_v.instance_of(str), metadata=NOT_IDENTITY)
        checkpoint_dir: str | None = attrs.field(default="auto", converter=attrs.converters.optional(str),
                                                 metadata=NOT_IDENTITY)
        checkpoint_every: int | None = attrs.field(default=200, validator=_optional_int, metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if self.negative_start >= self.negative_depth:
                raise ValueError(f"negative_start ({self.negative_start}) must be below negative_depth "
                                 f"({self.negative_depth})")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.base_dir = resolve_model_dir(self.config.model_path)
        self.model_dir = self.base_dir
        self.record: dict[str, Any] = {}
        self._weights_sha256: str | None = None
        self._loaded: tuple[Any, PairTokenizer, np.ndarray] | None = None
        self._temporary: tempfile.TemporaryDirectory | None = None

    # -- identity ---------------------------------------------------------------------------

    @property
    def state_fingerprint(self) -> str | None:
        """sha256 of the trained weights (None before training)."""
        return self._weights_sha256

    @property
    def trained(self) -> bool:
        return self._weights_sha256 is not None

    # -- scoring ----------------------------------------------------------------------------

    def _load(self) -> tuple[Any, PairTokenizer, np.ndarray]:
        """Backend, pair tokenizer and the ``(2, dim)`` yes/no rows of the tied decoder."""
        if self._loaded is None:
            transformers = import_transformers()
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            pairs = PairTokenizer(tokenizer, self.config.instruction, self.config.max_length,
                                  self.config.max_query_length)
            rows = answer_rows(self.model_dir, pairs.answer_ids())
            backend = make_backend(self.config.backend, self.model_dir, tokenizer, self.config.max_length,
                                   self.config.num_threads)
            self._loaded = (backend, pairs, rows)
        return self._loaded

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """float64 scores of (query, document) pairs: ``logit(yes) - logit(no)`` or its sigmoid."""
        queries = check_texts(queries, f"{self.name} queries")
        documents = check_texts(documents, f"{self.name} documents")
        backend, pairs, rows = self._load()
        pad = padding_values(pairs.tokenizer)
        direction = (rows[0] - rows[1]).astype(np.float64)
        out = np.empty(len(queries), dtype=np.float64)
        batches = -(-len(queries) // self.config.batch_size)
        with tqdm(total=batches, desc=f"{self.name} pairs", unit="batch",
                  disable=not self.config.show_progress or batches <= 1) as bar:
            for start in range(0, len(queries), CHUNK_PAIRS):
                ids = pairs.encode(queries[start:start + CHUNK_PAIRS], documents[start:start + CHUNK_PAIRS])
                tokens = Tokenized({"input_ids": ids, "token_type_ids": [[0] * len(s) for s in ids]}, [])
                for batch_rows, inputs in length_sorted_batches(tokens, backend.input_names, pad,
                                                                self.config.batch_size):
                    hidden = backend(inputs)
                    slots = answer_positions(inputs["attention_mask"].sum(1))
                    states = hidden[np.arange(len(batch_rows)), slots].astype(np.float64)
                    out[start + batch_rows] = states @ direction
                    bar.update()
        return 1.0 / (1.0 + np.exp(-out)) if self.config.output == "probability" else out

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        k = min(self.config.k, ranking.k)
        if len(ranking) == 0 or k == 0:
            return ranking
        positions = document_positions(ranking.doc_ids[:, :k], corpus, self.name)
        texts = query_texts(ranking, queries, self.name)
        documents = corpus.documents()
        rows, columns = np.nonzero(positions >= 0)
        flat = self.score_pairs([texts[r] for r in rows.tolist()],
                                [documents[p] for p in positions[rows, columns].tolist()])
        scores = np.full(positions.shape, -np.inf)
        scores[rows, columns] = flat
        return reorder(ranking, scores, keep_tail=self.config.keep_tail)

    # -- training ---------------------------------------------------------------------------

    def fit_queries(self, data: TrainingData) -> YesNoReranker:
        """Pipeline training: SFT on the training split's judged pairs, negatives from the first
        stage's ranking of the training queries the pipeline hands over."""
        training = TrainingSet.from_training_data(data, self.config.min_grade)
        given = None if data.first_stage is None else candidates_from_ranking(data.first_stage, training)
        return self.train(training, candidates=given)

    def run_identity(self, data: TrainingSet, candidates: Candidates | None) -> dict[str, Any]:
        """What the trained weights depend on: config, base weights, examples and candidates."""
        source: Any = dict(self.config.first_stage)
        if candidates is not None:
            source = hashlib.sha256(np.ascontiguousarray(candidates.positions).tobytes()).hexdigest()
        return {"reranker": fingerprint(self), "base_weights": weights_sha256(self.base_dir),
                "data": data.content_hash, "candidates": source}

    def train(self, data: TrainingSet, *, candidates: Candidates | None = None,
              callbacks: Sequence[StepCallback] = (), cache: EmbeddingCache | None = None) -> YesNoReranker:
        """SFT from the base weights on ``data``; ``candidates``: first-stage rankings of its
        queries (None: mined with ``first_stage``). Ctrl-C or an error leaves the reranker as it was."""
        config = self.config
        check_model_dir(self.base_dir)
        device = resolve_device(config.device)
        run_hash = hashlib.sha256(json.dumps(self.run_identity(data, candidates), sort_keys=True).encode()).hexdigest()
        run_dir = self._run_dir(run_hash)
        final = run_dir / FINAL
        if complete(final) and load_state(final, verify=False).meta.get("run") == run_hash:
            logger.warning("yesno: reusing the finished training run in %s", run_dir)
            self._adopt(final)
            return self
        with torch_threads(config.num_threads), torch.random.fork_rng(devices=[]):
            model = YesNoModel(self.base_dir, instruction=config.instruction,
                               max_length=config.train_max_length or config.max_length,
                               max_query_length=config.max_query_length, device=device)
            trainer = self._trainer(model, data, candidates, run_dir, run_hash, callbacks, cache or EmbeddingCache())
            progress = trainer.run()
            record = {"losses": progress.losses, "validation_ndcg10": progress.validation, "steps": progress.step,
                      "epochs_run": progress.epoch, "stopped_early": progress.stopped, "examples": len(data),
                      "train_examples": len(trainer.context.data), "run_dir": str(run_dir),
                      "held_out_queries": 0 if trainer.validation is None else len(trainer.validation.queries)}
            save_model_state(final, model, describe(self), {"run": run_hash, "record": record})
        self._adopt(final)
        return self

    def _trainer(self, model: YesNoModel, data: TrainingSet, candidates: Candidates | None, run_dir: Path,
                 run_hash: str, callbacks: Sequence[StepCallback], cache: EmbeddingCache) -> SFTTrainer:
        config = self.config
        queries = sorted(set(data.query.tolist()))
        order = torch.randperm(len(queries), generator=torch.Generator().manual_seed(config.seed)).numpy()
        train_rows, held_rows = (order, order[:0]) if config.validation_fraction == 0 else \
            holdout_split(order, config.validation_fraction)
        context = TrainingContext(data.for_queries([queries[i] for i in train_rows]), model.dim, model.device,
                                  config.seed, cache, model, bool(config.show_progress))
        depth = max(config.negative_depth, config.validation_depth)  # mined once for both uses
        sampler = GivenCandidates(candidates, first_stage=config.first_stage, count=config.negatives,
                                  start=config.negative_start, depth=depth, sampling=config.sampling)
        sampler.prepare(context)
        held = np.asarray([queries[i] for i in held_rows] if not set(held_rows) >= set(train_rows) else [],
                          dtype=np.int64)
        assert sampler._candidates is not None
        validation = RerankValidation.build(held, sampler._candidates, config.validation_depth)
        sampler._candidates = Candidates(sampler._candidates.positions[:, :config.negative_depth],
                                         sampler._candidates.scores[:, :config.negative_depth])
        settings = RunSettings(config.epochs, config.train_batch_size, config.lr, config.warmup_ratio,
                               config.weight_decay, config.max_grad_norm, config.seed, config.patience,
                               config.eval_steps, config.batch_size, config.checkpoint_every, config.show_progress)
        return SFTTrainer(model, YesNoSFT(objective=config.objective), sampler, context, validation, settings,
                          run_dir if config.checkpoint_dir is not None else None, describe(self), run_hash, callbacks)

    def _run_dir(self, run_hash: str) -> Path:
        directory = self.config.checkpoint_dir
        if directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="embedlab-yesno-")
            return Path(self._temporary.name)
        if directory == "auto":
            return default_cache_dir().expanduser() / "train" / run_hash[:32]
        return Path(directory).expanduser()

    def _adopt(self, model_dir: Path) -> None:
        """Score with the weights in ``model_dir`` from now on."""
        state = load_state(model_dir)
        self.model_dir = Path(model_dir).resolve()
        self._loaded = None
        self._weights_sha256 = weights_sha256(self.model_dir)
        self.record = state.value("record", dict, default={})

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Config and (trained) weights as one state directory, which is also a model directory."""
        files = {**model_files(self.model_dir), WEIGHTS: (self.model_dir / WEIGHTS).read_bytes()}
        save_state(path, self, files=files, meta={"record": self.record, "trained": self.trained})

    @classmethod
    def load(cls, path: str | Path) -> YesNoReranker:
        """Read a reranker written by :meth:`save` (files checked against their sha256)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        if WEIGHTS not in state.files or "config.json" not in state.files:
            raise StateError(f"{path}: {WEIGHTS} or config.json missing from the yesno state")
        reranker = state.build(cls, checkpoint_dir=None)
        reranker._adopt(Path(path))
        if not state.value("trained", bool, default=True):
            reranker._weights_sha256 = None
        return reranker


def answer_rows(model_dir: Path, ids: tuple[int, int]) -> np.ndarray:
    """``(2, dim)`` rows of the word embeddings (the tied decoder) for the answer tokens, read
    from the safetensors weights without loading the model."""
    from safetensors import safe_open

    for file in weight_files(model_dir):
        with safe_open(str(file), framework="np") as weights:
            key = next((k for k in weights.keys() if k.endswith("word_embeddings.weight")), None)
            if key is not None:
                table = weights.get_slice(key)
                return np.stack([np.asarray(table[i:i + 1])[0] for i in ids])
    raise ConfigError(f"{model_dir}: no word-embedding matrix (*word_embeddings.weight) in the weights; the yes/no "
                      "reranker reads its answer tokens' rows (a BERT-style encoder)")


__all__ = ["YesNoReranker", "answer_rows"]
