"""``anncur``: an encoder whose vectors are ANNCUR's CUR factors of a black-box scorer.

Documents get the latent item embeddings ``E = (pinv(R[:, I_a]) R)^T`` and queries their exact
scores on the anchor items ``c_q``, so ``c_q . E[j]`` approximates the scorer's score of item ``j``
and any embedlab index does the MIPS step; the scorer itself, as the pipeline's reranker at depth
``k_r``, re-scores the retrieved items exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.cache import texts_hash
from embedlab.components import NOT_IDENTITY, Component
from embedlab.dataset import Corpus, Queries
from embedlab.embeddings import EmbeddingKind, as_dense
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.pipeline import create_component
from embedlab.texts import check_texts
from embedlab.training import TrainingData
from embedlab_anncur.cur import cur_factors
from embedlab_anncur.scoring import score_all
from embedlab_anncur.texts import pack_texts, unpack_texts

#: The default scorer: MaxSim over all-MiniLM-L6-v2 token vectors (embedlab-transformers), told to
#: score every candidate it is given and to return only those.
DEFAULT_SCORER = {"name": "maxsim", "k": 1_000_000, "keep_tail": False}
_ARRAYS = ("item_embeddings", "intersection", "anchor_items")
_TEXTS = ("anchor_item_texts", "anchor_query_texts")


def _at_least_one(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _scorer_spec(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise ValueError(f"{attribute.name} must be a reranker table with a string 'name', e.g. "
                         f"{DEFAULT_SCORER}, got {value!r}")


class Anncur(Component):
    """ANNCUR (Yadav et al., EMNLP 2022) as a trainable dense encoder of dimension ``k_i``.

    ``fit(documents)`` scores ``k_q`` anchor queries (drawn uniformly with ``seed`` from
    ``anchor_queries``, or in a pipeline from its training split through :meth:`fit_queries`)
    against every document: ``k_q * N`` scorer calls. ``encode_queries`` costs ``k_i`` calls per
    query. ``scorer_calls`` counts every pair scored by this instance.
    """

    kind = "encoder"
    name = "anncur"

    @attrs.frozen(kw_only=True)
    class Config:
        """``k_q``/``k_i``: anchor queries/items; ``scorer``: reranker table;
        ``rcond``: cut-off of the pseudo-inverse; ``queries_per_call``: queries per rerank call."""

        k_q: int = attrs.field(default=100, validator=_at_least_one)
        k_i: int = attrs.field(default=50, validator=_at_least_one)
        seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
        scorer: Mapping[str, Any] = attrs.field(factory=lambda: dict(DEFAULT_SCORER), converter=dict,
                                                validator=_scorer_spec)
        rcond: float = attrs.field(default=1e-15, converter=float, validator=attrs.validators.ge(0.0))
        queries_per_call: int = attrs.field(default=32, validator=_at_least_one, metadata=NOT_IDENTITY)
        show_progress: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool),
                                          metadata=NOT_IDENTITY)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._scorer: Any = None
        self._fitted: dict[str, np.ndarray] | None = None
        self._texts: dict[str, list[str]] = {}
        self._documents_hash = ""
        self._anchor_corpus: Corpus | None = None
        self.scorer_calls = 0
        self.fit_scorer_calls = 0

    @property
    def scorer(self) -> Any:
        """The black-box scorer, built from ``config.scorer`` through the registry on first use."""
        if self._scorer is None:
            self._scorer = create_component("reranker", self.config.scorer)
        return self._scorer

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return self.config.k_i

    @property
    def anchor_items(self) -> np.ndarray:
        """Positions of the anchor items among the fitted documents (sorted)."""
        return self._state()["anchor_items"]

    def fit_queries(self, data: TrainingData) -> Anncur:
        """Pipeline training (``[dataset] train_split`` in an experiment file): the training
        split's queries are the pool the anchor queries are drawn from."""
        return self.fit(data.corpus, data.split.queries)

    def fit(self, documents: Sequence[str] | Corpus, anchor_queries: Sequence[str] | Queries | None = None) -> Anncur:
        """Score ``k_q`` anchor queries against every document and compute the CUR factors.

        ``anchor_queries`` (texts or ``Queries``) is the pool the anchors are drawn from.
        """
        texts = documents.documents() if isinstance(documents, Corpus) else check_texts(documents, "anncur documents")
        pool = self._anchor_pool(anchor_queries)
        c = self.config
        if c.k_i > len(texts):
            raise InvalidInputError(f"anncur: k_i={c.k_i} anchor items but only {len(texts)} documents; "
                                    "lower k_i")
        if c.k_q > len(pool):
            raise InvalidInputError(f"anncur: k_q={c.k_q} anchor queries but only {len(pool)} available; "
                                    "lower k_q or supply more anchor queries")
        rng = np.random.default_rng(c.seed)
        query_rows = np.sort(rng.choice(len(pool), c.k_q, replace=False))
        items = np.sort(rng.choice(len(texts), c.k_i, replace=False)).astype(np.int64)
        anchors = Queries([f"anchor-{i}" for i in query_rows], [pool[i] for i in query_rows])
        rows = self._score(anchors, _corpus(texts), "anncur indexing (k_q x N)")
        intersection, embeddings = cur_factors(rows, items, c.rcond)
        self._set_state({"item_embeddings": embeddings.astype(np.float32),
                         "intersection": intersection.astype(np.float32), "anchor_items": items},
                        {"anchor_item_texts": [texts[i] for i in items], "anchor_query_texts": list(anchors.texts)},
                        texts_hash(texts))
        self.fit_scorer_calls = c.k_q * len(texts)
        return self

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """``E`` rows of the fitted documents; other texts are embedded by the same CUR formula
        (``k_q`` scorer calls each)."""
        items = check_texts(texts, "anncur documents")
        state = self._state()
        if texts_hash(items) == self._documents_hash:
            return state["item_embeddings"].copy()
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        pool = self._texts["anchor_query_texts"]
        anchors = Queries([f"anchor-{i}" for i in range(len(pool))], pool)
        rows = self._score(anchors, _corpus(items), "anncur new documents (k_q x n)")
        return as_dense((state["intersection"].astype(np.float64) @ rows).T, name="anncur documents")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """``c_q``: exact scores of each query on the ``k_i`` anchor items (``k_i`` calls each)."""
        items = check_texts(texts, "anncur queries")
        state = self._state()
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._anchor_corpus is None:
            self._anchor_corpus = Corpus([str(i) for i in state["anchor_items"]], self._texts["anchor_item_texts"])
        queries = Queries([f"q{i}" for i in range(len(items))], items)
        return as_dense(self._score(queries, self._anchor_corpus, "anncur queries (n x k_i)"), name="anncur queries")

    @property
    def memory_bytes(self) -> int:
        """Bytes of the fitted state: item embeddings, ``U``, anchor positions and texts (UTF-8)."""
        texts = sum(len(t.encode("utf-8")) for group in self._texts.values() for t in group)
        return sum(int(a.nbytes) for a in self._state().values()) + texts

    def save(self, path: str | Path) -> None:
        """Write the fitted factors and anchors with :func:`embedlab.persistence.save_state`."""
        packed = {}
        for name in _TEXTS:
            packed[f"{name}_utf8"], packed[f"{name}_offsets"] = pack_texts(self._texts[name])
        save_state(path, self, arrays={**self._state(), **packed},
                   meta={"documents_hash": self._documents_hash, "fit_scorer_calls": self.fit_scorer_calls})

    @classmethod
    def load(cls, path: str | Path) -> Anncur:
        """Load an encoder written by :meth:`save` (checksums and structure verified)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        encoder = state.build(cls)
        k_i, k_q = encoder.config.k_i, encoder.config.k_q
        embeddings = state.array("item_embeddings", dtype=np.float32, shape=(None, k_i), finite=True)
        arrays = {"item_embeddings": embeddings,
                  "intersection": state.array("intersection", dtype=np.float32, shape=(k_i, k_q), finite=True),
                  "anchor_items": state.indices("anchor_items", embeddings.shape[0], shape=(k_i,))}
        texts = {t: unpack_texts(state.array(f"{t}_utf8"), state.array(f"{t}_offsets"), f"{path}: {t}")
                 for t in _TEXTS}
        encoder._set_state({name: np.asarray(array) for name, array in arrays.items()}, texts,
                           state.value("documents_hash", str))
        encoder.fit_scorer_calls = state.value("fit_scorer_calls", int, minimum=0, default=0)
        return encoder

    def _score(self, queries: Queries, corpus: Corpus, desc: str) -> np.ndarray:
        scores = score_all(self.scorer, queries, corpus, queries_per_call=self.config.queries_per_call,
                           show_progress=self.config.show_progress, desc=desc)
        self.scorer_calls += scores.size
        return scores

    def _anchor_pool(self, anchor_queries: Sequence[str] | Queries | None) -> list[str]:
        if isinstance(anchor_queries, Queries):
            return list(anchor_queries.texts)
        if anchor_queries is None:
            raise ConfigError("anncur: no anchor queries; pass fit(documents, anchor_queries=...), or give the "
                              "pipeline a training split ([dataset] train_split = \"train\" in an experiment file)")
        return check_texts(anchor_queries, "anncur anchor queries")

    def _set_state(self, arrays: dict[str, np.ndarray], texts: dict[str, list[str]], documents_hash: str) -> None:
        k_i, k_q = self.config.k_i, self.config.k_q
        if arrays["item_embeddings"].ndim != 2 or arrays["item_embeddings"].shape[1] != k_i \
                or arrays["intersection"].shape != (k_i, k_q) or arrays["anchor_items"].shape != (k_i,) \
                or len(texts["anchor_item_texts"]) != k_i or len(texts["anchor_query_texts"]) != k_q:
            raise StateError(f"anncur: state arrays do not match k_q={k_q}, k_i={k_i}")
        self._fitted, self._texts, self._documents_hash = arrays, texts, documents_hash
        self._anchor_corpus = None

    def _state(self) -> dict[str, np.ndarray]:
        if self._fitted is None:
            raise NotFittedError("anncur: call fit(documents, anchor_queries=...) (or load a saved "
                                 "encoder) before encoding")
        return self._fitted


def _corpus(texts: Sequence[str]) -> Corpus:
    """Documents addressed by position (ids ``"0".."n-1"``)."""
    return Corpus([str(i) for i in range(len(texts))], list(texts))
