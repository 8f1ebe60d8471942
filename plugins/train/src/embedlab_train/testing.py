"""Helpers for the test suites of training plugins (no pytest import): a tiny random BERT with
all-MiniLM-L6-v2's tokenizer that trains in milliseconds per step, a small labelled dataset
(:func:`topics_dataset`), random loss batches, and one pipeline trained and evaluated through
``embedlab run`` and through the Python API (:func:`through_cli_and_api`).

>>> model_dir = tiny_bert(tmp_path)                                     # doctest: +SKIP
>>> q, docs, batch = random_batch(b=6, k=2, d=16)                       # doctest: +SKIP
>>> InfoNCE()(batch).backward()                                         # doctest: +SKIP
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab_train.data import TrainingSet
from embedlab_train.losses import Batch

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
#: 24 short programming tasks: query and document texts for small training tests.
TOPICS = ["parse json text", "open a file for reading", "sort a list of numbers", "send an http request",
          "compress bytes with zlib", "format a date as a string", "spawn a subprocess", "hash a password",
          "read a csv row", "join two paths", "copy a directory tree", "decode base64 data",
          "match a regular expression", "start a thread pool", "parse command line arguments",
          "write a log message", "measure elapsed time", "generate a random number", "encode a url query",
          "serialise an object to xml", "compute a checksum", "resolve a host name", "read an ini file",
          "iterate over a zip archive"]


def tiny_bert(root: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A BERT with ``layers`` layers of width ``hidden``, random weights seeded by ``seed``, and
    all-MiniLM-L6-v2's tokenizer, saved as a model directory in ``root``."""
    import transformers
    from embedlab_transformers.model_files import default_model_dir

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    source = default_model_dir()
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, root / name)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformers.BertModel(config).save_pretrained(root, safe_serialization=True)
    return root


def head_settings(model_dir: str | Path) -> dict:
    """``frozen-head`` parameters for fast tests over ``model_dir`` (a :func:`tiny_bert`): one
    thread, 32 tokens, no bars, nothing held out, no checkpoints on disk."""
    return {"model_path": str(model_dir), "num_threads": 1, "show_progress": False, "max_length": 32,
            "train_batch_size": 8, "batch_size": 16, "validation_fraction": 0.0, "warmup_ratio": 0.0,
            "checkpoint_dir": None}


def topics_dataset() -> Dataset:
    """24 topics x 2 documents; a train query per topic (both documents of another topic relevant,
    so a zero-shot model is wrong) and a test query paraphrasing it (same relevant topic)."""
    docs, texts = [], []
    for t, topic in enumerate(TOPICS):
        docs += [f"t{t}a", f"t{t}b"]
        texts += [f"def helper(): how to {topic} in python", f"example code that shows {topic} quickly"]
    queries = Queries([f"train{t}" for t in range(len(TOPICS))] + [f"test{t}" for t in range(len(TOPICS))],
                      [f"{topic}" for topic in TOPICS] + [f"how do i {topic}" for topic in TOPICS])
    shifted = [(t + 5) % len(TOPICS) for t in range(len(TOPICS))]  # words do not give the answer away
    qrels = {"train": {f"train{t}": {f"t{s}a": 1, f"t{s}b": 1} for t, s in enumerate(shifted)},
             "test": {f"test{t}": {f"t{s}a": 1} for t, s in enumerate(shifted)}}
    return Dataset("tiny-topics", Corpus(docs, texts), queries, qrels)


def pair_set(n_queries: int, n_docs: int, judged: list[set[int]] | None = None) -> TrainingSet:
    """Queries ``q0..``, documents ``d0..``; query ``i``'s positive is document ``i``; ``judged``
    overrides the judged-relevant sets."""
    data = TrainingSet.from_pairs([f"q{i}" for i in range(n_queries)], [f"d{j}" for j in range(n_docs)],
                                  [(i, i) for i in range(n_queries)])
    if judged is not None:
        data = TrainingSet(data.queries, data.corpus, data.query, data.positive, judged)
    return data


