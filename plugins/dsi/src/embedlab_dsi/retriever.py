"""The ``dsi`` retriever: a Differentiable Search Index (Tay et al., 2022) as an embedlab first stage.

``build(corpus, train)`` gives every document an id (semantic, naive or atomic, :mod:`embedlab_dsi.docids`),
then trains one seq2seq model on two tasks at once: *indexing* (the start of a document's text ->
its id) and *retrieval* (a training query -> the id of a relevant document). ``search`` decodes
each query with beam search constrained to valid ids (:mod:`embedlab_dsi.trie`); the ranking is
the beam's documents by log-probability. There is no vector index: the model is the index.

Subclasses change what the model is taught by overriding :meth:`DSIRetriever.indexing_groups`
(SE-DSI's rehearsal contents) or :meth:`DSIRetriever.make_docids`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import numpy as np
import torch

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.components import NOT_IDENTITY, describe, fingerprint
from embedlab.dataset import Corpus, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError, StateError
from embedlab.ids import as_ids
from embedlab.persistence import load_state, save_state
from embedlab.ranking import Ranking
from embedlab.threads import torch_threads
from embedlab.timings import Timings
from embedlab.training import TrainingData, holdout_split
from embedlab_dsi.docids import SCHEMES, Docids, make_docids
from embedlab_dsi.model import SETTINGS, WEIGHTS, DecoderShape, DSIModel, TokenMemory, weights_bytes
from embedlab_dsi.training import DocidCrossEntropy, DSITrainer, Examples, HitsValidation, decode
from embedlab_dsi.trie import DocidTrie

logger = logging.getLogger(__name__)
_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))
#: ``(kind, texts, corpus positions)``: one group of training examples.
Group = tuple[str, Sequence[str], Sequence[int]]


def _spec(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, Mapping) and isinstance(value.get("name"), str)):
        return value if isinstance(value, str) else dict(value)
    raise ValueError(f"id_encoder must be an encoder name or a table with a string 'name', got {value!r}")


@attrs.define
class _Built:
    doc_ids: np.ndarray
    docids: Docids
    trie: DocidTrie
    model: DSIModel
    record: dict[str, Any]


class DSIRetriever(embedlab.Component):
    """DSI as a first stage (see the module docstring).

    >>> dsi = DSIRetriever(docids="semantic", epochs=30)                    # doctest: +SKIP
    >>> dsi.build(dataset.corpus, train=dataset.split("train"))             # doctest: +SKIP
    >>> ranking = dsi.search(dataset.split("test").queries, k=10)           # doctest: +SKIP
    """

    kind = "retriever"
    name = "dsi"
    #: Sharpness-Aware Minimization's radius in training (0: plain AdamW; DSI++ sets it).
    sam_rho = 0.0

    @attrs.frozen(kw_only=True)
    class Config:
        """``docids``: ``"semantic"`` (hierarchical k-means over ``id_encoder``'s document vectors,
        ``k`` clusters per level, leaves of at most ``c`` documents), ``"naive"`` (the position in
        base ``base``) or ``"atomic"`` (one token per document); ``model_path``: the frozen encoder
        whose token states the decoder reads (None: all-MiniLM-L6-v2 from its wheel),
        ``max_length``: its tokens per text (the indexing input is a document's first
        ``max_length`` tokens), ``memory_tokens``: the token states are averaged over at most this
        many contiguous runs per text (0: every token; fewer make training cheaper); ``layers``,
        ``heads``, ``feedforward``, ``dropout``: the decoder;
        ``queries``: train the retrieval task on the training split's queries (off: indexing only);
        ``epochs``, ``batch_size``, ``lr``, ``warmup_ratio``, ``weight_decay``, ``max_grad_norm``:
        embedlab-train's AdamW loop; ``validation_fraction`` of the training queries is held out
        and decoded after every epoch (Hits@10) for early stopping with ``patience``;
        ``beam_size``: the beam (a ranking holds at most this many documents); ``seed``;
        ``num_threads``, ``show_progress``, ``batch_size_decode``; ``checkpoint_dir`` ("auto": the
        embedlab cache, so a rerun reuses a finished run and resumes a killed one; a path; None: a
        temporary folder) and ``checkpoint_every`` steps."""

        docids: str = attrs.field(default="semantic", validator=_v.in_(SCHEMES))
        id_encoder: Any = attrs.field(default="minilm", converter=_spec)
        k: int = attrs.field(default=10, validator=[_int, _v.ge(2)])
        c: int = attrs.field(default=100, validator=[_int, _v.ge(1)])
        base: int = attrs.field(default=10, validator=[_int, _v.ge(2)])
        model_path: str | None = attrs.field(default=None, converter=attrs.converters.optional(str))
        max_length: int = attrs.field(default=64, validator=[_int, _v.ge(4)])
        memory_tokens: int = attrs.field(default=8, validator=[_int, _v.ge(0)])
        layers: int = attrs.field(default=2, validator=[_int, _v.ge(1)])
        heads: int = attrs.field(default=6, validator=[_int, _v.ge(1)])
        feedforward: int = attrs.field(default=768, validator=[_int, _v.ge(1)])
        dropout: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        queries: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        epochs: int = attrs.field(default=30, validator=[_int, _v.ge(1)])
        batch_size: int = attrs.field(default=64, validator=[_int, _v.ge(1)])
        lr: float = attrs.field(default=1e-3, validator=[_number, _v.gt(0)])
        warmup_ratio: float = attrs.field(default=0.05, validator=[_number, _v.ge(0), _v.lt(1)])
        weight_decay: float = attrs.field(default=0.01, validator=[_number, _v.ge(0)])
        max_grad_norm: float | None = attrs.field(default=1.0, validator=_v.optional([_number, _v.gt(0)]))
        validation_fraction: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        patience: int = attrs.field(default=5, validator=[_int, _v.ge(1)])
        beam_size: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]),
                                              metadata=NOT_IDENTITY)
        show_progress: bool | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(bool)),
                                                 metadata=NOT_IDENTITY)
        batch_size_decode: int = attrs.field(default=32, validator=[_int, _v.ge(1)], metadata=NOT_IDENTITY)
        checkpoint_dir: str | None = attrs.field(default="auto", converter=attrs.converters.optional(str),
                                                 metadata=NOT_IDENTITY)
        checkpoint_every: int | None = attrs.field(default=500, validator=_v.optional([_int, _v.ge(1)]),
                                                   metadata=NOT_IDENTITY)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.cache: EmbeddingCache | None = None
        self.timings = Timings()
        self._built: _Built | None = None
        self._encoder: Any = None
        self._temporary: tempfile.TemporaryDirectory | None = None

    # -- what the model is taught (override points) ---------------------------------------------

    def make_docids(self, corpus: Corpus) -> Docids:
        """The ids of ``corpus``'s documents (vectors from ``id_encoder`` for semantic ids)."""
        config = self.config
        vectors = None
        if config.docids == "semantic":
            from embedlab.pipeline import create_component

            encoder = create_component("encoder", config.id_encoder)
            vectors, self.timings.encode_documents_s = self._encode_documents(encoder, corpus)
        return make_docids(config.docids, len(corpus), vectors, k=config.k, c=config.c, base=config.base,
                           seed=config.seed)

    def indexing_groups(self, corpus: Corpus) -> list[Group]:
        """The indexing task's examples: each document's text (the encoder reads its first
        ``max_length`` tokens) -> its id."""
        return [("index", corpus.documents(), range(len(corpus)))]

    # -- pipeline protocol --------------------------------------------------------------------

    def use_cache(self, cache: EmbeddingCache | None) -> None:
        """Document vectors for semantic ids go through this embedding cache."""
        self.cache = cache

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Assign ids, then train (or reuse a finished run of the same identity) the model that
        maps texts to them; ``train`` adds the retrieval task (Ctrl-C leaves the retriever as it was)."""
        if len(corpus) == 0:
            raise InvalidInputError("dsi retriever: the corpus is empty")
        self.timings = timings = Timings()
        start = time.perf_counter()
        docids = self.make_docids(corpus)
        trie = DocidTrie(docids)
        timings.index_s = time.perf_counter() - start - timings.encode_documents_s
        start = time.perf_counter()
        groups = self.indexing_groups(corpus)
        queries, relevant, held = self._training_queries(corpus, train)
        if self.config.queries and queries:
            groups.append(("query", [queries[i] for i in held[0]],
                           [relevant[i][0] for i in held[0]]))
            # every relevant document of a training query is a target of that query
            extra = [(queries[i], p) for i in held[0] for p in relevant[i][1:]]
            if extra:
                groups.append(("query", [t for t, _ in extra], [p for _, p in extra]))
        examples = Examples.build(groups)
        model, record = self._train(corpus, docids, trie, examples,
                                    [queries[i] for i in held[1]], [relevant[i] for i in held[1]])
        timings.fit_encoder_s = time.perf_counter() - start
        self._install(corpus.ids, docids, model, record)
        return timings

    def search(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        """The top ``min(k, beam_size)`` documents of each query by constrained beam search
        (rows padded with empty ids past the beam)."""
        built = self._state()
        if filter is not None:
            raise InvalidInputError("dsi retriever: filters are not supported (the model decodes ids, it "
                                    "does not scan documents)")
        if k < 1:
            raise InvalidInputError(f"dsi retriever: k must be >= 1, got {k}")
        start = time.perf_counter()
        memory = self._memory(list(queries.texts))
        self.timings.encode_queries_s = time.perf_counter() - start
        start = time.perf_counter()
        depth = min(k, self.config.beam_size)
        with torch_threads(self.config.num_threads):
            found = decode(built.model, memory, built.trie, self.config.beam_size, self.config.batch_size_decode)
        ids = np.full((len(queries), depth), "", dtype=object)
        scores = np.full((len(queries), depth), -np.inf)
        for row, hits in enumerate(found):
            for col, (position, score) in enumerate(hits[:depth]):
                ids[row, col], scores[row, col] = built.doc_ids[position], score
        self.timings.search_s = time.perf_counter() - start
        return Ranking(queries.ids, ids.astype(str), scores)

    # -- state --------------------------------------------------------------------------------

    def _install(self, doc_ids: np.ndarray, docids: Docids, model: DSIModel, record: dict[str, Any]) -> None:
        """Make a trained model over these documents the one that searches."""
        self._built = _Built(np.asarray(doc_ids), docids, DocidTrie(docids), model, record)

    def _state(self) -> _Built:
        if self._built is None:
            raise InvalidInputError("dsi retriever: call build(corpus) before search")
        return self._built

    @property
    def docids(self) -> Docids:
        return self._state().docids

    @property
    def model(self) -> DSIModel:
        return self._state().model

    @property
    def training_record(self) -> dict[str, Any]:
        """Losses per epoch, held-out Hits@10 per evaluation, steps, the run directory."""
        return dict(self._state().record)

    @property
    def bytes_per_document(self) -> float:
        """The decoder's weights per indexed document (the model is the index)."""
        built = self._state()
        return weights_bytes(built.model) / len(built.doc_ids)

    def save(self, path: str | Path) -> None:
        """Write the trained decoder (safetensors), the ids and the document ids to a state
        directory (checksummed, atomic); :meth:`load` searches with it without the corpus."""
        built = self._state()
        doc_ids = np.array(built.doc_ids.tolist(), dtype=str)  # fixed-width: .npy without pickle
        save_state(path, self, arrays={**built.docids.as_arrays(), "doc_ids": doc_ids},
                   files=built.model.state_files(),
                   meta={"vocab": built.docids.vocab, "scheme": built.docids.scheme, "record": built.record})

    @classmethod
    def load(cls, path: str | Path) -> DSIRetriever:
        """A retriever written by :meth:`save` (checksums verified), ready to search."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        missing = sorted({"codes", "doc_ids"} - set(state.arrays)) + sorted({WEIGHTS, SETTINGS} - set(state.files))
        if missing:
            raise StateError(f"{path}: incomplete dsi state (missing {missing})")
        retriever = cls(**state.config)
        docids = Docids.from_arrays(state.arrays["codes"], int(state.meta["vocab"]), str(state.meta["scheme"]))
        doc_ids = as_ids(state.arrays["doc_ids"].tolist())
        if len(doc_ids) != len(docids):
            raise StateError(f"{path}: {len(doc_ids)} document ids for {len(docids)} docids")
        retriever._install(doc_ids, docids, DSIModel.from_state(state.files), dict(state.meta.get("record", {})))
        return retriever

    # -- encoding -----------------------------------------------------------------------------

    def _encode_documents(self, encoder: Any, corpus: Corpus) -> tuple[np.ndarray, float]:
        documents = corpus.documents()
        start = time.perf_counter()
        if self.cache is None:
            vectors = encoder.encode_documents(documents)
        else:
            key = self.cache.key(encoder, "documents", corpus.content_hash)
            cached = self.cache.get_or_compute(key, lambda: encoder.encode_documents(documents))
            self.timings.cache_hits += int(cached.hit)
            vectors = cached.embeddings
        return np.asarray(vectors, dtype=np.float32), time.perf_counter() - start

    def _frozen_encoder(self) -> Any:
        if self._encoder is None:
            from embedlab_train.hidden import FrozenEncoder
            from embedlab_transformers.model_files import resolve_model_dir

            self._encoder = FrozenEncoder(resolve_model_dir(self.config.model_path), self.config.max_length,
                                          num_threads=self.config.num_threads,
                                          show_progress=bool(self.config.show_progress))
        return self._encoder

    def _memory(self, texts: list[str]) -> TokenMemory:
        """The frozen encoder's token states of ``texts`` (through the hidden-states cache)."""
        return TokenMemory.from_hidden(self._frozen_encoder().states(texts), self.config.memory_tokens)

    # -- training -----------------------------------------------------------------------------

    def _training_queries(self, corpus: Corpus, train: Split | None
                          ) -> tuple[list[str], list[list[int]], tuple[list[int], list[int]]]:
        """Training query texts, their relevant positions, and (train, held-out) query indices."""
        if train is None:
            return [], [], ([], [])
        relevant_all = TrainingData(corpus, train).relevant_positions()
        keep = [i for i, r in enumerate(relevant_all) if len(r)]
        texts = [train.queries.texts[i] for i in keep]
        relevant = [relevant_all[i].tolist() for i in keep]
        order = np.random.default_rng(self.config.seed).permutation(len(keep))
        if self.config.validation_fraction == 0 or len(keep) < 2:
            return texts, relevant, (sorted(order.tolist()), [])
        fit, held = holdout_split(order, self.config.validation_fraction)
        return texts, relevant, (sorted(fit.tolist()), sorted(held.tolist()))

    def _identity(self, corpus: Corpus, docids: Docids, examples: Examples, held: list[str], start: str) -> str:
        digest = hashlib.sha256()
        for part in (fingerprint(self), self._frozen_encoder().identity, corpus.content_hash,
                     json.dumps(docids.strings()), json.dumps(list(examples.texts)),
                     json.dumps(examples.positions.tolist()), json.dumps(held), start):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def _train(self, corpus: Corpus, docids: Docids, trie: DocidTrie, examples: Examples,
               held_texts: list[str], held_relevant: list[list[int]], *, start: DSIModel | None = None,
               epochs: int | None = None) -> tuple[DSIModel, dict[str, Any]]:
        """Train the decoder (or reuse a finished run of the same identity) from ``start``'s weights
        (None: freshly initialised) for ``epochs`` (None: the config's); the trained model."""
        from embedlab_train.checkpoints import FINAL, complete, run_directory

        config = self.config
        begin = "" if start is None else hashlib.sha256(start.state_files()[WEIGHTS]).hexdigest()
        run_hash = self._identity(corpus, docids, examples, held_texts, f"{begin}|{epochs}")
        run_dir, temporary = run_directory(config.checkpoint_dir, run_hash, prefix="embedlab-dsi-")
        self._temporary = temporary or self._temporary
        final = run_dir / FINAL
        memory = self._memory(list(examples.texts))
        if complete(final) and load_state(final, verify=False).meta.get("run") == run_hash:
            logger.warning("dsi retriever: reusing the finished training run in %s", run_dir)
        else:
            held = self._memory(held_texts) if held_texts else None
            self._run(corpus, docids, trie, examples, memory, held, held_relevant, run_dir, run_hash, start,
                      epochs or config.epochs)
        state = load_state(final)
        model = DSIModel.from_state(state.files, memory)
        return model, dict(state.meta.get("record", {}))

    def _run(self, corpus: Corpus, docids: Docids, trie: DocidTrie, examples: Examples, memory: TokenMemory,
             held: TokenMemory | None, held_relevant: list[list[int]], run_dir: Path, run_hash: str,
             start: DSIModel | None, epochs: int) -> None:
        """The training run itself; writes ``run_dir/final`` (decoder weights, ids, record)."""
        from embedlab_train import InBatch, TrainingContext
        from embedlab_train.checkpoints import FINAL, save_model_state
        from embedlab_train.loop import RunSettings

        config = self.config
        dim = int(memory.tokens.shape[1])
        if dim % config.heads:
            raise ConfigError(f"dsi retriever: heads={config.heads} does not divide the encoder's {dim} dimensions")
        shape = DecoderShape(docids.vocab, docids.max_length, dim, config.layers, config.heads, config.feedforward,
                             config.dropout)
        with torch_threads(config.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = DSIModel(shape, memory)
            if start is not None:
                model.model.load_state_dict(start.model.state_dict())
            data = examples.training_set(corpus)
            context = TrainingContext(data, model.dim, model.device, config.seed, None, model,
                                      bool(config.show_progress))
            validation = HitsValidation(held, tuple(frozenset(r) for r in held_relevant)) \
                if held is not None else None
            settings = RunSettings(epochs, config.batch_size, config.lr, config.warmup_ratio,
                                   config.weight_decay, config.max_grad_norm, config.seed, config.patience, None,
                                   config.batch_size_decode, config.checkpoint_every, config.show_progress,
                                   self.sam_rho)
            trainer = DSITrainer(model, DocidCrossEntropy(), InBatch(), context, validation, settings, run_dir,
                                 describe(self), run_hash, docids=docids, trie=trie)
            progress = trainer.run()
            record = {"losses": progress.losses, "validation_hits10": progress.validation,
                      "best_evaluation": int(np.argmax(progress.validation)) if progress.validation else None,
                      "steps": progress.step, "epochs_run": progress.epoch, "stopped_early": progress.stopped,
                      "examples": {kind: examples.kinds.count(kind) for kind in sorted(set(examples.kinds))},
                      "held_out_queries": len(held_relevant), "run_dir": str(run_dir),
                      "docid_length": docids.max_length, "docid_vocab": docids.vocab}
            save_model_state(run_dir / FINAL, model, describe(self), {"run": run_hash, "record": record},
                             arrays=docids.as_arrays())
