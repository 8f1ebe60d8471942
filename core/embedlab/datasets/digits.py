"""``digits``: scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, no download) as a
tiny real image-retrieval set: a seeded share of the images are queries, the rest the corpus, and
a query's relevant documents are the corpus images of the same digit. Every image carries a
caption ("a handwritten digit 3", corpus attribute ``caption``; attribute ``digit``). Needs
scikit-learn (``pip install embedlab[images]``); the core does not import it otherwise.
"""

from __future__ import annotations

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError
from embedlab.media import Image


def digits(n_queries: int = 100, limit: int | None = None, seed: int = 0) -> Dataset:
    """The ``digits`` dataset: ``n_queries`` image queries (split ``test``) against the remaining
    images (``limit`` caps the corpus size)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("the digits dataset needs scikit-learn (pip install scikit-learn, or "
                          "pip install embedlab[images])") from None
    bunch = load_digits()
    pixels = np.rint(bunch.images / 16.0 * 255).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    if not 1 <= n_queries < len(labels):
        raise ConfigError(f"digits: n_queries must lie in 1..{len(labels) - 1}, got {n_queries}")
    query_rows, corpus_rows = order[:n_queries], order[n_queries:]
    if limit is not None:
        corpus_rows = corpus_rows[:limit]
    doc_ids = [f"digit-{i:04d}" for i in corpus_rows]
    corpus = Corpus(doc_ids, [""] * len(doc_ids),
                    attributes={"digit": labels[corpus_rows],
                                "caption": np.array([f"a handwritten digit {d}" for d in labels[corpus_rows]],
                                                    dtype=object)},
                    images=[Image(pixels[i]) for i in corpus_rows])
    query_ids = [f"query-{i:04d}" for i in query_rows]
    queries = Queries(query_ids, [""] * len(query_ids), images=[Image(pixels[i]) for i in query_rows])
    qrels = {q: {d: 1 for d, label in zip(doc_ids, labels[corpus_rows]) if label == labels[row]}
             for q, row in zip(query_ids, query_rows)}
    return Dataset("digits", corpus, queries, {"test": qrels},
                   {"source": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)"})
