"""Which distribution provides a component that is not installed: drives ``pip install`` hints."""

from __future__ import annotations

#: (kind, name) -> distribution providing it.
KNOWN_PROVIDERS: dict[tuple[str, str], str] = {
    ("encoder", "transformers"): "embedlab-transformers",
    ("encoder", "minilm"): "embedlab-transformers",
    ("encoder", "minilm-tokens"): "embedlab-transformers",
    ("reranker", "maxsim"): "embedlab-transformers",
    ("encoder", "bm25"): "embedlab-bm25",
    ("index", "faiss"): "embedlab-faiss",
    ("compressor", "storage"): "embedlab-storage",
    ("compressor", "bebr"): "embedlab-bebr",
    ("compressor", "jpq"): "embedlab-jpq",
    ("index", "distillvq"): "embedlab-distillvq",
    ("index", "muvera"): "embedlab-muvera",
    ("index", "seismic"): "embedlab-seismic",
    ("index", "filtered"): "embedlab-filtered",
    ("index", "acorn"): "embedlab-filtered",
    ("index", "bidr"): "embedlab-bidr",
    ("encoder", "anncur"): "embedlab-anncur",
    ("reranker", "e2rank"): "embedlab-e2rank",
    ("reranker", "cosine-adapter"): "embedlab-cosine-adapter",
    ("reranker", "dime"): "embedlab-dime",
    ("dataset", "limit-small"): "embedlab-limit",
    ("dataset", "limit-generated"): "embedlab-limit",
    ("encoder", "fastrp"): "embedlab-fastrp",
    ("encoder", "node2vec"): "embedlab-node2vec",
    ("encoder", "deepwalk"): "embedlab-node2vec",
    ("encoder", "irwe"): "embedlab-irwe",
    ("dataset", "restore"): "embedlab-restore",
    ("metric", "SetP"): "embedlab-cosine-adapter",
    ("metric", "SetR"): "embedlab-cosine-adapter",
    ("metric", "SetF1"): "embedlab-cosine-adapter",
    ("metric", "SetSize"): "embedlab-cosine-adapter",
}
