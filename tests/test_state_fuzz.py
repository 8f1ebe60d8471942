"""Forged saved states: ``load_component`` raises StateError, never another exception or a signal.

For every registered component that can be loaded, a real state is saved (``EXAMPLES``), then
hypothesis mutates it — manifest values, types and structure, array dtypes, shapes and values,
truncated, empty or garbage files — and recomputes every checksum and part pin, as a forger would
(`embedlab.testing.reseal`). Loading must raise StateError or give a component whose use
(``EXAMPLES``' smoke call) raises nothing but embedlab's own errors. Seeded and bounded
(``derandomize=True``), so CI time stays small. A new loadable component needs an entry here.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedlab
from embedlab.embeddings import BinaryCodes, MultiVectorEmbeddings
from embedlab.errors import EmbedlabError, StateError
from embedlab.persistence import MANIFEST, sha256_file
from embedlab.testing import reseal

RNG = np.random.default_rng(5)
DIM = 16
DOCS = RNG.standard_normal((240, DIM)).astype(np.float32)
DOCS /= np.linalg.norm(DOCS, axis=1, keepdims=True)
QUERIES = DOCS[:3] + 0.1
TEXTS = [f"doc {i} about {'cats' if i % 2 else 'dogs'} and {i % 7}" for i in range(len(DOCS))]
ATTRIBUTES = {"lang": np.array(["en", "fr", None] * 80, dtype=object), "size": np.arange(240.0),
              "group": np.arange(240) % 5}
SPARSE = sp.random(240, 50, density=0.1, format="csr", random_state=3, dtype=np.float32)
MULTI = MultiVectorEmbeddings(np.repeat(DOCS, 3, axis=0)[:600], np.arange(0, 601, 5))
GRAPH_IDS = np.array([f"n{i}" for i in range(40)])


@attrs.frozen
class Example:
    """``build()`` returns a fitted component to save; ``use(component)`` exercises a loaded one."""

    build: Callable[[], Any]
    use: Callable[[Any], Any]
    examples: int = 15


def _search(component: Any, queries: Any = QUERIES, **kwargs: Any) -> None:
    component.search(queries, 3, **kwargs)


def _exact(data: Any, metric: str = "ip", attributes: Any = None, compressor: Any = None) -> Any:
    from embedlab.index import ExactIndex

    index = ExactIndex(metric=metric, block_size=64)
    if compressor is not None:
        index.use_compressor(compressor)
    index.build(data, attributes)
    return index


def _pq() -> Any:
    from embedlab.pq_compressor import PQCompressor

    return PQCompressor(m=4, ksub=16, iterations=2).fit(DOCS)


def _codec(component: Any) -> None:
    codes = component.encode(QUERIES)
    component.decode(codes)
    if hasattr(component, "score"):
        component.score(QUERIES, codes)


def _graph_encoder(module: str, cls: str, **params: Any) -> Callable[[], Any]:
    def build() -> Any:
        from embedlab.graph import Graph

        encoder = getattr(importlib.import_module(module), cls)(dim=8, **params)
        encoder._graph = Graph(sp.csr_matrix((40, 40)), GRAPH_IDS, name="fuzz")
        encoder._vectors = RNG.standard_normal((40, encoder.dim)).astype(np.float32)
        return encoder

    return build


def _anncur() -> Any:
    from embedlab_anncur import Anncur

    from embedlab.cache import texts_hash

    encoder = Anncur(k_q=6, k_i=4, show_progress=False)
    items = np.array([1, 5, 9, 12])
    encoder._set_state({"item_embeddings": RNG.standard_normal((40, 4)).astype(np.float32),
                        "intersection": RNG.standard_normal((4, 6)).astype(np.float32), "anchor_items": items},
                       {"anchor_item_texts": [TEXTS[i] for i in items], "anchor_query_texts": TEXTS[:6]},
                       texts_hash(TEXTS[:40]))
    return encoder


def _reranker(module: str, cls: str, weights: Callable[[Any], None], **params: Any) -> Callable[[], Any]:
    def build() -> Any:
        reranker = getattr(importlib.import_module(module), cls)(encoder="hashing", encoder_params={"dim": DIM},
                                                                 **params)
        weights(reranker)
        return reranker

    return build


def _rerank(reranker: Any) -> None:
    from embedlab.dataset import Corpus, Queries
    from embedlab.ranking import Ranking, SearchResult

    corpus = Corpus([f"d{i}" for i in range(20)], TEXTS[:20])
    queries = Queries(["q0", "q1"], ["cats and dogs", "doc 3"])
    result = SearchResult(np.tile(np.linspace(1, 0, 10, dtype=np.float32), (2, 1)), np.tile(np.arange(10), (2, 1)))
    reranker.rerank(Ranking.from_search(queries.ids, result, corpus.ids), queries, corpus)


def _cosine_weights(adapter: Any) -> None:
    adapter.weights = {"w1": RNG.standard_normal((4, DIM)), "b1": np.zeros(4), "w2": RNG.standard_normal((2, 4)),
                       "b2": np.zeros(2)}
    adapter.cosine_mean, adapter.cosine_std, adapter.fitted_threshold = 0.5, 0.1, 0.3


def _dime_weights(dime: Any) -> None:
    dime.weights = {"w1": RNG.standard_normal((4, DIM)).astype(np.float32), "b1": np.zeros(4, np.float32),
                    "w2": RNG.standard_normal((DIM, 4)).astype(np.float32), "b2": np.zeros(DIM, np.float32)}


def _e2rank_adapter(reranker: Any) -> None:
    reranker.adapter = np.eye(DIM, dtype=np.float32)


def _finetune() -> Any:
    from embedlab_train.encoder import FineTunedEncoder

    return FineTunedEncoder(show_progress=False)


@functools.cache
def _tiny_bert() -> str:
    """A tiny random BERT (MiniLM's tokenizer) in a temporary folder, made once per process."""
    from embedlab_train.testing import tiny_bert

    root = Path(tempfile.mkdtemp(prefix="embedlab-fuzz-bert-"))
    atexit.register(shutil.rmtree, root, True)
    return str(tiny_bert(root, hidden=32, layers=2))


def _head(module: str, cls: str, **params: Any) -> Callable[[], Any]:
    """A pooling-head encoder over the tiny BERT, trained for one epoch (head weights to forge)."""

    def build() -> Any:
        from embedlab_train.testing import head_settings, topics_dataset

        from embedlab.training import TrainingData

        settings = {**head_settings(_tiny_bert()), "epochs": 1, **params}
        encoder = getattr(importlib.import_module(module), cls)(**settings)
        dataset = topics_dataset()
        return encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))

    return build