def random_batch(b: int = 6, k: int = 2, d: int = 16, seed: int = 0,
                 judged: list[set[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor, Batch]:
    """float64 leaf tensors (queries ``(b, d)``, documents ``(b(1+k), d)``) and the :class:`Batch`
    over them (documents in corpus order: positives, then ``k`` negative columns)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, d, generator=gen, dtype=torch.float64, requires_grad=True)
    docs = torch.randn(b * (1 + k), d, generator=gen, dtype=torch.float64, requires_grad=True)
    return q, docs, Batch(q, docs, np.arange(b), np.arange(b * (1 + k)), pair_set(b, b * (1 + k), judged))


def gradients(loss: torch.Tensor, *leaves: torch.Tensor) -> list[torch.Tensor]:
    """d loss / d leaf for each leaf (the graph is kept for further calls)."""
    return list(torch.autograd.grad(loss, leaves, retain_graph=True))


def reciprocal_rank(encoder, dataset: Dataset) -> float:
    """Mean reciprocal rank of the first judged document for ``dataset``'s training queries, by exact
    dot-product search over the encoder's vectors (how the head plugins' tests see learning)."""
    part = dataset.split("train")
    q, d = encoder.encode_queries(list(part.queries.texts)), encoder.encode_documents(dataset.corpus.documents())
    order = np.argsort(-(q @ d.T), axis=1)
    return float(np.mean([1 / (1 + min(np.flatnonzero(np.isin(row, [dataset.corpus.position[x]
                                                                      for x in part.qrels[qid]]))))
                          for row, qid in zip(order, part.queries.ids.tolist())]))


def reference_attention_block(q_all: torch.Tensor, k_all: torch.Tensor, v_all: torch.Tensor,
                              residual: torch.Tensor, attention, feed_forward) -> torch.Tensor:
    """One vector through an ``embedlab_train.blocks`` cross-attention + GEGLU feed-forward, written
    out head by head (the pooling heads' tests compare their layers with it): ``q_all`` the projected
    query, ``k_all``/``v_all`` the projected keys and values, ``residual`` the vector the block adds to."""
    heads = []
    for i in range(attention.heads):
        cut = slice(i * attention.head_dim, (i + 1) * attention.head_dim)
        weights = torch.softmax(k_all[:, cut] @ q_all[cut] / math.sqrt(attention.head_dim), dim=0)
        heads.append(weights @ v_all[:, cut])
    attended = torch.cat(heads) @ attention.to_out.weight.T + residual
    ff, d = feed_forward, residual.shape[-1]
    normed = torch.nn.functional.layer_norm(attended, (d,), ff.norm.weight, ff.norm.bias)
    x, gate = (normed @ ff.inner.weight.T + ff.inner.bias).chunk(2)
    return (x * torch.nn.functional.gelu(gate)) @ ff.out.weight.T + ff.out.bias + attended


def through_cli_and_api(directory: str | Path, dataset: Dataset, encoder: dict) -> tuple[dict, dict, Any]:
    """A pipeline (``encoder`` table, exact index) trained on ``dataset``'s train split and
    evaluated on its test split twice: through ``embedlab run`` from a TOML file (training runs
    checkpointed under ``directory``) and through the Python API. Returns the CLI's results.json
    entry, ``{"aggregates", "fingerprints"}`` of the API run, and the API's (trained) encoder."""
    import embedlab
    from embedlab.datasets import load_dataset_spec
    from embedlab.testing import api_aggregates, run_cli_experiment

    table = {**{k: v for k, v in encoder.items() if k != "checkpoint_dir"},
             "checkpoint_dir": str(Path(directory) / "checkpoints")}
    found = run_cli_experiment(directory, dataset, [{"name": "p", "encoder": table, "index": {"name": "exact"}}],
                               train_split="train")["p"]
    # the API trains on the dataset the CLI read (a saved dataset lists a split's queries by id)
    dataset = load_dataset_spec(path=Path(directory) / "dataset")
    ours = embedlab.create("encoder", **encoder)
    pipeline = embedlab.Pipeline(encoder=ours, index=embedlab.create("index", "exact"))
    aggregates = api_aggregates(pipeline, dataset, train_split="train")
    return found, {"aggregates": aggregates, "fingerprints": pipeline.fingerprints()}, ours
