"""The index inside an embedlab Pipeline, alone and with a pipeline compressor (AcceptsCompressor)."""

from __future__ import annotations

import numpy as np
from embedlab_bidr import BiDRIndex

import embedlab
from embedlab import Corpus, Pipeline, Queries
from embedlab.embeddings import EmbeddingKind


class TableEncoder:
    """Looks texts ``"<i>"`` up in a fixed table of vectors (no model needed)."""

    name, config, output_kind = "table", None, EmbeddingKind.DENSE

    def __init__(self, table: np.ndarray) -> None:
        self.table, self.dim = table, table.shape[1]

    def encode_documents(self, texts):  # type: ignore[no-untyped-def]
        return self.table[[int(t) for t in texts]]

    encode_queries = encode_documents


def test_pipeline_with_and_without_a_compressor(docs, queries) -> None:
    table = np.concatenate([docs, queries])
    corpus = Corpus([f"d{i}" for i in range(len(docs))], [str(i) for i in range(len(docs))])
    asked = Queries([f"q{i}" for i in range(len(queries))], [str(len(docs) + i) for i in range(len(queries))])
    exact = Pipeline(encoder=TableEncoder(table), index=embedlab.create("index", "exact"))
    exact.build(corpus)
    truth = exact.search(asked, k=10)
    for compressor in (None, embedlab.create("compressor", "pq", m=8, ksub=16)):
        index = embedlab.create("index", "bidr", m=4, ksub=16, candidates=len(docs))
        pipeline = Pipeline(encoder=TableEncoder(table), index=index, compressor=compressor)
        pipeline.build(corpus)
        m = 4 if compressor is None else 8  # the pipeline's compressor supplies the codes
        assert isinstance(pipeline.index, BiDRIndex) and pipeline.index.memory_bytes == len(docs) * m + 16 * 32 * 4
        np.testing.assert_array_equal(pipeline.search(asked, k=10).doc_ids, truth.doc_ids)