def _qdc() -> Any:
    from embedlab_qdc import QueryDriftCompensation

    qdc = QueryDriftCompensation(old={"name": "hashing", "dim": 32}, train_new=False,
                                 new={"name": "finetune", "model_path": _tiny_bert(), "num_threads": 1,
                                      "show_progress": False, "max_length": 32, "checkpoint_dir": None})
    qdc.drift = RNG.standard_normal(32).astype(np.float32)
    return qdc


def _dsi(module: str, cls: str, **params: Any) -> Callable[[], Any]:
    """A DSI-family retriever over the tiny BERT with naive ids, trained for one epoch (decoder to forge)."""

    def build() -> Any:
        from embedlab_dsi.testing import tiny_settings
        from embedlab_train.testing import topics_dataset

        retriever = getattr(importlib.import_module(module), cls)(
            **tiny_settings(_tiny_bert(), epochs=1, docids="naive", **params))
        retriever.build(topics_dataset().corpus)
        return retriever

    return build


def _generate(retriever: Any) -> None:
    from embedlab.dataset import Queries

    retriever.search(Queries(["q0", "q1"], ["cats and dogs", "doc 3"]), 3)


def _aspects() -> Any:
    """An aspects retriever: two linear heads over the tiny BERT (one epoch) and a hashing space
    (rebuilt from its config on load), over a small generated people task."""
    from embedlab_aspects import AspectRetriever, people
    from embedlab_train.testing import head_settings

    data = people(documents=24, seed=2)
    retriever = AspectRetriever(aspects=["job", "city", "hobby"], encoders={"hobby": {"name": "hashing", "dim": 16}},
                                encoder={"name": "frozen-head", "head": "linear", **head_settings(_tiny_bert()),
                                         "epochs": 1})
    retriever.build(data.corpus, data.split("train"))
    return retriever


