"""The ``jpq`` retriever: JPQ as the paper builds it, a query encoder and a PQ index trained together.

Documents are encoded once by a frozen encoder (``encoder``, all-MiniLM-L6-v2 by default) and
compressed with FAISS ``OPQ{m},PQ{m}`` (the official initialisation, :class:`JPQCompressor`); with a
training split, a copy of the encoder's Transformer becomes the *query* encoder and is fine-tuned
with JPQ's ranking loss against the live PQ index, jointly with the PQ centroids
(:mod:`embedlab_jpq.encoder_training`, embedlab-train's loop). Search encodes queries with the
trained query encoder and scores the codes by lookup tables through the core ``ExactIndex``.
Controls: ``train_centroids=False`` (the encoder alone on the initial codes) and
``train_against="float"`` (the encoder trained against the uncompressed vectors, served on the codes).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np
import torch

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.components import NOT_IDENTITY, describe, fingerprint
from embedlab.dataset import Corpus, Queries, Split
from embedlab.embeddings import as_dense
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.index import ExactIndex
from embedlab.persistence import load_state
from embedlab.ranking import Ranking
from embedlab.threads import torch_threads
from embedlab.timings import Timings
from embedlab.training import TrainingData
from embedlab_jpq.compressor import JPQCompressor

logger = logging.getLogger(__name__)
_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))


def _spec(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return dict(value)
    raise ValueError(f"encoder must be a name or a table with a string 'name', got {value!r}")


def _needs_training_plugin() -> None:
    try:
        import embedlab_train  # noqa: F401
    except ImportError:
        raise ConfigError("jpq retriever: training the query encoder needs embedlab-train; "
                          "pip install 'embedlab-jpq[encoder]'") from None


@attrs.define
class _Built:
    corpus: Corpus
    compressor: JPQCompressor
    query_encoder: Any
    index: ExactIndex
    record: dict[str, Any]


class JPQRetriever(embedlab.Component):
    """JPQ (Zhan et al., CIKM 2021) as a first stage: a query encoder fine-tuned jointly with the PQ
    centroids against the live index, over documents encoded once by a frozen encoder.

    ``build(corpus)`` alone gives the FAISS OPQ + PQ index searched with the untrained encoder;
    ``build(corpus, train=split)`` (``[dataset] train_split`` in an experiment) trains first.

    >>> jpq = JPQRetriever(m=32, epochs=6)                                  # doctest: +SKIP
    >>> jpq.build(dataset.corpus, train=dataset.split("train"))             # doctest: +SKIP
    >>> ranking = jpq.search(dataset.split("test").queries, k=10)           # doctest: +SKIP
    """

    kind = "retriever"
    name = "jpq"

    @attrs.frozen(kw_only=True)
    class Config:
        """``encoder``: the frozen document encoder (a ``transformers``-family encoder, name or
        table; the query encoder starts from its weights, pooling and normalisation); ``m``,
        ``ksub``, ``opq``, ``kmeans_iterations``: the PQ (as the ``jpq`` compressor; OPQ is the
        paper's initialisation); ``train_centroids`` (off: the encoder alone on the initial codes);
        ``train_against``: ``"codes"`` (JPQ) or ``"float"`` (the control: the encoder trained against
        the uncompressed document vectors, served on the codes); ``lr``: AdamW on the encoder
        (the paper: 5e-6), ``centroid_lr``: on the centroids (the paper: 5e-6 for M <= 24, 2e-5
        for M = 32, 1e-4 for M >= 48); ``epochs`` (the paper: 6), ``batch_size`` (queries per
        step, 32), ``top_k`` (live-index negatives, 200), ``lambda_cut`` (10), ``temperature``
        (see :mod:`embedlab_jpq.loss`); ``warmup_ratio``, ``weight_decay``, ``max_grad_norm``:
        AdamW's schedule, decay (encoder only) and clipping; ``train_max_length``: query tokens
        while training (the paper: 32); ``validation_fraction``, ``holdout``, ``patience``:
        early stopping on held-out *training* queries (see the ``jpq`` compressor); ``seed``;
        ``query_backend``: how the trained query encoder runs (torch or onnx); ``num_threads``;
        ``show_progress``; ``checkpoint_dir`` ("auto": the embedlab cache, so a rerun reuses a
        finished run and resumes a killed one; a path; None: a temporary folder) and
        ``checkpoint_every`` steps."""

        encoder: Any = attrs.field(default="minilm", converter=_spec)
        m: int = attrs.field(default=16, validator=[_int, _v.ge(1)])
        ksub: int = attrs.field(default=256, validator=[_int, _v.ge(2), _v.le(65536)])
        opq: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        kmeans_iterations: int = attrs.field(default=25, validator=[_int, _v.ge(1)])
        train_centroids: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        train_against: str = attrs.field(default="codes", validator=_v.in_(("codes", "float")))
        lr: float = attrs.field(default=5e-6, validator=[_number, _v.gt(0)])
        centroid_lr: float = attrs.field(default=2e-5, validator=[_number, _v.gt(0)])
        epochs: int = attrs.field(default=6, validator=[_int, _v.ge(1)])
        batch_size: int = attrs.field(default=32, validator=[_int, _v.ge(2)])
        top_k: int = attrs.field(default=200, validator=[_int, _v.ge(1)])
        lambda_cut: int = attrs.field(default=10, validator=[_int, _v.ge(0)])
        temperature: float = attrs.field(default=0.05, validator=[_number, _v.gt(0)])
        warmup_ratio: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        weight_decay: float = attrs.field(default=0.01, validator=[_number, _v.ge(0)])
        max_grad_norm: float | None = attrs.field(default=1.0, validator=_v.optional([_number, _v.gt(0)]))
        train_max_length: int = attrs.field(default=32, validator=[_int, _v.ge(2)])
        validation_fraction: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        holdout: str = attrs.field(default="documents", validator=_v.in_(("queries", "documents")))
        patience: int = attrs.field(default=2, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        query_backend: str = attrs.field(default="torch", validator=_v.in_(("torch", "onnx")),
                                         metadata=NOT_IDENTITY)
        num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]),
                                              metadata=NOT_IDENTITY)
        show_progress: bool | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(bool)),
                                                 metadata=NOT_IDENTITY)
        checkpoint_dir: str | None = attrs.field(default="auto", converter=attrs.converters.optional(str),
                                                 metadata=NOT_IDENTITY)
        checkpoint_every: int | None = attrs.field(default=200, validator=_v.optional([_int, _v.ge(1)]),
                                                   metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if self.train_against == "float" and self.train_centroids:
                raise ValueError("train_against='float' trains the encoder against the uncompressed vectors, "
                                 "where there are no centroids to train: set train_centroids=False")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        from embedlab.pipeline import create_component

        self.document_encoder = create_component("encoder", self.config.encoder)
        settings = getattr(self.document_encoder, "config", None)
        if getattr(self.document_encoder, "model_dir", None) is None or not hasattr(settings, "pooling"):
            raise ConfigError(f"jpq retriever: encoder {self.config.encoder!r} is not a transformers encoder with "
                              "a model directory; JPQ fine-tunes the query side of one (e.g. 'minilm')")
        if settings.query_prefix or settings.document_prefix or settings.output != "dense":
            raise ConfigError("jpq retriever: the document encoder must give dense vectors without prefixes")
        self.cache: EmbeddingCache | None = None
        self.timings = Timings()
        self._built: _Built | None = None
        self._temporary: tempfile.TemporaryDirectory | None = None
        self._start: JPQCompressor | None = None

    def start_from(self, compressor: JPQCompressor) -> JPQRetriever:
        """Build from a copy of this fitted, untrained ``jpq`` compressor (same ``m``, ``ksub``,
        ``opq``) instead of fitting one on the corpus: several runs (seeds of the training, the
        controls) share one FAISS OPQ fit. It must have been fitted on this corpus's vectors."""
        config = compressor.config
        if (config.m, config.ksub, config.opq) != (self.config.m, self.config.ksub, self.config.opq):
            raise ConfigError(f"jpq retriever: the start compressor has m={config.m}, ksub={config.ksub}, "
                              f"opq={config.opq}; this retriever m={self.config.m}, ksub={self.config.ksub}, "
                              f"opq={self.config.opq}")
        if compressor.training_record.get("trained"):
            raise ConfigError("jpq retriever: start from an untrained (fitted only) compressor")
        self._start = copy.deepcopy(compressor)
        return self

    def _initial_pq(self, docs: np.ndarray) -> JPQCompressor:
        config = self.config
        if self._start is not None:
            return copy.deepcopy(self._start)
        return JPQCompressor(m=config.m, ksub=config.ksub, opq=config.opq, kmeans_iterations=config.kmeans_iterations,
                             query_adapter=False, seed=config.seed, num_threads=config.num_threads,
                             show_progress=config.show_progress).fit(docs)

    # -- pipeline protocol ------------------------------------------------------------------

    def use_cache(self, cache: EmbeddingCache | None) -> None:
        """Document vectors (and query vectors) go through this embedding cache."""
        self.cache = cache

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Encode and compress ``corpus``; with ``train``, fine-tune the query encoder jointly with
        the centroids first (Ctrl-C or an error leaves the retriever as it was)."""
        self.timings = timings = Timings()
        vectors, timings.encode_documents_s = self._encode(self.document_encoder, "documents",
                                                           corpus.content_hash, corpus.documents())
        docs = as_dense(vectors, name="jpq retriever document vectors")
        start = time.perf_counter()
        compressor = self._initial_pq(docs)
        timings.fit_compressor_s = time.perf_counter() - start
        query_encoder, record = self.document_encoder, {"trained": False}
        if train is not None:
            start = time.perf_counter()
            query_encoder, record = self._train(corpus, train, docs, compressor)
            timings.fit_encoder_s = time.perf_counter() - start
        start = time.perf_counter()
        index = ExactIndex(metric="ip")
        index.use_compressor(compressor)
        index.build(docs, corpus.attributes or None)
        timings.index_s = time.perf_counter() - start
        self._built = _Built(corpus, compressor, query_encoder, index, record)
        return timings

    def search(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        """The top ``k`` documents of each query: query encoder, then lookup-table scores of the codes."""
        built = self._state()
        vectors, self.timings.encode_queries_s = self._encode(built.query_encoder, "queries", queries.content_hash,
                                                              list(queries.texts))
        start = time.perf_counter()
        ranking = Ranking.from_search(queries.ids, built.index.search(vectors, k, filter=filter), built.corpus.ids)
        self.timings.search_s = time.perf_counter() - start
        return ranking

    # -- state --------------------------------------------------------------------------------

    def _state(self) -> _Built:
        if self._built is None:
            raise InvalidInputError("jpq retriever: call build(corpus) before search")
        return self._built

    @property
    def compressor(self) -> JPQCompressor:
        """The PQ (trained centroids after training) that the index scores with."""
        return self._state().compressor

    @property
    def query_encoder(self) -> Any:
        """The encoder of the queries: the trained one after training, else the document encoder."""
        return self._state().query_encoder

    @property
    def training_record(self) -> dict[str, Any]:
        """Losses per epoch, held-out nDCG@10 per evaluation, steps, the run directory."""
        return dict(self._state().record)

    @property
    def bytes_per_document(self) -> float:
        """Code bytes per document (the index holds the codes; centroids are shared)."""
        return float(self._state().compressor.bytes_per_vector)

    # -- encoding -----------------------------------------------------------------------------

    def _encode(self, encoder: Any, role: str, content_hash: str, texts: list[str]) -> tuple[Any, float]:
        method = encoder.encode_documents if role == "documents" else encoder.encode_queries
        if self.cache is None:
            start = time.perf_counter()
            return method(texts), time.perf_counter() - start
        cached = self.cache.get_or_compute(self.cache.key(encoder, role, content_hash), lambda: method(texts))
        self.timings.cache_hits += int(cached.hit)
        return cached.embeddings, cached.seconds

    # -- training -----------------------------------------------------------------------------

    def _train(self, corpus: Corpus, train: Split, docs: np.ndarray,
               compressor: JPQCompressor) -> tuple[Any, dict[str, Any]]:
        """Fine-tune the query encoder (and the centroids) and return the trained query encoder
        and the record; a finished run of the same identity is reused."""
        _needs_training_plugin()
        from embedlab_train.checkpoints import BEST, CHECKPOINT, FINAL, complete, run_directory
        from embedlab_transformers.model_files import weights_sha256

        config = self.config
        examples = per_query_examples(TrainingData(corpus, train))
        init = compressor.codebooks.centroids.tobytes() + (b"" if compressor.rotation is None else
                                                           compressor.rotation.tobytes())
        identity = {"retriever": fingerprint(self), "document_encoder": fingerprint(self.document_encoder),
                    "base_weights": weights_sha256(self.document_encoder.model_dir),
                    "documents": hashlib.sha256(np.ascontiguousarray(docs).tobytes()).hexdigest(),
                    "initial_pq": hashlib.sha256(init).hexdigest(), "data": examples.content_hash}
        run_hash = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        run_dir, temporary = run_directory(config.checkpoint_dir, run_hash, prefix="embedlab-jpq-")
        self._temporary = temporary or self._temporary
        final = run_dir / FINAL
        if complete(final) and load_state(final, verify=False).meta.get("run") == run_hash:
            logger.warning("jpq retriever: reusing the finished training run in %s", run_dir)
        else:
            self._run(examples, docs, compressor, run_dir, run_hash)
        for redundant in (CHECKPOINT, BEST):    # final/ holds the kept weights: drop the ~350 MB resume state
            shutil.rmtree(run_dir / redundant, ignore_errors=True)
        state = load_state(final)
        record = dict(state.meta.get("record", {}))
        if "centroids" in state.arrays:
            compressor.use_centroids(state.arrays["centroids"], record)
        settings = self.document_encoder.config
        query_encoder = embedlab.create("encoder", "transformers", model_path=str(final), pooling=settings.pooling,
                                        normalize=settings.normalize, max_length=settings.max_length,
                                        backend=config.query_backend, num_threads=config.num_threads,
                                        show_progress=bool(config.show_progress))
        return query_encoder, record

    def _run(self, examples: Any, docs: np.ndarray, compressor: JPQCompressor, run_dir: Path, run_hash: str) -> None:
        """The training run itself; writes ``run_dir/final`` (weights, centroids, record)."""
        from embedlab_train import InBatch, TrainingContext
        from embedlab_train.checkpoints import FINAL, save_model_state
        from embedlab_train.loop import RunSettings
        from embedlab_train.model import TrainableModel, check_model_dir
        from embedlab_train.validation import ValidationSet

        from embedlab_jpq.encoder_training import JPQRankingLoss, JPQTrainer
        from embedlab_jpq.torch_pq import FloatDocuments, FrozenPQ
        from embedlab_jpq.training import split_queries

        config, base = self.config, self.document_encoder.model_dir
        check_model_dir(base)
        rotation = compressor.rotation
        rotated = docs if rotation is None else np.ascontiguousarray(docs @ rotation.T)
        relevant = [sorted(examples.judged[q]) for q in examples.query.tolist()]
        with torch_threads(config.num_threads), torch.random.fork_rng(devices=[]):
            generator = torch.Generator().manual_seed(config.seed)
            train_rows, held_rows = split_queries(relevant, config.validation_fraction, config.holdout, generator)
            queries = examples.query
            model = TrainableModel(base, pooling=self.document_encoder.config.pooling,
                                   normalize=self.document_encoder.config.normalize,
                                   max_length=config.train_max_length, device=torch.device("cpu"))
            context = TrainingContext(examples.select(train_rows), model.dim, model.device, config.seed, None, model,
                                      bool(config.show_progress))
            validation = ValidationSet.build(examples, queries[held_rows], context, 0, config.seed)
            documents = FloatDocuments(rotated) if config.train_against == "float" else \
                FrozenPQ(compressor.codebooks.centroids, compressor.encode(docs))
            loss = JPQRankingLoss(documents, rotation, config.centroid_lr if config.train_centroids else None,
                                  top_k=config.top_k, lambda_cut=config.lambda_cut, temperature=config.temperature)
            settings = RunSettings(config.epochs, config.batch_size, config.lr, config.warmup_ratio,
                                   config.weight_decay, config.max_grad_norm, config.seed, config.patience, None,
                                   64, config.checkpoint_every, config.show_progress)
            trainer = JPQTrainer(model, loss, InBatch(), context, validation, settings, run_dir, describe(self),
                                 run_hash)
            progress = trainer.run()
            record = {"trained": True, "losses": progress.losses, "validation_ndcg10": progress.validation,
                      "best_evaluation": int(np.argmax(progress.validation)) if progress.validation else None,
                      "steps": progress.step, "epochs_run": progress.epoch, "stopped_early": progress.stopped,
                      "train_queries": len(train_rows), "held_out_queries": len(held_rows), "run_dir": str(run_dir),
                      "train_against": config.train_against, "train_centroids": config.train_centroids}
            arrays = {"centroids": documents.centroids.detach().numpy().copy()} \
                if isinstance(documents, FrozenPQ) else None
            save_model_state(run_dir / FINAL, model, describe(self), {"run": run_hash, "record": record},
                             arrays=arrays)


def per_query_examples(data: TrainingData) -> Any:
    """embedlab-train examples, one per judged training query (JPQ iterates over queries; each
    query's loss holds all its relevant documents, ``judged``)."""
    from embedlab_train import TrainingSet

    examples = TrainingSet.from_training_data(data)
    _, first = np.unique(examples.query, return_index=True)
    return examples.select(np.sort(first))
