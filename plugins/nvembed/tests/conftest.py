"""A tiny random BERT with MiniLM's tokenizer, the topics dataset and a private embedlab cache
(shared fixtures of embedlab-train's pooling-head tests)."""

from embedlab_train.head_fixtures import dataset, params, private_cache, tiny_model  # noqa: F401