def _aspect_search(retriever: Any) -> None:
    from embedlab.dataset import Queries

    retriever.search(Queries(["q0", "q1", "q2"], ["city: a chef", "hobby: chess", "job: a nurse"]), 3)


def _yesno() -> Any:
    from embedlab_qwen3 import YesNoReranker

    return YesNoReranker(model_path=_tiny_bert(), num_threads=1, show_progress=False, max_length=32,
                         max_query_length=8, batch_size=16, instruction="", checkpoint_dir=None)


@functools.cache
def _table_run() -> Any:
    from embedlab_tables import generate
    from embedlab_tables.models import ModelConfig
    from embedlab_tables.training import TableRun, TrainConfig

    data = generate(rows=800, vocab_sizes=(300, 50, 800, 20, 400, 7), n_dense=2, seed=0).data
    train, valid, test = data.split((0.8, 0.1, 0.1), seed=0)
    return TableRun(train, valid, test, model=ModelConfig(kind="dlrm", dim=8, bottom=(8,), top=(8,), deep=(8,)),
                    training=TrainConfig(epochs=1, batch_size=256, lr=3e-3, evals_per_epoch=1), seed=0)


def _table(name: str, ratio: float) -> Callable[[], Any]:
    def build() -> Any:
        method = embedlab.registry().create("embedding-table", name, ratio=ratio)
        method.fit(_table_run())
        return method

    return build


def _predict(method: Any) -> None:
    _table_run().predict(method.fitted.model, "test")


@functools.cache
def _scenes() -> Any:
    from embedlab.datasets import synthetic_scenes

    return synthetic_scenes(n_train=12, n_test=2, size=16, seed=2)


def _cir() -> Any:
    from embedlab_cir import CIREncoder

    from embedlab.training import TrainingData

    scenes = _scenes()
    encoder = CIREncoder(text_encoder={"name": "hashing", "dim": 32}, width=32, heads=2, layers=1, dim=16,
                         image_size=16, batch_size=16, cache_text=False, stage1_cache=False, stage1_steps=0,
                         stage2_steps=1, stage2_target="image")
    return encoder.fit_queries(TrainingData(scenes.corpus, scenes.split("train")))


def _cart() -> Any:
    """A tiny CART trained for one epoch on the topics set (weights to forge)."""
    from embedlab_cart import CARTEncoder
    from embedlab_train.testing import topics_dataset

    from embedlab.training import TrainingData

    encoder = CARTEncoder(dim=16, heads=2, latent=8, mult=2, max_length=16, iterations=2, epochs=1, num_threads=1,
                          show_progress=False, train_batch_size=8, validation_fraction=0.0, checkpoint_dir=None)
    dataset = topics_dataset()
    return encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))


def _llm2vec_gen() -> Any:
    """A tiny LLM2Vec-Gen over the tiny BERT, hashing teacher, one epoch per stage (special tokens to forge)."""
    from embedlab_llm2vec_gen import LLM2VecGenEncoder
    from embedlab_train.testing import topics_dataset

    from embedlab.training import TrainingData

    encoder = LLM2VecGenEncoder(model_path=_tiny_bert(), max_length=16, special_tokens=2, response_tokens=4,
                                teacher={"name": "hashing", "dim": 16}, generator_layers=1, generator_heads=2,
                                generator_feedforward=32, generator_epochs=1, generator_batch_size=8, epochs=1,
                                batch_size=8, num_threads=1, show_progress=False, checkpoint_dir=None)
    dataset = topics_dataset()
    return encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))


#: Ratios every embedding-table method reaches on _table_run's schema.
TABLE_RATIOS = {"full": 1.0, "int8": 4.0, "int16": 2.0, "alpt8": 2.5, "alpt16": 1.5, "autodim": 3.0, "dhe": 1.2,
                "dpq": 4.0, "mde": 6.0, "mgqe": 1.0, "qr": 4.0, "optembed": 4.0, "adaptemb": 2.0}
TABLE_METHODS = ("adaptemb", "alpt16", "alpt8", "autodim", "autosrh", "dedup", "deeplight", "dhe", "dpq", "full",
                 "hash", "int16", "int8", "mde", "mgqe", "optembed", "pep", "qr", "robe", "tt-rec",
                 "unified-embedding")


EXAMPLES: dict[str, list[Example]] = {
    "index/exact": [
        Example(lambda: _exact(DOCS, "cosine", ATTRIBUTES), lambda i: _search(i, filter={"lang": "en"})),
        Example(lambda: _exact(SPARSE, "l2"), lambda i: _search(i, SPARSE[:3])),
        Example(lambda: _exact(BinaryCodes.from_signs(DOCS)), lambda i: _search(i, BinaryCodes.from_signs(QUERIES))),
        Example(lambda: _exact(MULTI, "cosine"), lambda i: _search(i, MULTI.take(np.arange(3)))),
        Example(lambda: _exact(DOCS, "l2", compressor=_pq()), _search),
    ],
    "compressor/pq": [Example(_pq, _codec)],
    "index/bidr": [Example(lambda: _built("embedlab_bidr", "BiDRIndex", m=4, ksub=16, kmeans_iterations=2,
                                          candidates=10), _search)],
    "index/distillvq": [Example(lambda: _built("embedlab_distillvq", "DistillVQIndex", nlist=4, nprobe=2, m=4,
                                               ksub=16, epochs=1, threads=1, show_progress=False,
                                               attributes=ATTRIBUTES),
                                lambda i: _search(i, filter={"group": 2}))],
    "index/faiss": [Example(lambda f=f: _built("embedlab_faiss", "FaissIndex", factory=f, attributes=ATTRIBUTES),
                            lambda i: _search(i, filter={"lang": "fr"}))
                    for f in ("Flat", "HNSW8", "IVF4,Flat")],
    "index/prefilter": [Example(lambda: _built("embedlab_filtered", "PrefilterIndex", metric="l2",
                                               attributes=ATTRIBUTES),
                                lambda i: _search(i, filter={"size": {"lt": 100}}))],
    "index/postfilter": [Example(lambda: _built("embedlab_filtered", "PostfilterIndex", attributes=ATTRIBUTES),
                                 lambda i: _search(i, filter={"group": 1}))],
    "index/acorn": [Example(lambda: _built("embedlab_filtered", "AcornIndex", M=4, gamma=2, M_beta=4, exact_below=0,
                                           attributes=ATTRIBUTES),
                            lambda i: (_search(i), _search(i, filter={"group": 1})))],
    "index/muvera": [Example(lambda: _built("embedlab_muvera", "MuveraIndex", k_sim=2, d_proj=4, R_reps=2, seed=1,
                                            data=MULTI),
                             lambda i: _search(i, MULTI.take(np.arange(3))))],
    "index/inverted": [Example(lambda: _built("embedlab_bm25.inverted", "InvertedIndex", data=SPARSE,
                                              attributes=ATTRIBUTES),
                               lambda i: _search(i, SPARSE[:3], filter={"group": 1}))],
    "index/seismic": [Example(lambda: _built("embedlab_seismic", "SeismicIndex", data=SPARSE, attributes=ATTRIBUTES),
                              lambda i: _search(i, SPARSE[:3], filter={"group": 1}))],
    "compressor/bebr": [Example(lambda: _fitted("embedlab_bebr", "BEBRCompressor", bits_per_dim=2, code_dim=8,
                                                epochs=1, hidden=(8,), batch_size=64, neighbours=4, num_threads=1),
                                _codec, 8)],
    "compressor/jpq": [Example(lambda: _fitted("embedlab_jpq", "JPQCompressor", m=4, ksub=16, kmeans_iterations=2,
                                               opq=True, num_threads=1, show_progress=False,
                                               data=np.concatenate([DOCS, DOCS[::-1] + 0.01])),
                               _codec)],
    "compressor/storage": [Example(lambda spec=spec: _fitted("embedlab_storage", "StorageCompressor", spec=spec),
                                   _codec, 8) for spec in ("int8", "pca:0.5+binary")],
    **{f"compressor/table-{name}": [Example(lambda cls=cls, params=params: _fitted(
        "embedlab_tables.posthoc", cls, **params), use, 6)]
       for name, cls, params, use in (
           ("int", "TableInt", {"scale": "row"}, _codec), ("prune", "TablePrune", {"keep": 0.5}, _codec),
           ("tt", "TableTT", {"rank": 4}, lambda c: c.decode(c.encode(DOCS[:3]))),
           ("dedup", "TableDedup", {"ratio": 4.0}, _codec))},
    "compressor/randproj": [Example(lambda: _fitted("embedlab_randproj", "RandomProjection", dim=8), _codec)],
    "encoder/bm25": [Example(lambda: _fitted("embedlab_bm25", "BM25", data=TEXTS),
                             lambda e: e.encode_queries(["cats", "dogs 3"]))],
    "encoder/anncur": [Example(_anncur, lambda e: (e.encode_documents(TEXTS[:40]), e.anchor_items))],
    "encoder/spectral": [Example(_graph_encoder("embedlab.graph.encoders", "SpectralEncoder"),
                                 lambda e: e.encode_nodes(GRAPH_IDS[:3]))],
    "encoder/fastrp": [Example(_graph_encoder("embedlab_fastrp", "FastRP"), lambda e: e.encode_nodes(GRAPH_IDS[:3]))],
    "encoder/irwe": [Example(_graph_encoder("embedlab_irwe", "IRWE"), lambda e: e.encode_nodes(GRAPH_IDS[:3]))],
    "encoder/node2vec": [Example(_graph_encoder("embedlab_node2vec", "Node2Vec"),
                                 lambda e: e.encode_nodes(GRAPH_IDS[:3]))],
    "encoder/deepwalk": [Example(_graph_encoder("embedlab_node2vec", "DeepWalk"),
                                 lambda e: e.encode_nodes(GRAPH_IDS[:3]))],
    "encoder/finetune": [Example(_finetune, lambda e: e.trained, 6)],
    "reranker/cosine-adapter": [Example(_reranker("embedlab_cosine_adapter", "CosineAdapter", _cosine_weights,
                                                  hidden=4), _rerank)],
    "reranker/dime": [Example(_reranker("embedlab_dime", "Dime", _dime_weights, hidden=4), _rerank)],
    "reranker/e2rank": [Example(_reranker("embedlab_e2rank", "E2Rank", _e2rank_adapter), _rerank)],
    "compressor/embedfilter": [Example(lambda: _fitted("embedlab_embedfilter", "EmbedFilter", dims=8, basis="random"),
                                       _codec)],
    "encoder/frozen-head": [Example(_head("embedlab_train.heads", "FrozenHeadEncoder", head="linear"),
                                    lambda e: e.encode_queries(["parse json"]), 8)],
    "encoder/nvembed": [Example(_head("embedlab_nvembed", "NVEmbedEncoder",
                                      head={"name": "latent-attention", "latents": 4, "heads": 2}),
                                lambda e: e.encode_queries(["parse json"]), 6)],
    "encoder/mltp": [Example(_head("embedlab_mltp", "MLTPEncoder"), lambda e: e.encode_queries(["parse json"]), 6)],
    "encoder/miner": [Example(_head("embedlab_miner", "MinerEncoder", validation_fraction=0.25),
                              lambda e: e.encode_queries(["parse json"]), 6)],
    "encoder/qdc": [Example(_qdc, lambda e: e.encode_queries(["parse json"]), 8)],
    "reranker/yesno": [Example(_yesno, _rerank, 8)],
    "retriever/dsi": [Example(_dsi("embedlab_dsi", "DSIRetriever"), _generate, 8)],
    "retriever/se-dsi": [Example(_dsi("embedlab_se_dsi", "SEDSIRetriever"), _generate, 8)],
    "retriever/dsi-pp": [Example(_dsi("embedlab_dsi_pp", "DSIPPRetriever"), _generate, 8)],
    "retriever/aspects": [Example(_aspects, _aspect_search, 8)],
    "encoder/cir": [Example(_cir, lambda e: e.encode_queries(_scenes().queries.inputs()[:2]), 8)],
    "encoder/embedlens": [Example(lambda: embedlab.create("encoder", "embedlens", encoder={
        "name": "minilm-tokens", "num_threads": 1, "show_progress": False}),
        lambda e: e.encode_documents(["parse json"]), 4)],
    "encoder/cart": [Example(_cart, lambda e: e.encode_queries(["parse json"]), 6)],
    "encoder/llm2vec-gen": [Example(_llm2vec_gen, lambda e: e.encode_queries(["parse json"]), 6)],
    **{f"embedding-table/{name}": [Example(_table(name, TABLE_RATIOS.get(name, 8.0)), _predict,
                                           10 if name in ("full", "dpq", "tt-rec") else 3)]
       for name in TABLE_METHODS},
}


def _built(module: str, cls: str, *, data: Any = DOCS, attributes: Any = None, **params: Any) -> Any:
    index = getattr(importlib.import_module(module), cls)(**params)
    index.build(data, attributes)
    return index


def _fitted(module: str, cls: str, *, data: Any = DOCS, **params: Any) -> Any:
    return getattr(importlib.import_module(module), cls)(**params).fit(data)


def loadable() -> list[str]:
    return sorted(f"{s.kind}/{s.name}" for s in embedlab.registry().specs() if getattr(s.factory, "load", None))


def test_every_loadable_component_has_a_fuzz_example():
    missing = sorted(set(loadable()) - set(EXAMPLES))
    assert not missing, (f"components that can be loaded from disk but have no entry in EXAMPLES of "
                         f"{__file__}: {missing}; add one (a small fitted instance and a call that uses it)")


# -- mutations -----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, -1, 2**31, -(2**63), 10**30, 0.5, -1.5]),
              st.sampled_from([float("nan"), float("inf")]), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6)
DTYPES = ["int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64", "bool",
          "complex64", "<U3", ">f4", ">i8", "S2"]
VALUES = [-1, -(2**31), 2**31 - 1, 10**9, 255, 0, float("nan"), float("inf"), -float("inf"), 3]


def _replace(path: Path, data: bytes) -> None:
    """Write a new file (never in place: the example's files are hard links)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _save_array(path: Path, array: np.ndarray) -> None:
    path.unlink(missing_ok=True)
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _leaves(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _leaves(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:4]):
            paths += _leaves(item, (*prefix, i))
    return paths


def _set(tree: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


def mutate_array(data: st.DataObject, file: Path) -> str:
    array = np.load(file, allow_pickle=False)
    how = data.draw(st.sampled_from(["dtype", "shape", "values", "truncate", "empty", "garbage", "header"]))
    if how == "dtype":
        dtype = data.draw(st.sampled_from(DTYPES))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                changed = array.astype(dtype)
            except (ValueError, TypeError, OverflowError):  # e.g. words to integers
                return "nothing"
        _save_array(file, changed)
        return f"{file.name} as {dtype}"
    if how == "shape":
        shapes = [array.ravel(), array[None], array[:0], np.concatenate([array, array]) if array.ndim else array[None],
                  array.T, array[: max(len(array) // 2, 1)] if array.ndim else array, np.asarray(array.ravel()[:1])]
        choice = data.draw(st.integers(0, len(shapes) - 1))
        _save_array(file, shapes[choice])
        return f"{file.name} reshaped to {shapes[choice].shape}"
    if how == "values":
        if array.size == 0 or array.dtype.kind not in "biuf":
            return "nothing"
        flat = array.copy().ravel()
        value = data.draw(st.sampled_from(VALUES))
        count = data.draw(st.integers(1, 3))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                flat[data.draw(st.lists(st.integers(0, flat.size - 1), min_size=count, max_size=count))] = value
            except (ValueError, OverflowError):
                return "nothing"
        _save_array(file, flat.reshape(array.shape))
        return f"{file.name} values set to {value}"
    raw = file.read_bytes()
    if how == "truncate":
        cut = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        _replace(file, raw[:cut])
        return f"{file.name} truncated to {cut} bytes"
    if how == "empty":
        _replace(file, b"")
        return f"{file.name} emptied"
    if how == "garbage":
        _replace(file, data.draw(st.binary(min_size=1, max_size=200)))
        return f"{file.name} replaced by garbage"
    header = raw[:128].replace(b"'shape': (", b"'shape': (99999999999, ")
    _replace(file, header + raw[128:])
    return f"{file.name} header shape forged"


def mutate_manifest(data: st.DataObject, file: Path) -> str:
    how = data.draw(st.sampled_from(["set", "delete", "replace", "text"]))
    manifest = json.loads(file.read_text())
    if how == "text":
        text = data.draw(st.sampled_from(["", "{", "[" * 5000 + "]" * 5000, "1" * 5000, "\xff\xfe", "null"]))
        _replace(file, text.encode("utf-8", "surrogateescape") if text != "\xff\xfe" else b"\xff\xfe")
        return f"{file} text {text[:10]!r}"
    if how == "replace":
        value = data.draw(JSON_VALUES)
        _replace(file, json.dumps(value).encode())
        return f"{file} replaced by {value!r}"
    path = data.draw(st.sampled_from(_leaves(manifest)[1:]))
    value = data.draw(JSON_VALUES)
    _replace(file, json.dumps(_set(manifest, path, value, how == "delete")).encode())
    return f"{file}: {how} {path} {'' if how == 'delete' else repr(value)}"


def _repin(root: Path, changed: Path) -> None:
    """Pin the (mutated) manifest of the part ``changed`` in every parent up to ``root``."""
    part = changed.parent
    while part != root:
        parent = part.parent
        manifest_file = parent / MANIFEST
        manifest = json.loads(manifest_file.read_text())
        manifest.setdefault("parts", {})[part.name] = {"manifest_sha256": sha256_file(part / MANIFEST)}
        _replace(manifest_file, json.dumps(manifest).encode())
        part = parent


def forge(data: st.DataObject, root: Path) -> str:
    """One mutation of the state under ``root`` (arrays first, checksums recomputed)."""
    arrays = sorted(root.rglob("*.npy"))
    manifests = sorted(root.rglob(MANIFEST))
    removable = [p for p in root.rglob("*") if p.name != MANIFEST]
    target = data.draw(st.sampled_from(["array"] * 3 + ["manifest"] * 2 + ["remove"]) if arrays else
                       st.sampled_from(["manifest", "remove"] if removable else ["manifest"]))  # a manifest-only state
    if target == "array":
        done = mutate_array(data, data.draw(st.sampled_from(arrays)))
        reseal(root)
        return done
    if target == "remove":
        victim = data.draw(st.sampled_from(sorted(p for p in root.rglob("*") if p.name != MANIFEST)))
        if victim.is_dir():
            shutil.rmtree(victim)
        else:
            victim.unlink()
        reseal(root)
        return f"removed {victim.relative_to(root)}"
    file = data.draw(st.sampled_from(manifests))
    done = mutate_manifest(data, file)
    if file.parent != root:
        _repin(root, file)
    return done


# -- the test ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], Path]:
    """``saved(key, i)``: the directory of example ``i`` of ``key``, built and saved once."""
    done: dict[tuple[str, int], Path] = {}

    def get(key: str, i: int) -> Path:
        if (key, i) not in done:
            path = tmp_path_factory.mktemp("fuzz") / "state"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                EXAMPLES[key][i].build().save(path)
            done[key, i] = path
        return done[key, i]

    return get


#: Examples of the components installed here (a tox env may hold the core and one plugin only).
CASES = [(key, i) for key in sorted(set(EXAMPLES) & set(loadable())) for i in range(len(EXAMPLES[key]))]


@pytest.mark.parametrize("key, i", CASES, ids=[f"{k}-{i}" for k, i in CASES])
def test_forged_states_raise_state_error(key, i, saved, tmp_path_factory, monkeypatch):
    example = EXAMPLES[key][i]
    monkeypatch.setenv("EMBEDLAB_FSYNC", "0")
    original = saved(key, i)
    assert embedlab.load_component(original) is not None  # the untouched state loads
    work = tmp_path_factory.mktemp("forged")

    @settings(max_examples=example.examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        root = work / "state"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(original, root, copy_function=os.link)
        what = forge(data, root)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                component = embedlab.load_component(root)
            except StateError:
                return
            except Exception as error:  # noqa: BLE001 - the point of the test
                raise AssertionError(f"{key}: {what}: load_component raised {type(error).__name__}: {error}") from error
            try:
                example.use(component)
            except EmbedlabError:
                pass
            except Exception as error:  # noqa: BLE001
                raise AssertionError(f"{key}: {what}: the loaded component raised {type(error).__name__}: "
                                     f"{error}") from error

    check()
